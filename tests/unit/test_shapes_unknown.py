"""Unknown fields (fieldValidation): object in, the paths upstream's strict decoder reports out.

The field lists in kubelab.apiserver.shapes are upstream v1.32's; these tables pin both halves:
typos are found where a struct is complete, and real upstream fields (including the recent
ones) are never reported.
"""

from __future__ import annotations

import copy

import pytest

from kubelab.apiserver import shapes
from kubelab.apiserver.shapes import drop_unknown, go_quote, strict_decoding_error, type_causes, unknown_fields


def pod(spec: dict | None = None, **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": spec if spec is not None else {"containers": [{"name": "c", "image": "nginx", **container}]}}


def deployment(**spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}, **spec}}


def service(**spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"selector": {"app": "s"}, "ports": [{"port": 80}], **spec}}


TYPOS = [
    # (kind, object, the paths reported, in document order)
    ("Pod", pod(readinesProbe={"httpGet": {"port": 80}}), ["spec.containers[0].readinesProbe"]),
    ("Pod", pod(ports=[{"containerPort": 80}, {"contianerPort": 81}]), ["spec.containers[0].ports[1].contianerPort"]),
    ("Pod", pod(ports=[{"ContainerPort": 80}]), ["spec.containers[0].ports[0].ContainerPort"]),  # case matters
    ("Pod", pod(livenessProbe={"httpGet": {"paht": "/", "port": 80}}), ["spec.containers[0].livenessProbe.httpGet.paht"]),
    ("Pod", pod(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optinal": True}}}]),
     ["spec.containers[0].env[0].valueFrom.secretKeyRef.optinal"]),
    ("Pod", pod(resources={"request": {"cpu": "1"}}), ["spec.containers[0].resources.request"]),
    ("Pod", pod(volumeMounts=[{"name": "v", "mountpath": "/x"}]), ["spec.containers[0].volumeMounts[0].mountpath"]),
    ("Pod", pod(spec={"containers": [{"name": "c", "image": "i"}], "nodeSelectors": {"a": "b"},
                      "volumes": [{"name": "v", "configMap": {"nmae": "cm"}}]}),
     ["spec.nodeSelectors", "spec.volumes[0].configMap.nmae"]),
    ("Pod", pod(spec={"initContainers": [{"name": "i", "image": "i", "comand": ["sh"]}], "containers": []}),
     ["spec.initContainers[0].comand"]),
    ("Pod", {**pod(), "spek": {}, "metadata": {"name": "p", "label": {"a": "b"}}}, ["metadata.label", "spek"]),
    ("Deployment", deployment(selectr={"matchLabels": {}}), ["spec.selectr"]),
    ("Deployment", deployment(replica=2, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurg": 1}}),
     ["spec.replica", "spec.strategy.rollingUpdate.maxSurg"]),
    ("Deployment", {**deployment(), "spec": {**deployment()["spec"], "template": {
        "metadata": {"lables": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy":
                                                                       "Always", "imagepullpolicy": "Never"}]}}}},
     ["spec.template.metadata.lables", "spec.template.spec.containers[0].imagepullpolicy"]),
    ("ReplicaSet", {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
                    "spec": {"replicas": 1, "selectors": {}}}, ["spec.selectors"]),
    ("Service", service(ports=[{"port": 80, "targetport": 8080}]), ["spec.ports[0].targetport"]),
    ("Service", service(type="NodePort", externalTrafficPolicy="Local", sessionAfinity="ClientIP"),
     ["spec.sessionAfinity"]),
    ("ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "date": {"a": "b"}}, ["date"]),
    ("Secret", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringdata": {"a": "b"}},
     ["stringdata"]),
    ("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizer": []}},
     ["spec.finalizer"]),
    ("Role", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
              "rules": [{"apiGroups": [""], "resources": ["pods"], "verb": ["get"]}]}, ["rules[0].verb"]),
    ("ClusterRoleBinding", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                            "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "x", "group": "g"},
                            "subject": []}, ["roleRef.group", "subject"]),
    ("ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "status": {}}, ["status"]),
    ("Pod", pod(lifecycle={"preStop": {"sleep": {"second": 1}}}), ["spec.containers[0].lifecycle.preStop.sleep.second"]),
    ("Pod", pod(bogus=None), ["spec.containers[0].bogus"]),  # null or not, the field does not exist
    ("Scale", {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"},
               "spec": {"replica": 3}}, ["spec.replica"]),
]

# Valid upstream v1.32 fields: a list that stops at the common ones would reject these.
VALID = [
    ("Pod", pod(resizePolicy=[{"resourceName": "cpu", "restartPolicy": "NotRequired"}], restartPolicy="Always",
                volumeDevices=[{"name": "d", "devicePath": "/dev/x"}], stdin=True, stdinOnce=True, tty=True,
                startupProbe={"grpc": {"port": 9000, "service": "s"}, "terminationGracePeriodSeconds": 5},
                resources={"claims": [{"name": "gpu", "request": "r"}]},
                securityContext={"appArmorProfile": {"type": "RuntimeDefault"}, "procMount": "Default",
                                 "windowsOptions": {"hostProcess": False}},
                volumeMounts=[{"name": "v", "mountPath": "/v", "recursiveReadOnly": "Disabled",
                               "subPathExpr": "$(POD)", "mountPropagation": "None"}],
                lifecycle={"postStart": {"httpGet": {"port": "http", "httpHeaders": [{"name": "a", "value": "b"}]}}},
                envFrom=[{"prefix": "X_", "configMapRef": {"name": "cm", "optional": True}}])),
    ("Pod", pod(spec={
        "containers": [{"name": "c", "image": "i"}],
        "ephemeralContainers": [{"name": "dbg", "image": "busybox", "targetContainerName": "c"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                       "minDomains": 2, "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore",
                                       "matchLabelKeys": ["pod-template-hash"],
                                       "labelSelector": {"matchLabels": {"a": "b"}}}],
        "hostUsers": False, "schedulingGates": [{"name": "wait"}], "os": {"name": "linux"},
        "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "t"}], "resources": {"limits": {"cpu": "1"}},
        "setHostnameAsFQDN": True, "shareProcessNamespace": True, "hostIPC": False, "hostPID": False,
        "runtimeClassName": "rc", "preemptionPolicy": "Never", "overhead": {"cpu": "10m"},
        "readinessGates": [{"conditionType": "x"}], "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["h"]}],
        "securityContext": {"supplementalGroupsPolicy": "Strict", "seLinuxChangePolicy": "Recursive",
                            "sysctls": [{"name": "net.ipv4.ip_forward", "value": "1"}], "fsGroupChangePolicy": "Always"},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}},
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "zone", "mismatchLabelKeys": ["x"], "namespaceSelector": {}}]}},
        "volumes": [{"name": "a", "csi": {"driver": "d", "anything": {"goes": 1}}},   # described no deeper
                    {"name": "b", "image": {"reference": "r", "pullPolicy": "Always"}},
                    {"name": "c", "projected": {"sources": [{"clusterTrustBundle": {"signerName": "s", "x": 1}},
                                                            {"serviceAccountToken": {"path": "t", "audience": "a"}}]}},
                    {"name": "d", "downwardAPI": {"items": [{"path": "p", "resourceFieldRef": {"resource": "limits.cpu",
                                                                                              "divisor": "1m"}}]}}],
    })),
    ("Pod", {**pod(), "status": {"phase": "Running", "anything": {"kubelab": "does not check status"}},
             "metadata": {"name": "p", "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                                          "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}},
                                                          "subresource": "", "time": "2024-01-01T00:00:00Z"}],
                          "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u",
                                               "controller": True, "blockOwnerDeletion": True}],
                          "deletionTimestamp": None, "creationTimestamp": None, "selfLink": ""}}),
    ("Service", service(trafficDistribution="PreferClose", ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4"],
                        allocateLoadBalancerNodePorts=False, loadBalancerClass="c", loadBalancerSourceRanges=[],
                        healthCheckNodePort=30000, sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10}},
                        internalTrafficPolicy="Local", publishNotReadyAddresses=True,
                        ports=[{"name": "h", "port": 80, "targetPort": "http", "appProtocol": "h2c", "nodePort": 30001,
                                "protocol": "TCP"}])),
    ("Deployment", deployment(revisionHistoryLimit=1, progressDeadlineSeconds=60, paused=False, minReadySeconds=1,
                              strategy={"type": "Recreate"})),
    ("ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": True,
                   "binaryData": {"b": "AA=="}, "data": {"any key": "x"}}),
    ("Lease", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
               "spec": {"holderIdentity": "a", "strategy": "OldestEmulationVersion", "preferredHolder": "b",
                        "acquireTime": "2024-01-01T00:00:00.000000Z", "renewTime": None, "leaseTransitions": 1}}),
    ("EndpointSlice", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
                       "addressType": "IPv4", "ports": [{"name": "", "port": 80, "appProtocol": "http"}],
                       "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": True,
                                                                                "terminating": False},
                                      "zone": "z", "hints": {"forZones": [{"name": "z"}]},
                                      "deprecatedTopology": {"a": "b"}}]}),
    ("Event", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod"},
               "series": {"count": 2, "lastObservedTime": "t"}, "action": "a", "related": {"fieldPath": "spec"},
               "reportingComponent": "c", "reportingInstance": "i", "eventTime": None}),
    ("ClusterRole", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
                     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]},
                     "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
    ("Node", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
              "spec": {"taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": None}], "externalID": "x",
                       "configSource": {"configMap": {"name": "c"}}}, "status": {"whatever": 1}}),
]


@pytest.mark.parametrize("kind,obj,want", TYPOS, ids=[f"{k}:{w[0]}" for k, _, w in TYPOS])
def test_typos_are_found(kind, obj, want):
    before = copy.deepcopy(obj)
    assert unknown_fields(kind, obj) == want
    assert obj == before  # unknown_fields only looks


@pytest.mark.parametrize("kind,obj", VALID, ids=[f"{k}-{i}" for i, (k, _) in enumerate(VALID)])
def test_valid_upstream_fields_are_never_reported(kind, obj):
    assert unknown_fields(kind, obj) == []
    assert type_causes(kind, obj) == []


def test_drop_unknown_removes_exactly_the_reported_fields():
    obj = pod(readinesProbe={}, ports=[{"containerPort": 80, "contianerPort": 81}])
    obj["spec"]["selectr"] = {"nested": {"deep": 1}}
    want = unknown_fields("Pod", obj)
    assert drop_unknown("Pod", obj) == want
    assert obj["spec"] == {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}
    assert drop_unknown("Pod", obj) == []  # nothing left


def test_messages_match_upstream_wording():
    assert strict_decoding_error(["spec.x", "spec.containers[0].y"]) == \
        'strict decoding error: unknown field "spec.x", unknown field "spec.containers[0].y"'
    assert shapes.unknown_field_message("spec.x") == 'unknown field "spec.x"'
    assert strict_decoding_error([f"f{i}" for i in range(shapes.MAX_LISTED + 5)]).endswith(", and 5 more")


@pytest.mark.parametrize("raw,quoted", [
    ("spec.x", '"spec.x"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("a\nb\tc", '"a\\nb\\tc"'),
    ("\x00\x7f", '"\\x00\\x7f"'), ("é漢", '"é漢"'), ("\ud800", '"\\ud800"'), ("\u2028", '"\\u2028"'),
])
def test_go_quote(raw, quoted):
    assert go_quote(raw) == quoted
    go_quote(raw).encode()  # always valid UTF-8: it can go into a header


def test_map_and_list_paths_and_wrong_types_are_left_to_type_causes():
    obj = pod(ports="not a list", resources={"limits": {"cpu": "1", "nvidia.com/gpu": 1}})
    assert unknown_fields("Pod", obj) == []  # a wrong type is a type error, not an unknown field
    assert [c["field"] for c in type_causes("Pod", obj)] == ["spec.containers[0].ports"]
    obj = pod(spec={"containers": [{"name": "c", "securityContext": {"runAsUser": "root"}}]})
    assert [c["field"] for c in type_causes("Pod", obj)] == ["spec.containers[0].securityContext.runAsUser"]


# The complete structs are upstream's exactly (release-1.32 OpenAPI); guard against a field
# being lost or a made-up one slipping in.
UPSTREAM_1_32 = {
    "POD_SPEC": {"activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers", "dnsConfig",
                 "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork",
                 "hostPID", "hostUsers", "hostname", "imagePullSecrets", "initContainers", "nodeName", "nodeSelector",
                 "os", "overhead", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
                 "resourceClaims", "resources", "restartPolicy", "runtimeClassName", "schedulerName",
                 "schedulingGates", "securityContext", "serviceAccount", "serviceAccountName", "setHostnameAsFQDN",
                 "shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds", "tolerations",
                 "topologySpreadConstraints", "volumes"},
    "CONTAINER": {"args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "name",
                  "ports", "readinessProbe", "resizePolicy", "resources", "restartPolicy", "securityContext",
                  "startupProbe", "stdin", "stdinOnce", "terminationMessagePath", "terminationMessagePolicy", "tty",
                  "volumeDevices", "volumeMounts", "workingDir"},
    "META": {"annotations", "creationTimestamp", "deletionGracePeriodSeconds", "deletionTimestamp", "finalizers",
             "generateName", "generation", "labels", "managedFields", "name", "namespace", "ownerReferences",
             "resourceVersion", "selfLink", "uid"},
    "PROBE": {"exec", "failureThreshold", "grpc", "httpGet", "initialDelaySeconds", "periodSeconds",
              "successThreshold", "tcpSocket", "terminationGracePeriodSeconds", "timeoutSeconds"},
}


@pytest.mark.parametrize("name", sorted(UPSTREAM_1_32))
def test_complete_structs_are_upstreams(name):
    assert set(getattr(shapes, name)) == UPSTREAM_1_32[name]


def test_service_spec_is_upstreams():
    assert set(shapes.KINDS["Service"]["spec"]) == {
        "allocateLoadBalancerNodePorts", "clusterIP", "clusterIPs", "externalIPs", "externalName",
        "externalTrafficPolicy", "healthCheckNodePort", "internalTrafficPolicy", "ipFamilies", "ipFamilyPolicy",
        "loadBalancerClass", "loadBalancerIP", "loadBalancerSourceRanges", "ports", "publishNotReadyAddresses",
        "selector", "sessionAffinity", "sessionAffinityConfig", "trafficDistribution", "type"}
