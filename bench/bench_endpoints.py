#!/usr/bin/env python3
"""Pod Ready (status write) → its IP ready in the EndpointSlice: p50/p99 over N pods.

Setup: a real etcd + API server (kubelab.testing), the controller-manager as a subprocess
(endpointslice + endpoints loops), one Service selecting N running-but-not-ready pods.
Then, one pod at a time: write Ready=True and time until a watch on EndpointSlices shows
that pod's endpoint ready.

Baseline, same run, same pods: the raw API write latency (the PATCH round trip) and the
watch delivery of the pod write itself (write → pod MODIFIED at a watcher). The slice path
is at least write + watch + controller + write + watch, so the ratio to the pod watch shows
what the controller adds. Target (issue 3): p99 ≤ 200 ms.

    python bench/bench_endpoints.py [--pods 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from kubelab.client import ApiClient
from kubelab.controllers.simulation import spawn_component
from kubelab.testing import eventually, start_apiserver, start_etcd

NS = "bench"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def watch_into(api: ApiClient, resource: str, seen: dict, key_fn, ready_evt: asyncio.Event) -> None:
    listed = await api.list(resource, namespace=NS)
    ready_evt.set()
    async for ev in api.watch(resource, namespace=NS, resource_version=listed["metadata"]["resourceVersion"]):
        now = time.perf_counter()
        for key in key_fn(ev["object"]):
            seen.setdefault(key, now)


def ready_slice_keys(s: dict) -> list[str]:
    return [e["targetRef"]["name"] for e in s.get("endpoints") or [] if e["conditions"].get("ready")]


def ready_pod_keys(p: dict) -> list[str]:
    conds = (p.get("status") or {}).get("conditions") or []
    return [p["metadata"]["name"]] if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else []


async def bench(url: str, n: int) -> dict:
    api = ApiClient(server=url)
    await api.create("namespaces", {"metadata": {"name": NS}})
    sem = asyncio.Semaphore(16)

    async def make(i: int) -> None:
        async with sem:
            name = f"p{i}"
            await api.create("pods", {"metadata": {"name": name, "labels": {"app": "b"}},
                                      "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}},
                             namespace=NS)
            await api.patch("pods", name, {"status": {"phase": "Running", "podIP": f"10.244.{i // 250}.{i % 250 + 2}",
                                                      "conditions": [{"type": "Ready", "status": "False"}]}},
                            namespace=NS, subresource="status", patch_type="strategic")
    await asyncio.gather(*(make(i) for i in range(n)))
    await api.create("services", {"metadata": {"name": "b"}, "spec": {"selector": {"app": "b"},
                                                                       "ports": [{"port": 80}]}}, namespace=NS)

    async def slices_hold_all():
        items = (await api.list("endpointslices", namespace=NS, label_selector="kubernetes.io/service-name=b"))["items"]
        return sum(len(s.get("endpoints") or []) for s in items) == n
    await eventually(slices_hold_all, timeout=60, what="slices with every (not ready) pod")

    slice_seen: dict[str, float] = {}
    pod_seen: dict[str, float] = {}
    e1, e2 = asyncio.Event(), asyncio.Event()
    watchers = [asyncio.create_task(watch_into(api, "endpointslices", slice_seen, ready_slice_keys, e1)),
                asyncio.create_task(watch_into(api, "pods", pod_seen, ready_pod_keys, e2))]
    await e1.wait()
    await e2.wait()
    write, to_pod_watch, to_slice = [], [], []
    for i in range(n):
        name = f"p{i}"
        t0 = time.perf_counter()
        await api.patch("pods", name, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                        namespace=NS, subresource="status", patch_type="strategic")
        write.append(time.perf_counter() - t0)
        await eventually(lambda: name in slice_seen and name in pod_seen, timeout=10, interval=0.001,
                         what=f"{name} ready in a slice")
        to_pod_watch.append(pod_seen[name] - t0)
        to_slice.append(slice_seen[name] - t0)
    for w in watchers:
        w.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    await api.aclose()
    return {"write": write, "pod_watch": to_pod_watch, "slice": to_slice}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=200)
    args = ap.parse_args()
    etcd = start_etcd()
    cm = None
    try:
        apiserver = start_apiserver(etcd.url)
        try:
            cm = spawn_component("kubelab.controllers", apiserver.url, "--leader-elect=false",
                                 "--controllers=endpointslice,endpoints")
            res = asyncio.run(bench(apiserver.url, args.pods))
        finally:
            if cm:
                cm.cleanup()
            apiserver.stop()
    finally:
        etcd.stop()
    base = pct(res["pod_watch"], 50)
    print(f"pod Ready → EndpointSlice, {args.pods} pods, one at a time")
    print(f"{'path':<38}{'p50 ms':>10}{'p99 ms':>10}{'x pod-watch p50':>17}")
    for label, key in (("baseline: API write (PATCH status)", "write"),
                       ("baseline: write → pod watch event", "pod_watch"),
                       ("write → endpoint ready in slice", "slice")):
        v = res[key]
        print(f"{label:<38}{pct(v, 50) * 1000:>10.1f}{pct(v, 99) * 1000:>10.1f}{pct(v, 50) / base:>17.2f}")
    p99 = pct(res["slice"], 99) * 1000
    print(f"target p99 ≤ 200 ms: {'met' if p99 <= 200 else 'NOT met'} ({p99:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
