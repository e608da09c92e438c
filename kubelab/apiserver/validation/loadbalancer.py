"""Validation of a Service's load-balancer fields (what the API server can judge alone).

Its own module in the validation package: these are the fields kubelab.loadbalancer and the service proxy
act on, and every one of them is implemented, refused here (422 naming the field) or warned:

- `loadBalancerIP`: a valid IPv4 address (the lab is single-stack), only on type LoadBalancer.
  Whether it is in the pool is the controller's call (as MetalLB: the Service stays pending
  and an Event says why), since only the controller knows its pool.
- `loadBalancerSourceRanges`: CIDRs (upstream's message), only on type LoadBalancer;
  enforced by the proxy (nftables firewall-ips, iptables KUBE-FW-* / KUBE-PROXY-FIREWALL).
- `loadBalancerClass`: a qualified name, only on type LoadBalancer, fixed once set (upstream);
  a class other than the lab's is left to its own controller (kubelab's ignores it).
- `allocateLoadBalancerNodePorts: false`: honoured by the registry (no node ports allocated).
- `healthCheckNodePort`: not served (speakers read endpoints from the API instead of probing
  a node port): a warning, never silently accepted.
- `status.loadBalancer.ingress[].ip`: a valid IP; `ipMode` VIP or Proxy.
"""

from __future__ import annotations

import ipaddress

from .formats import qualified_name_errors

SOURCE_RANGE_MSG = "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 "
ONLY_LB = "may only be used when `type` is 'LoadBalancer'"
IP_MODES = ("VIP", "Proxy")


def _ipv4(text) -> bool:
    try:
        return isinstance(text, str) and ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def validate(errs, obj: dict) -> None:
    """Append causes for the load-balancer fields of a Service (errs: Causes)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    is_lb = (spec.get("type") or "ClusterIP") == "LoadBalancer"
    ip = spec.get("loadBalancerIP")
    if ip not in (None, ""):
        if not is_lb:
            errs.forbidden("spec.loadBalancerIP", ONLY_LB)
        elif not _ipv4(ip):
            errs.invalid("spec.loadBalancerIP", ip, "must be a valid IPv4 address, (e.g. 192.168.56.200): "
                                                    "the lab is IPv4 only")
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges and not is_lb:
        errs.forbidden("spec.loadBalancerSourceRanges", ONLY_LB)
    for i, r in enumerate(ranges if isinstance(ranges, list) else []):
        try:
            ipaddress.ip_network(str(r).strip(), strict=False)
            if "/" not in str(r):
                raise ValueError
        except ValueError:
            errs.invalid(f"spec.loadBalancerSourceRanges[{i}]", r, SOURCE_RANGE_MSG)
    cls = spec.get("loadBalancerClass")
    if cls is not None:
        if not is_lb:
            errs.forbidden("spec.loadBalancerClass", ONLY_LB)
        else:
            errs.each("spec.loadBalancerClass", cls, qualified_name_errors(cls) if cls else ["must not be empty"])
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for i, ing in enumerate(ingress if isinstance(ingress, list) else []):
        if not isinstance(ing, dict):
            continue
        if ing.get("ip") not in (None, "") and not _ipv4(ing["ip"]):
            errs.invalid(f"status.loadBalancer.ingress[{i}].ip", ing["ip"], "must be a valid IPv4 address")
        if ing.get("ipMode") not in (None, "") and ing["ipMode"] not in IP_MODES:
            errs.not_supported(f"status.loadBalancer.ingress[{i}].ipMode", ing["ipMode"], IP_MODES)


def validate_update(errs, obj: dict, old: dict) -> None:
    spec, ospec = obj.get("spec") or {}, old.get("spec") or {}
    if ospec.get("type") == "LoadBalancer" and spec.get("type") == "LoadBalancer" \
            and ospec.get("loadBalancerClass") != spec.get("loadBalancerClass"):
        errs.invalid("spec.loadBalancerClass", spec.get("loadBalancerClass"), "may not change once set")


def warnings(obj: dict) -> list[str]:
    """`Warning:` headers for load-balancer fields the lab accepts but does not act on."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out = []
    if spec.get("healthCheckNodePort"):
        out.append("spec.healthCheckNodePort: not served by kubelab: the speakers choose nodes with a ready "
                   "local endpoint from the API, no health-check node port is probed")
    return out
