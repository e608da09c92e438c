"""discovery.k8s.io/v1 EndpointSlice.
"""

from __future__ import annotations

from .causes import Causes, _dict, _list
from .formats import dns1123_label_errors, dns1123_subdomain_errors, _is_ip
from .meta import _immutable, PROTOCOLS


ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


def _validate_endpointslice(errs: Causes, obj: dict) -> None:
    atype = obj.get("addressType")
    errs.enum("addressType", atype, ADDRESS_TYPES)
    endpoints = _list(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.too_long("endpoints", 1000)
    for i, ep in enumerate(endpoints):
        ep = _dict(ep)
        addrs = _list(ep.get("addresses"))
        ap = f"endpoints[{i}].addresses"
        if not addrs:
            errs.required(ap, "must contain at least 1 address")
        elif len(addrs) > 100:
            errs.too_long(ap, 100)
        for j, a in enumerate(addrs):
            if atype == "IPv4" and not _is_ip(a, 4):
                errs.invalid(f"{ap}[{j}]", a, "must be a valid IPv4 address")
            elif atype == "IPv6" and not _is_ip(a, 6):
                errs.invalid(f"{ap}[{j}]", a, "must be a valid IPv6 address")
            elif atype == "FQDN":
                errs.each(f"{ap}[{j}]", a, dns1123_subdomain_errors(a if isinstance(a, str) else ""))
        if ep.get("hostname"):
            errs.each(f"endpoints[{i}].hostname", ep["hostname"], dns1123_label_errors(ep["hostname"]))
        if ep.get("nodeName"):
            errs.each(f"endpoints[{i}].nodeName", ep["nodeName"], dns1123_subdomain_errors(ep["nodeName"]))
        for cond in ("ready", "serving", "terminating"):
            v = _dict(ep.get("conditions")).get(cond)
            if v is not None and not isinstance(v, bool):
                errs.type_error(f"endpoints[{i}].conditions.{cond}", v, "a boolean")
    names = set()
    for i, p in enumerate(_list(obj.get("ports"))):
        p = _dict(p)
        pp = f"ports[{i}]"
        name = p.get("name") or ""
        if name:
            errs.each(f"{pp}.name", name, dns1123_label_errors(name))
        if name in names:
            errs.duplicate(f"{pp}.name", name)
        names.add(name)
        errs.port(f"{pp}.port", p.get("port"), required=False)
        errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)


def _validate_endpointslice_update(errs: Causes, obj: dict, old: dict) -> None:
    if old.get("addressType"):
        _immutable(errs, "addressType", obj.get("addressType"), old["addressType"])


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {"EndpointSlice": _validate_endpointslice}
UPDATE_VALIDATORS = {"EndpointSlice": _validate_endpointslice_update}
