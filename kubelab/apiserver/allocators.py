"""ClusterIPs and NodePorts: chosen here, reserved in etcd in the same transaction as the
Service write (see `Storage._cas`), so concurrent creates can never share one.

Like upstream, dynamic allocation draws from above a small "static band" at the bottom of
each range, which is left for addresses people pick by hand (10.96.0.10 for kube-dns).
"""

from __future__ import annotations

import ipaddress
import random

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORT_RANGE = (30000, 32767)

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"


class RangeError(ValueError):
    pass


def ip_key(ip: str) -> str:
    return IP_PREFIX + ip


def port_key(port: int, protocol: str = "TCP") -> str:
    return f"{PORT_PREFIX}{protocol.lower()}/{port}"


def static_band(size: int) -> int:
    """Upstream's formula: min(max(16, size/16), 256) addresses kept for static choice."""
    return min(max(16, size // 16), 256)


def check_cluster_ip(ip: str, cidr: ipaddress.IPv4Network = SERVICE_CIDR) -> None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise RangeError("must be a valid IP address, (or be set to \"None\" for a headless service)") from None
    if addr not in cidr or addr in (cidr.network_address, cidr.broadcast_address):
        raise RangeError(f"provided IP is not in the valid range. The range of valid IPs is {cidr}")


def random_cluster_ip(taken: set[str], cidr: ipaddress.IPv4Network = SERVICE_CIDR,
                      rng: random.Random = random._inst) -> str:  # type: ignore[attr-defined]
    """A free address above the static band (falling back into it when the rest is full)."""
    base = int(cidr.network_address)
    size = cidr.num_addresses
    band = static_band(size)
    for lo, hi in ((band, size - 2), (1, min(band - 1, size - 2))):
        if hi < lo:
            continue
        for _ in range(64):
            ip = str(ipaddress.ip_address(base + rng.randint(lo, hi)))
            if ip not in taken:
                return ip
        for off in range(lo, hi + 1):
            ip = str(ipaddress.ip_address(base + off))
            if ip not in taken:
                return ip
    raise RangeError(f"range is full: no IP addresses left in {cidr}")


def check_node_port(port: int, rng_: tuple[int, int] = NODE_PORT_RANGE) -> None:
    if not rng_[0] <= port <= rng_[1]:
        raise RangeError(f"provided port is not in the valid range. The range of valid ports is {rng_[0]}-{rng_[1]}")


def random_node_port(taken: set[int], rng_: tuple[int, int] = NODE_PORT_RANGE,
                     rng: random.Random = random._inst) -> int:  # type: ignore[attr-defined]
    lo, hi = rng_
    for _ in range(64):
        p = rng.randint(lo, hi)
        if p not in taken:
            return p
    for p in range(lo, hi + 1):
        if p not in taken:
            return p
    raise RangeError(f"range is full: no node ports left in {lo}-{hi}")


def service_reservations(svc: dict) -> set[str]:
    """The reservation keys a Service holds: its ClusterIP and every NodePort."""
    spec = svc.get("spec") or {}
    keys = set()
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        keys.add(ip_key(ip))
    for p in spec.get("ports") or []:
        if p.get("nodePort"):
            keys.add(port_key(int(p["nodePort"]), p.get("protocol", "TCP")))
    return keys
