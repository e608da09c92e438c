"""Defaulting: what the server fills in, idempotence, and never overriding what is set."""

from __future__ import annotations

import copy

import pytest

from kubelab.apiserver.defaults import apply_defaults, image_pull_policy, preserve_allocations, qos_class
from kubelab.resources import BY_PLURAL

R = BY_PLURAL


def defaulted(plural: str, obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    apply_defaults(R[plural], obj)
    once = copy.deepcopy(obj)
    apply_defaults(R[plural], obj)
    assert obj == once, "defaulting must be idempotent"
    return obj


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"),
    ("registry:5000/team/app", "Always"), ("registry:5000/team/app:v2", "IfNotPresent"),
    ("nginx@sha256:abcd", "IfNotPresent"), ("busybox:latest", "Always"),
])
def test_image_pull_policy(image, policy):
    assert image_pull_policy(image) == policy


def test_pod_defaults_like_kubectl_get_o_yaml():
    pod = defaulted("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                        "readinessProbe": {"httpGet": {"port": 80}},
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}],
        "initContainers": [{"name": "i", "image": "busybox"}],
        "volumes": [{"name": "cm", "configMap": {"name": "x"}}]}})
    spec = pod["spec"]
    assert {k: spec[k] for k in ("restartPolicy", "dnsPolicy", "terminationGracePeriodSeconds",
                                 "schedulerName", "serviceAccountName", "serviceAccount",
                                 "enableServiceLinks", "securityContext", "priority")} == {
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler", "serviceAccountName": "default", "serviceAccount": "default",
        "enableServiceLinks": True, "securityContext": {}, "priority": 0}
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["initContainers"][0]["imagePullPolicy"] == "Always"
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420
    assert {t["key"] for t in spec["tolerations"]} == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}
    assert all(t["tolerationSeconds"] == 300 and t["effect"] == "NoExecute" for t in spec["tolerations"])
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_pod_defaults_keep_what_is_set():
    pod = defaulted("pods", {"kind": "Pod", "spec": {
        "restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
        "serviceAccountName": "robot", "enableServiceLinks": False,
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 5}],
        "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
                        "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}, "status": {"phase": "Running"}})
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", "Default", 0)
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "robot"
    assert spec["enableServiceLinks"] is False
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert spec["containers"][0]["ports"][0]["protocol"] == "UDP"
    assert [t["tolerationSeconds"] for t in spec["tolerations"]] == [5, 300]
    assert pod["status"]["phase"] == "Running"


def _c(**res):
    return {"name": "c", "image": "i", "resources": res}


@pytest.mark.parametrize("containers,qos", [
    ([{"name": "c", "image": "i"}], "BestEffort"),
    ([_c(requests={"cpu": "100m"})], "Burstable"),
    ([_c(limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([_c(limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([_c(limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "500m"})], "Burstable"),
    ([_c(limits={"cpu": "1", "memory": "1Gi"}), {"name": "d", "image": "i"}], "Burstable"),
    ([_c(limits={"cpu": "1"})], "Burstable"),
    ([_c(requests={"ephemeral-storage": "1Gi"})], "BestEffort"),
])
def test_qos_class(containers, qos):
    assert qos_class({"containers": containers}) == qos
    pod = defaulted("pods", {"kind": "Pod", "spec": {"containers": copy.deepcopy(containers)}})
    assert pod["status"]["qosClass"] == qos


def test_pod_requests_default_to_limits():
    pod = defaulted("pods", {"kind": "Pod", "spec": {"containers": [_c(limits={"cpu": "1", "memory": "1Gi"})]}})
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}


@pytest.mark.parametrize("spec,expected", [
    ({"ports": [{"port": 80}]},
     {"type": "ClusterIP", "sessionAffinity": "None", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"}),
    ({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]},
     {"type": "NodePort", "sessionAffinity": "None", "ports": [{"port": 80, "protocol": "UDP", "targetPort": "http"}],
      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster"}),
    ({"type": "LoadBalancer", "ports": [{"port": 53}]},
     {"type": "LoadBalancer", "sessionAffinity": "None", "ports": [{"port": 53, "protocol": "TCP", "targetPort": 53}],
      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True}),
    ({"type": "ExternalName", "externalName": "example.com"},
     {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}),
    ({"clusterIP": "10.96.0.10", "ports": [{"port": 53, "targetPort": 0}], "sessionAffinity": "ClientIP"},
     {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
      "ports": [{"port": 53, "protocol": "TCP", "targetPort": 53}],
      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"}),
])
def test_service_defaults(spec, expected):
    svc = defaulted("services", {"kind": "Service", "spec": spec})
    assert svc["spec"] == expected
    assert svc["status"] == {"loadBalancer": {}}


def test_deployment_defaults():
    dep = defaulted("deployments", {"kind": "Deployment", "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and tspec["dnsPolicy"] == "ClusterFirst"
    assert tspec["containers"][0]["imagePullPolicy"] == "Always"
    # admission-only pod fields stay off templates, as in `kubectl get deploy -o yaml`
    assert "serviceAccountName" not in tspec and "tolerations" not in tspec
    assert "status" not in spec["template"]


@pytest.mark.parametrize("strategy,expected", [
    ({"type": "Recreate"}, {"type": "Recreate"}),
    ({"rollingUpdate": {"maxSurge": 1}}, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}),
    ({}, {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
])
def test_deployment_strategy_defaults(strategy, expected):
    dep = defaulted("deployments", {"kind": "Deployment", "spec": {"replicas": 0, "strategy": strategy}})
    assert dep["spec"]["strategy"] == expected
    assert dep["spec"]["replicas"] == 0


def test_replicaset_namespace_endpointslice_secret_defaults():
    rs = defaulted("replicasets", {"kind": "ReplicaSet", "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}})
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    ns = defaulted("namespaces", {"kind": "Namespace", "metadata": {"name": "x"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    es = defaulted("endpointslices", {"kind": "EndpointSlice", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]})
    assert [p["protocol"] for p in es["ports"]] == ["TCP", "UDP"]
    ep = defaulted("endpoints", {"kind": "Endpoints", "subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert defaulted("secrets", {"kind": "Secret"})["type"] == "Opaque"
    cm = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert defaulted("configmaps", cm) == cm


def test_preserve_allocations_on_replace():
    old = {"kind": "Service", "spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
                                       "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080},
                                                 {"port": 53, "protocol": "UDP", "nodePort": 30053}]}}
    new = {"kind": "Service", "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"},
                                                                     {"port": 99}]}}
    preserve_allocations(R["services"], new, old)
    assert new["spec"]["clusterIP"] == "10.96.0.9" and new["spec"]["clusterIPs"] == ["10.96.0.9"]
    assert [p.get("nodePort") for p in new["spec"]["ports"]] == [30080, 30053, None]
    ext = {"kind": "Service", "spec": {"type": "ExternalName", "externalName": "x.com"}}
    preserve_allocations(R["services"], ext, old)
    assert "clusterIP" not in ext["spec"]
    pod = {"kind": "Pod", "spec": {}}
    preserve_allocations(R["pods"], pod, {"spec": {"clusterIP": "x"}})
    assert pod == {"kind": "Pod", "spec": {}}
