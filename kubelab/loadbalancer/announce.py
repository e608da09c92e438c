"""Which node announces (answers ARP for) each LoadBalancer address: pure, the same on every speaker.

Every speaker sees the same Nodes, Services and EndpointSlices through its informers, so each
can compute the owner of every address by itself and act only on its own: no leader election,
no talking between speakers (MetalLB layer 2 does the same with its memberlist view). The
choice is a stable hash ranking (rendezvous hashing) of `node name + "#" + address` over the
candidate nodes, so addresses spread over nodes and, when a node leaves, only its addresses
move.

Candidates, as MetalLB's layer-2 mode:
- Ready nodes (NodeReady condition True) that are not marked
  `node.kubernetes.io/exclude-from-external-load-balancers` and run a speaker;
- for `externalTrafficPolicy: Local`, only those of them with a ready endpoint of the Service
  (else the announcing node would drop the traffic: no local endpoint).

Eventual consistency: two speakers may briefly disagree while their caches catch up (a node
just went NotReady); both then answer ARP for a moment and the host keeps the last gratuitous
ARP it saw. That window is the same as MetalLB's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Container, Iterable, Mapping

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Announcement:
    """One address of one Service and the node that answers for it ("" = nobody can)."""

    service: str  # namespace/name
    ip: str
    node: str
    local_only: bool = False  # externalTrafficPolicy: Local


def node_ready(node: Mapping) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def candidate_nodes(nodes: Iterable[Mapping], speakers: Iterable[str] | None = None) -> tuple[str, ...]:
    """Ready, not excluded, running a speaker (None: every node does)."""
    allowed = None if speakers is None else set(speakers)
    out = []
    for n in nodes:
        meta = n.get("metadata") or {}
        name = meta.get("name") or ""
        if EXCLUDE_LABEL in (meta.get("labels") or {}) or not node_ready(n):
            continue
        if allowed is not None and name not in allowed:
            continue
        out.append(name)
    return tuple(sorted(out))


def nodes_with_ready_endpoints(slices: Iterable[Mapping]) -> frozenset[str]:
    """Nodes that hold a ready endpoint in these EndpointSlices."""
    out = set()
    for es in slices:
        for ep in es.get("endpoints") or ():
            cond = ep.get("conditions") or {}
            if (cond.get("ready") is None or cond.get("ready")) and ep.get("nodeName"):
                out.add(ep["nodeName"])
    return frozenset(out)


def rank(ip: str, node: str) -> bytes:
    return hashlib.sha256(f"{node}#{ip}".encode()).digest()


def owner(ip: str, candidates: Iterable[str]) -> str:
    """The node that announces `ip` among `candidates` ("" if none)."""
    best = sorted(candidates, key=lambda n: (rank(ip, n), n))
    return best[0] if best else ""


def service_ips(svc: Mapping) -> tuple[str, ...]:
    if ((svc.get("spec") or {}).get("type")) != "LoadBalancer":
        return ()
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    return tuple(i["ip"] for i in ingress if isinstance(i, dict) and i.get("ip"))


def announcements(services: Iterable[Mapping], nodes: Iterable[Mapping],
                  slices_by_service: Mapping[str, Iterable[Mapping]],
                  speakers: Iterable[str] | None = None, pool: Container[str] | None = None
                  ) -> tuple[Announcement, ...]:
    """Every LoadBalancer address with its announcing node, sorted by address.

    With `pool`, addresses outside it are never announced: whoever may write a Service's
    status must not be able to make a node answer ARP for, say, the API server's address."""
    cands = candidate_nodes(nodes, speakers)
    out = []
    for svc in services:
        meta = svc.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"
        local = (svc.get("spec") or {}).get("externalTrafficPolicy") == "Local"
        eligible = cands
        if local:
            with_eps = nodes_with_ready_endpoints(slices_by_service.get(key, ()))
            eligible = tuple(n for n in cands if n in with_eps)
        for ip in service_ips(svc):
            if pool is not None and ip not in pool:
                continue
            out.append(Announcement(key, ip, owner(ip, eligible), local))
    return tuple(sorted(out, key=lambda a: (a.ip, a.service)))


def owned_by(anns: Iterable[Announcement], node: str) -> dict[str, Announcement]:
    """The addresses this node must answer for."""
    return {a.ip: a for a in anns if a.node == node}
