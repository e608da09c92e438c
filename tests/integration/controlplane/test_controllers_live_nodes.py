"""Node lifecycle and node IPAM on a real API server with simulated nodes (Node + Lease):
heartbeats stop → Ready=Unknown, unreachable taint, the node's pods leave the endpoints,
then are evicted; every node gets a distinct pod CIDR, stable across restarts."""

from __future__ import annotations

import ipaddress

import pytest

from kubelab.client import NotFound
from kubelab.controllers.simulation import FakeNodeAgent, create_node
from kubelab.testing import eventually


@pytest.fixture
def manager(spawn):
    return lambda *extra: spawn("kubelab.controllers", "--leader-elect=false", *extra)


async def condition(api, node: str, ctype: str = "Ready") -> str | None:
    n = await api.get("nodes", node)
    return next((c["status"] for c in n["status"].get("conditions") or [] if c["type"] == ctype), None)


async def test_heartbeats_stop_node_unknown_pods_leave_endpoints_then_evicted(api, namespace, manager):
    ns = namespace
    nodes = [f"{ns}-a", f"{ns}-b"]
    for n in nodes:
        await create_node(api, n)
    agent = FakeNodeAgent(api, nodes, heartbeat=0.5, confirm_deletions=False)
    await agent.start()
    manager("--controllers=endpoints,endpointslice,nodelifecycle", "--node-monitor-grace-period", "3s",
            "--node-monitor-period", "0.5s", "--pod-eviction-timeout", "4s")
    try:
        for i, n in enumerate(nodes):
            await api.create("pods", {"metadata": {"name": f"web-{i}", "labels": {"app": "web"}},
                                      "spec": {"nodeName": n, "containers": [{"name": "c", "image": "x"}]}},
                             namespace=ns)
        await api.create("services", {"metadata": {"name": "web"},
                                      "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}, namespace=ns)

        async def ready_ips():
            ep = await api.get("endpoints", "web", namespace=ns)
            return {a.get("nodeName") for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
        await eventually(lambda: _eq(ready_ips(), set(nodes)), timeout=15, what="both pods in endpoints")

        agent.stopped_heartbeats.add(nodes[0])
        await eventually(lambda: _eq(condition(api, nodes[0]), "Unknown"), timeout=10, what="node a Ready=Unknown")

        async def tainted():  # a second write after the status one
            node = await api.get("nodes", nodes[0])
            taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
            return {("node.kubernetes.io/unreachable", "NoExecute"),
                    ("node.kubernetes.io/unreachable", "NoSchedule")} <= taints and node
        node = await eventually(tainted, timeout=10, what="unreachable taints")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "NodeStatusUnknown"
        assert await condition(api, nodes[1]) == "True", "the node still heartbeating stays Ready"

        await eventually(lambda: _eq(ready_ips(), {nodes[1]}), timeout=10, what="node a's pod out of endpoints")
        pod = await api.get("pods", "web-0", namespace=ns)
        assert next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"

        async def slice_readiness():  # the EndpointSlice controller syncs on its own
            slices = await api.list("endpointslices", namespace=ns, label_selector="kubernetes.io/service-name=web")
            return {e["nodeName"]: e["conditions"]["ready"] for s in slices["items"] for e in s["endpoints"]}
        await eventually(lambda: _eq(slice_readiness(), {nodes[0]: False, nodes[1]: True}), timeout=10,
                         what="node a's endpoint not ready in the slice")

        async def evicted():
            p = await api.get("pods", "web-0", namespace=ns)
            return bool(p["metadata"].get("deletionTimestamp"))
        await eventually(evicted, timeout=15, what="pod on the dead node evicted")
        assert not (await api.get("pods", "web-1", namespace=ns))["metadata"].get("deletionTimestamp")

        async def node_event():
            events = (await api.list("events", namespace="default"))["items"]
            return any(e["reason"] == "NodeNotReady" and e["involvedObject"]["name"] == nodes[0] for e in events)
        await eventually(node_event, timeout=10, what="a NodeNotReady event")

        # the dead node is deleted: its pods have no agent left to confirm, they are force-deleted
        await api.delete("nodes", nodes[0])
        await eventually(lambda: _pod_gone(api, ns, "web-0"), timeout=10, what="pods of a deleted node removed")
        assert (await api.get("pods", "web-1", namespace=ns))["spec"]["nodeName"] == nodes[1]
    finally:
        await agent.stop()
        for n in nodes:
            try:
                await api.delete("nodes", n)
            except NotFound:
                pass


async def _pod_gone(api, ns, name):
    try:
        await api.get("pods", name, namespace=ns)
        return False
    except NotFound:
        return True


async def _eq(coro, want):
    return await coro == want


async def test_node_ipam_distinct_and_stable_across_restart(api, manager):
    names = [f"ipam-{i}" for i in range(3)]
    for n in names:
        await api.create("nodes", {"metadata": {"name": n}})
    first = manager("--controllers=nodeipam", "--cluster-cidr", "10.250.0.0/16", "--node-cidr-mask-size", "24")

    async def cidrs(ns_):
        out = {}
        for n in ns_:
            spec = (await api.get("nodes", n)).get("spec") or {}
            if not spec.get("podCIDR"):
                return False
            assert spec["podCIDRs"] == [spec["podCIDR"]]
            out[n] = spec["podCIDR"]
        return out
    got = await eventually(lambda: cidrs(names), timeout=15, what="pod CIDRs for 3 nodes")
    nets = [ipaddress.ip_network(c) for c in got.values()]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.ip_network("10.250.0.0/16")) for n in nets)
    assert len(set(nets)) == 3
    first.stop()
    manager("--controllers=nodeipam", "--cluster-cidr", "10.250.0.0/16", "--node-cidr-mask-size", "24")
    await api.create("nodes", {"metadata": {"name": "ipam-3"}})
    more = await eventually(lambda: cidrs(names + ["ipam-3"]), timeout=15, what="a CIDR for the 4th node")
    assert {k: v for k, v in more.items() if k != "ipam-3"} == got, "existing assignments unchanged"
    assert ipaddress.ip_network(more["ipam-3"]) not in nets, "the new node's range is not reused"
    for n in names + ["ipam-3"]:
        await api.delete("nodes", n)
