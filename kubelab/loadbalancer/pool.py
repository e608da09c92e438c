"""The address allocator: pure decisions over frozen state (the controller does the writes).

Invariants:
- An address is assigned to at most one Service at a time. The controller feeds every
  decision back into its `Assignments` before deciding the next Service, and it is the only
  writer of `status.loadBalancer` for our class: single writer, so no compare-and-swap race
  between allocators (MetalLB's controller works the same way).
- A Service keeps the address it has (status is the record of truth across restarts) as long
  as it is still ours, still in the pool and still what `spec.loadBalancerIP` asks for.
- An address leaves the table when its Service is deleted, changes type, or moves to another
  `loadBalancerClass`.
- `spec.loadBalancerIP` outside the pool or already taken → pending with a reason (an Event
  says why), never silently another address: MetalLB does the same.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping

# our class; a Service with no class is ours too (`--lb-class` changes the name)
DEFAULT_CLASS = "kubelab.io/l2"

# decision actions
KEEP, ASSIGN, RELEASE, PENDING, IGNORE = "keep", "assign", "release", "pending", "ignore"
MAX_POOL = 65536  # bounds the scan for a free address that each decision may do


class PoolError(ValueError):
    """A `--pool` value that cannot be parsed (shown as one line)."""


@dataclass(frozen=True)
class Range:
    """An inclusive range of IPv4 addresses (`a-b` or a CIDR)."""

    first: int
    last: int

    def __contains__(self, ip: int) -> bool:
        return self.first <= ip <= self.last

    def __str__(self) -> str:
        return f"{ipaddress.IPv4Address(self.first)}-{ipaddress.IPv4Address(self.last)}"


@dataclass(frozen=True)
class Pool:
    """The addresses the controller may hand out, in order (lowest first, as MetalLB)."""

    ranges: tuple[Range, ...]

    def __contains__(self, ip: str) -> bool:
        try:
            n = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        return any(n in r for r in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)

    @property
    def size(self) -> int:
        return sum(r.last - r.first + 1 for r in self.ranges)

    def addresses(self) -> Iterable[str]:
        for r in self.ranges:
            for n in range(r.first, r.last + 1):
                yield str(ipaddress.IPv4Address(n))


def parse_pool(text: str) -> Pool:
    """`192.168.56.200-192.168.56.250[,10.0.0.0/30,...]` → Pool; PoolError says what is wrong."""
    ranges: list[Range] = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (ipaddress.IPv4Address(x.strip()) for x in part.split("-", 1))
                first, last = int(a), int(b)
            else:
                net = ipaddress.IPv4Network(part, strict=False)
                first, last = int(net.network_address), int(net.broadcast_address)
        except ValueError as e:
            raise PoolError(f"invalid pool range {part!r}: {e} (want FIRST-LAST or a CIDR, IPv4)") from None
        if first > last:
            raise PoolError(f"invalid pool range {part!r}: the first address is after the last")
        for r in ranges:
            if first <= r.last and r.first <= last:
                raise PoolError(f"pool range {part!r} overlaps {r}")
        ranges.append(Range(first, last))
    if not ranges:
        raise PoolError("the pool is empty: give --pool FIRST-LAST (e.g. 192.168.56.200-192.168.56.250)")
    pool = Pool(tuple(sorted(ranges, key=lambda r: r.first)))
    if pool.size > MAX_POOL:
        raise PoolError(f"the pool has {pool.size} addresses; at most {MAX_POOL} (a /16): a decision scans it")
    return pool


@dataclass(frozen=True)
class ServiceLB:
    """What the allocator needs to know of one Service."""

    key: str                     # namespace/name
    type: str = "ClusterIP"
    lb_class: str | None = None
    requested_ip: str = ""       # spec.loadBalancerIP
    current_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    deleted: bool = False

    def wants_lb(self, our_class: str) -> bool:
        return not self.deleted and self.type == "LoadBalancer" and self.lb_class in (None, "", our_class)


def service_lb(svc: Mapping | None, key: str = "") -> ServiceLB:
    """The allocator's view of a Service object (None: deleted)."""
    if svc is None:
        return ServiceLB(key=key, deleted=True)
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    return ServiceLB(
        key=key or f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}",
        type=spec.get("type") or "ClusterIP",
        lb_class=spec.get("loadBalancerClass"),
        requested_ip=spec.get("loadBalancerIP") or "",
        current_ips=tuple(i["ip"] for i in ingress if isinstance(i, dict) and i.get("ip")),
        deleted=bool(meta.get("deletionTimestamp")),
    )


@dataclass(frozen=True)
class Assignments:
    """Address → Service key: the controller's table (rebuilt from status at start)."""

    by_ip: Mapping[str, str] = field(default_factory=dict)

    def of(self, key: str) -> str | None:
        for ip, k in self.by_ip.items():
            if k == key:
                return ip
        return None

    def with_ip(self, ip: str, key: str) -> "Assignments":
        return Assignments({**{i: k for i, k in self.by_ip.items() if k != key}, ip: key})

    def without(self, key: str) -> "Assignments":
        return Assignments({i: k for i, k in self.by_ip.items() if k != key})


@dataclass(frozen=True)
class Decision:
    """What to do for one Service. `ip` is the address it should show ("" = none)."""

    key: str
    action: str
    ip: str = ""
    reason: str = ""    # Event reason (upstream/MetalLB style), "" for no Event
    message: str = ""
    write_status: bool = True  # False: another implementation's Service, its status is not ours

    @property
    def status_ingress(self) -> list[dict]:
        return [{"ip": self.ip, "ipMode": "VIP"}] if self.ip else []


def decide(pool: Pool, table: Assignments, svc: ServiceLB, *, our_class: str = DEFAULT_CLASS) -> Decision:
    """One Service against the pool and the table; pure. Apply the result with `apply`."""
    held = table.of(svc.key)
    if not svc.wants_lb(our_class):
        if svc.deleted or (svc.type == "LoadBalancer" and svc.lb_class not in (None, "", our_class)):
            # deleted, or another implementation's: free ours, leave its status alone
            return Decision(svc.key, RELEASE if held else IGNORE, "",
                            "" if svc.deleted or not held else "LoadBalancerIPReleased",
                            f"released {held}: class {svc.lb_class!r} is not ours" if held else "",
                            write_status=False)
        # type changed away from LoadBalancer: free the address and clear the status
        return Decision(svc.key, RELEASE if (held or svc.current_ips) else IGNORE, "",
                        "LoadBalancerIPReleased" if held else "",
                        f"released {held}: the Service is no longer of type LoadBalancer" if held else "")
    want = svc.requested_ip
    if want:
        if want not in pool:
            return Decision(svc.key, PENDING, "", "AllocationFailed",
                            f"Failed to allocate IP for \"{svc.key}\": spec.loadBalancerIP {want} is not in "
                            f"the pool {pool}")
        owner = table.by_ip.get(want)
        if owner not in (None, svc.key):
            return Decision(svc.key, PENDING, "", "AllocationFailed",
                            f"Failed to allocate IP for \"{svc.key}\": {want} is already in use by {owner}")
        if held == want:
            return Decision(svc.key, KEEP, want)
        return Decision(svc.key, ASSIGN, want, "IPAllocated", f"Assigned IP [\"{want}\"]")
    if held and held in pool:
        return Decision(svc.key, KEEP, held)
    # adopt the address status already shows (controller restart), if it is still free and ours
    for ip in svc.current_ips:
        if ip in pool and table.by_ip.get(ip) in (None, svc.key):
            return Decision(svc.key, ASSIGN, ip, "", "")
    for ip in pool.addresses():
        if ip not in table.by_ip:
            return Decision(svc.key, ASSIGN, ip, "IPAllocated", f"Assigned IP [\"{ip}\"]")
    return Decision(svc.key, PENDING, "", "AllocationFailed",
                    f"Failed to allocate IP for \"{svc.key}\": no available IPs in the pool {pool} "
                    f"({pool.size} addresses, all in use)")


def apply(table: Assignments, d: Decision) -> Assignments:
    """The table after a decision (what makes the next decision see this one)."""
    if d.action in (ASSIGN, KEEP):
        return table.with_ip(d.ip, d.key)
    if d.action in (RELEASE, PENDING):
        return table.without(d.key)
    return table


def status_matches(svc: ServiceLB, d: Decision) -> bool:
    """True when the Service's status already shows what the decision says (no write needed)."""
    if d.action == IGNORE or not d.write_status:
        return True
    return svc.current_ips == ((d.ip,) if d.ip else ())


def adopt(pool: Pool, services: Iterable[ServiceLB], *, our_class: str = DEFAULT_CLASS) -> Assignments:
    """The table rebuilt from the addresses Services already show (a restarted controller).

    Oldest first (the caller passes creation order): if two Services claim one address, the
    first keeps it and the other is re-decided like a new Service.
    """
    by_ip: dict[str, str] = {}
    for svc in services:
        if not svc.wants_lb(our_class):
            continue
        for ip in svc.current_ips:
            if ip in pool and ip not in by_ip and svc.requested_ip in ("", ip):
                by_ip[ip] = svc.key
                break
    return Assignments(by_ip)
