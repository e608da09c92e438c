#!/usr/bin/env python3
"""LoadBalancer Service create → address assigned, and → answering `curl` from the host: p50/p99.

Setup: a real lab (kubelab.lab.testing.Lab, nftables mode, 2 workers), an nginx Deployment
with 2 ready replicas. Then N rounds, each: create a type LoadBalancer Service for nginx and
time (a) until its `status.loadBalancer.ingress[0].ip` is set (the controller's work, seen
with a GET poll) and (b) until `curl http://<ip>/` from the host answers nginx's page
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
import json
import os
import subprocess
import sys
import time

from kubelab.lab.testing import Lab
from kubelab.testing import wait_until

PAGE = "Welcome to nginx!"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def curl_ok(url: str) -> bool:
    p = subprocess.run(["curl", "-sS", "--noproxy", "*", "-m", "1", url], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    return p.returncode == 0 and PAGE in p.stdout


def svc_json(lab: Lab, name: str) -> dict:
    return json.loads(lab.kubectl("get", "svc", name, "-o", "json").stdout)


def one_round(lab: Lab, name: str, type_: str) -> tuple[float, float]:
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"type": type_, "selector": {"app": "nginx"}, "ports": [{"port": 80}]}}
    t0 = time.perf_counter()
    subprocess.run(["kubectl", "--kubeconfig", lab.kubeconfig, "create", "-f", "-"], input=json.dumps(manifest),
                   text=True, check=True, capture_output=True)
    if type_ == "LoadBalancer":
        def addr():
            ing = ((svc_json(lab, name).get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            return ing[0]["ip"] if ing else None
        ip = wait_until(addr, timeout=30, interval=0.01, what="an address")
        assigned = time.perf_counter() - t0
        url = f"http://{ip}/"
    else:
        port = svc_json(lab, name)["spec"]["ports"][0]["nodePort"]
        assigned = time.perf_counter() - t0
        url = f"http://{lab.plan.workers[0].ip}:{port}/"
    wait_until(lambda: curl_ok(url), timeout=30, interval=0.01, what=f"{url} answering")
    answering = time.perf_counter() - t0
    lab.kubectl("delete", "svc", name, "--wait=true")
    return assigned, answering


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
        res: dict[str, list[tuple[float, float]]] = {"LoadBalancer": [], "NodePort": []}
        for i in range(a.rounds):  # interleaved: both see the same machine load
            for t in res:
                res[t].append(one_round(lab, f"b{t.lower()[:2]}{i}", t))
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
