"""Sync logic without root: incremental diffs, the proxier's dirty tracking and apply counting
(an injected command runner stands in for nft/iptables), the rate-limited runner, conntrack
filters, metrics and /healthz."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
from prometheus_client import generate_latest

from kubelab.proxy import conntrack, nftables
from kubelab.proxy.__main__ import healthz_route
from kubelab.proxy.dataplane import IptablesBackend, NftablesBackend
from kubelab.proxy.metrics import Metrics
from kubelab.proxy.model import Endpoint, ProxyConfig, ProxyState, ServicePort
from kubelab.proxy.proxier import BoundedFrequencyRunner, Proxier
from kubelab.serving import StatusServer, parse_bind, status_app

CFG = ProxyConfig(node_name="n1", node_ips=("192.168.56.11",), cluster_cidr="10.244.0.0/16",
                  service_cidr="10.96.0.0/12")
WEB = ServicePort("ns1", "web", "http", "TCP", "10.96.0.50", 80, node_port=30080)
API = ServicePort("ns1", "api", "", "TCP", "10.96.0.60", 443)
DNS_UDP = ServicePort("ns1", "dns", "dns", "UDP", "10.96.0.10", 53)
DNS_TCP = ServicePort("ns1", "dns", "dns-tcp", "TCP", "10.96.0.10", 53)


def ep(ip: str, port: int = 8080, **kw) -> Endpoint:
    return Endpoint(ip, port, **kw)


def state(services, endpoints, cfg=CFG) -> ProxyState:
    return ProxyState(cfg, {s.key: s for s in services}, {s.key: tuple(e) for s, e in endpoints.items()})


BEFORE = state([WEB, API], {WEB: [ep("10.244.1.10"), ep("10.244.1.11")], API: [ep("10.244.1.20", 6443)]})


# ------------------------------------------------------------------ incremental nftables


def test_incremental_with_no_change_is_empty():
    same = state([WEB, API], {WEB: [ep("10.244.1.10"), ep("10.244.1.11")], API: [ep("10.244.1.20", 6443)]})
    assert same is not BEFORE and same == BEFORE
    assert nftables.render_incremental(BEFORE, same) == ""


def test_incremental_endpoint_removal_touches_only_that_service():
    after = state([WEB, API], {WEB: [ep("10.244.1.10")], API: [ep("10.244.1.20", 6443)]})
    text = nftables.render_incremental(BEFORE, after)
    gone = nftables.endpoint_chain(WEB.key, ep("10.244.1.11"))
    kept = nftables.endpoint_chain(WEB.key, ep("10.244.1.10"))
    svc_chain = nftables.service_chain(WEB.key)
    assert f"flush chain ip kube-proxy {svc_chain}" in text
    assert f"delete chain ip kube-proxy {gone}" in text
    assert f"delete chain ip kube-proxy {kept}" not in text
    assert "ns1/api" not in text  # the other service is untouched
    assert "delete table" not in text
    # dispatch elements did not change, so they are neither deleted nor re-added
    assert "service-ips" not in text and "service-nodeports" not in text
    # the flush comes before the delete, the delete before re-adding rules
    lines = text.splitlines()
    assert lines.index(f"flush chain ip kube-proxy {svc_chain}") < lines.index(f"delete chain ip kube-proxy {gone}")
    assert f"add rule ip kube-proxy {svc_chain} goto {kept}" in text  # one endpoint left: no numgen


def test_incremental_last_endpoint_gone_switches_to_reject():
    after = state([WEB, API], {API: [ep("10.244.1.20", 6443)]})
    text = nftables.render_incremental(BEFORE, after)
    assert "delete element ip kube-proxy service-ips { 10.96.0.50 . tcp . 80 }" in text
    assert "delete element ip kube-proxy service-nodeports { tcp . 30080 }" in text
    assert ('add element ip kube-proxy no-endpoint-services { 10.96.0.50 . tcp . 80 comment "ns1/web:http" '
            ": goto reject-chain }") in text
    assert f"delete chain ip kube-proxy {nftables.service_chain(WEB.key)}" in text
    assert "cluster-ips" not in text  # the ClusterIP still exists


def test_incremental_service_deletion_keeps_shared_cluster_ip():
    both = state([DNS_UDP, DNS_TCP], {DNS_UDP: [ep("10.244.1.5", 53)], DNS_TCP: [ep("10.244.1.5", 53)]})
    udp_only = state([DNS_UDP], {DNS_UDP: [ep("10.244.1.5", 53)]})
    text = nftables.render_incremental(both, udp_only)
    assert "delete element ip kube-proxy service-ips { 10.96.0.10 . tcp . 53 }" in text
    assert "cluster-ips" not in text  # the UDP port still uses 10.96.0.10
    none = state([], {})
    assert "delete element ip kube-proxy cluster-ips { 10.96.0.10 }" in nftables.render_incremental(udp_only, none)


def test_incremental_config_change_rewrites_everything():
    moved = ProxyState(ProxyConfig(node_name="n1", node_ips=("192.168.56.12",), cluster_cidr="10.244.0.0/16",
                                   service_cidr="10.96.0.0/12"), BEFORE.services, BEFORE.endpoints)
    text = nftables.render_incremental(BEFORE, moved)
    assert text == nftables.render_full(moved) and text.startswith("add table ip kube-proxy\ndelete table")


def test_incremental_affinity_timeout_change_recreates_the_sets():
    aff = ServicePort("ns1", "web", "http", "TCP", "10.96.0.50", 80, session_affinity_client_ip=True,
                      affinity_timeout_seconds=60)
    longer = ServicePort(**{**aff.__dict__, "affinity_timeout_seconds": 120})
    text = nftables.render_incremental(state([aff], {aff: [ep("10.244.1.10")]}),
                                       state([longer], {longer: [ep("10.244.1.10")]}))
    lines = text.splitlines()
    [delete] = [i for i, line in enumerate(lines) if line.startswith("delete set")]
    [add] = [i for i, line in enumerate(lines) if line.startswith("add set")]
    assert max(i for i, line in enumerate(lines) if line.startswith("flush chain")) < delete < add
    assert "timeout 120s" in lines[add]


# ------------------------------------------------------------------ proxier + backend


class FakeRunner:
    """Records commands instead of running them; succeeds unless told otherwise."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.fail = False

    def __call__(self, argv, stdin):
        self.calls.append((list(argv), stdin))
        rc = 1 if self.fail else 0
        return subprocess.CompletedProcess(list(argv), rc, stdout="", stderr="boom" if self.fail else "")

    def applies(self) -> list[str]:
        return [stdin for argv, stdin in self.calls if argv[-2:] == ["-f", "-"] or "iptables-restore" in argv]


def k8s_service(name="web", cluster_ip="10.96.0.50", ports=None, ns="ns1") -> dict:
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip,
                     "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def k8s_slice(svc="web", ips=("10.244.1.10",), name=None, ns="ns1", port=8080, ready=True) -> dict:
    return {"metadata": {"namespace": ns, "name": name or f"{svc}-x", "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}, "nodeName": "n1"} for ip in ips],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}


def make_proxier(runner, backend_cls=NftablesBackend, **kw) -> Proxier:
    p = Proxier(backend=backend_cls(netns="kl-fake", runner=runner), node_name="n1",
                cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12", **kw)
    p._initialized = True  # as after informer sync, without starting the runner loop
    return p


async def test_sync_with_no_change_applies_nothing():
    runner = FakeRunner()
    p = make_proxier(runner)
    p.on_service_add(k8s_service())
    p.on_slice_add(k8s_slice())
    assert await p.sync() is True
    assert len(runner.applies()) == 1
    first = runner.applies()[0]
    assert first.startswith("add table ip kube-proxy\ndelete table ip kube-proxy\n")
    assert runner.calls[0][0][:5] == ["ip", "netns", "exec", "kl-fake", "nft"]
    # resync, and an update that changes nothing the dataplane sees (slice re-sent, status-only service change)
    assert await p.sync() is False
    p.on_slice_update(k8s_slice(), k8s_slice())
    svc = k8s_service()
    p.on_service_update(svc, {**svc, "status": {"loadBalancer": {}}})
    assert await p.sync() is False
    assert len(runner.applies()) == 1
    assert p.metrics.value("kubelab_proxy_syncs_applied_total") == 1
    assert p.metrics.value("kubeproxy_sync_proxy_rules_duration_seconds_count") == 3


async def test_endpoint_change_applies_one_incremental_transaction():
    runner = FakeRunner()
    p = make_proxier(runner)
    p.on_service_add(k8s_service())
    p.on_service_add(k8s_service("other", "10.96.0.60"))
    p.on_slice_add(k8s_slice())
    p.on_slice_add(k8s_slice("other", ("10.244.1.30",)))
    await p.sync()
    p.on_slice_update(k8s_slice(), k8s_slice(ips=("10.244.1.10", "10.244.1.11")))
    assert await p.sync() is True
    text = runner.applies()[-1]
    assert "delete table" not in text and "ns1/web" in text and "ns1/other" not in text
    assert "10.244.1.11" in text
    assert p.metrics.value("kubeproxy_network_programming_duration_seconds_count") >= 1


async def test_dirty_tracking_recomputes_only_changed_services(monkeypatch):
    import kubelab.proxy.proxier as proxier_mod

    p = make_proxier(FakeRunner())
    for i in range(5):
        p.on_service_add(k8s_service(f"s{i}", f"10.96.1.{i}"))
        p.on_slice_add(k8s_slice(f"s{i}", (f"10.244.1.{i + 10}",)))
    await p.sync()
    parsed = []
    real = proxier_mod.service_ports
    monkeypatch.setattr(proxier_mod, "service_ports", lambda svc: parsed.append(svc["metadata"]["name"]) or real(svc))
    p.on_slice_update(k8s_slice("s3"), k8s_slice("s3", ("10.244.1.99",)))
    await p.sync()
    assert parsed == ["s3"]


async def test_failed_apply_is_retried_with_a_full_rewrite():
    runner = FakeRunner()
    p = make_proxier(runner)
    p.on_service_add(k8s_service())
    p.on_slice_add(k8s_slice())
    await p.sync()
    runner.fail = True
    p.on_slice_update(k8s_slice(), k8s_slice(ips=("10.244.1.12",)))
    assert await p.sync() is False
    assert p.metrics.value("kubeproxy_sync_proxy_rules_iptables_restore_failures_total") == 1
    runner.fail = False
    assert await p.sync() is True
    assert runner.applies()[-1].startswith("add table ip kube-proxy\ndelete table")


async def test_iptables_backend_restores_once_and_ensures_jumps_idempotently():
    runner = FakeRunner()
    p = make_proxier(runner, backend_cls=IptablesBackend)
    p.on_service_add(k8s_service())
    p.on_slice_add(k8s_slice())
    assert await p.sync() is True
    assert await p.sync() is False
    restores = [argv for argv, _ in runner.calls if "iptables-restore" in argv]
    assert len(restores) == 1 and "--noflush" in restores[0]
    checks = [argv for argv, _ in runner.calls if "-C" in argv]
    inserts = [argv for argv, _ in runner.calls if "-I" in argv]
    assert len(checks) == 10 and inserts == []  # the fake says every jump already exists


async def test_syncs_wait_for_informers():
    runner = FakeRunner()
    p = make_proxier(runner)
    p._initialized = False
    p.on_service_add(k8s_service())
    assert await p.sync() is False and runner.calls == []


async def test_runner_coalesces_bursts():
    calls = []
    done = asyncio.Event()

    async def fn(periodic: bool) -> None:
        calls.append(periodic)
        done.set()

    r = BoundedFrequencyRunner(fn, min_interval=0.3, max_interval=60)
    task = asyncio.create_task(r.loop())
    try:
        r.run()
        await asyncio.wait_for(done.wait(), 5)
        done.clear()
        for _ in range(100):  # a burst right after a sync: folded into one more run
            r.run()
            await asyncio.sleep(0)
        await asyncio.wait_for(done.wait(), 5)
        assert calls == [False, False]
    finally:
        task.cancel()


async def test_runner_resyncs_periodically():
    done = asyncio.Event()
    seen = []

    async def fn(periodic: bool) -> None:
        seen.append(periodic)
        if len(seen) >= 2:
            done.set()

    r = BoundedFrequencyRunner(fn, min_interval=0, max_interval=0.05)
    task = asyncio.create_task(r.loop())
    try:
        await asyncio.wait_for(done.wait(), 5)
        assert seen[1] is True
    finally:
        task.cancel()


# ------------------------------------------------------------------ conntrack


def test_stale_udp_flows_after_endpoint_removal():
    dns_np = ServicePort("ns1", "dns", "dns", "UDP", "10.96.0.10", 53, node_port=30053)
    before = state([dns_np, WEB], {dns_np: [ep("10.244.1.5", 53), ep("10.244.1.6", 53)], WEB: [ep("10.244.1.7")]})
    after = state([dns_np, WEB], {dns_np: [ep("10.244.1.5", 53)], WEB: []})
    assert set(conntrack.stale_flows(before, after)) == {
        conntrack.FlowFilter("udp", orig_dst="10.96.0.10", dst_nat="10.244.1.6"),
        conntrack.FlowFilter("udp", orig_port_dst=30053, dst_nat="10.244.1.6"),
    }  # TCP endpoint removal needs no cleanup: TCP connections fail visibly


def test_stale_udp_flows_when_endpoints_appear_and_on_deletion():
    empty = state([DNS_UDP], {})
    served = state([DNS_UDP], {DNS_UDP: [ep("10.244.1.5", 53)]})
    assert conntrack.stale_flows(empty, served) == [
        conntrack.FlowFilter("udp", orig_dst="10.96.0.10", orig_port_dst=53)]
    assert conntrack.stale_flows(served, state([], {})) == [
        conntrack.FlowFilter("udp", orig_dst="10.96.0.10", dst_nat="10.244.1.5")]
    assert conntrack.stale_flows(None, served) == []


def test_conntrack_clear_runs_the_tool_and_accepts_nothing_to_delete():
    seen = []

    def runner(argv):
        seen.append(list(argv))
        return subprocess.CompletedProcess(argv, 1, "", "conntrack v1.4.7: 0 flow entries have been deleted.\n")

    f = conntrack.FlowFilter("udp", orig_dst="10.96.0.10", dst_nat="10.244.1.6")
    assert conntrack.clear([f], netns="kl-x", runner=runner) == 0
    assert seen == [["ip", "netns", "exec", "kl-x", "conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10",
                     "--dst-nat", "10.244.1.6"]]


# ------------------------------------------------------------------ metrics and health


async def test_metrics_and_healthz_endpoints():
    p = make_proxier(FakeRunner())
    status, _, _ = p.healthz()
    assert status == 503  # never synced
    p.on_service_add(k8s_service())
    p.on_slice_add(k8s_slice())
    await p.sync()
    server = StatusServer(status_app(p.metrics.registry, None, extra={"/healthz": healthz_route(p)}), "127.0.0.1", 0)
    port = await server.start()
    try:
        async with httpx.AsyncClient() as c:
            h = await c.get(f"http://127.0.0.1:{port}/healthz")
            m = await c.get(f"http://127.0.0.1:{port}/metrics")
            missing = await c.get(f"http://127.0.0.1:{port}/nope")
        assert h.status_code == 200 and h.json()["healthy"] is True
        assert "kubeproxy_sync_proxy_rules_duration_seconds_count 1.0" in m.text
        assert "kubeproxy_network_programming_duration_seconds_count 1.0" in m.text
        assert "kubeproxy_sync_proxy_rules_last_timestamp_seconds" in m.text
        assert missing.status_code == 404
    finally:
        await server.stop()


def test_histogram_buckets_are_upstreams():
    m = Metrics()
    for v in (0.0005, 0.003, 100):
        m.sync_duration.observe(v)
    text = generate_latest(m.registry).decode()
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"} 1.0' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.004"} 2.0' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="16.384"} 2.0' in text
    assert 'kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"} 3.0' in text


def test_parse_bind():
    assert parse_bind("0.0.0.0:10256", 1) == ("0.0.0.0", 10256)
    assert parse_bind(":10249", 1) == ("0.0.0.0", 10249)
    assert parse_bind("127.0.0.1", 10249) == ("127.0.0.1", 10249)
    assert parse_bind("[::1]:9153", 1) == ("::1", 9153)


def test_proxy_warns_when_bridged_packets_skip_netfilter(tmp_path, caplog):
    from kubelab.proxy.__main__ import warn_bridge_netfilter
    f = tmp_path / "bridge-nf-call-iptables"
    f.write_text("1\n")
    assert warn_bridge_netfilter(str(f)) is True and not caplog.records
    f.write_text("0\n")
    assert warn_bridge_netfilter(str(f)) is False
    assert warn_bridge_netfilter(str(tmp_path / "absent")) is False  # br_netfilter not loaded
    assert len([r for r in caplog.records if "un-DNAT" in r.getMessage() or "netfilter" in r.getMessage()]) == 2
