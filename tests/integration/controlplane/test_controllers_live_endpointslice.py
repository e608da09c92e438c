"""A Service with 250 ready pods gets 3 EndpointSlices; one pod change rewrites one slice."""

from __future__ import annotations

import asyncio

import pytest

from kubelab.testing import eventually


@pytest.fixture
def controllers(spawn):
    return spawn("kubelab.controllers", "--leader-elect=false",
                         "--controllers=endpoints,endpointslice")


async def make_ready_pods(api, ns: str, n: int, app: str) -> list[dict]:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> dict:
        async with sem:
            name = f"{app}-{i}"
            await api.create("pods", {"metadata": {"name": name, "labels": {"app": app}},
                                      "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}},
                             namespace=ns)
            ip = f"10.244.{i // 200}.{i % 200 + 2}"
            return await api.patch("pods", name, {"status": {
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": "True"}]}}, namespace=ns, subresource="status")
    return await asyncio.gather(*(one(i) for i in range(n)))


async def test_250_pods_three_slices_one_change_one_rewrite(api, namespace, controllers):
    ns = namespace
    pods = await make_ready_pods(api, ns, 250, "big")
    await api.create("services", {"metadata": {"name": "big"},
                                  "spec": {"selector": {"app": "big"}, "ports": [{"port": 80, "targetPort": 8080}]}},
                     namespace=ns)

    async def slices():
        return (await api.list("endpointslices", namespace=ns, label_selector="kubernetes.io/service-name=big"))["items"]

    async def converged():
        items = await slices()
        total = sum(len(s.get("endpoints") or []) for s in items)
        return len(items) == 3 and total == 250 and items
    items = await eventually(converged, timeout=30, what="3 slices holding 250 endpoints")
    assert sorted(len(s["endpoints"]) for s in items) == [50, 100, 100]
    assert all(e["conditions"]["ready"] for s in items for e in s["endpoints"])
    ips = {e["addresses"][0] for s in items for e in s["endpoints"]}
    assert ips == {p["status"]["podIP"] for p in pods}
    ep = await api.get("endpoints", "big", namespace=ns)
    assert len(ep["subsets"][0]["addresses"]) == 250

    def rvs(items):
        return {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in items}

    snapshot = rvs(items)
    for victim in (pods[123], pods[7], pods[249]):
        name = victim["metadata"]["name"]
        await api.patch("pods", name, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
                        namespace=ns, subresource="status", patch_type="strategic")

        async def not_ready():
            items = await slices()
            for s in items:
                for e in s.get("endpoints") or []:
                    if e["targetRef"]["name"] == name and e["conditions"]["ready"] is False:
                        return items
            return False
        items = await eventually(not_ready, timeout=10, what=f"{name}'s endpoint to turn not ready")
        now = rvs(items)
        assert set(now) == set(snapshot), "slices are kept, none created or deleted"
        rewritten = [n for n in now if now[n] != snapshot[n]]
        assert len(rewritten) == 1, f"one pod change rewrote {rewritten}"
        snapshot = now

    async def endpoints_split():
        ep = await api.get("endpoints", "big", namespace=ns)
        sub = ep["subsets"][0]
        return len(sub["addresses"]) == 247 and len(sub.get("notReadyAddresses") or []) == 3
    await eventually(endpoints_split, timeout=10, what="Endpoints: 247 ready, 3 not ready")
