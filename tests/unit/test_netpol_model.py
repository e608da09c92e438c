"""NetworkPolicy semantics (kubelab.netpol.model.verdict), table-driven on the upstream e2e
model: namespaces x, y, z × pods a, b, c (label pod=<name>), ports 80 and 81, TCP/UDP/SCTP.

Each case is a list of policies and the expected reachability matrix for one port/protocol,
written as upstream's truth tables: rows are sources, columns destinations, `.` = allowed,
`X` = blocked. Pods are spread over two nodes (it changes nothing in the verdict)."""

from __future__ import annotations

import pytest

from kubelab.netpol.examples import NAMESPACES, PODS, netpol, ns_obj, pod_ip, pod_obj
from kubelab.netpol.model import (
    Cluster, NamedPort, PodInfo, cluster_from_objects, namespace_info, pod_info, policy_from_object, verdict,
)

ALL = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]
_ip = pod_ip


def cluster(policies: list[dict], pods: list[dict] | None = None, namespaces: list[dict] | None = None) -> Cluster:
    pods = pods if pods is not None else [pod_obj(ns, p) for ns in NAMESPACES for p in PODS]
    namespaces = namespaces if namespaces is not None else [ns_obj(n) for n in NAMESPACES]
    return cluster_from_objects(pods, namespaces, policies)


def matrix(c: Cluster, port: int = 80, protocol: str = "TCP") -> str:
    ips = {f"{p.namespace}/{p.name}": p.ip for p in c.pods}
    rows = []
    for src in ALL:
        rows.append(src + " " + "".join("." if verdict(c, ips[src], ips[dst], port, protocol).allowed else "X"
                                        for dst in ALL))
    return "\n".join(rows)


def table(text: str) -> str:
    """Expected matrices are written as 9 rows of 9 marks, columns in ALL's order."""
    marks = [line.split()[-1] for line in text.strip().splitlines()]
    return "\n".join(f"{src} {m}" for src, m in zip(ALL, marks))


OPEN = table("\n".join(["........."] * 9))
# x/a is isolated for ingress and allows nothing
DENY_XA_INGRESS = table("""
x/a X........
x/b X........
x/c X........
y/a X........
y/b X........
y/c X........
z/a X........
z/b X........
z/c X........
""")


def only(rows: dict[str, str], default: str = ".........") -> str:
    return "\n".join(f"{src} {rows.get(src, default)}" for src in ALL)


POD_A = {"matchLabels": {"pod": "a"}}
CASES = [
    ("no policies", [], 80, "TCP", OPEN),
    ("deny all ingress to x/a", [netpol("deny", podSelector=POD_A)], 80, "TCP", DENY_XA_INGRESS),
    ("ingress default deny of namespace x",
     [netpol("deny")], 80, "TCP",
     only({s: "XXX......" for s in ALL})),
    ("egress default deny of namespace x (egress only: ingress untouched)",
     [netpol("deny", types=["Egress"])], 80, "TCP",
     only({"x/a": "XXXXXXXXX", "x/b": "XXXXXXXXX", "x/c": "XXXXXXXXX"})),
    ("allow x/a from pods b in its own namespace",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"x/b": "........."})),
    ("allow x/a from namespace y (namespaceSelector only)",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"y/a": ".........", "y/b": ".........", "y/c": "........."})),
    ("AND: pods b in namespace y, one peer",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                                             "podSelector": {"matchLabels": {"pod": "b"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"y/b": "........."})),
    ("OR: namespace y, or pods b of x, two peers",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                                                             {"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"y/a": ".........", "y/b": ".........", "y/c": ".........",
                                                       "x/b": "........."})),
    ("namespace by its kubernetes.io/metadata.name label",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
         "kubernetes.io/metadata.name": "z"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"z/a": ".........", "z/b": ".........", "z/c": "........."})),
    ("matchExpressions: namespaces NotIn (x, y)",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchExpressions": [
         {"key": "ns", "operator": "NotIn", "values": ["x", "y"]}]}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"z/a": ".........", "z/b": ".........", "z/c": "........."})),
    ("matchExpressions: pods In (b) anywhere (empty namespaceSelector)",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {
         "matchExpressions": [{"key": "pod", "operator": "In", "values": ["b"]}]}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"x/b": ".........", "y/b": ".........", "z/b": "........."})),
    ("port 81 only: port 80 is blocked",
     [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": 81, "protocol": "TCP"}]}])],
     80, "TCP", DENY_XA_INGRESS),
    ("port 81 only: port 81 passes",
     [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": 81, "protocol": "TCP"}]}])],
     81, "TCP", OPEN),
    ("named port serve-81-tcp: 80 blocked",
     [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": "serve-81-tcp", "protocol": "TCP"}]}])],
     80, "TCP", DENY_XA_INGRESS),
    ("named port serve-81-tcp: 81 passes",
     [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": "serve-81-tcp", "protocol": "TCP"}]}])],
     81, "TCP", OPEN),
    ("named TCP port does not open UDP",
     [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": "serve-81-tcp", "protocol": "TCP"}]}])],
     81, "UDP", DENY_XA_INGRESS),
    ("endPort range 79-81 covers 80",
     [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": 79, "endPort": 81, "protocol": "TCP"}]}])],
     80, "TCP", OPEN),
    ("UDP policy: TCP blocked", [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": 80, "protocol": "UDP"}]}])],
     80, "TCP", DENY_XA_INGRESS),
    ("SCTP port allowed", [netpol("allow", podSelector=POD_A, ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}])],
     80, "SCTP", OPEN),
    ("ipBlock with except: every pod but y/* (10.244.2.0/24 excepted)",
     [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"ipBlock": {"cidr": "10.244.0.0/16",
                                                                          "except": ["10.244.2.0/24"]}}]}])],
     80, "TCP", only({"y/a": "X........", "y/b": "X........", "y/c": "X........"})),
    ("egress to ipBlock of z only",
     [netpol("eg", podSelector=POD_A, egress=[{"to": [{"ipBlock": {"cidr": "10.244.3.0/24"}}]}], types=["Egress"])],
     80, "TCP", only({"x/a": "XXXXXX..."})),
    ("union: two policies on x/a add up",
     [netpol("from-b", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]),
      netpol("from-c", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "c"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"x/b": ".........", "x/c": "........."})),
    ("an allow-all policy beside a deny: allow wins (union)",
     [netpol("deny"), netpol("allow-all", ingress=[{}])], 80, "TCP", OPEN),
    ("both directions: x/a talks only to x/b (egress) and hears only from x/b (ingress)",
     [netpol("both", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
             egress=[{"to": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])],
     80, "TCP", only({s: "X........" for s in ALL} | {"x/a": "X.XXXXXXX", "x/b": "........."})),
    ("policy in y does not touch x", [netpol("deny", ns="y")], 80, "TCP",
     only({s: "...XXX..." for s in ALL})),
]


@pytest.mark.parametrize("name,policies,port,protocol,expected", CASES, ids=[c[0] for c in CASES])
def test_reachability(name, policies, port, protocol, expected):
    assert matrix(cluster(policies), port, protocol) == loopback(expected)


def loopback(expected: str) -> str:
    """A pod reaching its own IP never leaves its namespace (upstream's AllowLoopback)."""
    rows = []
    for i, line in enumerate(expected.splitlines()):
        src, marks = line.split()
        rows.append(f"{src} {marks[:i]}.{marks[i + 1:]}")
    return "\n".join(rows)


def test_verdict_names_the_policy_and_rule():
    c = cluster([netpol("from-b", podSelector=POD_A, ingress=[{"ports": [{"port": 99}]},
                                                              {"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])])
    v = verdict(c, _ip("x", "b"), _ip("x", "a"), 80)
    assert v.allowed and (v.ingress.policy, v.ingress.rule) == ("x/from-b", 1)
    assert "allowed by x/from-b ingress[1]" in v.explain()
    v = verdict(c, _ip("y", "b"), _ip("x", "a"), 80)
    assert not v.allowed and v.ingress.policies == ("x/from-b",) and "default deny" in v.explain()


def test_label_change_moves_a_pod_in_and_out():
    pol = [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"team": "blue"}}}]}])]
    pods = [pod_obj("x", "a"), pod_obj("x", "b")]
    assert not verdict(cluster(pol, pods), _ip("x", "b"), _ip("x", "a"), 80).allowed
    pods[1] = pod_obj("x", "b", labels={"pod": "b", "team": "blue"})
    assert verdict(cluster(pol, pods), _ip("x", "b"), _ip("x", "a"), 80).allowed


def test_namespace_label_change():
    pol = [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"trusted": "yes"}}}]}])]
    assert not verdict(cluster(pol), _ip("y", "b"), _ip("x", "a"), 80).allowed
    nss = [ns_obj("x"), ns_obj("y", {"trusted": "yes"}), ns_obj("z")]
    assert verdict(cluster(pol, namespaces=nss), _ip("y", "b"), _ip("x", "a"), 80).allowed


def test_pod_ip_change_follows_the_pod():
    pol = [netpol("allow", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])]
    pods = [pod_obj("x", "a"), pod_obj("x", "b", ip="10.244.9.9")]
    c = cluster(pol, pods)
    assert verdict(c, "10.244.9.9", _ip("x", "a"), 80).allowed
    assert not verdict(c, _ip("x", "b"), _ip("x", "a"), 80).allowed  # the old address is nobody now


def test_traffic_from_outside_the_pods_is_judged_by_ip_only():
    c = cluster([netpol("deny", podSelector=POD_A)])
    assert not verdict(c, "192.168.56.11", _ip("x", "a"), 80).allowed
    assert verdict(c, _ip("x", "a"), "192.168.56.11", 80).allowed


def test_pods_that_take_no_part():
    host = pod_obj("x", "h", ip="10.244.1.99")
    host["spec"]["hostNetwork"] = True
    done = pod_obj("x", "d", ip="10.244.1.98")
    done["status"]["phase"] = "Succeeded"
    pending = pod_obj("x", "p", ip="10.244.1.97")
    pending["status"].pop("podIP")
    assert pod_info(host) is None and pod_info(done) is None and pod_info(pending) is None
    info = pod_info(pod_obj("x", "a"))
    assert NamedPort("serve-81-udp", 81, "UDP") in info.ports and info.node == "worker-1"


def test_namespace_without_label_still_matches_by_name():
    info = namespace_info({"metadata": {"name": "old"}})
    assert dict(info.labels) == {"kubernetes.io/metadata.name": "old"}


def test_policy_types_default_when_absent():
    p = policy_from_object({"metadata": {"namespace": "x", "name": "n"}, "spec": {"egress": [{}]}})
    assert p.affects_ingress and p.affects_egress
    p = policy_from_object({"metadata": {"namespace": "x", "name": "n"}, "spec": {}})
    assert p.affects_ingress and not p.affects_egress


def test_pod_info_fields():
    p = PodInfo("x", "a")
    assert p.key == "x/a" and p.ip == ""
