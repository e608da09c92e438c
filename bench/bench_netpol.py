"""NetworkPolicy agent figures: full sync at scale, a label change, policy created → enforced.

    sudo python bench/bench_netpol.py [--pods 1000] [--policies 200] [--latency-runs 40]

Everything is applied inside a throwaway network namespace (root needed), never to the
machine's own rules. Each figure is printed beside a baseline measured in the same run:
- full sync (snapshot + build + render + `nft -f`) of P pods × N policies, beside the same
  pipeline with no policy (the fixed cost of one transaction). Target (issue 17): ≤ 1 s.
- one pod label change: the set-only update (bytes sent, time) beside the full sync.
- policy created → enforced (the agent's runner: event → coalesced sync → nft applied) p50/p99
  over 100 pods on 2 nodes, with the time per stage (event → sync start, build, nft), beside a
  bare `ip netns exec … nft -f` of the same transaction and of the whole table, applied from the
  same state in a third namespace. Target: p99 ≤ 200 ms.
- TCP throughput pod → node (forward hook) → pod with an allowing policy, beside no table.
  Target: ratio ≥ 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid

from kubelab.client import nftsession
from kubelab.netpol import nftables as nft
from kubelab.netpol.agent import Dataplane, PolicyAgent
from kubelab.netpol.model import cluster_from_objects

NODE = "node-0"


def pods(n: int, nodes: int = 10, namespaces: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        out.append({"metadata": {"namespace": f"ns{i % namespaces}", "name": f"pod{i}",
                                 "labels": {"app": f"app{i % 40}", "tier": ("web", "db", "cache")[i % 3]}},
                    "spec": {"nodeName": f"node-{i % nodes}", "containers": [{"name": "c", "ports": ports}]},
                    "status": {"podIP": f"10.{244 + i // 60000}.{i // 250 % 250}.{i % 250 + 1}", "phase": "Running"}})
    return out


def namespaces(n: int = 20) -> list[dict]:
    return [{"metadata": {"name": f"ns{i}", "labels": {"kubernetes.io/metadata.name": f"ns{i}",
                                                      "team": f"t{i % 4}"}}} for i in range(n)]


def policies(n: int, namespaces: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        kind = i % 4
        peers = [[{"podSelector": {"matchLabels": {"app": f"app{(i + 1) % 40}"}}},
                  {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": f"app{(i + 2) % 40}"}}}],
                 [{"namespaceSelector": {"matchLabels": {"team": f"t{i % 4}"}},
                   "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}}],
                 [{"ipBlock": {"cidr": "10.0.0.0/8", "except": [f"10.{i % 200}.0.0/16"]}}],
                 [{"namespaceSelector": {}}]][kind]
        ports = [{"port": "http", "protocol": "TCP"}] if kind == 3 else [{"port": 80 + i % 10, "protocol": "TCP"},
                                                                        {"port": 5000, "endPort": 5010, "protocol": "UDP"}]
        spec = {"podSelector": {"matchLabels": {"app": f"app{i % 40}"}}, "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": peers, "ports": ports}],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                            "ports": [{"port": 53, "protocol": "UDP"}]}]}
        out.append({"metadata": {"namespace": f"ns{i % namespaces}", "name": f"policy-{i}"}, "spec": spec})
    return out


class Netns:
    def __init__(self) -> None:
        self.name = f"kl-npbench-{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> str:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.name

    def __exit__(self, *exc) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def agent_for(p: list[dict], ns: list[dict], pols: list[dict], netns: str) -> PolicyAgent:
    """An agent whose informer caches hold these objects (parsed at event time, as live)."""
    agent = PolicyAgent(dataplane=Dataplane(netns=netns), node_name=NODE)
    for o in ns:
        agent.on_namespace(o)
    for o in p:
        agent.on_pod(o)
    for o in pols:
        agent.on_policy(o)
    agent._initialized = True
    return agent


def timed_sync(agent: PolicyAgent) -> float:
    t = time.perf_counter()
    asyncio.run(agent.sync())
    return time.perf_counter() - t


def bench_scale(n_pods: int, n_policies: int) -> None:
    p, ns, pols = pods(n_pods), namespaces(), policies(n_policies)
    with Netns() as netns:
        base_s = timed_sync(agent_for(p, ns, [], netns))
        agent = agent_for(p, ns, pols, netns)
        agent.dataplane.applied = None
        full_s = timed_sync(agent)
        rs, text = agent.dataplane.applied, agent.dataplane.last_text
        t = time.perf_counter()
        nft.build(agent.snapshot(), NODE)
        build_s = time.perf_counter() - t
        rules = sum(len(c.rules) for c in rs.chains)
        print(f"full sync, {n_pods} pods × {n_policies} policies (node {NODE}: {len(rs.chains)} chains, {rules} rules, "
              f"{len(rs.sets)} sets, {rs.element_count} elements, {len(text) / 1024:.0f} KiB): {full_s * 1000:.0f} ms "
              f"(of which snapshot+build {build_s * 1000:.0f} ms, the rest nft -f)")
        print(f"  baseline, same pods and no policy: {base_s * 1000:.0f} ms; ratio {full_s / base_s:.1f}x; "
              f"target ≤ 1000 ms: {'met' if full_s <= 1.0 else 'NOT met'}")
        # one pod label change: only the sets it is in are rewritten
        in_peer = {ip for st in rs.sets if st.name.startswith(nft.PEER_SET_PREFIX) for ip in st.elements}
        victim = next(x for x in p if x["status"]["podIP"] in in_peer)
        agent.on_pod_update(victim, {**victim, "metadata": {**victim["metadata"], "labels": {"app": "nobody"}}})
        label_s = timed_sync(agent)
        kind = "full table" if agent.dataplane.last_text.startswith("add table") else "set-only update"
        print(f"one pod label change: {label_s * 1000:.0f} ms, {len(agent.dataplane.last_text) / 1024:.1f} KiB sent "
              f"({kind}); beside the full sync: {label_s / full_s:.2f}x")


def _bare_nft(netns: str, text: str) -> float:
    t = time.monotonic()
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=text, text=True, check=True)
    return time.monotonic() - t


async def _latency(runs: int, netns_a: str, netns_b: str, netns_c: str
                   ) -> tuple[list[float], dict[str, list[float]], dict[str, list[float]]]:
    p = pods(100, nodes=2, namespaces=5)  # every namespace has pods on both nodes
    ns = namespaces(5)
    agents = []
    for node, netns in (("node-0", netns_a), ("node-1", netns_b)):
        a = PolicyAgent(dataplane=Dataplane(netns=netns), node_name=node, min_sync_period=0.0)
        for o in p:
            a.on_pod(o)
        for o in ns:
            a.on_namespace(o)
        a.set_initialized()
        agents.append(a)
    loops = [asyncio.create_task(a.runner.loop()) for a in agents]
    stages: dict[str, list[float]] = {"wait": [], "build": [], "apply": []}
    try:
        await asyncio.sleep(0.5)
        # netns_c mirrors node-0's table: the baselines apply node-0's transactions there with bare nft
        _bare_nft(netns_c, nft.render_full(agents[0].dataplane.applied))
        latencies, bare = [], {"same": [], "full": []}
        for i in range(runs):
            pol = policies(1)[0]
            pol["metadata"]["name"] = f"bench-{i}"
            pol["metadata"]["namespace"] = "ns0"
            pol["spec"]["podSelector"] = {}
            want = {a: nft.policy_chain(cluster_from_objects([], [], [pol]).policies[0], "Ingress") for a in agents}
            t = time.monotonic()
            for a in agents:
                a.on_policy(pol)
            deadline = t + 30
            while not all(a.dataplane.applied and any(c.name == want[a] for c in a.dataplane.applied.chains)
                          for a in agents):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"policy {i} not enforced within 30 s")
                await asyncio.sleep(0.001)
            latencies.append(time.monotonic() - t)
            # stages of the node that finished last: event → sync start, build (+ thread hop), nft
            last = max(agents, key=lambda a: a.last_sync_started + a.last_sync_seconds)
            stages["wait"].append(last.last_sync_started - t)
            stages["build"].append(last.last_stages["build"])
            stages["apply"].append(last.last_stages["apply"])
            bare["same"].append(_bare_nft(netns_c, agents[0].dataplane.last_text))
            bare["full"].append(_bare_nft(netns_c, nft.render_full(agents[0].dataplane.applied)))
        return latencies, bare, stages
    finally:
        for t in loops:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for a in agents:
            a.dataplane.close()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def bench_latency(runs: int) -> None:
    with Netns() as a, Netns() as b, Netns() as c:
        lat, bare, stages = asyncio.run(_latency(runs, a, b, c))
    how = "libnftables in-process" if nftsession.available() else "nft spawned per sync"
    print(f"policy created → enforced on both nodes (100 pods, 2 nodes, {runs} policies, {how}): "
          f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms "
          f"(target p99 ≤ 200 ms: {'met' if pct(lat, 0.99) <= 0.2 else 'NOT met'})")
    print("  stages of the slower node, p50/p99: " + ", ".join(
        f"{k} {statistics.median(v) * 1000:.0f}/{pct(v, 0.99) * 1000:.0f} ms" for k, v in stages.items()))
    for key, what in (("same", "the same transaction"), ("full", "the whole table (what a full rewrite sends)")):
        b = bare[key]
        print(f"  baseline, bare `ip netns exec … nft -f` of {what}: p50 {statistics.median(b) * 1000:.0f} ms, "
              f"p99 {pct(b, 0.99) * 1000:.0f} ms; ratio p99 {pct(lat, 0.99) / pct(b, 0.99):.2f}x")


def _sh(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True)


def _throughput(client_ns: str, server_ns: str, ip: str, seconds: float) -> float:
    """Bytes/s of one TCP stream client → server (threads that setns into each namespace)."""
    import socket
    import threading

    from kubelab.lab.reach import _enter
    ready, total = threading.Event(), {}

    def serve() -> None:
        _enter(f"/run/netns/{server_ns}")
        with socket.create_server((ip, 5201)) as srv:
            ready.set()
            conn, _ = srv.accept()
            n = 0
            with conn:
                while chunk := conn.recv(1 << 20):
                    n += len(chunk)
            total["n"] = n

    def send() -> None:
        _enter(f"/run/netns/{client_ns}")
        buf = b"x" * (1 << 20)
        with socket.create_connection((ip, 5201), timeout=5) as c:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                c.sendall(buf)
        total["t"] = time.perf_counter() - t0

    st = threading.Thread(target=serve)
    st.start()
    ready.wait(5)
    ct = threading.Thread(target=send)
    ct.start()
    ct.join()
    st.join()
    return total["n"] / total["t"]


def bench_throughput(seconds: float) -> None:
    """client pod ─ node (forward hook, the table) ─ server pod, with and without an allowing policy."""
    tag = uuid.uuid4().hex[:4]
    node, a, b = f"kl-npb-n-{tag}", f"kl-npb-a-{tag}", f"kl-npb-b-{tag}"
    for ns in (node, a, b):
        _sh("ip", "netns", "add", ns)
    try:
        for pod, net in ((a, "1"), (b, "2")):
            _sh("ip", "link", "add", f"v{net}{tag}", "netns", node, "type", "veth", "peer", "eth0", "netns", pod)
            _sh("ip", "-n", node, "addr", "add", f"10.250.{net}.1/24", "dev", f"v{net}{tag}")
            _sh("ip", "-n", node, "link", "set", f"v{net}{tag}", "up")
            _sh("ip", "-n", pod, "addr", "add", f"10.250.{net}.2/24", "dev", "eth0")
            _sh("ip", "-n", pod, "link", "set", "eth0", "up")
            _sh("ip", "-n", pod, "link", "set", "lo", "up")
            _sh("ip", "-n", pod, "route", "add", "default", "via", f"10.250.{net}.1")
        _sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        objs = [{"metadata": {"namespace": "x", "name": n, "labels": {"pod": n}}, "spec": {"nodeName": "n"},
                 "status": {"podIP": ip, "phase": "Running"}} for n, ip in (("a", "10.250.1.2"), ("b", "10.250.2.2"))]
        pol = {"metadata": {"namespace": "x", "name": "allow-a"}, "spec": {
            "podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "a"}}}], "ports": [{"port": 5201}]}]}}
        # baseline: the same node with the agent's table but no policy (conntrack on, as kube-proxy has it
        # anyway); runs alternate so drift from the shared CPU hits both sides alike
        dp, runs = Dataplane(netns=node), {"base": [], "policy": []}
        for _ in range(3):
            for kind, pols in (("base", []), ("policy", [pol])):
                dp.sync(nft.build(cluster_from_objects(objs, [], pols), "n"))
                runs[kind].append(_throughput(a, b, "10.250.2.2", seconds))
        base, with_policy = statistics.median(runs["base"]), statistics.median(runs["policy"])
        print(f"throughput between two allowed pods (median of 3): {with_policy / 1e6:.0f} MB/s with the policy, "
              f"baseline {base / 1e6:.0f} MB/s with no policy; ratio {with_policy / base:.2f} (target ≥ 0.95: "
              f"{'met' if with_policy / base >= 0.95 else 'NOT met'})")
    finally:
        for ns in (node, a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--policies", type=int, default=200)
    ap.add_argument("--latency-runs", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=2.0, help="per throughput run")
    ap.add_argument("--only", choices=("scale", "latency", "throughput"), help="run one part")
    args = ap.parse_args(argv)
    if args.only in (None, "scale"):
        bench_scale(args.pods, args.policies)
    if args.only in (None, "latency"):
        bench_latency(args.latency_runs)
    if args.only in (None, "throughput"):
        bench_throughput(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
