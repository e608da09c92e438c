"""ObjectMeta (names by kind, labels, annotations, finalizers), label selectors and the
update rules every kind shares (name, namespace, uid, creationTimestamp are immutable).
"""

from __future__ import annotations

from kubelab.resources import ResourceType

from .causes import Causes, _dict, _list
from .formats import (
    dns1035_label_errors, dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, MSG_IMMUTABLE,
    qualified_name_errors,
)


LABEL_NAMES = {"Namespace"}  # RFC 1123 label names; Service uses DNS-1035; others subdomains
PROTOCOLS = ("TCP", "UDP", "SCTP")
_TOTAL_ANNOTATION_SIZE = 256 * 1024


RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def _name_errors(kind: str, name: str) -> list[str]:
    if kind in RBAC_KINDS:
        return []  # path-segment names (`system:node`), checked for '/', '%', '.', '..' above
    if kind == "Service":
        return dns1035_label_errors(name)
    if kind in LABEL_NAMES:
        return dns1123_label_errors(name)
    return dns1123_subdomain_errors(name)


def validate_labels(errs: Causes, labels, path: str) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        errs.type_error(path, labels, "a map of string keys to string values")
        return
    for k, v in labels.items():
        errs.each(path, k, qualified_name_errors(k))
        if not isinstance(v, str):
            errs.type_error(f"{path}[{k}]", v, "a string")
        else:
            errs.each(path, v, label_value_errors(v))


def validate_metadata(errs: Causes, rt: ResourceType, meta) -> None:
    meta = _dict(meta)
    name, gen = meta.get("name") or "", meta.get("generateName") or ""
    if not name and not gen:
        errs.required("metadata.name", "name or generateName is required")
    if name:
        if name in (".", ".."):
            errs.invalid("metadata.name", name, f"may not be '{name}'")
        elif "/" in name or "%" in name:
            errs.invalid("metadata.name", name, "may not contain '/'" if "/" in name else "may not contain '%'")
        else:
            errs.each("metadata.name", name, _name_errors(rt.kind, name))
    if gen:
        # generateName is a prefix: validated with its trailing '-' masked, like upstream.
        errs.each("metadata.generateName", gen, _name_errors(rt.kind, gen.rstrip("-") or "a"))
    ns = meta.get("namespace") or ""
    if rt.namespaced:
        if not ns:
            errs.required("metadata.namespace")
        else:
            errs.each("metadata.namespace", ns, dns1123_label_errors(ns))
    elif ns:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(errs, meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            errs.type_error("metadata.annotations", annotations, "a map of string keys to string values")
        else:
            size = 0
            for k, v in annotations.items():
                errs.each("metadata.annotations", k, qualified_name_errors(k))
                if not isinstance(v, str):
                    errs.type_error(f"metadata.annotations[{k}]", v, "a string")
                else:
                    size += len(k) + len(v)
            if size > _TOTAL_ANNOTATION_SIZE:
                errs.too_long("metadata.annotations", _TOTAL_ANNOTATION_SIZE)
    for i, f in enumerate(_list(meta.get("finalizers"))):
        errs.each(f"metadata.finalizers[{i}]", f, qualified_name_errors(f) if isinstance(f, str) else ["must be a string"])


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(errs: Causes, selector, path: str) -> None:
    selector = _dict(selector)
    validate_labels(errs, selector.get("matchLabels"), f"{path}.matchLabels")
    for i, r in enumerate(_list(selector.get("matchExpressions"))):
        r = _dict(r)
        rp = f"{path}.matchExpressions[{i}]"
        op = r.get("operator")
        errs.enum(f"{rp}.operator", op, SELECTOR_OPERATORS)
        values = _list(r.get("values"))
        if op in ("In", "NotIn") and not values:
            errs.required(f"{rp}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("Exists", "DoesNotExist") and values:
            errs.forbidden(f"{rp}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        errs.each(f"{rp}.key", r.get("key") or "", qualified_name_errors(r.get("key") or ""))


def _immutable(errs: Causes, path: str, new, old) -> None:
    if new != old:
        errs.invalid(path, new, MSG_IMMUTABLE)


def _validate_meta_update(errs: Causes, obj: dict, old: dict) -> None:
    meta, ometa = _dict(obj.get("metadata")), _dict(old.get("metadata"))
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        if ometa.get(f) and meta.get(f) and meta.get(f) != ometa.get(f):
            errs.invalid(f"metadata.{f}", meta.get(f), MSG_IMMUTABLE)
