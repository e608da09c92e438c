"""Validation causes: field paths, reasons and upstream message texts, table-driven."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from kubelab.apiserver.defaults import apply_defaults
from kubelab.apiserver.validation import (
    MSG_DNS1035_LABEL, MSG_DNS1123_LABEL, MSG_DNS1123_SUBDOMAIN, is_dns1123_label,
    is_dns1123_subdomain, qualified_name_errors, selector_matches, validate,
)
from kubelab.resources import BY_PLURAL

REFERENCE_LOG = Path("/work/shared/reference/kubectl-1.32-requests.jsonl")
R = BY_PLURAL


def pod(**spec) -> dict:
    base = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    base["spec"].update(spec)
    return base


def deployment(**spec) -> dict:
    base = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    base["spec"].update(spec)
    return base


def service(**spec) -> dict:
    base = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
            "spec": {"selector": {"app": "s"}, "ports": [{"port": 80}]}}
    base["spec"].update(spec)
    return base


def checked(plural: str, obj: dict, **kw) -> list[dict]:
    """Defaults first (as the server does), then validation."""
    obj = copy.deepcopy(obj)
    apply_defaults(R[plural], obj)
    return validate(R[plural], obj, **kw)


def pairs(causes: list[dict]) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in causes]


# --- formats ----------------------------------------------------------------------------------

@pytest.mark.parametrize("s,label,subdomain", [
    ("a", True, True), ("my-name", True, True), ("123-abc", True, True),
    ("example.com", False, True), ("a" * 63, True, True), ("a" * 64, False, True),
    ("a" * 253, False, True), ("a" * 254, False, False), ("", False, False),
    ("-a", False, False), ("a-", False, False), ("A", False, False), ("a_b", False, False),
    ("a..b", False, False), (".a", False, False), ("a.b-c.d", False, True),
])
def test_dns1123_formats(s, label, subdomain):
    assert is_dns1123_label(s) is label
    assert is_dns1123_subdomain(s) is subdomain


@pytest.mark.parametrize("key,ok", [
    ("app", True), ("app.kubernetes.io/name", True), ("a/b/c", False), ("/x", False),
    ("Bad_Prefix/x", False), ("x/", False), ("my_key.v1", True), ("-x", False), ("a" * 64, False),
])
def test_qualified_names(key, ok):
    assert (qualified_name_errors(key) == []) is ok


@pytest.mark.parametrize("selector,labels,match", [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
])
def test_selector_matches(selector, labels, match):
    assert selector_matches(selector, labels) is match


# --- the example of kubectl-wire.md -----------------------------------------------------------

def test_missing_image_is_the_documented_cause():
    causes = checked("pods", pod(containers=[{"name": "c"}]))
    assert causes == [{"reason": "FieldValueRequired", "message": "Required value",
                       "field": "spec.containers[0].image"}]


@pytest.mark.parametrize("line_no", [18, 24, 26, 44, 70, 75, 77])
def test_reference_log_bodies_are_valid(line_no):
    req = json.loads(REFERENCE_LOG.read_text().splitlines()[line_no])
    obj = json.loads(req["body"])
    rt = next(r for r in R.values() if r.kind == obj["kind"])
    obj.setdefault("metadata", {}).setdefault("namespace", "default")
    assert checked(rt.plural, obj) == []


# --- metadata ---------------------------------------------------------------------------------

@pytest.mark.parametrize("plural,meta,expected", [
    ("pods", {"namespace": "default"},
     [("metadata.name", "Required value: name or generateName is required")]),
    ("pods", {"generateName": "web-", "namespace": "default"}, []),
    ("pods", {"name": "Bad_Name", "namespace": "default"},
     [("metadata.name", f'Invalid value: "Bad_Name": {MSG_DNS1123_SUBDOMAIN}')]),
    ("pods", {"name": "a.b", "namespace": "default"}, []),
    ("services", {"name": "a.b", "namespace": "default"},
     [("metadata.name", f'Invalid value: "a.b": {MSG_DNS1035_LABEL}')]),
    ("services", {"name": "1abc", "namespace": "default"},
     [("metadata.name", f'Invalid value: "1abc": {MSG_DNS1035_LABEL}')]),
    ("namespaces", {"name": "a.b"}, [("metadata.name", f'Invalid value: "a.b": {MSG_DNS1123_LABEL}')]),
    ("namespaces", {"name": "ns", "namespace": "x"},
     [("metadata.namespace", "Forbidden: not allowed on this type")]),
    ("pods", {"name": "p"}, [("metadata.namespace", "Required value")]),
    ("configmaps", {"name": "..", "namespace": "default"}, [("metadata.name", "Invalid value: \"..\": may not be '..'")]),
    ("configmaps", {"name": "a/b", "namespace": "default"}, [("metadata.name", "Invalid value: \"a/b\": may not contain '/'")]),
    ("configmaps", {"name": "c", "namespace": "default", "labels": {"ok": "v", "bad key": "v"}},
     [("metadata.labels", 'Invalid value: "bad key": name part must consist of alphanumeric characters, '
       "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
       "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")]),
    ("configmaps", {"name": "c", "namespace": "default", "labels": {"k": "-bad"}},
     [("metadata.labels", 'Invalid value: "-bad": a valid label must be an empty string or consist of '
       "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
       "(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
       "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
    ("configmaps", {"name": "c", "namespace": "default", "labels": {"k": "x" * 64}},
     [("metadata.labels", f'Invalid value: "{"x" * 64}": must be no more than 63 characters')]),
    ("configmaps", {"name": "c", "namespace": "default", "annotations": {"example.com/ok": "{}"}}, []),
    ("configmaps", {"name": "c", "namespace": "default", "annotations": {"a": "x" * 300000}},
     [("metadata.annotations", "Too long: must have at most 262144 bytes")]),
])
def test_metadata(plural, meta, expected):
    kind = R[plural].kind
    obj = {"apiVersion": R[plural].api_version, "kind": kind, "metadata": meta}
    if kind == "Pod":
        obj["spec"] = {"containers": [{"name": "c", "image": "i"}]}
    if kind == "Service":
        obj["spec"] = {"ports": [{"port": 80}]}
    assert pairs(checked(plural, obj)) == expected


# --- pods ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ({"containers": []}, [("spec.containers", "Required value")]),
    ({"containers": [{"image": "x"}]}, [("spec.containers[0].name", "Required value")]),
    ({"containers": [{"name": "C", "image": "x"}]},
     [("spec.containers[0].name", f'Invalid value: "C": {MSG_DNS1123_LABEL}')]),
    ({"containers": [{"name": "c", "image": "x"}, {"name": "c", "image": "y"}]},
     [("spec.containers[1].name", 'Duplicate value: "c"')]),
    ({"initContainers": [{"name": "c", "image": "x"}]},
     [("spec.containers[0].name", 'Duplicate value: "c"')]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 0}]}]},
     [("spec.containers[0].ports[0].containerPort", "Required value")]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 70000}]}]},
     [("spec.containers[0].ports[0].containerPort", "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "protocol": "ICMP"}]}]},
     [("spec.containers[0].ports[0].protocol", 'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"')]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "name": "http"},
                                                           {"containerPort": 81, "name": "http"}]}]},
     [("spec.containers[0].ports[1].name", 'Duplicate value: "http"')]),
    ({"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "name": "a-very-long-port-name"}]}]},
     [("spec.containers[0].ports[0].name", 'Invalid value: "a-very-long-port-name": must be no more than 15 characters')]),
    ({"restartPolicy": "Sometimes"},
     [("spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "Never", "OnFailure"')]),
    ({"dnsPolicy": "Google"},
     [("spec.dnsPolicy", 'Unsupported value: "Google": supported values: "ClusterFirst", '
       '"ClusterFirstWithHostNet", "Default", "None"')]),
    ({"containers": [{"name": "c", "image": "x", "imagePullPolicy": "Sometimes"}]},
     [("spec.containers[0].imagePullPolicy",
       'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')]),
    ({"containers": [{"name": "c", "image": "x", "livenessProbe": {"periodSeconds": 5}}]},
     [("spec.containers[0].livenessProbe", "Required value: must specify a handler type")]),
    ({"containers": [{"name": "c", "image": "x", "readinessProbe": {
        "httpGet": {"port": 80}, "tcpSocket": {"port": 80}}}]},
     [("spec.containers[0].readinessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type")]),
    ({"containers": [{"name": "c", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}]},
     [("spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1")]),
    ({"containers": [{"name": "c", "image": "x", "readinessProbe": {"httpGet": {"port": "http"}, "successThreshold": 2,
                                                                  "initialDelaySeconds": -1}}]},
     [("spec.containers[0].readinessProbe.initialDelaySeconds", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"containers": [{"name": "c", "image": "x", "readinessProbe": {"tcpSocket": {"port": 0}}}]},
     [("spec.containers[0].readinessProbe.tcpSocket.port", "Required value")]),
    ({"containers": [{"name": "c", "image": "x", "livenessProbe": {"exec": {}}}]},
     [("spec.containers[0].livenessProbe.exec.command", "Required value")]),
    ({"containers": [{"name": "c", "image": "x", "env": [{"value": "1"}, {"name": "1BAD", "value": "2"}]}]},
     [("spec.containers[0].env[0].name", "Required value"),
      ("spec.containers[0].env[1].name", 'Invalid value: "1BAD": a valid environment variable name must consist '
       "of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
       "or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")]),
    ({"containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]},
     [("spec.containers[0].volumeMounts[0].name", 'Not found: "data"')]),
    ({"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}],
      "containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "v"}]}]},
     [("spec.volumes[1].name", 'Duplicate value: "v"'), ("spec.containers[0].volumeMounts[0].mountPath", "Required value")]),
    ({"terminationGracePeriodSeconds": -5},
     [("spec.terminationGracePeriodSeconds", "Invalid value: -5: must be greater than or equal to 0")]),
    ({"activeDeadlineSeconds": 0},
     [("spec.activeDeadlineSeconds", "Invalid value: 0: must be between 1 and 2147483647, inclusive")]),
    ({"nodeName": "Node_1"}, [("spec.nodeName", f'Invalid value: "Node_1": {MSG_DNS1123_SUBDOMAIN}')]),
    ({"tolerations": [{"key": "k", "operator": "Maybe"}]},
     [("spec.tolerations[0].operator", 'Unsupported value: "Maybe": supported values: "Equal", "Exists"')]),
    ({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "lots"}}}]},
     [(f"spec.containers[0].resources.{k}[cpu]", "Invalid value: \"lots\": quantities must match the regular "
       "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'") for k in ("limits", "requests")]),  # requests default to limits
    ({"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]}, []),
])
def test_pod_spec(spec, expected):
    assert pairs(checked("pods", pod(**spec))) == expected


def test_pod_many_errors_reported_together():
    causes = checked("pods", pod(containers=[{"name": "c"}, {"name": "c", "image": "i"}], restartPolicy="X"))
    assert [c["reason"] for c in causes] == ["FieldValueRequired", "FieldValueDuplicate", "FieldValueNotSupported"]


# --- services -----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ({"ports": []}, [("spec.ports", "Required value")]),
    ({"ports": [], "clusterIP": "None"}, []),  # headless without ports
    ({"ports": [{"port": 0}]}, [("spec.ports[0].port", "Required value")]),
    ({"ports": [{"port": 65536}]}, [(f"spec.ports[0].{f}", "Invalid value: 65536: must be between 1 and 65535, inclusive")
                                    for f in ("port", "targetPort")]),  # targetPort defaults to port
    ({"ports": [{"port": 80}, {"port": 81}]}, [("spec.ports[0].name", "Required value"), ("spec.ports[1].name", "Required value")]),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}, [("spec.ports[1].name", 'Duplicate value: "a"')]),
    ({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
     [("spec.ports[1]", 'Duplicate value: {"port":80,"protocol":"TCP"}')]),
    ({"ports": [{"port": 80, "targetPort": 0}]}, []),  # 0 means "same as port"
    ({"ports": [{"port": 80, "targetPort": 70000}]},
     [("spec.ports[0].targetPort", "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    ({"ports": [{"port": 80, "targetPort": "80"}]},
     [("spec.ports[0].targetPort", 'Invalid value: "80": must contain at least one letter (a-z)')]),
    ({"ports": [{"port": 80, "targetPort": "http"}]}, []),
    ({"ports": [{"port": 80, "nodePort": 30080}]},
     [("spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'")]),
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, []),
    ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]},
     [("spec.ports[0].nodePort", "Invalid value: 8080: provided port is not in the valid range. "
       "The range of valid ports is 30000-32767")]),
    ({"type": "Magic"}, [("spec.type", 'Unsupported value: "Magic": supported values: '
                          '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"')]),
    ({"clusterIP": "10.96.0.300"},
     [("spec.clusterIPs[0]", 'Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')]),
    ({"clusterIP": "None", "type": "NodePort"},
     [("spec.clusterIPs[0]", 'Invalid value: "None": may not be set to \'None\' for NodePort services')]),
    ({"type": "ExternalName", "ports": []}, [("spec.externalName", "Required value")]),
    ({"type": "ExternalName", "externalName": "example.com", "ports": []}, []),
    ({"selector": {"app": "bad value"}}, [("spec.selector", 'Invalid value: "bad value": a valid label must be an empty '
      "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
      "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
    ({"sessionAffinity": "Sticky"},
     [("spec.sessionAffinity", 'Unsupported value: "Sticky": supported values: "ClientIP", "None"')]),
])
def test_service(spec, expected):
    assert pairs(checked("services", service(**spec))) == expected


# --- deployments / replicasets ---------------------------------------------------------------

@pytest.mark.parametrize("plural", ["deployments", "replicasets"])
@pytest.mark.parametrize("spec,expected", [
    ({"selector": None}, [("spec.selector", "Required value")]),
    ({"selector": {}}, [("spec.selector", "Invalid value: {}: empty selector is invalid for {kind}")]),
    ({"selector": {"matchLabels": {"app": "other"}}},
     [("spec.template.metadata.labels", 'Invalid value: {"app":"d"}: `selector` does not match template `labels`')]),
    ({"replicas": -1}, [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"replicas": 0}, []),
    ({"template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c"}]}}},
     [("spec.template.spec.containers[0].image", "Required value")]),
    ({"template": {"metadata": {"labels": {"app": "d"}},
                   "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}},
     [("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')]),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     [("spec.selector.matchExpressions[0].values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
      ("spec.template.metadata.labels", 'Invalid value: {"app":"d"}: `selector` does not match template `labels`')]),
])
def test_replicated(plural, spec, expected):
    obj = deployment(**spec)
    obj["kind"] = R[plural].kind
    expected = [(f, m.replace("{kind}", R[plural].singular)) for f, m in expected]
    assert pairs(checked(plural, obj)) == expected


@pytest.mark.parametrize("strategy,expected", [
    ({"type": "Recreate"}, []),
    ({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
     [("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")]),
    ({"type": "Blue"}, [("spec.strategy.type", 'Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"')]),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}},
     [("spec.strategy.rollingUpdate.maxUnavailable", 'Invalid value: "0%": may not be 0 when `maxSurge` is 0')]),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "abc", "maxUnavailable": 1}},
     [("spec.strategy.rollingUpdate.maxSurge", "Invalid value: \"abc\": a valid percent string must be a numeric "
       "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]),
])
def test_deployment_strategy(strategy, expected):
    assert pairs(checked("deployments", deployment(strategy=strategy))) == expected


def test_deployment_progress_deadline():
    causes = checked("deployments", deployment(progressDeadlineSeconds=5, minReadySeconds=10))
    assert pairs(causes) == [("spec.progressDeadlineSeconds", "Invalid value: 5: must be greater than minReadySeconds")]


# --- other kinds ----------------------------------------------------------------------------------

def obj_of(plural: str, **fields) -> dict:
    rt = R[plural]
    meta = {"name": "x"} | ({"namespace": "default"} if rt.namespaced else {})
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta, **fields}


@pytest.mark.parametrize("plural,fields,expected", [
    ("nodes", {"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}}, []),
    ("nodes", {"spec": {"podCIDR": "10.244.1.0"}},
     [("spec.podCIDR", 'Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')]),
    ("nodes", {"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}},
     [("spec.taints[0].effect", 'Unsupported value: "Sometimes": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"')]),
    ("endpointslices", {"addressType": "IPv4", "endpoints": [{"addresses": ["10.244.1.5"],
                        "conditions": {"ready": True}}], "ports": [{"name": "http", "port": 80}]}, []),
    ("endpointslices", {"endpoints": []}, [("addressType", "Required value")]),
    ("endpointslices", {"addressType": "IPv5"},
     [("addressType", 'Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"')]),
    ("endpointslices", {"addressType": "IPv4", "endpoints": [{"addresses": []}, {"addresses": ["fe80::1"]}]},
     [("endpoints[0].addresses", "Required value: must contain at least 1 address"),
      ("endpoints[1].addresses[0]", 'Invalid value: "fe80::1": must be a valid IPv4 address')]),
    ("endpointslices", {"addressType": "IPv4", "ports": [{"port": 80, "protocol": "HTTP"}]},
     [("ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')]),
    ("endpoints", {"subsets": [{"addresses": [{"ip": "10.244.1.2"}], "ports": [{"port": 80}]}]}, []),
    ("endpoints", {"subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]},
     [("subsets[0].addresses[0].ip", 'Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')]),
    ("configmaps", {"data": {"ok.key": "v", "bad key": "v"}},
     [("data[bad key]", "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, "
       "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")]),
    ("configmaps", {"data": {"a": "1"}, "binaryData": {"a": "MQ=="}},
     [("binaryData[a]", 'Invalid value: "a": duplicate of key present in data')]),
    ("configmaps", {"data": {"a": 1}}, [("data[a]", "Invalid value: 1: must be a string")]),
    ("secrets", {"data": {"k": "not base64!"}}, [("data[k]", 'Invalid value: "not base64!": illegal base64 data')]),
    ("secrets", {"data": {"k": "dg=="}, "type": "Opaque"}, []),
    ("secrets", {"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}, [("data[tls.key]", "Required value")]),
    ("leases", {"spec": {"holderIdentity": "n1", "leaseDurationSeconds": 0}},
     [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")]),
    ("leases", {"spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}, []),
    ("events", {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}, "type": "Normal"},
     [("involvedObject.namespace", 'Invalid value: "other": does not match event.namespace')]),
    ("events", {"involvedObject": {"kind": "Pod", "name": "p"}, "type": "Fatal"},
     [("type", 'Unsupported value: "Fatal": supported values: "Normal", "Warning"')]),
    ("namespaces", {"spec": {"finalizers": ["kubernetes"]}}, []),
    ("serviceaccounts", {"imagePullSecrets": [{}]}, [("imagePullSecrets[0].name", "Required value")]),
])
def test_other_kinds(plural, fields, expected):
    assert pairs(checked(plural, obj_of(plural, **fields))) == expected


# --- updates ------------------------------------------------------------------------------------

def _upd(plural: str, old: dict, mutate) -> list[tuple[str, str]]:
    old = copy.deepcopy(old)
    apply_defaults(R[plural], old)
    new = copy.deepcopy(old)
    mutate(new)
    return pairs(validate(R[plural], new, old=old))


def _set(path: str, value):
    def f(o):
        *parents, last = path.split(".")
        for p in parents:
            o = o[int(p)] if isinstance(o, list) else o[p]
        o[last] = value
    return f


BOUND = pod(nodeName="n1", activeDeadlineSeconds=100)


@pytest.mark.parametrize("plural,old,mutate,expected", [
    ("pods", BOUND, _set("spec.containers.0.image", "busybox:2"), []),
    ("pods", BOUND, _set("spec.activeDeadlineSeconds", 50), []),
    ("pods", BOUND, _set("spec.activeDeadlineSeconds", 200),
     [("spec.activeDeadlineSeconds", "Invalid value: 200: must be less than or equal to previous value")]),
    ("pods", BOUND, lambda o: o["spec"]["tolerations"].append({"key": "k", "operator": "Exists"}), []),
    ("pods", BOUND, lambda o: o["spec"]["tolerations"].pop(),
     [("spec.tolerations", "Forbidden: existing toleration can not be modified except its tolerationSeconds")]),
    ("pods", BOUND, _set("spec.nodeName", "n2"), [("spec.nodeName", 'Invalid value: "n2": field is immutable')]),
    ("pods", pod(), _set("spec.nodeName", "n2"), []),  # binding: "" -> node
    ("pods", BOUND, _set("spec.containers.0.command", ["sh"]),
     [("spec", "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
       "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
       "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
       "previously negative)")]),
    ("pods", BOUND, _set("status.phase", "Running"), []),
    ("pods", BOUND, _set("metadata.labels", {"a": "b"}), []),
    ("pods", BOUND, _set("metadata.name", "q"), [("metadata.name", 'Invalid value: "q": field is immutable')]),
    ("services", service(clusterIP="10.96.0.5"), lambda o: o["spec"].update(clusterIP="10.96.0.6", clusterIPs=["10.96.0.6"]),
     [("spec.clusterIP", 'Invalid value: "10.96.0.6": field is immutable')]),
    ("services", service(clusterIP="10.96.0.5"), _set("spec.clusterIP", "10.96.0.6"),
     [("spec.clusterIP", 'Invalid value: "10.96.0.6": field is immutable'),
      ("spec.clusterIPs", 'Invalid value: ["10.96.0.5"]: first value must match `clusterIP`')]),
    ("services", service(), _set("spec.clusterIP", "10.96.0.6"), []),  # allocation on update
    ("services", service(clusterIP="10.96.0.5"), _set("spec.selector", {"app": "t"}), []),
    ("deployments", deployment(), _set("spec.selector", {"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
     [("spec.selector", 'Invalid value: {"matchExpressions":[{"key":"app","operator":"Exists"}]}: field is immutable')]),
    ("deployments", deployment(), _set("spec.replicas", 5), []),
    ("nodes", obj_of("nodes", spec={"podCIDR": "10.244.1.0/24"}), _set("spec.podCIDR", "10.244.2.0/24"),
     [("spec.podCIDR", 'Forbidden: node updates may not change podCIDR except from "" to valid')]),
    ("nodes", obj_of("nodes", spec={}), _set("spec.podCIDR", "10.244.2.0/24"), []),
    ("configmaps", obj_of("configmaps", data={"a": "1"}, immutable=True), _set("data", {"a": "2"}),
     [("data", "Forbidden: field is immutable when `immutable` is set")]),
    ("configmaps", obj_of("configmaps", data={"a": "1"}), _set("data", {"a": "2"}), []),
    ("secrets", obj_of("secrets", type="Opaque"), _set("type", "kubernetes.io/tls"),
     [("type", 'Invalid value: "kubernetes.io/tls": field is immutable'), ("data[tls.crt]", "Required value"),
      ("data[tls.key]", "Required value")]),
    ("endpointslices", obj_of("endpointslices", addressType="IPv4"), _set("addressType", "IPv6"),
     [("addressType", 'Invalid value: "IPv6": field is immutable')]),
    ("rolebindings", obj_of("rolebindings", roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                     "name": "pod-reader"}), _set("roleRef.name", "admin"),
     [("roleRef", 'Invalid value: {"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"admin"}: '
                  "cannot change roleRef")]),
    ("rolebindings", obj_of("rolebindings", roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                     "name": "pod-reader"}), _set("subjects", []), []),
])
def test_updates(plural, old, mutate, expected):
    got = _upd(plural, old, mutate)
    assert sorted(got) == sorted(expected)


def test_deployment_selector_change_also_breaks_template_match():
    got = _upd("deployments", deployment(), _set("spec.selector", {"matchLabels": {"app": "e"}}))
    assert ("spec.template.metadata.labels",
            'Invalid value: {"app":"d"}: `selector` does not match template `labels`') in got
    assert any(f == "spec.selector" and m.endswith("field is immutable") for f, m in got)


def test_cause_shape_fits_status_invalid():
    from kubelab.apiserver.status import invalid
    err = invalid(R["pods"], "bad-1", checked("pods", pod(containers=[{"name": "c"}])))
    assert err.message == 'Pod "bad-1" is invalid: spec.containers[0].image: Required value'


@pytest.mark.parametrize("fixture", sorted(p.name for p in (Path(__file__).parent / "data").glob("kubectl-create-*.bin")))
def test_kubectl_create_generator_objects_are_valid_after_defaulting(fixture):
    """decode -> defaults -> validate, the server's create path for `kubectl create <generator>`."""
    from kubelab.apiserver.protobuf import decode
    from kubelab.resources import for_object

    obj = decode((Path(__file__).parent / "data" / fixture).read_bytes())
    rt = for_object(obj)
    if rt.namespaced:
        obj["metadata"]["namespace"] = "default"
    assert checked(rt.plural, obj) == []
