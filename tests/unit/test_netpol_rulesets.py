"""The renderer (kubelab.netpol.nftables) as whole rulesets, the set-only updates, and the
agent's sync loop over a fake `nft` (what it sends, when it sends nothing). The rendered text is
also loaded into the kernel once, in a throwaway network namespace, so nft's grammar is checked
for real (root only; removed after)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from kubelab.netpol import nftables as nft
from kubelab.netpol.agent import ApplyError, Dataplane, PolicyAgent
from kubelab.netpol.examples import netpol, ns_obj, pod_obj
from kubelab.netpol.model import Cluster, cluster_from_objects

POD_A = {"matchLabels": {"pod": "a"}}


def objects():
    pods = [pod_obj("x", "a"), pod_obj("x", "b"), pod_obj("y", "b"), pod_obj("y", "a")]
    nss = [ns_obj("x"), ns_obj("y")]
    pols = [netpol("web", podSelector=POD_A, types=["Ingress", "Egress"],
                   ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}},
                                      {"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": POD_A}],
                             "ports": [{"port": 80, "protocol": "TCP"}, {"port": 81, "endPort": 82, "protocol": "TCP"},
                                       {"port": "serve-80-udp", "protocol": "UDP"}]}],
                   egress=[{"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.2.0/24"]}}]},
                           {"ports": [{"port": 53, "protocol": "UDP"}]}]),
            netpol("deny", ns="y")]
    return pods, nss, pols


EXPECTED_WORKER_1 = """add table inet kubelab-netpol
delete table inet kubelab-netpol
table inet kubelab-netpol {
\tset egress-isolated {
\t\ttype ipv4_addr
\t\tcomment "pods on worker-1 isolated for egress"
\t\telements = { 10.244.1.10 }
\t}
\tset hairpin {
\t\ttype ipv4_addr . ipv4_addr
\t\tcomment "a pod reaching itself through a Service: never filtered (loopback)"
\t\telements = { 10.244.1.10 . 10.244.1.10, 10.244.2.10 . 10.244.2.10 }
\t}
\tset ingress-isolated {
\t\ttype ipv4_addr
\t\tcomment "pods on worker-1 isolated for ingress"
\t\telements = { 10.244.1.10, 10.244.2.10 }
\t}
\tset peer-x/web/ingress0/from0 {
\t\ttype ipv4_addr
\t\tcomment "pods pod=b"
\t\telements = { 10.244.1.11 }
\t}
\tset peer-x/web/ingress0/from1 {
\t\ttype ipv4_addr
\t\tcomment "namespaces ns=y AND pods pod=a"
\t\telements = { 10.244.2.10 }
\t}
\tset pods-x/web {
\t\ttype ipv4_addr
\t\tcomment "pods on worker-1 selected by x/web"
\t\telements = { 10.244.1.10 }
\t}
\tset pods-y/deny {
\t\ttype ipv4_addr
\t\tcomment "pods on worker-1 selected by y/deny"
\t\telements = { 10.244.2.10 }
\t}
\tset ports-x/web/ingress0 {
\t\ttype ipv4_addr . inet_proto . inet_service
\t\tcomment "named ports of x/web ingress[0]"
\t\telements = { 10.244.1.10 . udp . 80 }
\t}
\tchain egress {
\t\ttype filter hook forward priority -1; policy accept;
\t\tct state established,related accept comment "replies and connections already allowed"
\t\tmeta nfproto ipv6 accept comment "pods are IPv4 only"
\t\tip saddr != @egress-isolated accept comment "source not isolated for egress"
\t\tip saddr . ip daddr @hairpin accept comment "a pod reaching itself through a Service"
\t\tip saddr @pods-x/web jump egress-x/web
\t\tcounter drop comment "default deny egress"
\t}
\tchain ingress {
\t\ttype filter hook forward priority 0; policy accept;
\t\tct state established,related accept comment "replies and connections already allowed"
\t\tmeta nfproto ipv6 accept comment "pods are IPv4 only"
\t\tip daddr != @ingress-isolated accept comment "destination not isolated for ingress"
\t\tip saddr . ip daddr @hairpin accept comment "a pod reaching itself through a Service"
\t\tip daddr @pods-x/web jump ingress-x/web
\t\tip daddr @pods-y/deny jump ingress-y/deny
\t\tcounter drop comment "default deny ingress"
\t}
\tchain ingress-x/web {
\t\tip saddr @peer-x/web/ingress0/from0 meta l4proto tcp th dport { 80, 81-82 } counter accept comment "x/web ingress[0]: pods pod=b, 80/TCP, 81-82/TCP"
\t\tip saddr @peer-x/web/ingress0/from0 ip daddr . meta l4proto . th dport @ports-x/web/ingress0 counter accept comment "x/web ingress[0]: pods pod=b, serve-80-udp/UDP"
\t\tip saddr @peer-x/web/ingress0/from1 meta l4proto tcp th dport { 80, 81-82 } counter accept comment "x/web ingress[0]: namespaces ns=y AND pods pod=a, 80/TCP, 81-82/TCP"
\t\tip saddr @peer-x/web/ingress0/from1 ip daddr . meta l4proto . th dport @ports-x/web/ingress0 counter accept comment "x/web ingress[0]: namespaces ns=y AND pods pod=a, serve-80-udp/UDP"
\t}
\tchain egress-x/web {
\t\tip daddr 10.244.0.0/16 ip daddr != { 10.244.2.0/24 } counter accept comment "x/web egress[0]: ipBlock 10.244.0.0/16 except 10.244.2.0/24, any port"
\t\tmeta l4proto udp th dport 53 counter accept comment "x/web egress[1]: any peer, 53/UDP"
\t}
\tchain ingress-y/deny {
\t\t# y/deny: no ingress rules: the selected pods only get the default deny
\t}
}
"""


def test_whole_ruleset_worker_1():
    assert nft.render_full(nft.build(cluster_from_objects(*objects()), "worker-1")) == EXPECTED_WORKER_1


def test_a_node_without_selected_pods_has_only_the_base_chains():
    pods, nss, pols = objects()
    rs = nft.build(cluster_from_objects(pods, nss, pols), "worker-2")  # x/b and y/b: only y/deny selects y/b
    assert [c.name for c in rs.chains] == ["egress", "ingress", "ingress-y/deny"]
    rs = nft.build(cluster_from_objects(pods, nss, []), "worker-1")
    assert [c.name for c in rs.chains] == [nft.EGRESS_CHAIN, nft.INGRESS_CHAIN]
    assert [s.name for s in rs.sets] == [nft.EGRESS_ISOLATED_SET, nft.HAIRPIN_SET, nft.INGRESS_ISOLATED_SET]
    assert all(not s.elements for s in rs.sets)


def test_label_change_updates_only_the_changed_set():
    pods, nss, pols = objects()
    before = nft.build(cluster_from_objects(pods, nss, pols), "worker-1")
    pods[1] = pod_obj("x", "b", labels={"pod": "b2"})  # x/b leaves peer from0
    after = nft.build(cluster_from_objects(pods, nss, pols), "worker-1")
    assert nft.render_update(before, after) == (
        "flush set inet kubelab-netpol peer-x/web/ingress0/from0\n")
    assert nft.render_update(after, after) == ""
    pols.pop()  # a policy deleted: its chain and set go, the base chain loses its jump, nothing else is sent
    assert nft.render_update(after, nft.build(cluster_from_objects(pods, nss, pols), "worker-1")) == """\
flush chain inet kubelab-netpol ingress
flush chain inet kubelab-netpol ingress-y/deny
flush set inet kubelab-netpol hairpin
add element inet kubelab-netpol hairpin { 10.244.1.10 . 10.244.1.10 }
flush set inet kubelab-netpol ingress-isolated
add element inet kubelab-netpol ingress-isolated { 10.244.1.10 }
table inet kubelab-netpol {
\tchain ingress {
\t\ttype filter hook forward priority 0; policy accept;
\t\tct state established,related accept comment "replies and connections already allowed"
\t\tmeta nfproto ipv6 accept comment "pods are IPv4 only"
\t\tip daddr != @ingress-isolated accept comment "destination not isolated for ingress"
\t\tip saddr . ip daddr @hairpin accept comment "a pod reaching itself through a Service"
\t\tip daddr @pods-x/web jump ingress-x/web
\t\tcounter drop comment "default deny ingress"
\t}
}
delete chain inet kubelab-netpol ingress-y/deny
delete set inet kubelab-netpol pods-y/deny
"""


def test_new_policy_sends_its_own_sets_and_chains_only():
    pods, nss, pols = objects()
    before = nft.build(cluster_from_objects(pods, nss, pols[:1]), "worker-1")
    after = nft.build(cluster_from_objects(pods, nss, pols), "worker-1")
    text = nft.render_update(before, after)
    assert "add table" not in text and "delete" not in text
    assert "chain ingress-y/deny {" in text and "set pods-y/deny {" in text
    assert "chain ingress-x/web" not in text and "chain egress" not in text  # unchanged: not re-sent
    # a set whose comment changes (same name, other selector) cannot change in place: the whole table
    renamed = nft.Ruleset(after.node, tuple(nft.NftSet(st.name, st.type, st.elements, st.comment + " (edited)")
                                            if st.name == "pods-y/deny" else st for st in after.sets), after.chains)
    assert nft.render_update(after, renamed).startswith("add table inet kubelab-netpol\ndelete table")


def test_build_cache_reuses_policies_until_a_pod_or_namespace_changes():
    pods, nss, pols = objects()
    c1 = cluster_from_objects(pods, nss, pols[:1])
    cache = nft.BuildCache()
    nft.build(c1, "worker-1", cache)
    c2 = Cluster(pods=c1.pods, namespaces=c1.namespaces, policies=cluster_from_objects(pods, nss, pols).policies)
    assert nft.build(c2, "worker-1", cache) == nft.build(c2, "worker-1") and cache.hits == 1
    pods[1] = pod_obj("x", "b", labels={"pod": "b2"})
    c3 = cluster_from_objects(pods, nss, pols)
    assert nft.build(c3, "worker-1", cache) == nft.build(c3, "worker-1") and cache.hits == 0


def test_long_names_stay_within_kernel_limits_and_distinct():
    long_a, long_b = "p" * 240 + "a", "p" * 240 + "b"
    pods = [pod_obj("x", "a")]
    pols = [netpol(long_a, podSelector=POD_A), netpol(long_b, podSelector=POD_A)]
    rs = nft.build(cluster_from_objects(pods, [ns_obj("x")], pols), "worker-1")
    names = [c.name for c in rs.chains] + [s.name for s in rs.sets]
    assert len(set(names)) == len(names) and max(map(len, names)) <= 256


class FakeNft:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.fail = fail

    def __call__(self, argv, stdin):
        self.calls.append((list(argv), stdin))
        rc = 1 if self.fail else 0
        return subprocess.CompletedProcess(list(argv), rc, "", "Error: boom" if self.fail else "")


def test_agent_syncs_once_per_change_and_not_for_status_noise():
    fake = FakeNft()
    agent = PolicyAgent(dataplane=Dataplane(netns="kl-x-worker-1", runner=fake), node_name="worker-1")
    pods, nss, pols = objects()
    for o in pods:
        agent.on_pod(o)
    for o in nss:
        agent.on_namespace(o)
    for o in pols:
        agent.on_policy(o)

    async def go():
        agent._initialized = True
        assert await agent.sync() is True
        assert await agent.sync() is False  # nothing changed: no transaction
        noisy = dict(pods[0], status={**pods[0]["status"], "conditions": [{"type": "Ready", "status": "True"}]})
        agent.on_pod_update(pods[0], noisy)
        assert await agent.sync() is False
        agent.on_policy_delete(pols[1])
        assert await agent.sync() is True
    asyncio.run(go())
    assert [c[0][:4] for c in fake.calls] == [["ip", "netns", "exec", "kl-x-worker-1"]] * 2
    assert fake.calls[0][1] == EXPECTED_WORKER_1
    assert "delete chain inet kubelab-netpol ingress-y/deny" in fake.calls[1][1]
    assert "add table" not in fake.calls[1][1]  # incremental: only what the deletion changes


def test_failed_apply_rewrites_everything_next_time():
    fake = FakeNft(fail=True)
    dp = Dataplane(runner=fake)
    rs = nft.build(cluster_from_objects(*objects()), "worker-1")
    with pytest.raises(ApplyError, match="boom"):
        dp.sync(rs)
    assert dp.applied is None
    fake.fail = False
    assert dp.sync(rs) and fake.calls[-1][1].startswith("add table")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_rendered_text_loads_into_the_kernel():
    ns = f"kl-nptest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        dp = Dataplane(netns=ns)
        pods, nss, pols = objects()
        dp.sync(nft.build(cluster_from_objects(pods, nss, pols), "worker-1"))
        pods[1] = pod_obj("x", "b", labels={"pod": "b2"})
        assert dp.sync(nft.build(cluster_from_objects(pods, nss, pols), "worker-1"))
        listed = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "kubelab-netpol"],
                                capture_output=True, text=True, check=True).stdout
        assert "chain ingress-x/web" in listed and "set peer-x/web/ingress0/from0" in listed
        assert "10.244.1.11" not in listed.split("set peer-x/web/ingress0/from0")[1].split("}")[0]
        assert dp.present()
        dp.cleanup()
        assert not dp.present()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_incremental_updates_leave_the_kernel_as_a_full_rewrite_would():
    """Policy added, pod relabelled, policy deleted, each as an incremental transaction through the
    agent's default dataplane (libnftables in-process when installed): the listed table is the one
    a from-scratch `render_full` of the final state gives."""
    ns = f"kl-nptest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)

    def listing() -> str:
        return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "kubelab-netpol"],
                              capture_output=True, text=True, check=True).stdout

    dp = Dataplane(netns=ns)
    try:
        pods, nss, pols = objects()
        steps = [(pods, pols[:1]), (pods, pols), ([pods[0], pod_obj("x", "b", labels={"pod": "b2"}), *pods[2:]], pols),
                 (pods, pols[1:])]
        for i, (p, ps) in enumerate(steps):
            assert dp.sync(nft.build(cluster_from_objects(p, nss, ps), "worker-1"))
            if i:
                assert "add table" not in dp.last_text
        incremental = listing()
        assert "chain ingress-y/deny" in incremental and "chain ingress-x/web" not in incremental
        dp.applied = None  # forget: the next sync rewrites the whole table
        assert dp.sync(nft.build(cluster_from_objects(pods, nss, pols[1:]), "worker-1"))
        assert dp.last_text.startswith("add table")
        assert listing() == incremental
    finally:
        dp.close()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_hostile_objects_cannot_inject_nft_text():
    """Pod status is written by nodes and objects may bypass validation (etcd): the renderer only
    ever sees parsed addresses, known protocols and port numbers."""
    evil = pod_obj("x", "a", ip='10.244.1.10 } ; flush ruleset ; add element inet t s {')
    bad_port = pod_obj("x", "c")
    bad_port["spec"]["containers"][0]["ports"] = [{"name": "serve-80-tcp", "containerPort": "80 } ;", "protocol": "TCP"},
                                                  {"name": "serve-81-tcp", "containerPort": 81, "protocol": "ICMP ;"}]
    pol = netpol("p", podSelector={}, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8 } ;", "except": ["x ;"]}}],
                                                "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}]}])
    text = nft.render_full(nft.build(cluster_from_objects([evil, bad_port, pod_obj("x", "b")], [ns_obj("x")], [pol]),
                                     "worker-1"))
    assert "flush ruleset" not in text and "80 }" not in text and "ICMP" not in text and "10.0.0.0/8 }" not in text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_cleanup_command_removes_the_table_and_is_idempotent():
    import sys
    ns = f"kl-nptest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        dp = Dataplane(netns=ns)
        dp.sync(nft.build(cluster_from_objects(*objects()), "worker-1"))
        assert dp.present()
        for _ in range(2):
            p = subprocess.run([sys.executable, "-m", "kubelab.netpol", "--cleanup", "--netns", ns],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            assert not dp.present()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
