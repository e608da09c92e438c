"""Restart safety and leader election, with the controller-manager as real subprocesses:
- killed mid-burst and restarted, it converges with no duplicate pods (expectations + relist);
- two instances never both act: the second waits, and takes over within the lease duration
  once the first is killed."""

from __future__ import annotations

import time

import pytest

from kubelab.testing import eventually

LEASE = ["--leader-elect=true", "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
         "--leader-elect-retry-period", "0.5s", "--controllers=replicaset"]


@pytest.fixture
def spawned(spawn):
    def start(identity: str, *extra: str):
        return spawn("kubelab.controllers", *LEASE, "--leader-elect-resource-name", f"kcm-{identity.split('-')[0]}",
                     *extra, env={"KUBELAB_IDENTITY": identity})
    return start


def replicaset(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                     "template": {"metadata": {"labels": {"rs": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def count_pods(api, ns: str, rs: str) -> int:
    return len((await api.list("pods", namespace=ns, label_selector=f"rs={rs}"))["items"])


async def holder(api, name: str) -> str:
    lease = await api.get("leases", name, namespace="kube-system")
    return lease["spec"].get("holderIdentity") or ""


async def test_restart_mid_burst_creates_no_duplicates(api, namespace, spawned):
    ns = namespace
    first = spawned("burst-1")
    await eventually(lambda: holder(api, "kcm-burst"), timeout=15, what="first instance to lead")
    await api.create("replicasets", replicaset("burst", 300), namespace=ns)
    n = await eventually(lambda: _at_least(api, ns, "burst", 10), timeout=20, what="the burst to start")
    first.stop(kill=True)  # SIGKILL: no lease release, no clean shutdown
    at_kill = await count_pods(api, ns, "burst")
    assert n <= at_kill < 300, f"killed mid-burst ({at_kill} pods)"
    spawned("burst-2")

    async def converged():
        rs = await api.get("replicasets", "burst", namespace=ns)
        return (rs.get("status") or {}).get("replicas") == 300 and await count_pods(api, ns, "burst") == 300
    await eventually(converged, timeout=60, what="300 pods after restart")
    # a further sync (spec change) must still see exactly the right number
    await api.patch("replicasets", "burst", {"spec": {"replicas": 301}}, namespace=ns)
    await eventually(lambda: _exactly(api, ns, "burst", 301), timeout=20, what="301 pods")
    assert await count_pods(api, ns, "burst") == 301


async def _at_least(api, ns, rs, n):
    c = await count_pods(api, ns, rs)
    return c if c >= n else 0


async def _exactly(api, ns, rs, n):
    return await count_pods(api, ns, rs) == n


async def test_two_instances_one_leader_and_takeover(api, namespace, spawned):
    ns = namespace
    a = spawned("pair-a")
    b = spawned("pair-b")
    first = await eventually(lambda: holder(api, "kcm-pair"), timeout=15, what="a leader")
    leader, standby = (a, b) if first == "pair-a" else (b, a)
    await api.create("replicasets", replicaset("one", 5), namespace=ns)
    await eventually(lambda: _exactly(api, ns, "one", 5), timeout=20, what="5 pods")
    assert "caches synced; starting" in leader.log()
    assert "caches synced; starting" not in standby.log(), "the standby must not run the loops"
    assert standby.popen.poll() is None

    leader.stop(kill=True)
    t0 = time.monotonic()
    other = "pair-b" if first == "pair-a" else "pair-a"
    await eventually(lambda: _holder_is(api, "kcm-pair", other), timeout=10, what="takeover")
    took = time.monotonic() - t0
    assert took <= 3 + 1.5, f"takeover took {took:.1f}s for a 3s lease"
    lease = await api.get("leases", "kcm-pair", namespace="kube-system")
    assert lease["spec"]["leaseTransitions"] >= 1 and lease["spec"]["leaseDurationSeconds"] == 3
    await api.create("replicasets", replicaset("two", 2), namespace=ns)
    await eventually(lambda: _exactly(api, ns, "two", 2), timeout=20, what="the new leader acts")
    assert await count_pods(api, ns, "one") == 5


async def _holder_is(api, name, who):
    return await holder(api, name) == who
