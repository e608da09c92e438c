"""Kubernetes objects → an immutable DNS zone snapshot, and answers from it (pure).

Implements the Kubernetes DNS-based service discovery schema 1.1.0
(kubernetes/dns docs/specification.md) the way CoreDNS's `kubernetes` plugin does:
the whole zone is computed once per change, so answering a query is a dict lookup.

Nothing here does I/O or reads the clock: objects in, records out. The server and the
informer side (server.py, watch.py) feed it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.reversename

SCHEMA_VERSION = "1.1.0"
DEFAULT_ZONE = "cluster.local"
TTL = 5  # CoreDNS's default record TTL
VERSION_TTL = 28800  # CoreDNS serves dns-version with this TTL
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400  # CoreDNS's values
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
MAX_CNAME_CHAIN = 8

A, AAAA, CNAME, PTR, SRV, TXT, SOA, NS, ANY = (
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.PTR,
    dns.rdatatype.SRV, dns.rdatatype.TXT, dns.rdatatype.SOA, dns.rdatatype.NS,
    dns.rdatatype.ANY,
)
IN = dns.rdataclass.IN
NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED
REVERSE_ZONES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))

Node = Mapping[int, dns.rrset.RRset]  # rdtype → rrset at one name


@dataclass(frozen=True)
class Snapshot:
    """Everything the server needs to answer for the cluster zone, fixed at build time."""

    zone: dns.name.Name
    records: Mapping[dns.name.Name, Node]  # owner name → rdtype → rrset
    names: frozenset[dns.name.Name]  # every existing name, empty non-terminals included
    soa: dns.rrset.RRset
    reverse_soas: Mapping[dns.name.Name, dns.rrset.RRset] = field(default_factory=dict)
    pod_records: bool = False
    serial: int = 0

    def rrset(self, name: dns.name.Name | str, rdtype: int) -> dns.rrset.RRset | None:
        if isinstance(name, str):
            name = dns.name.from_text(name)
        return self.records.get(name, {}).get(rdtype)


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text.lower().rstrip(".") + ".")


def endpoint_id(ip: str) -> str:
    """The hostname CoreDNS gives an endpoint without one: 10.244.1.5 → 10-244-1-5."""
    return ip.replace(".", "-").replace(":", "-")


def _ip(text: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(text))
    except ValueError:
        return None


class _Builder:
    """Accumulates records per name, deduplicating rdata."""

    def __init__(self) -> None:
        self.data: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}

    def add(self, owner: dns.name.Name, rdtype: int, text: str, ttl: int = TTL) -> None:
        node = self.data.setdefault(owner, {})
        rrset = node.get(rdtype)
        if rrset is None:
            rrset = node[rdtype] = dns.rrset.RRset(owner, IN, rdtype)
        rrset.add(dns.rdata.from_text(IN, rdtype, text), ttl)

    def add_address(self, owner: dns.name.Name, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        self.add(owner, A if ip.version == 4 else AAAA, str(ip))

    def add_ptr(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, target: dns.name.Name) -> None:
        self.add(dns.reversename.from_address(str(ip)), PTR, target.to_text())


def _service_ips(spec: Mapping) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    raw = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in (_ip(x) for x in raw) if ip is not None]


def _is_headless(spec: Mapping) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName" and not _service_ips(spec)


def _endpoint_ready(endpoint: Mapping, publish_not_ready: bool) -> bool:
    """Ready per the EndpointSlice API: a missing `ready` condition means ready."""
    if publish_not_ready:
        return True
    return (endpoint.get("conditions") or {}).get("ready") is not False


def _srv_weight(count: int) -> int:
    # CoreDNS splits a weight of 100 across records of the same priority.
    return max(1, 100 // max(1, count))


def build_snapshot(
    *,
    services: Iterable[Mapping],
    endpointslices: Iterable[Mapping] = (),
    namespaces: Iterable[Mapping | str] = (),
    zone: str = DEFAULT_ZONE,
    serial: int = 1,
    pod_records: bool = False,
) -> Snapshot:
    """Compute every record of the cluster zone (schema 1.1.0) from API objects.

    Objects that cannot be turned into records (bad names, bad IPs) are skipped: one bad
    Service must not take DNS down for the cluster.
    """
    origin = _name(zone)
    b = _Builder()
    b.add(_name(f"dns-version.{zone}"), TXT, f'"{SCHEMA_VERSION}"', VERSION_TTL)
    ns_host = _name(f"ns.dns.{zone}")
    b.add(origin, NS, ns_host.to_text())
    extra_names: set[dns.name.Name] = {_name(f"svc.{zone}")}
    if pod_records:
        extra_names.add(_name(f"pod.{zone}"))
    for ns in namespaces:
        ns_name = ns if isinstance(ns, str) else (ns.get("metadata") or {}).get("name")
        if not ns_name:
            continue
        try:
            extra_names.add(_name(f"{ns_name}.svc.{zone}"))
            if pod_records:
                extra_names.add(_name(f"{ns_name}.pod.{zone}"))
        except dns.exception.DNSException:
            continue

    slices_by_service: dict[tuple[str, str], list[Mapping]] = {}
    for sl in endpointslices:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc:
            slices_by_service.setdefault((meta.get("namespace") or "default", svc), []).append(sl)

    for svc in services:
        try:
            _add_service(b, svc, slices_by_service, zone)
        except (dns.exception.DNSException, ValueError, TypeError, KeyError, AttributeError):
            continue
        meta = svc.get("metadata") or {}
        if meta.get("name") == "kube-dns" and meta.get("namespace") == "kube-system":
            for ip in _service_ips(svc.get("spec") or {}):
                b.add_address(ns_host, ip)

    soa = dns.rrset.from_text(
        origin, TTL, IN, SOA,
        f"{ns_host} hostmaster.{origin} {serial} {SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} {TTL}",
    )
    b.data.setdefault(origin, {})[SOA] = soa

    names: set[dns.name.Name] = set()
    for owner in (*b.data, *extra_names):
        if not owner.is_subdomain(origin):
            names.add(owner)  # reverse names: exact only, we are not authoritative above them
            continue
        n = owner
        while n != origin and n not in names:
            names.add(n)
            n = n.parent()
        names.add(origin)
    reverse_soas = {
        rz: dns.rrset.from_text(
            rz, TTL, IN, SOA,
            f"ns.dns.{rz} hostmaster.{rz} {serial} {SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} {TTL}",
        )
        for rz in REVERSE_ZONES
    }
    records = MappingProxyType({k: MappingProxyType(v) for k, v in b.data.items()})
    return Snapshot(
        zone=origin, records=records, names=frozenset(names), soa=soa,
        reverse_soas=MappingProxyType(reverse_soas), pod_records=pod_records, serial=serial,
    )


def _add_service(b: _Builder, svc: Mapping, slices: Mapping, zone: str) -> None:
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    name, ns = meta["name"], meta.get("namespace") or "default"
    base = _name(f"{name}.{ns}.svc.{zone}")
    if spec.get("type") == "ExternalName":
        target = spec.get("externalName")
        if target:
            b.add(base, CNAME, _name(target).to_text())
        return
    named_ports = [p for p in spec.get("ports") or [] if p.get("name")]
    if not _is_headless(spec):
        ips = _service_ips(spec)
        for ip in ips:
            b.add_address(base, ip)
            b.add_ptr(ip, base)
        for p in named_ports:
            proto = str(p.get("protocol", "TCP")).lower()
            owner = _name(f"_{p['name']}._{proto}.{base}")
            b.add(owner, SRV, f"0 100 {int(p['port'])} {base}")
        return

    publish = bool(spec.get("publishNotReadyAddresses")) or (
        str((meta.get("annotations") or {}).get(TOLERATE_UNREADY, "")).lower() == "true")
    srv: list[tuple[dns.name.Name, int, dns.name.Name]] = []
    for sl in sorted(slices.get((ns, name), []), key=lambda s: s.get("metadata", {}).get("name", "")):
        if sl.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        slice_ports = [p for p in sl.get("ports") or [] if p.get("name") and p.get("port")]
        for ep in sl.get("endpoints") or []:
            if not _endpoint_ready(ep, publish):
                continue
            for raw in ep.get("addresses") or []:
                ip = _ip(raw)
                if ip is None:
                    continue
                host = _name(f"{ep.get('hostname') or endpoint_id(str(ip))}.{base}")
                b.add_address(base, ip)
                b.add_address(host, ip)
                b.add_ptr(ip, host)
                for p in slice_ports:
                    proto = str(p.get("protocol", "TCP")).lower()
                    srv.append((_name(f"_{p['name']}._{proto}.{base}"), int(p["port"]), host))
    per_owner: dict[dns.name.Name, set[tuple[int, dns.name.Name]]] = {}
    for owner, port, host in srv:
        per_owner.setdefault(owner, set()).add((port, host))
    for owner, targets in per_owner.items():
        for port, host in sorted(targets, key=lambda t: (t[0], t[1].to_text())):
            b.add(owner, SRV, f"0 {_srv_weight(len(targets))} {port} {host}")


def in_zone(snap: Snapshot, qname: dns.name.Name) -> bool:
    """Whether we answer authoritatively (cluster zone, or a reverse name we hold)."""
    return qname.is_subdomain(snap.zone) or qname in snap.names


def _soa_for(snap: Snapshot, qname: dns.name.Name) -> dns.rrset.RRset:
    if qname.is_subdomain(snap.zone):
        return snap.soa
    for rz, soa in snap.reverse_soas.items():
        if qname.is_subdomain(rz):
            return soa
    return snap.soa


def _pod_record(snap: Snapshot, qname: dns.name.Name) -> dns.rrset.RRset | None:
    """`a-b-c-d.<ns>.pod.<zone>` → A a.b.c.d (CoreDNS `pods insecure`: no pod lookup)."""
    rel = qname.relativize(snap.zone).labels
    if len(rel) != 3 or rel[2].lower() != b"pod":
        return None
    if qname.parent() not in snap.names:  # the namespace must exist
        return None
    label = rel[0].decode("ascii", "replace")
    ip = _ip(label.replace("-", ".")) if label.count("-") == 3 else _ip(label.replace("-", ":"))
    if ip is None:
        return None
    return dns.rrset.from_text(qname, TTL, IN, A if ip.version == 4 else AAAA, str(ip))


Answer = tuple[int, list[dns.rrset.RRset], list[dns.rrset.RRset]]


def answer(snap: Snapshot, qname: dns.name.Name | str, qtype: int) -> Answer:
    """(rcode, answer rrsets, authority rrsets) for one question, per the spec and CoreDNS.

    NXDOMAIN and NODATA carry the zone's SOA; a CNAME is followed inside the zone.
    Names outside what we hold get REFUSED here: the server forwards them instead.
    """
    if isinstance(qname, str):
        qname = dns.name.from_text(qname)
    if not in_zone(snap, qname):
        return REFUSED, [], []
    answers: list[dns.rrset.RRset] = []
    name = qname
    for _ in range(MAX_CNAME_CHAIN):
        node = snap.records.get(name)
        if node is None and snap.pod_records and name.is_subdomain(snap.zone):
            pod = _pod_record(snap, name)
            if pod is not None:
                node = {pod.rdtype: pod}
        if node is None:
            if name in snap.names:
                return NOERROR, answers, [_soa_for(snap, name)]
            return NXDOMAIN, answers, [_soa_for(snap, name)]
        if qtype == ANY:
            return NOERROR, answers + list(node.values()), []
        if qtype in node:
            return NOERROR, answers + [node[qtype]], []
        cname = node.get(CNAME)
        if cname is None:
            return NOERROR, answers, [_soa_for(snap, name)]
        answers.append(cname)
        name = cname[0].target
        if not in_zone(snap, name):
            return NOERROR, answers, []  # the resolver (or our forwarder) follows it
    return NOERROR, answers, []


def additional(snap: Snapshot, answers: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """Glue the spec allows: the A/AAAA records of SRV targets."""
    out: list[dns.rrset.RRset] = []
    seen: set[dns.name.Name] = set()
    for rrset in answers:
        if rrset.rdtype != SRV:
            continue
        for rd in rrset:
            if rd.target in seen:
                continue
            seen.add(rd.target)
            node = snap.records.get(rd.target, {})
            out.extend(node[t] for t in (A, AAAA) if t in node)
    return out


def objects_by_kind(objects: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    """Split a flat list of API objects (a List, a YAML stream) by kind for build_snapshot."""
    out: dict[str, list[Mapping]] = {"services": [], "endpointslices": [], "namespaces": []}
    for obj in objects:
        if not isinstance(obj, Mapping):
            continue
        kind = obj.get("kind")
        if kind in ("List", "ServiceList", "EndpointSliceList", "NamespaceList"):
            for k, v in objects_by_kind(obj.get("items") or []).items():
                out[k].extend(v)
        elif kind == "Service":
            out["services"].append(obj)
        elif kind == "EndpointSlice":
            out["endpointslices"].append(obj)
        elif kind == "Namespace":
            out["namespaces"].append(obj)
    return out
