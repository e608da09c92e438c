#!/usr/bin/env python3
"""Scheduler throughput: pods bound per second for N pending pods over M nodes.

Setup: a real etcd + API server (kubelab.testing), M simulated Nodes (Node objects with
capacity), N pending pods created first, then `python -m kubelab.scheduler` started; a
watch times the first and the last binding (the rate excludes process start-up).

Baseline, same run: the raw binding rate: the same number of pods bound by a client that
POSTs `pods/binding` round-robin at the scheduler's bind concurrency, no decisions at all.
Target (issue 3): ≥ 100 pods/s.

    python bench/bench_scheduler.py [--pods 500] [--nodes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

from kubelab.client import ApiClient
from kubelab.controllers.simulation import create_node, spawn_component
from kubelab.testing import start_apiserver, start_etcd


async def create_pods(api: ApiClient, ns: str, n: int, *, scheduler: str = "default-scheduler") -> None:
    await api.create("namespaces", {"metadata": {"name": ns}})
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with sem:
            await api.create("pods", {"metadata": {"name": f"p{i}", "labels": {"app": "bench"},
                                                   "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                                        "name": "rs", "uid": "bench-rs",
                                                                        "controller": True}]},
                                      "spec": {"schedulerName": scheduler, "containers": [
                                          {"name": "c", "image": "x",
                                           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}},
                             namespace=ns)
    await asyncio.gather(*(one(i) for i in range(n)))


async def watch_bindings(api: ApiClient, ns: str, n: int, started: asyncio.Event) -> tuple[float, float, Counter]:
    listed = await api.list("pods", namespace=ns)
    started.set()
    first = last = 0.0
    seen: dict[str, str] = {}
    async for ev in api.watch("pods", namespace=ns, resource_version=listed["metadata"]["resourceVersion"]):
        if ev["type"] not in ("ADDED", "MODIFIED"):
            continue  # bookmarks carry no object
        node = ev["object"]["spec"].get("nodeName")
        name = ev["object"]["metadata"]["name"]
        if node and name not in seen:
            seen[name] = node
            now = time.perf_counter()
            first = first or now
            last = now
            if len(seen) == n:
                break
    return first, last, Counter(seen.values())


async def raw_binding_rate(api: ApiClient, nodes: list[str], n: int, concurrency: int = 8) -> float:
    ns = "bench-raw"
    await create_pods(api, ns, n, scheduler="nobody")
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await api.bind(f"p{i}", nodes[i % len(nodes)], namespace=ns)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0)


async def bench(url: str, pods: int, nodes: int) -> dict:
    api = ApiClient(server=url)
    names = [f"node-{i:02d}" for i in range(nodes)]
    await asyncio.gather(*(create_node(api, n, cpu="8", memory="32Gi", pods="110") for n in names))
    raw = await raw_binding_rate(api, names, pods)
    ns = "bench"
    await create_pods(api, ns, pods)
    started = asyncio.Event()
    watcher = asyncio.create_task(watch_bindings(api, ns, pods, started))
    await started.wait()
    t_start = time.perf_counter()
    sched = spawn_component("kubelab.scheduler", url)
    try:
        first, last, per_node = await asyncio.wait_for(watcher, 120)
    finally:
        sched.cleanup()
    await api.aclose()
    return {"raw": raw, "rate": (pods - 1) / (last - first) if last > first else float("inf"),
            "overall": pods / (last - t_start), "per_node": per_node}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=500)
    ap.add_argument("--nodes", type=int, default=20)
    args = ap.parse_args()
    etcd = start_etcd()
    try:
        apiserver = start_apiserver(etcd.url)
        try:
            res = asyncio.run(bench(apiserver.url, args.pods, args.nodes))
        finally:
            apiserver.stop()
    finally:
        etcd.stop()
    print(f"scheduler: {args.pods} pending pods over {args.nodes} nodes")
    print(f"{'':<44}{'pods/s':>10}{'x raw':>8}")
    print(f"{'baseline: raw pods/binding POSTs (c=8)':<44}{res['raw']:>10.0f}{1.0:>8.2f}")
    print(f"{'scheduler: first → last binding':<44}{res['rate']:>10.0f}{res['rate'] / res['raw']:>8.2f}")
    print(f"{'scheduler: incl. process start + cache sync':<44}{res['overall']:>10.0f}{res['overall'] / res['raw']:>8.2f}")
    counts = sorted(res["per_node"].values())
    print(f"pods per node: min {counts[0]} max {counts[-1]} over {len(counts)} nodes")
    print(f"target ≥ 100 pods/s: {'met' if res['rate'] >= 100 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
