"""Routes to other nodes' pods (host-gw, as flannel's backend of that name):
`ip route <other node's podCIDR> via <other node's InternalIP>` for every other Node,
added and removed as Nodes come and go. Our routes carry their own protocol number, so
the sync removes exactly the ones it made.
"""

from __future__ import annotations

import ipaddress
import logging

from pyroute2 import IPRoute

log = logging.getLogger(__name__)

RTPROT_KUBELAB = 176  # an unassigned routing protocol id marking our routes


def internal_ip(node: dict) -> str | None:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address")
    return None


def desired_routes(nodes: list[dict], *, self_name: str) -> dict[str, str]:
    """Pure: {pod CIDR: gateway} for every other node with a podCIDR and an IPv4 InternalIP."""
    out: dict[str, str] = {}
    for n in nodes:
        if n["metadata"]["name"] == self_name:
            continue
        ip = internal_ip(n)
        cidrs = (n.get("spec") or {}).get("podCIDRs") or [(n.get("spec") or {}).get("podCIDR")]
        for cidr in cidrs:
            if not cidr or not ip:
                continue
            try:
                net = ipaddress.ip_network(cidr, strict=False)
                gw = ipaddress.ip_address(ip)
            except ValueError:
                continue
            if net.version == gw.version == 4:
                out[str(net)] = str(gw)
    return out


def current_routes(ipr: IPRoute) -> dict[str, str]:
    out = {}
    for r in ipr.get_routes(family=2, proto=RTPROT_KUBELAB):
        dst = r.get_attr("RTA_DST")
        gw = r.get_attr("RTA_GATEWAY")
        if dst and gw:
            out[f"{dst}/{r['dst_len']}"] = gw
    return out


def sync(want: dict[str, str]) -> tuple[list[str], list[str]]:
    """Make the node's kernel routes (in the agent's network namespace) match `want`.
    Returns (added or changed, removed)."""
    added, removed = [], []
    with IPRoute() as ipr:
        have = current_routes(ipr)
        for dst, gw in want.items():
            if have.get(dst) == gw:
                continue
            try:
                ipr.route("replace", dst=dst, gateway=gw, proto=RTPROT_KUBELAB)
                added.append(dst)
            except Exception as e:  # e.g. gateway not on a connected network yet
                log.warning("route %s via %s: %s", dst, gw, e)
        for dst, gw in have.items():
            if dst not in want:
                try:
                    ipr.route("del", dst=dst, gateway=gw, proto=RTPROT_KUBELAB)
                    removed.append(dst)
                except Exception as e:
                    log.warning("route del %s: %s", dst, e)
    return added, removed
