#!/usr/bin/env python3
"""LoadBalancer Service create → address assigned, and → answering `curl` from the host: p50/p99.

Setup: a real lab (kubelab.lab.testing.Lab, nftables mode, 2 workers), an nginx Deployment
with 2 ready replicas. Then N rounds, each: create a type LoadBalancer Service for nginx and
time (a) until its `status.loadBalancer.ingress[0].ip` is set (the controller's work, seen
with a GET poll every 5 ms over the admin's client) and (b) until `curl http://<ip>/` from the host answers nginx's page
(controller + speaker's `ip addr` and gratuitous ARP + the proxies' rules on every node);
then delete it (the address is reused next round: the pool's lowest free address).

Baseline, same run, same nginx: a NodePort Service create → `curl http://<node-ip>:<nodePort>/`
from the host answers (the API write + EndpointSlice + proxy programming that a LoadBalancer
address needs too). The ratio LB/NodePort shows what the address controller and the speaker
add. Target (issue 18): p99 ≤ 1 s for (b).

    sudo .venv/bin/python bench/bench_lb.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from kubelab.client import NotFound
from kubelab.lab.testing import Lab
from kubelab.testing import eventually

PAGE = "Welcome to nginx!"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def curl_ok(url: str) -> bool:
    p = subprocess.run(["curl", "-sS", "--noproxy", "*", "-m", "1", url], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    return p.returncode == 0 and PAGE in p.stdout


async def one_round(api, lab: Lab, name: str, type_: str) -> tuple[float, float]:
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"type": type_, "selector": {"app": "nginx"}, "ports": [{"port": 80}]}}
    t0 = time.perf_counter()
    created = await api.create("services", manifest, namespace="default")
    if type_ == "LoadBalancer":
        async def addr():
            s = await api.get("services", name, namespace="default")
            ing = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            return ing[0]["ip"] if ing else None
        ip = await eventually(addr, timeout=30, interval=0.005, what="an address")
        assigned = time.perf_counter() - t0
        url = f"http://{ip}/"
    else:
        assigned = time.perf_counter() - t0
        url = f"http://{lab.plan.workers[0].ip}:{created['spec']['ports'][0]['nodePort']}/"
    await eventually(lambda: asyncio.to_thread(curl_ok, url), timeout=30, interval=0.005, what=f"{url} answering")
    answering = time.perf_counter() - t0
    await api.delete("services", name, namespace="default")
    await eventually(lambda: _gone(api, name), timeout=30, what=f"{name} deleted")
    return assigned, answering


async def _gone(api, name: str) -> bool:
    try:
        await api.get("services", name, namespace="default")
    except NotFound:
        return True
    return False


async def measure(lab: Lab, rounds: int) -> dict[str, list[tuple[float, float]]]:
    from kubelab.lab import components
    api = components.api_client(lab.plan)
    res: dict[str, list[tuple[float, float]]] = {"LoadBalancer": [], "NodePort": []}
    try:
        for i in range(rounds):  # interleaved: both see the same machine load
            for t in res:
                res[t].append(await one_round(api, lab, f"b{t.lower()[:2]}{i}", t))
    finally:
        await api.aclose()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_lb needs root (it starts a lab)", file=sys.stderr)
        return 2
    lab = Lab.create(workers=2)
    try:
        lab.up("--no-kubeconfig", "--no-dns")
        lab.kubectl("create", "deployment", "nginx", "--image=nginx", "--replicas=2")
        lab.kubectl("rollout", "status", "deployment/nginx", "--timeout=120s", timeout=150)
        res = asyncio.run(measure(lab, a.rounds))
        lb_answer = [r[1] for r in res["LoadBalancer"]]
        np_answer = [r[1] for r in res["NodePort"]]
        lb_assign = [r[0] for r in res["LoadBalancer"]]
        print(f"rounds: {a.rounds}")
        print(f"LoadBalancer address assigned   p50 {pct(lb_assign, 50) * 1000:7.1f} ms  "
              f"p99 {pct(lb_assign, 99) * 1000:7.1f} ms")
        print(f"LoadBalancer answering (host)   p50 {pct(lb_answer, 50) * 1000:7.1f} ms  "
              f"p99 {pct(lb_answer, 99) * 1000:7.1f} ms   (target p99 <= 1000 ms)")
        print(f"baseline NodePort answering     p50 {pct(np_answer, 50) * 1000:7.1f} ms  "
              f"p99 {pct(np_answer, 99) * 1000:7.1f} ms")
        print(f"ratio LB/NodePort p99: {pct(lb_answer, 99) / pct(np_answer, 99):.2f}")
        return 0
    finally:
        left = lab.cleanup()
        if left:
            print(f"lab residue: {left}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
