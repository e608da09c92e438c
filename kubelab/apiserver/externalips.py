"""Who may claim which `spec.externalIPs` (CVE-2020-8554's class).

Why this exists: kube-proxy (and kubelab's proxy) sends traffic for a Service's external
IPs to the Service's endpoints on every node, whatever that address really is. So anyone
who may create a Service could name a node's address, the API server's, a ClusterIP or a pod
IP and silently capture the cluster's traffic to it. Upstream's answer is an admission
plugin (DenyServiceExternalIPs) or a policy engine; kubelab's is an allow-list,
`--service-external-ip-cidrs` (empty by default: no external IPs at all until an
administrator names a range; the LoadBalancer pool, once there is one, is the natural
default), and a deny-list that always wins: the node addresses, the API server's address,
the service range and the pod range.

Only addresses a write *adds* are judged: a Service stored before a policy change keeps
working, and dropping an address is always allowed. `check` is pure; the registry supplies
the node addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidrs(text: str | list[str] | None) -> tuple[Network, ...]:
    """`a/b,c/d` (or a list of them); ValueError naming the bad one."""
    items = text.split(",") if isinstance(text, str) else list(text or [])
    out = []
    for item in (i.strip() for i in items):
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"invalid CIDR {item!r} in --service-external-ip-cidrs") from None
    return tuple(out)


@dataclass(frozen=True)
class ExternalIPPolicy:
    allowed: tuple[Network, ...] = ()     # --service-external-ip-cidrs
    service_cidr: str = "10.96.0.0/12"    # never claimable, whatever the allow-list says
    pod_cidr: str = "10.244.0.0/16"
    apiserver_address: str = "127.0.0.1"
    reserved: tuple[tuple[Network, str], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        nets = [(ipaddress.ip_network(self.service_cidr, strict=False), f"the service range {self.service_cidr}"),
                (ipaddress.ip_network(self.pod_cidr, strict=False), f"the pod network {self.pod_cidr}")]
        try:
            nets.append((ipaddress.ip_network(self.apiserver_address), "the API server's address"))
        except ValueError:
            pass
        object.__setattr__(self, "reserved", tuple(nets))


def node_addresses(nodes: list[dict]) -> dict[str, str]:
    """{address: node name} for every address a Node reports."""
    out = {}
    for n in nodes:
        for a in ((n.get("status") or {}).get("addresses") or []):
            if isinstance(a, dict) and isinstance(a.get("address"), str):
                out[a["address"]] = (n.get("metadata") or {}).get("name", "")
    return out


def added(spec: dict, old_spec: dict | None) -> list[tuple[int, str]]:
    """(index, address) of the external IPs `spec` has and `old_spec` did not."""
    before = set((old_spec or {}).get("externalIPs") or [])
    return [(i, ip) for i, ip in enumerate(spec.get("externalIPs") or []) if isinstance(ip, str) and ip not in before]


def check(policy: ExternalIPPolicy, new_ips: list[tuple[int, str]], nodes: dict[str, str]) -> list[dict]:
    """The 422 causes for the added addresses (empty: all allowed)."""
    causes = []
    for i, ip in new_ips:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue  # validation already names a malformed address
        why = None
        if ip in nodes:
            why = f'it is the address of node "{nodes[ip]}"'
        else:
            why = next((f"it is in {what}" for net, what in policy.reserved if addr in net), None)
        if why is None and not any(addr in net for net in policy.allowed):
            allowed = ", ".join(str(n) for n in policy.allowed) or "none are allowed"
            why = f"it is outside the allowed external IP ranges (--service-external-ip-cidrs: {allowed})"
        if why:
            causes.append({"reason": "FieldValueForbidden", "field": f"spec.externalIPs[{i}]",
                           "message": f"Forbidden: {ip}: {why}"})
    return causes
