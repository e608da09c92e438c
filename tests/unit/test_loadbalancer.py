"""kubelab.loadbalancer's pure cores (allocator, ARP owner choice, gratuitous ARP frames) and the
controller's loop over a fake API, plus the proxy's programming of LoadBalancer addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import struct

import pytest

from kubelab.loadbalancer import announce
from kubelab.loadbalancer import pool as lbpool
from kubelab.loadbalancer.controller import LBController
from kubelab.loadbalancer.speaker import Speaker, garp_frames
from kubelab.proxy import nftables
from kubelab.proxy.model import ProxyConfig, build_state, service_ports

POOL = lbpool.parse_pool("192.168.56.200-192.168.56.202")


def svc(name, *, type_="LoadBalancer", ns="default", ip=None, lb_ip=None, cls=None, etp=None, created="2026-01-01"):
    spec = {"type": type_, "clusterIP": "10.96.0.5", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}
    if lb_ip:
        spec["loadBalancerIP"] = lb_ip
    if cls:
        spec["loadBalancerClass"] = cls
    if etp:
        spec["externalTrafficPolicy"] = etp
    status = {"loadBalancer": {"ingress": [{"ip": ip}]} if ip else {}}
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "creationTimestamp": created},
            "spec": spec, "status": status}


# ------------------------------------------------------------------ pool


def test_parse_pool_ranges_and_cidrs():
    p = lbpool.parse_pool("10.0.0.8/30, 192.168.56.200-192.168.56.201")
    assert list(p.addresses()) == ["10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11", "192.168.56.200",
                                   "192.168.56.201"]
    assert p.size == 6 and "10.0.0.9" in p and "10.0.0.12" not in p and "nonsense" not in p


@pytest.mark.parametrize("text, msg", [
    ("", "empty"), ("1.2.3.4-1.2.3.1", "after the last"), ("1.2.3.x-1.2.3.9", "invalid pool range"),
    ("10.0.0.0/30,10.0.0.2-10.0.0.5", "overlaps"), ("fe80::1-fe80::2", "invalid pool range"),
    ("10.0.0.0/8", "at most 65536"),  # resource bound: a decision scans the pool
])
def test_parse_pool_refuses_bad_input(text, msg):
    with pytest.raises(lbpool.PoolError, match=msg):
        lbpool.parse_pool(text)


def decide(table, s, **kw):
    return lbpool.decide(POOL, table, lbpool.service_lb(s), **kw)


def test_assigns_lowest_free_then_keeps():
    t = lbpool.Assignments({"192.168.56.200": "default/other"})
    d = decide(t, svc("a"))
    assert (d.action, d.ip, d.reason) == ("assign", "192.168.56.201", "IPAllocated")
    t = lbpool.apply(t, d)
    assert decide(t, svc("a", ip="192.168.56.201")).action == "keep"


def test_requested_ip_honoured_or_pending_with_reason():
    d = decide(lbpool.Assignments(), svc("a", lb_ip="192.168.56.202"))
    assert (d.action, d.ip) == ("assign", "192.168.56.202")
    d = decide(lbpool.Assignments(), svc("a", lb_ip="10.1.1.1"))
    assert (d.action, d.reason) == ("pending", "AllocationFailed") and "not in the pool" in d.message
    d = decide(lbpool.Assignments({"192.168.56.202": "default/b"}), svc("a", lb_ip="192.168.56.202"))
    assert d.action == "pending" and "already in use by default/b" in d.message
    # a Service whose requested address changes moves to it
    t = lbpool.Assignments({"192.168.56.200": "default/a"})
    d = decide(t, svc("a", ip="192.168.56.200", lb_ip="192.168.56.201"))
    assert (d.action, d.ip) == ("assign", "192.168.56.201")
    assert lbpool.apply(t, d).by_ip == {"192.168.56.201": "default/a"}


def test_exhausted_pool_is_pending_with_an_event_reason():
    t = lbpool.Assignments({ip: f"default/x{i}" for i, ip in enumerate(POOL.addresses())})
    d = decide(t, svc("late"))
    assert (d.action, d.ip, d.reason) == ("pending", "", "AllocationFailed")
    assert "no available IPs" in d.message and d.status_ingress == []


def test_release_on_delete_type_change_and_foreign_class():
    t = lbpool.Assignments({"192.168.56.200": "default/a"})
    gone = lbpool.decide(POOL, t, lbpool.service_lb(None, "default/a"))
    assert gone.action == "release" and lbpool.apply(t, gone).by_ip == {}
    d = decide(t, svc("a", type_="ClusterIP", ip="192.168.56.200"))
    assert d.action == "release" and d.write_status and d.reason == "LoadBalancerIPReleased"
    assert not lbpool.status_matches(lbpool.service_lb(svc("a", type_="ClusterIP", ip="192.168.56.200")), d)
    foreign = decide(lbpool.Assignments(), svc("f", cls="example.com/other"))
    assert foreign.action == "ignore" and not foreign.write_status
    assert decide(lbpool.Assignments(), svc("ours", cls=lbpool.DEFAULT_CLASS)).action == "assign"
    assert decide(lbpool.Assignments(), svc("c", type_="ClusterIP")).action == "ignore"


def test_adopt_keeps_existing_status_oldest_first():
    a = lbpool.service_lb(svc("a", ip="192.168.56.201", created="1"))
    b = lbpool.service_lb(svc("b", ip="192.168.56.201", created="2"))  # a duplicate claim: b loses
    c = lbpool.service_lb(svc("c", ip="10.9.9.9"))  # outside the pool: not adopted
    t = lbpool.adopt(POOL, [a, b, c])
    assert t.by_ip == {"192.168.56.201": "default/a"}
    d = lbpool.decide(POOL, t, b)
    assert d.action == "assign" and d.ip == "192.168.56.200"


# ------------------------------------------------------------------ controller over a fake API


class FakeClient:
    def __init__(self, store):
        self.store = store
        self.patches = []

    async def patch(self, resource, name, patch, *, namespace=None, subresource=None):
        assert (resource, subresource) == ("services", "status")
        await asyncio.sleep(0)  # let other work interleave, as a real request would
        self.patches.append((f"{namespace}/{name}", patch))
        obj = self.store[f"{namespace}/{name}"]
        ingress = patch["status"]["loadBalancer"]["ingress"]
        obj["status"] = {"loadBalancer": {"ingress": ingress} if ingress else {}}
        return obj


class FakeRecorder:
    def __init__(self):
        self.events = []

    def event(self, obj, type_, reason, message):
        assert obj["kind"] == "Service"
        self.events.append((obj["metadata"]["name"], type_, reason, message))


async def drain(ctl):
    worker = asyncio.create_task(ctl.run_worker())
    for _ in range(500):
        await asyncio.sleep(0.005)
        if not len(ctl.queue) and not ctl.queue.unfinished_seconds()[0]:
            break
    ctl.queue.shutdown()
    await asyncio.wait_for(worker, 5)


async def test_concurrent_creates_get_distinct_addresses_and_the_rest_waits():
    pool = lbpool.parse_pool("192.168.56.200-192.168.56.209")
    store = {f"default/s{i}": svc(f"s{i}", created=f"{i:03d}") for i in range(25)}
    rec = FakeRecorder()
    ctl = LBController(client=FakeClient(store), pool=pool, recorder=rec, get_service=store.get)
    ctl.start([])
    for obj in store.values():  # a burst of creates, as 25 `kubectl create` at once
        ctl.on_service(obj)
    await drain(ctl)
    ips = [lbpool.service_lb(o).current_ips for o in store.values()]
    assigned = [i[0] for i in ips if i]
    assert len(assigned) == 10 and len(set(assigned)) == 10 and set(assigned) == set(pool.addresses())
    pending = {n for n, t, r, m in rec.events if r == "AllocationFailed"}
    assert len(pending) == 15 and all(t == "Warning" for _, t, r, _ in rec.events if r == "AllocationFailed")
    assert ctl.metrics.in_use._value.get() == 10
    # delete one: its address goes to a waiting Service
    victim = next(k for k, o in store.items() if lbpool.service_lb(o).current_ips)
    freed = lbpool.service_lb(store.pop(victim)).current_ips[0]
    ctl.queue = type(ctl.queue)(name="loadbalancer")
    ctl.on_service({"metadata": {"namespace": "default", "name": victim.split("/")[1]}})
    await drain(ctl)
    now = [lbpool.service_lb(o).current_ips for o in store.values()]
    assert sum(1 for i in now if i) == 10 and (freed,) in now


async def test_controller_writes_nothing_when_status_is_right_and_clears_on_type_change():
    store = {"default/a": svc("a", ip="192.168.56.200")}
    client = FakeClient(store)
    ctl = LBController(client=client, pool=POOL, recorder=FakeRecorder(), get_service=store.get)
    ctl.start(list(store.values()))
    await drain(ctl)
    assert client.patches == []
    store["default/a"]["spec"]["type"] = "ClusterIP"
    ctl.queue = type(ctl.queue)(name="loadbalancer")
    ctl.on_service(store["default/a"])
    await drain(ctl)
    assert client.patches == [("default/a", {"status": {"loadBalancer": {"ingress": None}}})]
    assert ctl.table.by_ip == {}


# ------------------------------------------------------------------ announce


def node(name, ready=True, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]}}


def eps(svc_name, *nodes_ready):
    return {"metadata": {"namespace": "default", "name": f"{svc_name}-x",
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "endpoints": [{"addresses": [f"10.244.{i}.5"], "nodeName": n, "conditions": {"ready": r}}
                          for i, (n, r) in enumerate(nodes_ready)]}


def test_owner_is_deterministic_spread_and_moves_only_from_a_dead_node():
    nodes = [node("worker-1"), node("worker-2"), node("worker-3")]
    services = [svc(f"s{i}", ip=f"192.168.56.{200 + i}") for i in range(30)]
    anns = announce.announcements(services, nodes, {})
    again = announce.announcements(list(reversed(services)), list(reversed(nodes)), {})
    assert anns == again  # every speaker computes the same, whatever its cache order
    owners = {a.ip: a.node for a in anns}
    assert set(owners.values()) == {"worker-1", "worker-2", "worker-3"}  # spread
    dead = owners["192.168.56.200"]
    after = {a.ip: a.node for a in announce.announcements(
        services, [n if n["metadata"]["name"] != dead else node(dead, ready=False) for n in nodes], {})}
    assert after["192.168.56.200"] != dead and dead not in after.values()
    assert all(after[ip] == o for ip, o in owners.items() if o != dead)  # the others stay put


def test_local_policy_announces_only_from_nodes_with_a_ready_endpoint():
    nodes = [node("worker-1"), node("worker-2"), node("worker-3", labels={announce.EXCLUDE_LABEL: ""})]
    s = svc("web", ip="192.168.56.200", etp="Local")
    slices = {"default/web": [eps("web", ("worker-2", True), ("worker-1", False), ("worker-3", True))]}
    (a,) = announce.announcements([s], nodes, slices)
    assert (a.node, a.local_only) == ("worker-2", True)
    (a,) = announce.announcements([s], nodes, {"default/web": [eps("web", ("worker-1", False))]})
    assert a.node == ""  # nobody may answer: no ready local endpoint anywhere
    assert announce.announcements([svc("c", type_="ClusterIP", ip="1.2.3.4")], nodes, {}) == ()


def test_speakers_never_announce_an_address_outside_the_pool():
    # hostile status: someone with services/status rights points a Service at the API server's address
    hostile = svc("evil", ip="192.168.56.10")
    good = svc("web", ip="192.168.56.200")
    anns = announce.announcements([hostile, good], [node("worker-1")], {}, pool=POOL)
    assert [a.ip for a in anns] == ["192.168.56.200"]
    dp = FakeDataplane()
    sp = Speaker(node_name="worker-1", dataplane=dp, pool=POOL)
    sp.on_service(hostile)
    sp.on_node(node("worker-1"))
    sp.sync()
    assert dp.ips == set() and dp.garps == []


def test_gratuitous_arp_frames():
    req, rep = garp_frames("02:42:ac:11:00:02", "192.168.56.200")
    for frame, op in ((req, 1), (rep, 2)):
        assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("0242ac110002")
        assert frame[12:14] == b"\x08\x06" and len(frame) == 42
        htype, ptype, hlen, plen, got_op, sha, spa, tha, tpa = struct.unpack("!HHBBH6s4s6s4s", frame[14:])
        assert (htype, ptype, hlen, plen, got_op) == (1, 0x0800, 6, 4, op)
        assert spa == tpa == ipaddress.IPv4Address("192.168.56.200").packed  # gratuitous: sender == target
        assert sha == bytes.fromhex("0242ac110002")


class FakeDataplane:
    def __init__(self):
        self.ips: set[str] = set()
        self.garps: list[str] = []

    def addresses(self):
        return set(self.ips)

    def add(self, ip):
        self.ips.add(ip)

    def remove(self, ip):
        self.ips.discard(ip)

    def gratuitous_arp(self, ip):
        self.garps.append(ip)
        return "02:00:00:00:00:01"


def test_speaker_takes_announces_and_gives_up_addresses():
    dp, rec = FakeDataplane(), FakeRecorder()
    w1 = Speaker(node_name="worker-1", dataplane=dp, recorder=rec)
    s = svc("web", ip="192.168.56.200")
    w1.on_service(s)
    for n in ("worker-1", "worker-2"):
        w1.on_node(node(n))
    owner = announce.owner("192.168.56.200", ["worker-1", "worker-2"])
    if owner != "worker-1":  # make worker-1 the owner: its peer is down
        w1.on_node(node("worker-2"), node("worker-2", ready=False))
    w1.record(w1.sync())
    assert dp.ips == {"192.168.56.200"} and dp.garps == ["192.168.56.200"]
    assert rec.events[-1][2] == "nodeAssigned" and "worker-1" in rec.events[-1][3]
    w1.sync()
    assert dp.garps == ["192.168.56.200"]  # no second ARP while nothing changed
    w1.on_node(node("worker-1"), node("worker-1", ready=False))
    w1.on_node(node("worker-2"), node("worker-2"))
    w1.sync()
    assert dp.ips == set()
    w1.on_service_delete(s)
    w1.sync()
    assert dp.ips == set()


# ------------------------------------------------------------------ proxy programming


def test_proxy_service_ports_carry_lb_ips_and_ranges_only_for_loadbalancers():
    s = svc("web", ip="192.168.56.200")
    s["spec"]["loadBalancerSourceRanges"] = [" 192.168.56.0/24", "10.1.2.3/8", "2001:db8::/32"]
    (sp,) = service_ports(s)
    assert sp.load_balancer_ips == ("192.168.56.200",) and sp.externally_accessible
    assert sp.source_ranges == ("192.168.56.0/24", "10.0.0.0/8")
    s["spec"]["type"] = "NodePort"
    (sp,) = service_ports(s)
    assert sp.load_balancer_ips == () and sp.source_ranges == ()


def test_proxy_incremental_sync_adds_and_removes_the_lb_address():
    cfg = ProxyConfig(node_name="worker-1", node_ips=("192.168.56.11",), cluster_cidr="10.244.0.0/16")
    slices = [eps("web", ("worker-1", True))]
    slices[0]["addressType"] = "IPv4"
    slices[0]["ports"] = [{"port": 80, "protocol": "TCP", "name": ""}]
    before = build_state(services=[svc("web")], slices=slices, config=cfg)
    after = build_state(services=[svc("web", ip="192.168.56.200")], slices=slices, config=cfg)
    text = nftables.render_incremental(before, after)
    assert "add element ip kube-proxy service-ips { 192.168.56.200 . tcp . 80 : goto external-" in text
    back = nftables.render_incremental(after, before)
    assert "delete element ip kube-proxy service-ips { 192.168.56.200 . tcp . 80 }" in back


def test_upstream_like_flags_metallb_ones_warned():
    import io

    from kubelab import flags
    from kubelab.loadbalancer.__main__ import build_parser
    err = io.StringIO()
    a = flags.parse_args(build_parser(), ["controller", "--pool", "10.0.0.1-10.0.0.9", "--config-ns", "metallb-system",
                                          "--v=2"], "metallb-controller", stderr=err)
    assert (a.role, a.pool, a.v) == ("controller", "10.0.0.1-10.0.0.9", 2)
    assert "--config-ns is a metallb-controller flag kubelab does not implement; ignored" in err.getvalue()
    err = io.StringIO()
    a = flags.parse_args(build_parser(), ["speaker", "--node-name", "w1", "--ml-bindaddr", "0.0.0.0"],
                         "metallb-speaker", stderr=err)
    assert (a.role, a.node_name, a.interface, a.secure_port) == ("speaker", "w1", "eth0", 7473)
    assert "--ml-bindaddr" in err.getvalue()


def test_bad_pool_flag_is_one_line_and_exit_2(capsys):
    from kubelab.loadbalancer.__main__ import main
    assert main(["controller", "--server", "http://127.0.0.1:1", "--pool", "10.0.0.9-10.0.0.1",
                 "--secure-port", "0"]) == 2
