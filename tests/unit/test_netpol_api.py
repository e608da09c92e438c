"""networking.k8s.io/v1 NetworkPolicy in the API server: defaults, validation (upstream's
field paths and wording), shapes, Table columns, protobuf, discovery, OpenAPI and RBAC."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from kubelab.apiserver import discovery, openapi, protobuf, rbac, tables
from kubelab.apiserver.defaults import apply_defaults
from kubelab.apiserver.validation import validate
from kubelab.resources import BY_PLURAL, lookup

RT = BY_PLURAL["networkpolicies"]
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def netpol(**spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "default"}, "spec": {"podSelector": {}, **spec}}


def causes(obj: dict) -> list[tuple[str, str]]:
    obj = copy.deepcopy(obj)
    apply_defaults(RT, obj)
    return [(c["field"], c["message"]) for c in validate(RT, obj)]


def test_resource_row():
    assert RT.api_version == "networking.k8s.io/v1" and RT.namespaced and not RT.has_status
    assert lookup("netpol") is RT and lookup("networkpolicy") is RT and lookup("networkpolicies.networking.k8s.io") is RT


@pytest.mark.parametrize("spec,types", [
    ({}, ["Ingress"]),
    ({"egress": [{}]}, ["Ingress", "Egress"]),
    ({"ingress": [{}], "egress": []}, ["Ingress"]),
    ({"policyTypes": ["Egress"]}, ["Egress"]),
])
def test_policy_types_default_as_upstream(spec, types):
    obj = netpol(**spec)
    apply_defaults(RT, obj)
    assert obj["spec"]["policyTypes"] == types


def test_port_protocol_defaults_to_tcp():
    obj = netpol(ingress=[{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}])
    apply_defaults(RT, obj)
    assert [p["protocol"] for p in obj["spec"]["ingress"][0]["ports"]] == ["TCP", "UDP"]


def test_namespaces_get_the_metadata_name_label():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {
        "kubernetes.io/metadata.name": "forged", "team": "a"}}}
    apply_defaults(BY_PLURAL["namespaces"], ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "x", "team": "a"}


PEER = {"podSelector": {"matchLabels": {"app": "a"}}}


@pytest.mark.parametrize("spec,expected", [
    ({"ingress": [{"from": [PEER, {"namespaceSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8",
                  "except": ["10.1.0.0/16"]}}], "ports": [{"port": 80}, {"port": "http"},
                  {"port": 8000, "endPort": 8080, "protocol": "SCTP"}]}],
      "egress": [{"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]}], "policyTypes": ["Ingress", "Egress"]}, []),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
     [("spec.ingress[0].from[0].ipBlock.cidr", f'Invalid value: "10.0.0.0/33": {CIDR_MSG}')]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]},
     [("spec.ingress[0].from[0].ipBlock.cidr", f'Invalid value: "10.0.0.1": {CIDR_MSG}')]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": ""}}]}]},
     [("spec.ingress[0].from[0].ipBlock.cidr", "Required value")]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "10.0.0.0/16", "x"]}}]}]},
     [("spec.egress[0].to[0].ipBlock.except[0]", 'Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'),
      ("spec.egress[0].to[0].ipBlock.except[1]", 'Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`'),
      ("spec.egress[0].to[0].ipBlock.except[2]", f'Invalid value: "x": {CIDR_MSG}')]),
    ({"ingress": [{"from": [{}]}]}, [("spec.ingress[0].from[0]", "Required value: must specify a peer")]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     [("spec.ingress[0].from[0]", "Forbidden: may not specify both ipBlock and another peer")]),
    ({"ingress": [{"ports": [{"port": 0}]}]},
     [("spec.ingress[0].ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")]),
    ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 90: must be greater than or equal to `port`")]),
    ({"ingress": [{"ports": [{"port": 90, "endPort": 70000}]}]},
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    ({"ingress": [{"ports": [{"port": "http", "endPort": 80}]}]},
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 80: may not be specified when `port` is non-numeric")]),
    ({"ingress": [{"ports": [{"endPort": 80}]}]},
     [("spec.ingress[0].ports[0].endPort", "Invalid value: 80: may not be specified when `port` is not specified")]),
    ({"ingress": [{"ports": [{"port": "Web--Port-too-long"}]}]},
     [("spec.ingress[0].ports[0].port", 'Invalid value: "Web--Port-too-long": must be no more than 15 characters'),
      ("spec.ingress[0].ports[0].port", 'Invalid value: "Web--Port-too-long": must contain only alpha-numeric '
       'characters (a-z, 0-9), and hyphens (-)'),
      ("spec.ingress[0].ports[0].port", 'Invalid value: "Web--Port-too-long": must not contain consecutive hyphens')]),
    ({"egress": [{"ports": [{"port": 53, "protocol": "ICMP"}]}]},
     [("spec.egress[0].ports[0].protocol", 'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"')]),
    ({"policyTypes": ["Ingress", ""]},
     [("spec.policyTypes[1]", 'Unsupported value: "": supported values: "Ingress", "Egress"')]),
    ({"policyTypes": ["ingress"]},
     [("spec.policyTypes[0]", 'Unsupported value: "ingress": supported values: "Ingress", "Egress"')]),
    ({"policyTypes": ["Ingress", "Egress", "Ingress"]},
     [("spec.policyTypes", 'Invalid value: ["Ingress","Egress","Ingress"]: may not specify more than two policyTypes')]),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
     [("spec.podSelector.matchExpressions[0].values", "Required value: must be specified when `operator` is 'In' or 'NotIn'")]),
    ({"ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]}]},
     [("spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].operator",
       'Unsupported value: "Near": supported values: "DoesNotExist", "Exists", "In", "NotIn"')]),
])
def test_validation(spec, expected):
    assert causes(netpol(**spec)) == expected


@pytest.mark.parametrize("spec,field", [
    ({"ingress": [{"ports": [{"port": 80, "endport": 81}]}]}, "spec.ingress[0].ports[0].endport"),
    ({"ingress": [{"form": []}]}, "spec.ingress[0].form"),
    ({"status": {}}, "spec.status"),
])
def test_unknown_fields_are_reported(spec, field):
    from kubelab.apiserver.shapes import unknown_fields
    assert field in unknown_fields("NetworkPolicy", netpol(**spec))


def test_wrong_types_are_type_errors():
    found = causes(netpol(ingress={"from": []}))
    assert found and found[0][0] == "spec.ingress"


@pytest.mark.parametrize("selector,cell", [
    ({}, "<none>"),
    ({"matchLabels": {"app": "web", "tier": "fe"}}, "app=web,tier=fe"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}]}, "env in (a,b)"),
])
def test_table_columns(selector, cell):
    obj = netpol(podSelector=selector)
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    t = tables.to_table(RT, [obj], resource_version="5", now=datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc))
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Pod-Selector", "Age"]
    assert t["rows"][0]["cells"] == ["np", cell, "5m"]


def test_protobuf_round_trip():
    obj = netpol(ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"p": "x"}}, "podSelector": {}},
                                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                           "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}, {"port": "http"}]}],
                 egress=[{"to": [PEER]}], policyTypes=["Ingress", "Egress"])
    back = protobuf.decode(protobuf.encode(obj))
    assert back["spec"]["ingress"] == obj["spec"]["ingress"]
    assert back["spec"]["egress"] == obj["spec"]["egress"] and back["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_discovery_and_openapi():
    groups = {g["name"] for g in discovery.api_group_list()["groups"]}
    assert "networking.k8s.io" in groups
    res = discovery.resource_list("networking.k8s.io", "v1")
    entry = res["resources"][0]
    assert (entry["name"], entry["kind"], entry["shortNames"], entry["namespaced"]) == \
        ("networkpolicies", "NetworkPolicy", ["netpol"], True)
    assert openapi.schema_name("networking.k8s.io", "v1", "NetworkPolicy") == "io.k8s.api.networking.v1.NetworkPolicy"
    assert "apis/networking.k8s.io/v1" in openapi.index()["paths"]


def _allows(role: dict, verb: str) -> bool:
    return any("networking.k8s.io" in r.get("apiGroups", []) and "networkpolicies" in r.get("resources", [])
               and verb in r.get("verbs", []) for r in role["rules"])


@pytest.mark.parametrize("role,read,write", [("admin", True, True), ("edit", True, True), ("view", True, False)])
def test_aggregated_roles(role, read, write):
    r = next(x for x in rbac.default_cluster_roles() if x["metadata"]["name"] == role)
    assert _allows(r, "list") is read and _allows(r, "watch") is read
    assert _allows(r, "create") is write and _allows(r, "delete") is write


def test_kubelab_describe_uses_kubectls_wording():
    from kubelab.cli.describe import describe_object
    obj = netpol(podSelector={"matchLabels": {"app": "a"}}, policyTypes=["Ingress", "Egress"],
                 ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {}}],
                           "ports": [{"port": 80, "protocol": "TCP"}]}, {}],
                 egress=[])
    text = describe_object(obj, namespaced=True, events=[])
    spec = text[text.index("Spec:"):text.index("Events:")]
    assert spec == """Spec:
  PodSelector:     app=a
  Allowing ingress traffic:
    To Port: 80/TCP
    From:
      NamespaceSelector: ns=y
      PodSelector: <none>
    ----------
    To Port: <any> (traffic allowed to all ports)
    From: <any> (traffic not restricted by source)
  Allowing egress traffic:
    <none> (Selected pods are isolated for egress connectivity)
  Policy Types: Ingress, Egress
"""
