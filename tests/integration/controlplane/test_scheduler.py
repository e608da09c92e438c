"""The scheduler on a real API server with simulated nodes: spreading, filters (taints,
nodeSelector, resources), Unschedulable condition with upstream's message, retry when nodes
change, bursts that do not all land on one node."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from kubelab.controllers.simulation import create_node
from kubelab.testing import eventually

CP = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.fixture
def scheduler(spawn):
    return spawn("kubelab.scheduler")


@pytest.fixture
async def nodes(api):
    made: list[str] = []

    async def make(name, **kw):
        await create_node(api, name, **kw)
        made.append(name)
        return name
    try:
        yield make
    finally:
        for n in made:
            await api.delete("nodes", n)


def pod(name: str, *, cpu: str | None = None, owner: str | None = None, selector: dict | None = None) -> dict:
    meta: dict = {"name": name, "labels": {"app": "s"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                    "controller": True}]
    spec: dict = {"containers": [{"name": "c", "image": "x",
                                  "resources": {"requests": {"cpu": cpu}} if cpu else {}}]}
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": meta, "spec": spec}


async def placement(api, ns):
    pods = (await api.list("pods", namespace=ns))["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}


async def test_spread_taints_selector_resources_and_retry(api, namespace, scheduler, nodes):
    ns = namespace
    pool = ns
    await nodes(f"{ns}-cp", taints=[CP], labels={"pool": pool})  # the control plane: never used
    w1 = await nodes(f"{ns}-w1", cpu="2", labels={"pool": pool})
    w2 = await nodes(f"{ns}-w2", cpu="2", labels={"pool": pool})
    owner = str(uuid.uuid4())
    for i in range(6):  # a burst of one owner's pods: spread 3/3, none on the control plane
        await api.create("pods", pod(f"r{i}", owner=owner, selector={"pool": pool}), namespace=ns)

    async def all_bound():
        p = await placement(api, ns)
        return len(p) == 6 and all(p.values()) and p
    placed = await eventually(all_bound, timeout=20, what="6 pods bound")
    assert Counter(placed.values()) == {w1: 3, w2: 3}
    pod0 = await api.get("pods", "r0", namespace=ns)
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in pod0["status"]["conditions"])

    # too big for any worker: Unschedulable with upstream's message
    await api.create("pods", pod("big", cpu="3", selector={"pool": pool}), namespace=ns)

    async def unschedulable():
        p = await api.get("pods", "big", namespace=ns)
        c = next((c for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"), None)
        return c and c["status"] == "False" and c
    cond = await eventually(unschedulable, timeout=10, what="PodScheduled=False")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"].startswith("0/3 nodes are available: 1 node(s) had untolerated taint "
                                      "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu."), cond["message"]

    async def failed_event():  # events are written when the scheduler is idle
        events = (await api.list("events", namespace=ns))["items"]
        return any(e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "big" for e in events)
    await eventually(failed_event, timeout=10, what="a FailedScheduling event")

    # a node that fits appears: the pod is retried and bound there
    w3 = await nodes(f"{ns}-w3", cpu="4", labels={"pool": pool})
    await eventually(lambda: _bound_to(api, ns, "big", w3), timeout=10, what="big pod bound once a node fits")

    # nodeSelector
    await nodes(f"{ns}-ssd", labels={"pool": pool, "disk": "ssd"})
    await api.create("pods", pod("picky", selector={"pool": pool, "disk": "ssd"}), namespace=ns)
    await eventually(lambda: _bound_to(api, ns, "picky", f"{ns}-ssd"), timeout=10, what="nodeSelector honoured")


async def _bound_to(api, ns, name, node):
    return (await api.get("pods", name, namespace=ns))["spec"].get("nodeName") == node


async def test_not_ready_node_is_skipped(api, namespace, scheduler, nodes):
    ns = namespace
    bad = await nodes(f"{ns}-down", ready=False, labels={"pool": ns})
    good = await nodes(f"{ns}-up", labels={"pool": ns})
    for i in range(4):
        await api.create("pods", pod(f"p{i}", selector={"pool": ns}), namespace=ns)

    async def done():
        p = await placement(api, ns)
        return all(p.values()) and len(p) == 4 and p
    placed = await eventually(done, timeout=15, what="pods bound")
    assert set(placed.values()) == {good} and bad not in placed.values()


async def test_leader_elected_scheduler_binds(api, spawn, namespace, nodes):
    ns = namespace
    s = spawn("kubelab.scheduler", "--leader-elect", "--leader-elect-lease-duration", "3s",
              "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "0.5s",
              env={"KUBELAB_IDENTITY": "sched-a"})
    n = await nodes(f"{ns}-le", labels={"pool": ns})
    await api.create("pods", pod("le", selector={"pool": ns}), namespace=ns)
    await eventually(lambda: _bound_to(api, ns, "le", n), timeout=15, what="bound by the elected scheduler")
    lease = await api.get("leases", "kube-scheduler", namespace="kube-system")
    assert lease["spec"]["holderIdentity"] == "sched-a"
    s.stop()
    # a clean stop releases the lease so a successor need not wait it out
    lease = await api.get("leases", "kube-scheduler", namespace="kube-system")
    assert lease["spec"].get("holderIdentity") in ("", None)
