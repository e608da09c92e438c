"""networking.k8s.io/v1 NetworkPolicy (pkg/apis/networking/validation).
"""

from __future__ import annotations

import ipaddress

from .causes import Causes, _dict, _fmt, _list
from .formats import _is_cidr, _is_int, MSG_PORT_RANGE, port_name_errors
from .meta import PROTOCOLS, validate_label_selector


MSG_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
POLICY_TYPES = ("Ingress", "Egress")  # upstream lists them in this order (not sorted)


def _port_num_errors(v) -> list[str]:
    return [] if _is_int(v) and 1 <= v <= 65535 else [MSG_PORT_RANGE]


def _validate_netpol_port(errs: Causes, port: dict, path: str) -> None:
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        errs._add("FieldValueNotSupported", f"{path}.protocol",
                  f"Unsupported value: {_fmt(proto)}: supported values: \"TCP\", \"UDP\", \"SCTP\"")
    p, end = port.get("port"), port.get("endPort")
    if p is None:
        if end is not None:
            errs.invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified")
    elif _is_int(p):
        errs.each(f"{path}.port", p, _port_num_errors(p))
        if end is not None:
            if end < p:
                errs.invalid(f"{path}.endPort", p, "must be greater than or equal to `port`")
            errs.each(f"{path}.endPort", end, _port_num_errors(end))
    else:
        if end is not None:
            errs.invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric")
        errs.each(f"{path}.port", p, port_name_errors(p))


def _validate_ip_block(errs: Causes, ipb: dict, path: str) -> None:
    cidr = ipb.get("cidr") or ""
    if not cidr:
        errs.required(f"{path}.cidr")
        return
    if not _is_cidr(cidr):
        errs.invalid(f"{path}.cidr", cidr, MSG_CIDR)
        return
    net = ipaddress.ip_network(cidr, strict=False)
    for i, ex in enumerate(_list(ipb.get("except"))):
        epath = f"{path}.except[{i}]"
        if not _is_cidr(ex):
            errs.invalid(epath, ex, MSG_CIDR)
            continue
        exn = ipaddress.ip_network(ex, strict=False)
        if exn.version != net.version or exn.network_address not in net or net.prefixlen >= exn.prefixlen:
            errs.invalid(epath, ex, "must be a strict subset of `cidr`")


def _validate_netpol_peer(errs: Causes, peer: dict, path: str) -> None:
    n = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            n += 1
            validate_label_selector(errs, peer[key], f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        n += 1
        _validate_ip_block(errs, _dict(peer["ipBlock"]), f"{path}.ipBlock")
    if n == 0:
        errs.required(path, "must specify a peer")
    elif n > 1 and peer.get("ipBlock") is not None:
        errs.forbidden(path, "may not specify both ipBlock and another peer")


def _validate_networkpolicy(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    validate_label_selector(errs, spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(_list(spec.get(direction))):
            rule, rpath = _dict(rule), f"spec.{direction}[{i}]"
            for j, port in enumerate(_list(rule.get("ports"))):
                _validate_netpol_port(errs, _dict(port), f"{rpath}.ports[{j}]")
            for j, peer in enumerate(_list(rule.get(peers))):
                _validate_netpol_peer(errs, _dict(peer), f"{rpath}.{peers}[{j}]")
    types = _list(spec.get("policyTypes"))
    if len(types) > len(POLICY_TYPES):
        errs.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
        return
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs._add("FieldValueNotSupported", f"spec.policyTypes[{i}]",
                      f"Unsupported value: {_fmt(t)}: supported values: \"Ingress\", \"Egress\"")


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {"NetworkPolicy": _validate_networkpolicy}
UPDATE_VALIDATORS: dict = {}
