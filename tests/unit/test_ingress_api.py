"""networking.k8s.io/v1 Ingress/IngressClass in the API server's pure parts: Table cells as
kubectl prints them, protobuf (the inlined IngressRuleValue), validation causes, and the
aggregated view/edit roles."""

from __future__ import annotations

from datetime import datetime, timezone

from kubelab.apiserver import protobuf
from kubelab.apiserver.rbac import Attributes, Policy, UserInfo, default_cluster_roles
from kubelab.apiserver.tables import to_table
from kubelab.apiserver.validation import validate
from kubelab.resources import BY_PLURAL

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def cells(plural: str, obj: dict) -> dict:
    obj.setdefault("metadata", {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"})
    t = to_table(BY_PLURAL[plural], [obj], resource_version="1", now=NOW)
    return {c["name"]: cell for c, cell in zip(t["columnDefinitions"], t["rows"][0]["cells"])}


def test_ingress_row_hosts_address_ports():
    rules = [{"host": f"h{i}.example.com"} for i in range(5)]
    row = cells("ingresses", {"spec": {"ingressClassName": "nginx", "rules": rules, "tls": [{"hosts": ["h0"]}]},
                              "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb"}]}}})
    assert row == {"Name": "x", "Class": "nginx", "Hosts": "h0.example.com,h1.example.com,h2.example.com + 2 more...",
                   "Address": "192.0.2.1,lb", "Ports": "80, 443", "Age": "0s"}
    row = cells("ingresses", {"spec": {"defaultBackend": {}}})
    assert (row["Class"], row["Hosts"], row["Address"], row["Ports"]) == ("<none>", "*", "", "80")


def test_ingressclass_row_parameters():
    row = cells("ingressclasses", {"spec": {"controller": "k8s.io/ingress-nginx", "parameters": {
        "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}})
    assert row["Controller"] == "k8s.io/ingress-nginx"
    assert row["Parameters"] == "IngressParameters.k8s.example.com/p"


def test_protobuf_round_trip_flattens_rule_value():
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "a"},
           "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.b", "http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}
    assert protobuf.decode(protobuf.encode(obj)) == obj
    cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
           "spec": {"controller": "k8s.io/ingress-nginx"}}
    assert protobuf.decode(protobuf.encode(cls)) == cls


def _fields(kind: str, plural: str, spec: dict, old: dict | None = None) -> list[str]:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": kind, "metadata": {"name": "a", "namespace": "d"},
           "spec": spec}
    if kind == "IngressClass":
        obj["metadata"].pop("namespace")
    return [c["field"] for c in validate(BY_PLURAL[plural], obj, old=old)]


def test_validation_fields():
    b = {"service": {"name": "s", "port": {"number": 80}}}
    assert _fields("Ingress", "ingresses", {"defaultBackend": b}) == []
    assert _fields("Ingress", "ingresses", {"defaultBackend": {"service": {"name": "s", "port": {
        "number": 80, "name": "http"}}}}) == ["spec.defaultBackend.service.port"]
    assert _fields("Ingress", "ingresses", {"defaultBackend": {"service": {"name": "S_", "port": {"number": 1}}}}) \
        == ["spec.defaultBackend.service.name"]
    assert _fields("Ingress", "ingresses", {"rules": [{"host": "*.a.com", "http": {"paths": [
        {"path": "/x/..", "pathType": "Prefix", "backend": b}]}}]}) == ["spec.rules[0].http.paths[0].path"]
    assert _fields("Ingress", "ingresses", {"rules": [{"host": "a.com", "http": {"paths": []}}]}) \
        == ["spec.rules[0].http.paths"]
    assert _fields("IngressClass", "ingressclasses", {"controller": "nodomain"}) == ["spec.controller"]
    assert _fields("IngressClass", "ingressclasses", {"controller": "k8s.io/x", "parameters": {
        "kind": "K", "name": "n", "scope": "Namespace"}}) == ["spec.parameters.namespace"]
    old = {"metadata": {"name": "a"}, "spec": {"controller": "k8s.io/x"}}
    assert _fields("IngressClass", "ingressclasses", {"controller": "k8s.io/y"}, old=old) == ["spec.controller"]


def test_view_reads_edit_writes_ingresses_not_classes():
    roles = {r["metadata"]["name"]: r for r in default_cluster_roles()}
    for role, verb, resource, sub, want in (
            ("view", "list", "ingresses", "", True), ("view", "get", "ingresses", "status", True),
            ("view", "create", "ingresses", "", False), ("edit", "create", "ingresses", "", True),
            ("edit", "update", "ingresses", "status", False), ("edit", "create", "ingressclasses", "", False),
            ("admin", "delete", "ingresses", "", True)):
        policy = Policy.from_objects(cluster_roles=[roles[role]], role_bindings=[{
            "metadata": {"namespace": "d", "name": "b"}, "roleRef": {"kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": "jane"}]}])
        a = Attributes(UserInfo("jane"), verb, api_group="networking.k8s.io", resource=resource,
                       subresource=sub, namespace="d")
        assert policy.allows(a)[0] is want, (role, verb, resource, sub)
