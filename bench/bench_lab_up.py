"""Lab boot time: `kubelab up` from nothing to all nodes Ready and DNS serving, then `down`.

    sudo python bench/bench_lab_up.py [--runs 3] [--workers 2] [--proxy-mode nftables]

`kubelab up` itself waits for nodes Ready, the kube-dns Service answering
`kubernetes.default.svc.cluster.local` from a worker, so the wall-clock time of the command is
the figure. Each phase is taken from the lab's own progress events. The issue's target: <= 20 s
on the 2-core machine. Baseline beside it: a bare etcd + API server start on loopback (the
part no lab can avoid). Every run is torn down and checked for residue.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelab.lab import state  # noqa: E402
from kubelab.lab.testing import Lab  # noqa: E402

TARGET_S = 20.0


def phases(lab_dir: str) -> dict[str, float]:
    """Seconds from `up` start to each milestone, from events.jsonl."""
    events, _ = state.read_events(lab_dir)
    t0 = next((e["t"] for e in events if e.get("event") == "up-started"), None)
    out: dict[str, float] = {}
    for e in events:
        key = e.get("event")
        if key == "healthy":
            key = f"{e.get('component')} healthy"
        if key and key not in out and t0 is not None:
            out[key] = round(e["t"] - t0, 2)
    return out


def baseline() -> float:
    from kubelab.testing import start_apiserver, start_etcd
    t0 = time.monotonic()
    e = start_etcd()
    try:
        a = start_apiserver(e.url)
        took = time.monotonic() - t0
        a.stop()
    finally:
        e.stop()
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--proxy-mode", default="nftables", choices=("nftables", "iptables"))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    ups, downs, rows = [], [], []
    for i in range(args.runs):
        lab = Lab.create(workers=args.workers, proxy_mode=args.proxy_mode)
        try:
            lab.up("--no-kubeconfig")
            ph = phases(lab.plan.lab_dir)
            if "dns-ready" not in ph:
                print("DNS did not come up (missing component?):\n" + lab.up_output, file=sys.stderr)
            t = time.monotonic()
            p = lab.down()
            downs.append(time.monotonic() - t)
            left = lab.residue()
            if p.returncode != 0 or left:
                print(f"run {i + 1}: residue after down: {left}\n{p.stdout}", file=sys.stderr)
                return 1
        finally:
            lab.cleanup()
        ups.append(lab.up_seconds)
        rows.append(ph)
        print(f"run {i + 1}: up {lab.up_seconds:5.1f} s (nodes Ready at {ph.get('nodes-ready', '-')} s, "
              f"DNS serving at {ph.get('dns-ready', '-')} s)   down {downs[-1]:4.1f} s")
    base = baseline()
    med = statistics.median(ups)
    print()
    print(f"{'figure':<42}{'seconds':>10}")
    print(f"{'kubelab up -> nodes Ready + DNS (median)':<42}{med:>10.1f}   target <= {TARGET_S:.0f} s: "
          f"{'OK' if med <= TARGET_S else 'MISSED'}")
    print(f"{'  best / worst':<42}{min(ups):>10.1f} / {max(ups):.1f}")
    for key in ("etcd healthy", "apiserver healthy", "controllers healthy", "nodeagent healthy",
                "proxy healthy", "ready", "nodes-ready", "dns-ready"):
        vals = [r[key] for r in rows if key in r]
        if vals:
            print(f"{'  ' + key + ' at (median)':<42}{statistics.median(vals):>10.2f}")
    print(f"{'kubelab down (median)':<42}{statistics.median(downs):>10.1f}")
    print(f"{'baseline: bare etcd + API server on loopback':<42}{base:>10.1f}")
    if args.json:
        print(json.dumps({"up": ups, "down": downs, "phases": rows, "baseline": base}))
    return 0 if med <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
