#!/usr/bin/env python3
"""API server throughput and latency beside raw etcd, same machine, same run, same concurrency.

Baseline: the same number of puts/gets straight to etcd through the etcd client the API
server uses (aetcd). Figures: ops/s and p50/p99 latency for create, get and list, the ratio
to etcd, and watch delivery latency (write → event at each of 100 watchers).
Targets (issue 2): creates ≥ 50% of raw etcd puts at equal concurrency; watch p99 ≤ 50 ms.

    python bench/bench_apiserver.py [--ops 2000] [--concurrency 1,16,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import aetcd
import httpx

from kubelab.testing import start_apiserver, start_etcd

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from rawhttp import Pool  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def run_concurrent(n: int, concurrency: int, op) -> tuple[float, list[float]]:
    """Run op(i) for i < n with `concurrency` in flight; (ops/s, latencies in s)."""
    lat: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await op(i)
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0), lat


def row(name: str, conc: int, rate: float, lat: list[float], base: float | None) -> str:
    ratio = f"{rate / base:6.2f}" if base else "     -"
    return (f"{name:<22}{conc:>5}{rate:>10.0f}{pct(lat, 50) * 1000:>10.2f}{pct(lat, 99) * 1000:>10.2f}"
            f"{ratio:>8}")


async def bench(etcd_url: str, api_url: str, ops: int, concurrencies: list[int]) -> dict:
    host, port = etcd_url.split("//")[1].split(":")
    etcd = aetcd.Client(host=host, port=int(port), timeout=10)
    await etcd.connect()
    http = httpx.AsyncClient(base_url=api_url, limits=httpx.Limits(max_connections=256,
                                                                   max_keepalive_connections=256), timeout=30)
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "bench"}})
    pool = Pool(api_url)  # a lean client: httpx would cost more CPU than the server (see rawhttp.py)
    results = {}
    print(f"{'operation':<22}{'conc':>5}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}")
    value = json.dumps({"metadata": {"name": "x"}, "data": {"k": "v" * 100}}).encode()
    for conc in concurrencies:
        tag = f"c{conc}"
        base_put, lat = await run_concurrent(ops, conc, lambda i: etcd.put(f"/bench/{tag}/{i}".encode(), value))
        print(row("etcd put (baseline)", conc, base_put, lat, None))

        async def create(i: int) -> None:
            code, body = await pool.request("POST", "/api/v1/namespaces/bench/configmaps",
                                            {"metadata": {"name": f"{tag}-{i}"}, "data": {"k": "v" * 100}})
            assert code == 201, body

        rate, lat = await run_concurrent(ops, conc, create)
        print(row("apiserver create", conc, rate, lat, base_put))
        results[f"create_ratio_c{conc}"] = rate / base_put

        base_get, lat = await run_concurrent(ops, conc, lambda i: etcd.get(f"/bench/{tag}/{i}".encode()))
        print(row("etcd get (baseline)", conc, base_get, lat, None))

        async def get(i: int) -> None:
            code, _ = await pool.request("GET", f"/api/v1/namespaces/bench/configmaps/{tag}-{i}")
            assert code == 200

        rate, lat = await run_concurrent(ops, conc, get)
        print(row("apiserver get", conc, rate, lat, base_get))
        results[f"get_ratio_c{conc}"] = rate / base_get

    lists = 20
    base_list, lat = await run_concurrent(lists, 1, lambda i: etcd.get_prefix(b"/registry/configmaps/bench/"))
    print(row("etcd range (same keys)", 1, base_list, lat, None))

    async def lst(i: int) -> None:
        code, _ = await pool.request("GET", "/api/v1/namespaces/bench/configmaps")
        assert code == 200

    rate, lat = await run_concurrent(lists, 1, lst)
    total = len((await http.get("/api/v1/namespaces/bench/configmaps")).json()["items"])
    print(row(f"apiserver list {total}", 1, rate, lat, base_list))
    results["list_ratio"] = rate / base_list

    results.update(await watch_latency(api_url, http, watchers=100, events=50))
    await http.aclose()
    await pool.close()
    await etcd.close()
    return results


async def watch_latency(api_url: str, http: httpx.AsyncClient, *, watchers: int, events: int) -> dict:
    """Time from issuing a write to the event arriving at each of `watchers` open watches."""
    rv = (await http.get("/api/v1/namespaces/bench/configmaps", params={"limit": 1})).json()["metadata"][
        "resourceVersion"]
    sent: dict[str, float] = {}
    lat: list[float] = []
    ready = 0
    clients = [httpx.AsyncClient(base_url=api_url, timeout=None) for _ in range(10)]

    async def watcher(i: int) -> None:
        nonlocal ready
        async with clients[i % 10].stream("GET", "/api/v1/namespaces/bench/configmaps",
                                          params={"watch": "true", "resourceVersion": rv,
                                                  "labelSelector": "watch=yes"}) as r:
            ready += 1
            seen = 0
            async for line in r.aiter_lines():
                if not line:
                    continue
                now = time.perf_counter()
                ev = json.loads(line)
                name = ev["object"]["metadata"].get("name")
                if ev["type"] == "ADDED" and name in sent:
                    lat.append(now - sent[name])
                    seen += 1
                    if seen == events:
                        return

    tasks = [asyncio.create_task(watcher(i)) for i in range(watchers)]
    while ready < watchers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    for i in range(events):
        name = f"w-{i}"
        sent[name] = time.perf_counter()
        await http.post("/api/v1/namespaces/bench/configmaps",
                        json={"metadata": {"name": name, "labels": {"watch": "yes"}}})
        await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    for c in clients:
        await c.aclose()
    p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
    print(f"\nwatch delivery, {watchers} watchers x {events} events ({len(lat)} deliveries): "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 <= 50 ms)")
    return {"watch_p50_ms": p50, "watch_p99_ms": p99}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--workers", type=int, default=1, help="API server worker processes")
    args = ap.parse_args()
    etcd = start_etcd()
    api = None
    try:
        api = start_apiserver(etcd.url, args=["--workers", str(args.workers)])
        res = asyncio.run(bench(etcd.url, api.url, args.ops, [int(c) for c in args.concurrency.split(",")]))
    finally:
        if api:
            api.stop()
        etcd.stop()
    best = max(v for k, v in res.items() if k.startswith("create_ratio"))
    print(f"\ncreates vs raw etcd puts: best ratio {best:.2f} (target >= 0.50); "
          f"watch p99 {res['watch_p99_ms']:.1f} ms (target <= 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
