#!/usr/bin/env python3
"""kubelab ui: time to draw the cluster map of a 200-pod lab (objects -> model -> DOT -> SVG).

Setup: synthetic API objects as the hub's informers hold them: N pods spread over the workers
of a lab, a Service per 10 pods with an EndpointSlice listing them (so the map has N endpoint
lines), the control plane node, DNS. Timed: `view.build_map` + `view.map_dot` + Graphviz
`dot -Tsvg` (what one map update costs the server; all browsers share that one render).
Then an update burst: 50 pods change phase at once, the map is drawn again (the server draws
once per burst: SSE coalesces).

Baseline, same run: the same pipeline for the lab as `kubelab up --demo` boots it
(2 workers, 4 pods, 4 Services), i.e. the fixed cost of one `dot` run.
Target (issue 20): 200 pods in ≤ 1 s; an update burst in < 2 s.

    python bench/bench_ui.py [--pods 200] [--workers 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

from kubelab.ui import graphviz, view


def objects(pods: int, workers: int) -> dict:
    nodes, info = [], {"control-plane": view.NodeInfo("kl-lab-control-plane", "192.168.56.10", "control-plane")}
    for w in range(1, workers + 1):
        name = f"worker-{w}"
        info[name] = view.NodeInfo(f"kl-lab-{name}", f"192.168.56.{10 + w}", "worker")
        nodes.append({"metadata": {"name": name}, "spec": {"podCIDR": f"10.244.{w}.0/24"},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    plist, services, slices = [], [], []
    for i in range(pods):
        w = i % workers + 1
        app = f"app{i // 10}"
        plist.append({"metadata": {"name": f"{app}-pod-{i}", "namespace": "bench"},
                      "spec": {"nodeName": f"worker-{w}"},
                      "status": {"phase": "Running", "podIP": f"10.244.{w}.{i // workers + 2}",
                                 "conditions": [{"type": "Ready", "status": "True"}]}})
    for a in range((pods + 9) // 10):
        app = f"app{a}"
        services.append({"metadata": {"name": app, "namespace": "bench"},
                         "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{a // 200 + 1}.{a % 200 + 1}",
                                  "ports": [{"port": 80, "protocol": "TCP"}]}})
        slices.append({"metadata": {"name": f"{app}-x", "namespace": "bench",
                                    "labels": {"kubernetes.io/service-name": app}},
                       "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True},
                                      "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": "bench"}}
                                     for p in plist if p["metadata"]["name"].startswith(app + "-pod-")]})
    return {"nodes": nodes, "pods": plist, "services": services, "slices": slices, "info": info}


def cpu() -> float:
    """CPU seconds of this process and its finished children (`dot`): unlike the wall clock,
    not inflated when other work shares the machine."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def draw(objs: dict) -> tuple[float, float, int]:
    t, c = time.perf_counter(), cpu()
    model = view.build_map(nodes=objs["nodes"], pods=objs["pods"], services=objs["services"], slices=objs["slices"],
                           info=objs["info"])
    svg = graphviz.render_svg(view.map_dot(model))
    return time.perf_counter() - t, cpu() - c, len(svg)


def median_draw(objs: dict, repeat: int) -> tuple[float, float, int]:
    runs = [draw(objs) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[0][2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not graphviz.available():
        print("Graphviz `dot` is not installed (make install)")
        return 1
    base, base_cpu, base_bytes = median_draw(objects(4, 2), args.repeat)
    big_objs = objects(args.pods, args.workers)
    big, big_cpu, big_bytes = median_draw(big_objs, args.repeat)
    for p in big_objs["pods"][:50]:  # a burst: 50 pods change at once, one redraw
        p["status"]["phase"] = "Pending"
        p["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    burst, burst_cpu, _ = median_draw(big_objs, args.repeat)
    print(f"ui map: objects -> model -> DOT -> SVG (Graphviz), median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':<46}{'wall s':>8}{'CPU s':>8}{'x base':>8}{'SVG KiB':>9}")
    print(f"{'baseline: demo lab (4 pods, 2 workers)':<46}{base:>8.3f}{base_cpu:>8.3f}{1.0:>8.2f}{base_bytes / 1024:>9.0f}")
    print(f"{f'map: {args.pods} pods on {args.workers} workers':<46}{big:>8.3f}{big_cpu:>8.3f}{big / base:>8.2f}"
          f"{big_bytes / 1024:>9.0f}")
    print(f"{'update burst: 50 pods change, one redraw':<46}{burst:>8.3f}{burst_cpu:>8.3f}{burst / base:>8.2f}")
    ok = big <= 1.0 and burst < 2.0
    ok_cpu = big_cpu <= 1.0 and burst_cpu < 2.0
    print(f"target: {args.pods} pods ≤ 1 s, burst < 2 s: wall {'met' if ok else 'NOT met'}, "
          f"CPU {'met' if ok_cpu else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
