"""core/v1 kinds: Pod, Service, Namespace, Node, Endpoints, ConfigMap, Secret,
ServiceAccount, Event, and their update rules.
"""

from __future__ import annotations

import base64
import binascii
import json

from .causes import Causes, _dict, _list
from .formats import (
    _CONFIG_KEY, dns1123_label_errors, dns1123_subdomain_errors, _full, _is_cidr, _is_int, _is_ip,
    MSG_CONFIG_KEY, MSG_IMMUTABLE, qualified_name_errors,
)
from .meta import _immutable, PROTOCOLS, validate_labels
from . import loadbalancer
from .podspec import _port_or_name, TAINT_EFFECTS, validate_pod_spec


def _validate_pod(errs: Causes, obj: dict) -> None:
    validate_pod_spec(errs, obj.get("spec"))


SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)


def _validate_service(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    stype = spec.get("type") or "ClusterIP"
    errs.enum("spec.type", spec.get("type"), SERVICE_TYPES, required=False)
    cluster_ip = spec.get("clusterIP")
    headless = cluster_ip == "None"
    if cluster_ip not in (None, "", "None") and not _is_ip(cluster_ip):
        errs.invalid("spec.clusterIPs[0]", cluster_ip,
                     "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    if headless and stype in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {stype} services")
    ips = _list(spec.get("clusterIPs"))
    if ips and cluster_ip and ips[0] != cluster_ip:
        errs.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`")

    ports = _list(spec.get("ports"))
    if stype == "ExternalName":
        ext = spec.get("externalName")
        if not ext:
            errs.required("spec.externalName")
        else:
            errs.each("spec.externalName", ext.rstrip("."), dns1123_subdomain_errors(ext.rstrip(".")))
        if cluster_ip not in (None, ""):
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
    elif not ports and not headless:
        errs.required("spec.ports")

    names: set[str] = set()
    seen: set[tuple] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        p = _dict(p)
        name = p.get("name")
        if len(ports) > 1 and not name:
            errs.required(f"{pp}.name")
        elif name:
            errs.each(f"{pp}.name", name, dns1123_label_errors(name))
            if name in names:
                errs.duplicate(f"{pp}.name", name)
            names.add(name)
        errs.port(f"{pp}.port", p.get("port"))
        errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)
        key = (p.get("port"), p.get("protocol"))
        if key in seen:
            errs.duplicate(pp, {"port": key[0], "protocol": key[1]})
        seen.add(key)
        if p.get("targetPort") not in (None, 0, ""):
            _port_or_name(errs, f"{pp}.targetPort", p["targetPort"])
        node_port = p.get("nodePort")
        if node_port not in (None, 0):
            if stype not in ("NodePort", "LoadBalancer"):
                errs.forbidden(f"{pp}.nodePort", f"may not be used when `type` is '{stype}'")
            elif not _is_int(node_port) or not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.invalid(f"{pp}.nodePort", node_port,
                             "provided port is not in the valid range. The range of valid ports is "
                             f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}")
    if stype != "ExternalName":
        validate_labels(errs, spec.get("selector"), "spec.selector")
    errs.enum("spec.sessionAffinity", spec.get("sessionAffinity"), ("ClientIP", "None"), required=False)
    for f in ("externalTrafficPolicy", "internalTrafficPolicy"):
        errs.enum(f"spec.{f}", spec.get(f), ("Cluster", "Local"), required=False)
    if spec.get("externalTrafficPolicy") and stype not in ("NodePort", "LoadBalancer"):
        errs.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                     "may only be set for externally-accessible services")
    for i, ip in enumerate(_list(spec.get("externalIPs"))):
        if not _is_ip(ip):
            errs.invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    loadbalancer.validate(errs, obj)  # loadBalancerIP/SourceRanges/Class, status.loadBalancer


def _validate_namespace(errs: Causes, obj: dict) -> None:
    for i, f in enumerate(_list(_dict(obj.get("spec")).get("finalizers"))):
        errs.each(f"spec.finalizers[{i}]", f, qualified_name_errors(f) if isinstance(f, str) else ["must be a string"])
    errs.enum("status.phase", _dict(obj.get("status")).get("phase"), ("Active", "Terminating"), required=False)


def _validate_node(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    cidr = spec.get("podCIDR")
    if cidr and not _is_cidr(cidr):
        errs.invalid("spec.podCIDR", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    cidrs = _list(spec.get("podCIDRs"))
    for i, c in enumerate(cidrs):
        if not _is_cidr(c):
            errs.invalid(f"spec.podCIDRs[{i}]", c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    if cidr and cidrs and cidrs[0] != cidr:
        errs.invalid("spec.podCIDRs", cidrs, "first value must match `podCIDR`")
    for i, t in enumerate(_list(spec.get("taints"))):
        t = _dict(t)
        if not t.get("key"):
            errs.required(f"spec.taints[{i}].key")
        else:
            errs.each(f"spec.taints[{i}].key", t["key"], qualified_name_errors(t["key"]))
        errs.enum(f"spec.taints[{i}].effect", t.get("effect"), TAINT_EFFECTS)
    for i, a in enumerate(_list(_dict(obj.get("status")).get("addresses"))):
        errs.enum(f"status.addresses[{i}].type", _dict(a).get("type"),
                  ("Hostname", "InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS"))


def _validate_endpoints(errs: Causes, obj: dict) -> None:
    for i, s in enumerate(_list(obj.get("subsets"))):
        s = _dict(s)
        for field in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(_list(s.get(field))):
                ip = _dict(a).get("ip")
                if not ip:
                    errs.required(f"subsets[{i}].{field}[{j}].ip")
                elif not _is_ip(ip):
                    errs.invalid(f"subsets[{i}].{field}[{j}].ip", ip,
                                 "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        ports = _list(s.get("ports"))
        for j, p in enumerate(ports):
            p = _dict(p)
            pp = f"subsets[{i}].ports[{j}]"
            if len(ports) > 1 and not p.get("name"):
                errs.required(f"{pp}.name")
            elif p.get("name"):
                errs.each(f"{pp}.name", p["name"], dns1123_label_errors(p["name"]))
            errs.port(f"{pp}.port", p.get("port"))
            errs.enum(f"{pp}.protocol", p.get("protocol"), PROTOCOLS)


_MAX_DATA = 1024 * 1024


def _validate_data(errs: Causes, obj: dict, fields: tuple[str, ...]) -> None:
    seen: dict[str, str] = {}
    size = 0
    for f in fields:
        data = obj.get(f)
        if data is None:
            continue
        if not isinstance(data, dict):
            errs.type_error(f, data, "a map of string keys to string values")
            continue
        for k, v in data.items():
            path = f"{f}[{k}]"
            if len(k) > 253:
                errs.invalid(path, k, "must be no more than 253 characters")
            if not _full(_CONFIG_KEY, k):
                errs.invalid(path, k, MSG_CONFIG_KEY)
            if k in (".", "..") or k.startswith(".."):
                errs.invalid(path, k, "must not be '.' or '..'" if k in (".", "..") else "must not start with '..'")
            if k in seen:
                errs.invalid(path, k, f"duplicate of key present in {seen[k]}")
            seen[k] = f
            if not isinstance(v, str):
                errs.type_error(path, v, "a string")
            else:
                size += len(v)
    if size > _MAX_DATA:
        errs.too_long("data", _MAX_DATA)


def _validate_configmap(errs: Causes, obj: dict) -> None:
    _validate_data(errs, obj, ("data", "binaryData"))


def _validate_secret(errs: Causes, obj: dict) -> None:
    _validate_data(errs, obj, ("data", "stringData"))
    for k, v in _dict(obj.get("data")).items():
        if isinstance(v, str):
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                errs.invalid(f"data[{k}]", v, "illegal base64 data")
    stype = obj.get("type")
    if stype == "kubernetes.io/service-account-token":
        if not _dict(_dict(obj.get("metadata")).get("annotations")).get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    if stype == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in _dict(obj.get("data")) and k not in _dict(obj.get("stringData")):
                errs.required(f"data[{k}]")


def _validate_serviceaccount(errs: Causes, obj: dict) -> None:
    for i, s in enumerate(_list(obj.get("imagePullSecrets"))):
        if not _dict(s).get("name"):
            errs.required(f"imagePullSecrets[{i}].name")


def _validate_event(errs: Causes, obj: dict) -> None:
    involved = _dict(obj.get("involvedObject"))
    ns = _dict(obj.get("metadata")).get("namespace")
    if involved.get("namespace") and ns and involved["namespace"] != ns:
        errs.invalid("involvedObject.namespace", involved["namespace"], "does not match event.namespace")
    errs.enum("type", obj.get("type"), ("Normal", "Warning"), required=False)
    if obj.get("count") is not None:
        errs.nonneg("count", obj["count"])


POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _validate_pod_update(errs: Causes, obj: dict, old: dict) -> None:
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    if ospec.get("nodeName") and spec.get("nodeName") != ospec.get("nodeName"):
        errs.invalid("spec.nodeName", spec.get("nodeName") or "", MSG_IMMUTABLE)

    ads, oads = spec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if oads is not None and (ads is None or (_is_int(ads) and ads > oads)):
        errs.invalid("spec.activeDeadlineSeconds", ads, "must be less than or equal to previous value")
    otol, tol = _list(ospec.get("tolerations")), _list(spec.get("tolerations"))
    if any(t not in tol for t in otol):
        errs.forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")

    def masked(s: dict) -> dict:
        s = json.loads(json.dumps(s))
        for f in ("containers", "initContainers"):
            for c in _list(s.get(f)):
                if isinstance(c, dict):
                    c.pop("image", None)
        for f in ("activeDeadlineSeconds", "tolerations", "nodeName"):
            s.pop(f, None)
        tg = s.get("terminationGracePeriodSeconds")
        if _is_int(tg) and tg < 0 or tg == 1:
            s.pop("terminationGracePeriodSeconds", None)
        return s

    if masked(spec) != masked(ospec):
        errs.forbidden("spec", POD_UPDATE_FORBIDDEN)


def _validate_service_update(errs: Causes, obj: dict, old: dict) -> None:
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    if "ExternalName" in (spec.get("type"), ospec.get("type")):
        return  # clusterIP is cleared/allocated when switching to/from ExternalName
    if ospec.get("clusterIP"):
        _immutable(errs, "spec.clusterIP", spec.get("clusterIP") or "", ospec["clusterIP"])
    loadbalancer.validate_update(errs, obj, old)


def _validate_node_update(errs: Causes, obj: dict, old: dict) -> None:
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    for f in ("podCIDR", "podCIDRs"):
        if ospec.get(f) and spec.get(f) != ospec.get(f):
            errs.forbidden(f"spec.{f}", "node updates may not change podCIDR except from \"\" to valid")
    if ospec.get("providerID") and spec.get("providerID") != ospec.get("providerID"):
        errs.forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid")


def _validate_data_update(errs: Causes, obj: dict, old: dict) -> None:
    if old.get("immutable"):
        if not obj.get("immutable"):
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        for f in ("data", "binaryData", "stringData"):
            if obj.get(f) != old.get(f) and (f != "stringData" or obj.get(f)):
                errs.forbidden(f, "field is immutable when `immutable` is set")
    if old.get("kind") == "Secret" or obj.get("kind") == "Secret":
        if old.get("type") and obj.get("type") and obj["type"] != old["type"]:
            _immutable(errs, "type", obj["type"], old["type"])


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {
    "Pod": _validate_pod, "Service": _validate_service, "Namespace": _validate_namespace, "Node": _validate_node,
    "Endpoints": _validate_endpoints, "ConfigMap": _validate_configmap, "Secret": _validate_secret,
    "ServiceAccount": _validate_serviceaccount, "Event": _validate_event,
}
UPDATE_VALIDATORS = {
    "Pod": _validate_pod_update, "Service": _validate_service_update, "Node": _validate_node_update,
    "ConfigMap": _validate_data_update, "Secret": _validate_data_update,
}
