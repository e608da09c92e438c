"""Scheduler scores: among the nodes that fit, which is best? Pure, 0..100 each.

- least requested: prefer the emptiest node (cpu and memory equally weighted);
- spreading: prefer nodes with fewer pods of the same owner (ReplicaSet), so replicas land
  on different nodes.
"""

from __future__ import annotations

from .filters import NodeInfo, Resources, pod_requests

# Pods without requests still count for scoring (upstream's non-zero defaults).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def _nonzero(r: Resources) -> Resources:
    return Resources(r.milli_cpu or DEFAULT_MILLI_CPU, r.memory or DEFAULT_MEMORY, r.pods)


def least_requested(pod: dict, ni: NodeInfo, nonzero_requested: Resources) -> float:
    req = _nonzero(pod_requests(pod))
    alloc = ni.allocatable
    score = 0.0
    for used, cap in ((nonzero_requested.milli_cpu + req.milli_cpu, alloc.milli_cpu),
                      (nonzero_requested.memory + req.memory, alloc.memory)):
        if cap <= 0 or used > cap:
            continue
        score += (cap - used) * 100.0 / cap
    return score / 2


def owner_uid(pod: dict) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def spread_counts(pod: dict, infos: list[NodeInfo]) -> dict[str, int]:
    uid = owner_uid(pod)
    if uid is None:
        return {ni.name: 0 for ni in infos}
    return {ni.name: ni.owners.get(uid, 0) for ni in infos}


def spread_score(count: int, max_count: int) -> float:
    if max_count <= 0:
        return 100.0
    return 100.0 * (max_count - count) / max_count


def score_nodes(pod: dict, infos: list[NodeInfo], nonzero: dict[str, Resources], *,
                spread_weight: float = 2.0) -> dict[str, float]:
    """Total score per node name; spreading weighs more than balance, as upstream's
    default profile weighs PodTopologySpread above NodeResourcesFit."""
    counts = spread_counts(pod, infos)
    top = max(counts.values(), default=0)
    return {ni.name: least_requested(pod, ni, nonzero.get(ni.name, Resources()))
            + spread_weight * spread_score(counts[ni.name], top) for ni in infos}
