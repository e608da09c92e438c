"""`kubelab netpol reach`: the reachability matrix between pods, predicted and measured.

Predicted: kubelab.netpol.model.verdict over the policies, pods and namespaces the API server
holds (the same function the agent's rules are built to agree with). Measured: a real connect
from inside each source pod's network namespace to each destination pod IP (TCP connect, or a
UDP datagram that must be answered), all probes in parallel with a short timeout. Printed side
by side in the style of the upstream e2e truth tables (`.` reachable, `X` not); a measured cell
that disagrees with the prediction is marked `!` and listed. This is how an instructor checks
a student's policy: if the two tables agree, the cluster does what the policies say.

Probing enters namespaces with setns(2) on a worker thread (the network namespace is
per-thread), so a 9×9 matrix costs one timeout, not 81 process starts.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kubelab.netpol.model import Cluster, PodInfo, cluster_from_objects, verdict

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Target:
    """A column of the matrix: a pod (probed at its IP) or a Service ClusterIP."""

    label: str        # "x/a"
    ip: str           # where the probe connects
    pod_ip: str       # the pod the packet ends at (after DNAT) for the prediction


@dataclass(frozen=True)
class Matrix:
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    cells: dict  # (src, dst) -> bool


def predict(cluster: Cluster, sources: list[PodInfo], targets: list[Target], port: int, protocol: str) -> Matrix:
    cells = {}
    for s in sources:
        for t in targets:
            cells[(s.key, t.label)] = verdict(cluster, s.ip, t.pod_ip, port, protocol).allowed
    return Matrix(tuple(s.key for s in sources), tuple(t.label for t in targets), cells)


def _enter(netns_path: str) -> None:
    fd = os.open(netns_path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def probe_once(ip: str, port: int, protocol: str, timeout: float) -> bool:
    """One connection attempt from the calling thread's network namespace."""
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    if protocol == "UDP":
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            try:
                s.connect((ip, port))
                s.send(b"hostname\n")
                s.recv(1024)
                return True
            except OSError:
                return False
    proto = socket.IPPROTO_SCTP if protocol == "SCTP" else 0
    try:
        with socket.socket(family, socket.SOCK_STREAM, proto) as s:
            s.settimeout(timeout)
            s.connect((ip, port))
            return True
    except OSError:
        return False


def probe_from(netns_path: str, ip: str, port: int, protocol: str, timeout: float) -> bool:
    """probe_once inside `netns_path` (a fresh thread: setns changes only that thread)."""
    out: dict = {}

    def run() -> None:
        try:
            _enter(netns_path)
            out["ok"] = probe_once(ip, port, protocol, timeout)
        except OSError as e:
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout + 10)
    if "error" in out:
        raise out["error"]
    return bool(out.get("ok"))


def measure(netns_of: dict[str, str], sources: list[PodInfo], targets: list[Target], port: int, protocol: str,
            *, timeout: float = 1.0, parallel: int = 64) -> Matrix:
    """Probe every (source, target) pair; `netns_of` maps a source pod key to its netns path."""
    pairs = [(s, t) for s in sources for t in targets]
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(pairs)))) as pool:
        results = list(pool.map(lambda st: probe_from(netns_of[st[0].key], st[1].ip, port, protocol, timeout), pairs))
    cells = {(s.key, t.label): ok for (s, t), ok in zip(pairs, results)}
    return Matrix(tuple(s.key for s in sources), tuple(t.label for t in targets), cells)


def disagreements(predicted: Matrix, measured: Matrix) -> list[tuple[str, str]]:
    return [k for k, v in predicted.cells.items() if measured.cells.get(k) != v]


def render(predicted: Matrix, measured: Matrix, *, title: str) -> str:
    """Two truth tables side by side; `!` marks a measured cell that contradicts the prediction."""
    width = max([len(s) for s in predicted.sources] + [len(t) for t in predicted.targets] + [3])

    def table(m: Matrix, mark_diff: bool) -> list[str]:
        rows = ["-".ljust(width) + " " + " ".join(t.ljust(width) for t in m.targets)]
        for s in m.sources:
            cells = []
            for t in m.targets:
                v = m.cells.get((s, t))
                c = "." if v else "X"
                if mark_diff and predicted.cells.get((s, t)) != v:
                    c += "!"
                cells.append(c.ljust(width))
            rows.append(s.ljust(width) + " " + " ".join(cells))
        return rows

    left, right = table(predicted, False), table(measured, True)
    col = max(len(r) for r in left) + 4
    out = [title, "predicted (from the policies)".ljust(col) + "measured (probes from each pod)"]
    out += [a.ljust(col) + b for a, b in zip(left, right)]
    diff = disagreements(predicted, measured)
    if diff:
        out.append(f"{len(diff)} disagreement(s), marked !:")
        out += [f"  {s} -> {t}: predicted {'allowed' if predicted.cells[(s, t)] else 'blocked'}, "
                f"measured {'allowed' if measured.cells.get((s, t)) else 'blocked'}" for s, t in diff]
    else:
        out.append("predicted and measured agree")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the lab edge


async def snapshot(api, namespaces: list[str] | None) -> tuple[Cluster, list[PodInfo]]:
    """The cluster as policy sees it, and the pods of `namespaces` (all but kube-system if None)."""
    pods = (await api.list("pods")).get("items", [])
    nss = (await api.list("namespaces")).get("items", [])
    pols = (await api.list("networkpolicies")).get("items", [])
    cluster = cluster_from_objects(pods, nss, pols)
    chosen = [p for p in cluster.pods if (p.namespace in namespaces if namespaces else p.namespace != "kube-system")]
    return cluster, chosen


def netns_paths(plan, pods: list[PodInfo]) -> dict[str, str]:
    from .trace import pod_netns_with_ip
    out = {}
    for p in pods:
        node = plan.node(p.node)
        ns = pod_netns_with_ip(node.netns, p.ip) if node else None
        if ns:
            out[p.key] = f"/run/netns/{ns}"
    return out


async def reach(*, name: str, root_dir: str, namespaces: list[str] | None, port: int, protocol: str,
                timeout: float) -> int:
    import asyncio

    from .components import api_client
    from .lab import LabError, load_plan
    if os.geteuid() != 0:
        raise LabError("kubelab netpol reach probes from inside the pods' namespaces: run it with sudo")
    plan, _ = load_plan(name, root_dir)
    api = api_client(plan)
    try:
        cluster, pods = await snapshot(api, namespaces)
    finally:
        await api.aclose()
    if not pods:
        raise LabError("no running pods with an IP in " + (", ".join(namespaces) if namespaces else "the cluster"))
    paths = await asyncio.to_thread(netns_paths, plan, pods)
    sources = [p for p in pods if p.key in paths]
    targets = [Target(p.key, p.ip, p.ip) for p in pods]
    predicted = predict(cluster, sources, targets, port, protocol)
    measured = await asyncio.to_thread(measure, paths, sources, targets, port, protocol, timeout=timeout)
    print(render(predicted, measured, title=f"reachability on port {port}/{protocol} "
                                            f"({len(sources)} pods; . reachable, X blocked)"), end="")
    return 1 if disagreements(predicted, measured) else 0
