#!/usr/bin/env python3
"""Pod startup latency and per-pod memory of the node agent, beside a bare baseline.

Two simulated nodes (network namespaces on a bridge, each running `python -m
kubelab.nodeagent`) and a real API server. Figures:

- latency create → Running and Ready (observed through a watch), p50/p99 over --pods pods
  spread over both nodes: once one at a time (the floor), once at --rate pods/s;
- baseline in the same run: `ip netns add` + spawning a process in it + `ip netns del`
  (what any pod needs at the least, with no API server, CNI or status);
- memory per pod: the pause holder (unshare + pause, RSS and PSS) plus the agent's growth
  (RSS with the pods minus RSS before, divided by the pods); container processes reported
  apart (the wrapper sh + unshare each container costs).

Targets (issue 4): p99 ≤ 2 s (Kubernetes' SLO is 5 s); ≤ 10 MiB per pod.

    sudo python bench/bench_pod_startup.py [--pods 50] [--rate 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

from kubelab.client import ApiClient, Informer
from kubelab.nodeagent import procs
from kubelab.nodeagent.simnodes import SimCluster
from kubelab.testing import start_etcd


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def baseline(n: int) -> list[float]:
    out = []
    for i in range(n):
        name = f"kl-bl-{uuid.uuid4().hex[:8]}"
        t = time.perf_counter()
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "netns", "exec", name, "true"], check=True)
        out.append(time.perf_counter() - t)
        subprocess.run(["ip", "netns", "del", name], check=True)
    return out


def is_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


async def run_batch(api: ApiClient, cluster: SimCluster, ns: str, n: int, *, rate: float | None,
                    prefix: str) -> list[float]:
    """Create n pods (one at a time when rate is None); latency of each to Ready."""
    created: dict[str, float] = {}
    ready: dict[str, float] = {}
    done = asyncio.Event()
    inf = Informer(api, "pods", namespace=ns)

    def seen(p: dict) -> None:
        name = p["metadata"]["name"]
        if name.startswith(prefix) and name not in ready and is_ready(p):
            ready[name] = time.perf_counter()
            if len(ready) == n:
                done.set()
    inf.add_handler(on_add=seen, on_update=lambda old, new: seen(new))
    watcher = asyncio.create_task(inf.run())
    await inf.wait_synced(10)
    for i in range(n):
        name = f"{prefix}{i}"
        node = cluster.nodes[i % len(cluster.nodes)].name
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": "busybox"}]}}
        created[name] = time.perf_counter()
        await api.create("pods", body, namespace=ns)
        if rate is None:
            deadline = time.monotonic() + 60
            while name not in ready:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"pod {name} not Ready after 60 s")
                await asyncio.sleep(0.005)
        else:
            await asyncio.sleep(1 / rate)
    await asyncio.wait_for(done.wait(), 120)
    watcher.cancel()
    return [ready[k] - created[k] for k in created]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own CPU, CPU of reaped children: the CNI plugins) of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def agent_pid(cluster: SimCluster, i: int) -> int:
    p = cluster.nodes[i].proc
    assert p is not None
    # nsenter execs the agent: same pid
    return p.popen.pid


def pause_memory(cluster: SimCluster) -> tuple[list[int], list[int], list[int]]:
    """RSS and PSS (KiB) of each pod's pause holder (unshare + pause), and container overhead."""
    rss, pss, cont = [], [], []
    for n in cluster.nodes:
        pods_dir = os.path.join(n.root_dir, "pods")
        for uid in os.listdir(pods_dir):
            with open(os.path.join(pods_dir, uid, "sandbox.json")) as f:
                sb = json.load(f)
            rss.append(procs.rss_kib(sb["holder_pid"]) + procs.rss_kib(sb["pause_pid"]))
            pss.append(procs.pss_kib(sb["holder_pid"]) + procs.pss_kib(sb["pause_pid"]))
            with open(os.path.join(pods_dir, uid, "containers", "c.json")) as f:
                c = json.load(f)
            unshare = procs.children(c["wrapper_pid"])
            cont.append(procs.rss_kib(c["wrapper_pid"]) + sum(procs.rss_kib(u) for u in unshare))
    return rss, pss, cont


async def delete_all(api: ApiClient, ns: str) -> None:
    for p in (await api.list("pods", namespace=ns))["items"]:
        await api.delete("pods", p["metadata"]["name"], namespace=ns, grace_period_seconds=1)
    t = time.monotonic()
    while (await api.list("pods", namespace=ns))["items"]:
        if time.monotonic() - t > 120:
            raise TimeoutError("pods not deleted")
    

async def main_async(args) -> int:
    etcd = start_etcd()
    cluster = SimCluster(etcd.url, nodes_count=2)
    try:
        bl = baseline(args.pods)
        cluster.start()
        api = ApiClient(server=cluster.url)
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        await api.create("namespaces", {"metadata": {"name": ns}})
        agent_before = [procs.rss_kib(agent_pid(cluster, i)) for i in range(2)]

        cpu0 = [cpu_seconds(agent_pid(cluster, i)) for i in range(2)]
        seq = await run_batch(api, cluster, ns, args.pods, rate=None, prefix="seq-")
        cpu1 = [cpu_seconds(agent_pid(cluster, i)) for i in range(2)]
        agent_cpu = sum(b[0] - a[0] for a, b in zip(cpu0, cpu1)) / args.pods
        cni_cpu = sum(b[1] - a[1] for a, b in zip(cpu0, cpu1)) / args.pods
        rss, pss, cont = pause_memory(cluster)
        agent_after = [procs.rss_kib(agent_pid(cluster, i)) for i in range(2)]
        await delete_all(api, ns)
        burst = await run_batch(api, cluster, ns, args.pods, rate=args.rate, prefix="rate-")
        await delete_all(api, ns)
        await api.aclose()

        growth = (sum(agent_after) - sum(agent_before)) / args.pods
        per_pod = statistics.mean(rss) + growth
        print(f"pod startup, {args.pods} pods on 2 nodes (busybox: sleep infinity), create → Running+Ready")
        print(f"  baseline ip netns add + exec true : p50 {pct(bl, 50) * 1000:7.1f} ms  p99 {pct(bl, 99) * 1000:7.1f} ms")
        print(f"  one at a time                     : p50 {pct(seq, 50) * 1000:7.1f} ms  p99 {pct(seq, 99) * 1000:7.1f} ms")
        print(f"  at {args.rate:g} pods/s                   : p50 {pct(burst, 50) * 1000:7.1f} ms  "
              f"p99 {pct(burst, 99) * 1000:7.1f} ms   (target p99 ≤ 2000 ms)")
        print(f"  CPU per pod start: agent {agent_cpu * 1000:.0f} ms, its children (CNI plugins, mount, ...) "
              f"{cni_cpu * 1000:.0f} ms; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("memory per pod")
        print(f"  pause holder (unshare + pause)    : RSS {statistics.mean(rss) / 1024:5.2f} MiB  "
              f"PSS {statistics.mean(pss) / 1024:5.2f} MiB")
        print(f"  agent bookkeeping                 : {growth / 1024:5.2f} MiB  "
              f"(agents {agent_before} → {agent_after} KiB)")
        print(f"  total (pause RSS + bookkeeping)   : {per_pod / 1024:5.2f} MiB   (target ≤ 10 MiB)")
        print(f"  per container (sh + unshare)      : RSS {statistics.mean(cont) / 1024:5.2f} MiB (not counted)")
        ok = pct(burst, 99) <= 2.0 and per_pod <= 10 * 1024
        return 0 if ok or not args.check else 1
    finally:
        if args.show_logs:
            for n in cluster.nodes:
                if n.proc:
                    print(n.proc.log())
        cluster.stop()
        etcd.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--rate", type=float, default=2.0, help="creation rate of the second run, pods/s")
    ap.add_argument("--show-logs", action="store_true", help="print the agents' logs at the end")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1

    def on_term(*_):  # clean up (finally blocks) when stopped
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
