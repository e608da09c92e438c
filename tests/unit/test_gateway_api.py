"""gateway.networking.k8s.io/v1 in the API server's pure parts: the CRDs' printer columns,
validation causes naming the field (upstream's schema bounds and CEL rules), shapes (typos are
unknown fields), and the view/edit roles."""

from __future__ import annotations

from datetime import datetime, timezone

from kubelab.apiserver import shapes
from kubelab.apiserver.rbac import Attributes, Policy, UserInfo, default_cluster_roles
from kubelab.apiserver.tables import to_table
from kubelab.apiserver.validation import validate
from kubelab.resources import BY_PLURAL

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
G = "gateway.networking.k8s.io"


def table(plural: str, obj: dict) -> tuple[list[str], list]:
    obj.setdefault("metadata", {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"})
    t = to_table(BY_PLURAL[plural], [obj], resource_version="1", now=NOW)
    return [c["name"] for c in t["columnDefinitions"]], t["rows"][0]["cells"]


def test_printer_columns():
    cond = {"conditions": [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]}
    cols, cells = table("gatewayclasses", {"spec": {"controllerName": "kubelab.dev/gateway-controller",
                                                    "description": "d"}, "status": cond})
    assert dict(zip(cols, cells)) == {"Name": "x", "Controller": "kubelab.dev/gateway-controller",
                                      "Accepted": "True", "Age": "0s", "Description": "d"}
    cols, cells = table("gateways", {"spec": {"gatewayClassName": "kubelab"}, "status": {
        **cond, "addresses": [{"type": "IPAddress", "value": "192.0.2.1"}]}})
    assert dict(zip(cols, cells)) == {"Name": "x", "Class": "kubelab", "Address": "192.0.2.1",
                                      "Programmed": "False", "Age": "0s"}
    cols, cells = table("httproutes", {"spec": {"hostnames": ["a.test", "b.test"]}})
    assert dict(zip(cols, cells)) == {"Name": "x", "Hostnames": "a.test,b.test", "Age": "0s"}


def _fields(kind: str, spec: dict, old: dict | None = None) -> list[str]:
    plural = {"GatewayClass": "gatewayclasses", "Gateway": "gateways", "HTTPRoute": "httproutes"}[kind]
    obj = {"apiVersion": f"{G}/v1", "kind": kind, "metadata": {"name": "a", "namespace": "d"}, "spec": spec}
    if kind == "GatewayClass":
        obj["metadata"].pop("namespace")
    return [c["field"] for c in validate(BY_PLURAL[plural], obj, old=old)]


HTTP = {"name": "http", "port": 8080, "protocol": "HTTP"}


def test_gatewayclass_and_gateway_validation():
    assert _fields("GatewayClass", {"controllerName": "kubelab.dev/gateway-controller"}) == []
    assert _fields("GatewayClass", {"controllerName": "nodomain"}) == ["spec.controllerName"]
    assert _fields("GatewayClass", {"controllerName": "a.b/y"},
                   old={"metadata": {"name": "a"}, "spec": {"controllerName": "a.b/x"}}) == ["spec.controllerName"]
    assert _fields("Gateway", {"gatewayClassName": "k", "listeners": [HTTP]}) == []
    assert _fields("Gateway", {"gatewayClassName": "k"}) == ["spec.listeners"]
    assert _fields("Gateway", {"listeners": [HTTP]}) == ["spec.gatewayClassName"]
    assert _fields("Gateway", {"gatewayClassName": "k", "listeners": [HTTP, dict(HTTP)]}) == \
        ["spec.listeners[1].name", "spec.listeners[1]"]
    assert _fields("Gateway", {"gatewayClassName": "k", "listeners": [
        {"name": "s", "port": 443, "protocol": "HTTPS"}, dict(HTTP, tls={"certificateRefs": [{"name": "c"}]}),
        {"name": "t", "port": 70000, "protocol": "TCP", "hostname": "a.b"},
        {"name": "Bad_", "port": 1, "protocol": "HTTP", "hostname": "*"}]}) == [
        "spec.listeners[0].tls", "spec.listeners[1].tls", "spec.listeners[2].port", "spec.listeners[2].hostname",
        "spec.listeners[3].name", "spec.listeners[3].hostname"]
    assert _fields("Gateway", {"gatewayClassName": "k", "listeners": [dict(HTTP, name=f"l{i}", port=8000 + i) for i in range(65)]}) \
        == ["spec.listeners"]


def test_httproute_validation():
    ok = {"parentRefs": [{"name": "gw"}], "hostnames": ["a.test"], "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "method": "GET",
                      "headers": [{"name": "X-A", "value": "1"}], "queryParams": [{"name": "q", "value": "v"}]}],
         "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X", "value": "1"}]}}],
         "backendRefs": [{"name": "s", "port": 80, "weight": 90}]}]}
    assert _fields("HTTPRoute", ok) == []
    bad = {"parentRefs": [{}], "hostnames": ["A_B"], "rules": [
        {"matches": [{"path": {"type": "Exact", "value": "a"}}, {"path": {"value": "/a//b"}}, {"method": "GETT"},
                     {"headers": [{"name": "a b", "value": "x"}, {"name": "c", "value": ""}]}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307, "scheme": "ftp"}},
                     {"type": "Nope"}],
         "backendRefs": [{"name": "s", "weight": -1}]}]}
    assert _fields("HTTPRoute", bad) == [
        "spec.parentRefs[0].name", "spec.hostnames[0]", "spec.rules[0].matches[0].path.value",
        "spec.rules[0].matches[1].path.value", "spec.rules[0].matches[2].method",
        "spec.rules[0].matches[3].headers[0].name", "spec.rules[0].matches[3].headers[1].value",
        "spec.rules[0].filters[0].requestRedirect.scheme", "spec.rules[0].filters[0].requestRedirect.statusCode",
        "spec.rules[0].filters[1].type", "spec.rules[0]", "spec.rules[0].backendRefs[0].port",
        "spec.rules[0].backendRefs[0].weight"]
    assert _fields("HTTPRoute", {"rules": [{"filters": [{"type": "RequestHeaderModifier"}]}]}) == \
        ["spec.rules[0].filters[0].requestHeaderModifier"]
    assert _fields("HTTPRoute", {"rules": [{}] * 17}) == ["spec.rules"]


def test_reference_grant():
    obj = {"apiVersion": f"{G}/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": "a", "namespace": "d"},
           "spec": {"from": [{"group": G, "kind": "HTTPRoute", "namespace": "web"}],
                    "to": [{"group": "", "kind": "Service"}]}}
    rt = BY_PLURAL["referencegrants"]
    assert rt.api_version == f"{G}/v1beta1" and validate(rt, obj) == []
    obj["spec"] = {"from": [{"kind": "HTTPRoute", "namespace": "Bad_NS"}]}
    assert [c["field"] for c in validate(rt, obj)] == ["spec.from[0].group", "spec.from[0].namespace", "spec.to"]
    cols, cells = table("referencegrants", {"spec": {}})
    assert cols == ["Name", "Age"]


def test_unknown_fields_are_reported():
    obj = {"apiVersion": f"{G}/v1", "kind": "HTTPRoute", "metadata": {"name": "a"},
           "spec": {"rules": [{"matchs": []}], "parentRefs": [{"name": "g", "sectionNam": "x"}]}}
    assert sorted(shapes.unknown_fields("HTTPRoute", obj)) == ["spec.parentRefs[0].sectionNam", "spec.rules[0].matchs"]


def test_view_reads_edit_writes_gateways_and_routes_not_classes():
    roles = {r["metadata"]["name"]: r for r in default_cluster_roles()}
    for role, verb, resource, sub, want in (
            ("view", "list", "httproutes", "", True), ("view", "get", "gateways", "status", True),
            ("view", "create", "httproutes", "", False), ("edit", "create", "httproutes", "", True),
            ("edit", "update", "gateways", "", True), ("edit", "update", "httproutes", "status", False),
            ("edit", "create", "gatewayclasses", "", False), ("admin", "delete", "gateways", "", True),
            ("view", "list", "referencegrants", "", True), ("edit", "create", "referencegrants", "", True)):
        policy = Policy.from_objects(cluster_roles=[roles[role]], role_bindings=[{
            "metadata": {"namespace": "d", "name": "b"}, "roleRef": {"kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": "jane"}]}])
        a = Attributes(UserInfo("jane"), verb, api_group=G, resource=resource, subresource=sub, namespace="d")
        assert policy.allows(a)[0] is want, (role, verb, resource, sub)
