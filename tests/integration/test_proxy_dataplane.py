"""The proxy's rules in a real kernel, with real packets, in both modes.

A one-node lab in namespaces (kubelab.proxy.testbed): a node netns with a bridge, three
backend netns serving HTTP (:8080) and UDP (:5353) that answer with their name, and a client
netns on the node network. Rules are rendered from Service/EndpointSlice objects and applied
*inside the node namespace*; the machine's own nftables/iptables are never touched.
"""

from __future__ import annotations

import collections
import json
import time

import pytest

from kubelab.proxy import conntrack, nftables
from kubelab.proxy.dataplane import cleanup_all, make_backend
from kubelab.proxy.model import ProxyConfig, build_state
from kubelab.proxy.testbed import (
    CLUSTER_CIDR,
    HTTP_PORT,
    NODE_IP,
    SERVICE_CIDR,
    UDP_PORT,
    Testbed,
    sh,
)

pytestmark = pytest.mark.root

WEB_IP, EMPTY_IP, DNS_IP, AFF_IP = "10.96.0.50", "10.96.0.51", "10.96.0.52", "10.96.0.53"
NODE_PORT = 30080


def service(name, cluster_ip, ports, **spec):
    return {"metadata": {"namespace": "lab", "name": name},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": ports, **spec}}


def endpoint_slice(svc_name, ips, ports, *, node="node1"):
    return {"metadata": {"namespace": "lab", "name": f"{svc_name}-1",
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node} for ip in ips],
            "ports": ports}


LB_IP = "192.168.56.200"  # a LoadBalancer address, held by the node as the speaker holds it


def lab_state(backend_ips, *, dns_ips=None, lb_ranges=None):
    lb = []
    if lb_ranges is not None:
        lb = [{**service("lbweb", "10.96.0.54", [{"name": "http", "port": 80, "nodePort": 30081}],
                         type="LoadBalancer", externalTrafficPolicy="Local", loadBalancerSourceRanges=lb_ranges),
               "status": {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}}]
    services = [*lb,
        service("web", WEB_IP, [{"name": "http", "port": 80, "nodePort": NODE_PORT}], type="NodePort"),
        service("empty", EMPTY_IP, [{"name": "http", "port": 80}]),
        service("dns", DNS_IP, [{"name": "dns", "port": 53, "protocol": "UDP"}]),
        service("sticky", AFF_IP, [{"name": "http", "port": 80}], sessionAffinity="ClientIP"),
    ]
    slices = [
        endpoint_slice("web", backend_ips, [{"name": "http", "port": HTTP_PORT}]),
        endpoint_slice("dns", backend_ips if dns_ips is None else dns_ips,
                       [{"name": "dns", "port": UDP_PORT, "protocol": "UDP"}]),
        endpoint_slice("sticky", backend_ips, [{"name": "http", "port": HTTP_PORT}]),
        endpoint_slice("lbweb", backend_ips, [{"name": "http", "port": HTTP_PORT}]),
    ]
    cfg = ProxyConfig(node_name="node1", node_ips=(NODE_IP,), cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR)
    return build_state(services=services, slices=slices, config=cfg)


@pytest.fixture(scope="module")
def lab():
    with Testbed(backends=3) as tb:
        yield tb


@pytest.fixture(params=["nftables", "iptables"])
def proxy(request, lab):
    """A backend applying rules in the lab's node namespace; everything removed afterwards."""
    backend = make_backend(request.param, netns=lab.node)
    try:
        backend.sync(lab_state(lab.backend_ips))
        yield backend
    finally:
        assert cleanup_all(netns=lab.node) == []
        sh("ip", "netns", "exec", lab.node, "conntrack", "-F", check=False)


def names(responses):
    return collections.Counter(r.split()[0] for r in responses)


def test_client_reaches_cluster_ip_and_every_backend_gets_traffic(lab, proxy):
    got = names(lab.get(lab.client, WEB_IP, 80) for _ in range(60))
    assert set(got) == {"b0", "b1", "b2"}, got


def test_node_port_on_the_node_ip(lab, proxy):
    got = names(lab.get(lab.client, NODE_IP, NODE_PORT) for _ in range(30))
    assert set(got) <= {"b0", "b1", "b2"} and len(got) >= 2, got
    # NodePort traffic is masqueraded (it may have come from anywhere): the backend sees the node
    assert lab.get(lab.client, NODE_IP, NODE_PORT).split()[1] == "10.244.1.1"


def test_load_balancer_ip_local_policy_and_source_ranges(lab, proxy):
    """The LB address answers like a ClusterIP; `Local` keeps the client's address; a client
    outside loadBalancerSourceRanges is dropped before DNAT (both modes)."""
    from kubelab.proxy.testbed import CLIENT_IP
    lab.ns(lab.node, "ip", "addr", "add", f"{LB_IP}/32", "dev", "uplink")
    try:
        proxy.sync(lab_state(lab.backend_ips, lb_ranges=[f"{CLIENT_IP}/32"]))
        got = [lab.get(lab.client, LB_IP, 80) for _ in range(10)]
        assert {r.split()[0] for r in got} <= {"b0", "b1", "b2"}
        assert {r.split()[1] for r in got} == {CLIENT_IP}  # not masqueraded: Local keeps the source
        proxy.sync(lab_state(lab.backend_ips, lb_ranges=["10.9.9.0/24"]))
        sh("ip", "netns", "exec", lab.node, "conntrack", "-F", check=False)
        with pytest.raises(OSError):
            lab.get(lab.client, LB_IP, 80, timeout=1)
        assert lab.get(lab.client, WEB_IP, 80)  # the rest of the node is unaffected
    finally:
        lab.ns(lab.node, "ip", "addr", "del", f"{LB_IP}/32", "dev", "uplink", check=False)


def test_hairpin_a_backend_reaches_its_own_service(lab, proxy):
    got = names(lab.get(lab.backends[0], WEB_IP, 80) for _ in range(30))
    assert "b0" in got and sum(got.values()) == 30, got  # reaching itself works too
    # a backend load-balanced to itself sees the node's address, not its own (else replies bypass NAT)
    selves = [r for r in (lab.get(lab.backends[0], WEB_IP, 80) for _ in range(20)) if r.startswith("b0 ")]
    assert selves and all(r.split()[1] == "10.244.1.1" for r in selves)


def test_pod_to_pod_traffic_keeps_its_source(lab, proxy):
    """ClusterIP traffic from inside the pod network is not masqueraded."""
    got = [lab.get(lab.backends[0], WEB_IP, 80) for _ in range(20)]
    others = [r for r in got if not r.startswith("b0 ")]
    assert others and all(r.split()[1] == lab.backend_ips[0] for r in others)


def test_service_without_endpoints_is_refused_immediately(lab, proxy):
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        lab.get(lab.client, EMPTY_IP, 80, timeout=5)
    assert time.monotonic() - start < 1.0
    with pytest.raises(ConnectionRefusedError):  # from a pod, too
        lab.get(lab.backends[1], EMPTY_IP, 80, timeout=5)


def test_unknown_port_on_a_cluster_ip_is_refused(lab, proxy):
    if proxy.mode == "iptables":
        pytest.skip("iptables mode has no cluster-ips check (as upstream's iptables mode)")
    with pytest.raises(ConnectionRefusedError):
        lab.get(lab.client, WEB_IP, 81, timeout=5)


def test_session_affinity_sticks_to_one_backend(lab, proxy):
    got = names(lab.get(lab.client, AFF_IP, 80) for _ in range(15))
    assert len(got) == 1, got


def test_udp_service_fails_over_after_endpoint_removal(lab, proxy):
    src = 40000 + hash(proxy.mode) % 1000
    first = lab.udp(lab.client, DNS_IP, 53, src_port=src)
    assert first in ("b0", "b1", "b2")
    assert {lab.udp(lab.client, DNS_IP, 53, src_port=src) for _ in range(5)} == {first}  # same 5-tuple, same pod
    gone = int(first[1:])
    before = proxy.applied
    after = lab_state(lab.backend_ips, dns_ips=[ip for i, ip in enumerate(lab.backend_ips) if i != gone])
    assert proxy.sync(after)
    # the removed pod still runs: without the conntrack flush the flow would keep reaching it
    conntrack.clear(conntrack.stale_flows(before, after), netns=lab.node)
    answers = {lab.udp(lab.client, DNS_IP, 53, src_port=src) for _ in range(5)}
    assert first not in answers and len(answers) == 1


def test_endpoint_change_is_applied_incrementally(lab, proxy):
    """Removing a backend stops its traffic; in nftables mode the transaction is incremental."""
    assert proxy.sync(lab_state(lab.backend_ips[:2]))
    if proxy.mode == "nftables":
        assert "delete table" not in proxy.last_text
    got = names(lab.get(lab.client, WEB_IP, 80) for _ in range(30))
    assert set(got) == {"b0", "b1"}, got


def test_cleanup_leaves_nothing_of_ours(lab, proxy):
    assert cleanup_all(netns=lab.node) == []
    listing = lab.ns(lab.node, "nft", "list", "ruleset").stdout
    assert "kube-proxy" not in listing and "KUBE-" not in listing
    with pytest.raises(OSError):  # the ClusterIP no longer leads anywhere
        lab.get(lab.client, WEB_IP, 80, timeout=1)


# ------------------------------------------------------------------ incremental == full, in the kernel


def normalized_table(ns: str) -> dict:
    """`nft -j list table` without handles, with set elements sorted: comparable across histories."""
    data = json.loads(sh("ip", "netns", "exec", ns, "nft", "-j", "list", "table", "ip", "kube-proxy").stdout)
    out: dict = {}
    for item in data["nftables"]:
        ((kind, obj),) = item.items()
        if kind == "metainfo":
            continue
        obj = {k: v for k, v in obj.items() if k != "handle"}
        if kind == "rule":
            out.setdefault(("rules", obj["chain"]), []).append(json.dumps(obj, sort_keys=True))
        elif kind in ("set", "map"):
            elems = sorted(json.dumps(e, sort_keys=True) for e in obj.pop("elem", []))
            out[(kind, obj["name"])] = (json.dumps(obj, sort_keys=True), elems)
        else:
            out[(kind, obj.get("name"))] = json.dumps(obj, sort_keys=True)
    return out


def _svc(name, ip, *ports, **spec):
    return service(name, ip, [{"name": n, "port": p, "protocol": proto, **({"nodePort": np} if np else {})}
                              for n, p, proto, np in ports], **spec)


def history():
    """A sequence of cluster states exercising every kind of incremental change."""
    cfg = ProxyConfig(node_name="node1", node_ips=("192.168.56.11",), cluster_cidr=CLUSTER_CIDR,
                      service_cidr=SERVICE_CIDR)
    base_svcs = {
        "a": _svc("a", "10.96.1.1", ("http", 80, "TCP", 30001), type="NodePort"),
        "b": _svc("b", "10.96.1.2", ("dns", 53, "UDP", 0), ("dns-tcp", 53, "TCP", 0)),
        "c": _svc("c", "10.96.1.3", ("http", 80, "TCP", 0), sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
        "d": _svc("d", "10.96.1.4", ("http", 80, "TCP", 30004), type="NodePort", externalTrafficPolicy="Local"),
        "e": _svc("e", "10.96.1.5", ("http", 80, "TCP", 0)),
        "g": {**_svc("g", "10.96.1.7", ("http", 80, "TCP", 30007), type="LoadBalancer"),
              "status": {"loadBalancer": {"ingress": [{"ip": "192.168.56.200"}]}}},
    }
    base_eps = {"a": ["10.244.1.10", "10.244.1.11"], "b": ["10.244.1.12"], "c": ["10.244.1.13", "10.244.1.14"],
                "d": ["10.244.1.15"], "e": [], "g": ["10.244.1.16"]}

    def st(svcs, eps):
        slices = []
        for name, ips in eps.items():
            if name in svcs and ips:
                ports = [{"name": p["name"], "port": 9000 + p["port"], "protocol": p["protocol"]}
                         for p in svcs[name]["spec"]["ports"]]
                slices.append(endpoint_slice(name, ips, ports))
        return build_state(services=list(svcs.values()), slices=slices, config=cfg)

    s0 = st(base_svcs, base_eps)
    svcs1 = dict(base_svcs)
    svcs1["b"] = _svc("b", "10.96.1.2", ("dns", 53, "UDP", 0))  # one port of a shared ClusterIP removed
    svcs1["c"] = _svc("c", "10.96.1.3", ("http", 80, "TCP", 0), sessionAffinity="ClientIP",
                      sessionAffinityConfig={"clientIP": {"timeoutSeconds": 120}})  # affinity timeout changed
    svcs1["g"] = {**_svc("g", "10.96.1.7", ("http", 80, "TCP", 30007), type="LoadBalancer",
                         loadBalancerSourceRanges=["10.9.0.0/16"]),  # source ranges added, LB address moved
                  "status": {"loadBalancer": {"ingress": [{"ip": "192.168.56.201"}]}}}
    del svcs1["d"]  # service deleted
    svcs1["f"] = _svc("f", "10.96.1.6", ("http", 80, "TCP", 30006), type="NodePort")  # service added
    eps1 = {"a": ["10.244.1.10", "10.244.1.20"],  # one endpoint replaced
            "b": ["10.244.1.12"], "c": ["10.244.1.13"],  # affinity endpoint removed
            "e": ["10.244.1.30"],  # no endpoints → some
            "f": [], "g": ["10.244.1.16"]}  # new, without endpoints
    s1 = st(svcs1, eps1)
    eps2 = dict(eps1, a=[], f=["10.244.1.40", "10.244.1.41", "10.244.1.42"])  # some → none, none → three
    s2 = st(svcs1, eps2)
    return [s0, s1, s2, s0]


@pytest.mark.parametrize("steps", [2, 3, 4])
def test_incremental_transactions_converge_to_the_full_render(steps):
    """Apply full(s0) then incremental steps in one namespace, full(s_last) in another: same table."""
    states = history()[:steps]
    with Testbed(backends=0, servers=False) as a, Testbed(backends=0, servers=False) as b:
        a.ns(a.node, "nft", "-f", "-", input=nftables.render_full(states[0]))
        for prev, new in zip(states, states[1:]):
            text = nftables.render_incremental(prev, new)
            assert text and "delete table" not in text
            a.ns(a.node, "nft", "-f", "-", input=text)
        b.ns(b.node, "nft", "-f", "-", input=nftables.render_full(states[-1]))
        got, want = normalized_table(a.node), normalized_table(b.node)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == want[k], k
