"""The proxy's view of the cluster: Services and EndpointSlices boiled down to what the kernel needs.

Everything here is pure: API objects (plain dicts from the informer caches) go in, frozen
dataclasses come out. Both renderers (nftables.py, iptables.py) and the conntrack cleaner work
only on these, never on raw API objects, so they can be unit-tested on hand-made state.

The endpoint selection rules follow upstream's `CategorizeEndpoints`
(kubernetes pkg/proxy/topology.go): ready endpoints win; if a policy has none, it falls back to
endpoints that are still serving while terminating (so rolling updates drain gracefully).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, order=True)
class ServicePortName:
    """Identifies one port of one Service: upstream's `proxy.ServicePortName`."""

    namespace: str
    name: str
    port: str  # the port's *name* ("" for a single unnamed port)
    protocol: str  # "TCP" | "UDP" | "SCTP"

    def __str__(self) -> str:
        # upstream ServicePortName.String(): "ns/svc:port", or "ns/svc" for an unnamed port
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ServicePort:
    """One port of a Service, as the dataplane sees it."""

    namespace: str
    name: str
    port_name: str
    protocol: str
    cluster_ip: str
    port: int
    node_port: int = 0
    session_affinity_client_ip: bool = False
    affinity_timeout_seconds: int = 10800
    external_traffic_local: bool = False
    internal_traffic_local: bool = False
    external_ips: tuple[str, ...] = ()
    # status.loadBalancer.ingress[].ip of a LoadBalancer Service (kubelab.loadbalancer assigns them)
    load_balancer_ips: tuple[str, ...] = ()
    # spec.loadBalancerSourceRanges, normalized CIDRs: only these clients reach the LB IPs
    source_ranges: tuple[str, ...] = ()

    @property
    def key(self) -> ServicePortName:
        return ServicePortName(self.namespace, self.name, self.port_name, self.protocol)

    @property
    def externally_accessible(self) -> bool:
        return self.node_port != 0 or bool(self.external_ips) or bool(self.load_balancer_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        """Some traffic to this port is balanced over all endpoints in the cluster."""
        return not self.internal_traffic_local or (
            self.externally_accessible and not self.external_traffic_local
        )

    @property
    def uses_local_endpoints(self) -> bool:
        """Some traffic to this port may only go to endpoints on this node."""
        return self.internal_traffic_local or (self.externally_accessible and self.external_traffic_local)


@dataclass(frozen=True, order=True)
class Endpoint:
    """One backend address for one service port."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"

    def is_local(self, node_name: str) -> bool:
        return self.node_name is not None and self.node_name == node_name


@dataclass(frozen=True)
class ProxyConfig:
    """Per-node settings that shape the base ruleset (a change here means a full resync)."""

    node_name: str = ""
    node_ips: tuple[str, ...] = ()  # InternalIPs of this node: where NodePorts answer
    cluster_cidr: str = ""  # pod network; traffic from outside it to a ClusterIP is masqueraded
    service_cidr: str = ""  # unallocated ClusterIPs in here are dropped
    masquerade_mark: str = "0x4000"


@dataclass(frozen=True)
class ProxyState:
    """Everything a sync renders: config + every service port with its endpoints."""

    config: ProxyConfig = ProxyConfig()
    services: Mapping[ServicePortName, ServicePort] = field(default_factory=dict)
    endpoints: Mapping[ServicePortName, tuple[Endpoint, ...]] = field(default_factory=dict)

    def endpoints_for(self, key: ServicePortName) -> tuple[Endpoint, ...]:
        return self.endpoints.get(key, ())


@dataclass(frozen=True)
class Categorized:
    """Result of choosing endpoints for one service port on this node."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    reachable: tuple[Endpoint, ...]  # every endpoint some rule on this node may send to
    has_any: bool  # usable endpoints exist anywhere in the cluster


class InvalidObject(ValueError):
    """An API object the proxy cannot use (reported, then skipped)."""


def _is_ipv4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False


def service_ports(svc: Mapping) -> list[ServicePort]:
    """The service ports the proxy programs for one Service object.

    Headless (clusterIP None), ExternalName and services without a ClusterIP yet get none:
    DNS handles those. LoadBalancer is programmed like NodePort, plus its assigned addresses
    (`status.loadBalancer.ingress[].ip`) like external IPs, filtered by
    `spec.loadBalancerSourceRanges`. Only IPv4 is handled: the lab is single-stack.
    """
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    cluster_ip = spec.get("clusterIP") or ""
    if stype == "ExternalName" or cluster_ip in ("", "None") or not _is_ipv4(cluster_ip):
        return []
    affinity = spec.get("sessionAffinity") == "ClientIP"
    timeout = (
        ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds") or 10800
    )
    ext_local = spec.get("externalTrafficPolicy") == "Local" and stype in ("NodePort", "LoadBalancer")
    int_local = spec.get("internalTrafficPolicy") == "Local"
    ext_ips = tuple(ip for ip in spec.get("externalIPs") or () if _is_ipv4(ip))
    lb_ips = load_balancer_ips(svc)
    ranges = source_ranges(spec) if lb_ips else ()
    out = []
    for p in spec.get("ports") or ():
        proto = (p.get("protocol") or "TCP").upper()
        if proto not in PROTOCOLS or not p.get("port"):
            continue
        out.append(
            ServicePort(
                namespace=meta.get("namespace") or "default",
                name=meta.get("name") or "",
                port_name=p.get("name") or "",
                protocol=proto,
                cluster_ip=cluster_ip,
                port=int(p["port"]),
                node_port=int(p.get("nodePort") or 0) if stype in ("NodePort", "LoadBalancer") else 0,
                session_affinity_client_ip=affinity,
                affinity_timeout_seconds=int(timeout),
                external_traffic_local=ext_local,
                internal_traffic_local=int_local,
                external_ips=ext_ips,
                load_balancer_ips=lb_ips,
                source_ranges=ranges,
            )
        )
    return out


def load_balancer_ips(svc: Mapping) -> tuple[str, ...]:
    """The IPv4 addresses in status.loadBalancer.ingress of a LoadBalancer Service, in order."""
    if ((svc.get("spec") or {}).get("type")) != "LoadBalancer":
        return ()
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    return tuple(dict.fromkeys(i["ip"] for i in ingress
                               if isinstance(i, dict) and _is_ipv4(i.get("ip") or "")))


def source_ranges(spec: Mapping) -> tuple[str, ...]:
    """spec.loadBalancerSourceRanges as normalized IPv4 CIDRs (the API server validated them;
    anything unparsable or IPv6 is skipped here rather than failing a whole sync)."""
    out = []
    for r in spec.get("loadBalancerSourceRanges") or ():
        try:
            net = ipaddress.ip_network(str(r).strip(), strict=False)
        except ValueError:
            continue
        if net.version == 4:
            out.append(str(net))
    return tuple(dict.fromkeys(out))


def slice_endpoints(es: Mapping) -> dict[ServicePortName, list[Endpoint]]:
    """Endpoints in one EndpointSlice, per service port it covers.

    Condition defaults follow the API: ready unset → ready; serving unset → same as ready;
    terminating unset → false.
    """
    meta = es.get("metadata") or {}
    svc_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not svc_name or (es.get("addressType") or "IPv4") != "IPv4":
        return {}
    ns = meta.get("namespace") or "default"
    out: dict[ServicePortName, list[Endpoint]] = {}
    for p in es.get("ports") or ():
        if p.get("port") is None:
            continue
        key = ServicePortName(ns, svc_name, p.get("name") or "", (p.get("protocol") or "TCP").upper())
        eps = out.setdefault(key, [])
        for ep in es.get("endpoints") or ():
            addrs = ep.get("addresses") or []
            if not addrs or not _is_ipv4(addrs[0]):
                continue
            cond = ep.get("conditions") or {}
            ready = cond.get("ready")
            ready = True if ready is None else bool(ready)
            serving = cond.get("serving")
            serving = ready if serving is None else bool(serving)
            eps.append(
                Endpoint(
                    ip=addrs[0],
                    port=int(p["port"]),
                    ready=ready,
                    serving=serving,
                    terminating=bool(cond.get("terminating") or False),
                    node_name=ep.get("nodeName"),
                )
            )
    return out


def _ip_sort_key(ep: Endpoint) -> tuple:
    return (int(ipaddress.IPv4Address(ep.ip)), ep.port)


def merge_endpoints(slices: Iterable[Mapping]) -> dict[ServicePortName, tuple[Endpoint, ...]]:
    """Endpoints of all slices, de-duplicated by ip:port (first wins), sorted by address.

    Sorting makes the rendered rules independent of slice order, so an unchanged set of
    endpoints renders to identical text (and a sync applies nothing).
    """
    merged: dict[ServicePortName, dict[tuple[str, int], Endpoint]] = {}
    for es in slices:
        for key, eps in slice_endpoints(es).items():
            bucket = merged.setdefault(key, {})
            for ep in eps:
                bucket.setdefault((ep.ip, ep.port), ep)
    return {k: tuple(sorted(v.values(), key=_ip_sort_key)) for k, v in merged.items()}


def node_internal_ips(node: Mapping | None) -> tuple[str, ...]:
    """The node's InternalIP addresses (IPv4), where NodePorts are served."""
    if not node:
        return ()
    addrs = (node.get("status") or {}).get("addresses") or ()
    return tuple(a["address"] for a in addrs if a.get("type") == "InternalIP" and _is_ipv4(a.get("address", "")))


def build_state(
    *,
    services: Iterable[Mapping],
    slices: Iterable[Mapping],
    config: ProxyConfig,
) -> ProxyState:
    """The whole desired state from API objects (the proxier caches per service instead)."""
    svc_map: dict[ServicePortName, ServicePort] = {}
    for svc in services:
        for sp in service_ports(svc):
            svc_map[sp.key] = sp
    eps = merge_endpoints(slices)
    return ProxyState(
        config=config,
        services=dict(sorted(svc_map.items())),
        endpoints={k: v for k, v in eps.items() if k in svc_map},
    )


def categorize(sp: ServicePort, endpoints: Iterable[Endpoint], node_name: str) -> Categorized:
    """Pick the endpoints each traffic policy may use (upstream CategorizeEndpoints, no topology)."""
    eps = tuple(endpoints)
    cluster: tuple[Endpoint, ...] = ()
    local: tuple[Endpoint, ...] = ()
    has_any = False
    if sp.uses_cluster_endpoints:
        cluster = tuple(e for e in eps if e.ready)
        if not cluster:
            cluster = tuple(e for e in eps if e.serving and e.terminating)
        has_any = bool(cluster)
    if not sp.uses_local_endpoints:
        return Categorized(cluster, (), cluster, has_any)
    local_ready = tuple(e for e in eps if e.ready and e.is_local(node_name))
    if any(e.ready or (e.serving and e.terminating) for e in eps):
        has_any = True
    if local_ready:
        local = local_ready
    else:
        local = tuple(e for e in eps if e.serving and e.terminating and e.is_local(node_name))
    if not sp.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    seen = set(cluster)
    reachable = cluster + tuple(e for e in local if e not in seen)
    return Categorized(cluster, local, reachable, has_any)
