"""Validation of gateway.networking.k8s.io/v1 GatewayClass, Gateway and HTTPRoute.

Why a module of its own: upstream ships these kinds as CRDs whose OpenAPI schema (patterns,
enums, bounds) and CEL rules (cross-field checks such as "tls is required for HTTPS") are the
whole contract; they are restated here as plain checks that register themselves into
validation's tables on import, like validation/ingress.py, so the generic `validate()` path
stays the one entry point and each refusal names its field (422).

Bounds are upstream's (listeners ≤ 64, rules ≤ 16, matches ≤ 64, …): besides being the
contract they cap how much nginx configuration one object can make the controller render.
Anything a data plane must additionally refuse is the controller's job (kubelab.ingress.gateway),
reported in the object's status as upstream controllers do.
Pure: object in, StatusCauses out.
"""

from __future__ import annotations

import re

from kubelab.apiserver import validation as v

MAX_LISTENERS = 64
MAX_PARENT_REFS = 32
MAX_HOSTNAMES = 16
MAX_RULES = 16
MAX_MATCHES = 64
MAX_HEADERS = 16
MAX_FILTERS = 16
MAX_BACKEND_REFS = 16
MAX_WEIGHT = 1_000_000
MAX_PATH = 1024
MAX_HEADER_VALUE = 4096
CONTROLLER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
                             r"/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+")
HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SECTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
PROTOCOL = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*"
                      r"[a-z0-9])?)*/[A-Za-z0-9]+")
PATH_TYPES = ("Exact", "PathPrefix", "RegularExpression")
MATCH_TYPES = ("Exact", "RegularExpression")
METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
FILTER_TYPES = ("ExtensionRef", "RequestHeaderModifier", "RequestMirror", "RequestRedirect",
                "ResponseHeaderModifier", "URLRewrite")
FILTER_FIELDS = {"RequestHeaderModifier": "requestHeaderModifier", "ResponseHeaderModifier": "responseHeaderModifier",
                 "RequestMirror": "requestMirror", "RequestRedirect": "requestRedirect", "URLRewrite": "urlRewrite",
                 "ExtensionRef": "extensionRef"}
REDIRECT_CODES = (301, 302)
SCHEMES = ("http", "https")
FROM = ("All", "Same", "Selector")
BAD_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F", "#")


def _bounded(errs: v.Causes, path: str, items, limit: int) -> list:
    if items is None:
        return []
    if not isinstance(items, list):
        return []  # shapes already reported the type
    if len(items) > limit:
        errs.invalid(path, f"{len(items)} items", f"must have at most {limit} items")
    return items[:limit]


def _hostname(errs: v.Causes, path: str, h) -> None:
    if not isinstance(h, str) or not h:
        errs.required(path)
    elif len(h) > 253 or not HOSTNAME.fullmatch(h):
        errs.invalid(path, h, "should match '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                              "[a-z0-9])?)*$' (a DNS name, or '*.' and one)")


def _name(errs: v.Causes, path: str, name, *, required: bool = True) -> None:
    if not name:
        if required:
            errs.required(path)
        return
    if not isinstance(name, str) or len(name) > 253:
        errs.invalid(path, name, "must be at most 253 characters")


# --- GatewayClass ------------------------------------------------------------------------------

def validate_gateway_class(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    name = spec.get("controllerName")
    if not name:
        errs.required("spec.controllerName")
    elif len(name) > 253 or not CONTROLLER_NAME.fullmatch(name):
        errs.invalid("spec.controllerName", name, "must be a domain-prefixed path (such as \"example.net/gateway\")")
    desc = spec.get("description")
    if isinstance(desc, str) and len(desc) > 64:
        errs.too_long("spec.description", 64)


def validate_gateway_class_update(errs: v.Causes, obj: dict, old: dict) -> None:
    new_c = v._dict(obj.get("spec")).get("controllerName")
    old_c = v._dict(old.get("spec")).get("controllerName")
    if old_c and new_c != old_c:
        errs.invalid("spec.controllerName", new_c, "Value is immutable")


# --- Gateway -----------------------------------------------------------------------------------

def _listener(errs: v.Causes, ln: dict, at: str) -> None:
    name = ln.get("name")
    if not name:
        errs.required(f"{at}.name")
    elif not isinstance(name, str) or len(name) > 253 or not SECTION_NAME.fullmatch(name):
        errs.invalid(f"{at}.name", name, "must be a lower case DNS subdomain (such as 'http' or 'web.example')")
    errs.port(f"{at}.port", ln.get("port"))
    proto = ln.get("protocol")
    if not proto:
        errs.required(f"{at}.protocol")
    elif not isinstance(proto, str) or len(proto) > 255 or not PROTOCOL.fullmatch(proto):
        errs.invalid(f"{at}.protocol", proto, "must be a protocol name such as HTTP, HTTPS, TLS, TCP or UDP")
    if ln.get("hostname") is not None:
        _hostname(errs, f"{at}.hostname", ln.get("hostname"))
        if proto in ("TCP", "UDP"):
            errs.forbidden(f"{at}.hostname", "hostname must not be specified for protocols ['TCP', 'UDP']")
    tls = ln.get("tls")
    if proto in ("HTTPS", "TLS") and tls is None:
        errs.required(f"{at}.tls", "tls must be specified for protocols ['HTTPS', 'TLS']")
    if proto in ("HTTP", "TCP", "UDP") and tls is not None:
        errs.forbidden(f"{at}.tls", "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")
    if tls is not None:
        t = v._dict(tls)
        mode = t.get("mode") or "Terminate"
        errs.enum(f"{at}.tls.mode", mode, ("Passthrough", "Terminate"))
        refs = _bounded(errs, f"{at}.tls.certificateRefs", t.get("certificateRefs"), 64)
        if mode == "Terminate" and not refs:
            errs.required(f"{at}.tls.certificateRefs", "certificateRefs or options must be specified when mode is "
                                                        "Terminate")
        for j, r in enumerate(refs):
            _name(errs, f"{at}.tls.certificateRefs[{j}].name", v._dict(r).get("name"))
    ns = v._dict(v._dict(ln.get("allowedRoutes")).get("namespaces"))
    if ns:
        errs.enum(f"{at}.allowedRoutes.namespaces.from", ns.get("from") or "Same", FROM)
        if ns.get("from") == "Selector" and not ns.get("selector"):
            errs.required(f"{at}.allowedRoutes.namespaces.selector", "selector is required when from is Selector")


def validate_gateway(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    cls = spec.get("gatewayClassName")
    _name(errs, "spec.gatewayClassName", cls)
    if isinstance(cls, str) and cls:
        errs.each("spec.gatewayClassName", cls, v.dns1123_subdomain_errors(cls))
    listeners = spec.get("listeners")
    if not listeners:
        errs.required("spec.listeners")
    names: set = set()
    combos: set = set()
    for i, ln in enumerate(_bounded(errs, "spec.listeners", listeners, MAX_LISTENERS)):
        ln, at = v._dict(ln), f"spec.listeners[{i}]"
        _listener(errs, ln, at)
        if ln.get("name") in names:
            errs.duplicate(f"{at}.name", ln.get("name"))
        names.add(ln.get("name"))
        combo = (ln.get("port"), ln.get("protocol"), ln.get("hostname") or "")
        if combo in combos:
            errs.invalid(at, f"{combo[0]}/{combo[1]}/{combo[2] or '*'}",
                         "Combination of port, protocol and hostname must be unique for each listener")
        combos.add(combo)
    for i, a in enumerate(_bounded(errs, "spec.addresses", spec.get("addresses"), 16)):
        if not v._dict(a).get("value"):
            errs.required(f"spec.addresses[{i}].value")


def validate_gateway_update(errs: v.Causes, obj: dict, old: dict) -> None:
    new_c = v._dict(obj.get("spec")).get("gatewayClassName")
    old_c = v._dict(old.get("spec")).get("gatewayClassName")
    if old_c and new_c != old_c:
        errs.invalid("spec.gatewayClassName", new_c, "Value is immutable")


# --- HTTPRoute ---------------------------------------------------------------------------------

def _parent_ref(errs: v.Causes, r: dict, at: str) -> None:
    _name(errs, f"{at}.name", r.get("name"))
    sn = r.get("sectionName")
    if sn is not None and (not isinstance(sn, str) or not SECTION_NAME.fullmatch(sn)):
        errs.invalid(f"{at}.sectionName", sn, "must be a lower case DNS subdomain")
    if r.get("port") is not None:
        errs.port(f"{at}.port", r.get("port"))


def _match_values(errs: v.Causes, items, at: str) -> None:
    seen: set = set()
    for k, h in enumerate(_bounded(errs, at, items, MAX_HEADERS)):
        h, hp = v._dict(h), f"{at}[{k}]"
        name, value = h.get("name"), h.get("value")
        if not name:
            errs.required(f"{hp}.name")
        elif not isinstance(name, str) or len(name) > 256 or not HEADER_NAME.fullmatch(name):
            errs.invalid(f"{hp}.name", name, "must be an HTTP token (RFC 7230: letters, digits and !#$%&'*+-.^_`|~)")
        elif name.lower() in seen:
            errs.duplicate(f"{hp}.name", name)
        else:
            seen.add(name.lower())
        errs.enum(f"{hp}.type", h.get("type") or "Exact", MATCH_TYPES)
        if not isinstance(value, str) or not value:
            errs.required(f"{hp}.value")
        elif len(value) > MAX_HEADER_VALUE:
            errs.too_long(f"{hp}.value", MAX_HEADER_VALUE)


def _match(errs: v.Causes, m: dict, at: str) -> None:
    path = m.get("path")
    if path is not None:
        p = v._dict(path)
        ptype, value = p.get("type") or "PathPrefix", p.get("value", "/")
        errs.enum(f"{at}.path.type", ptype, PATH_TYPES)
        if ptype != "RegularExpression":
            if not isinstance(value, str) or not value.startswith("/"):
                errs.invalid(f"{at}.path.value", value, "value must be an absolute path and start with '/' when "
                                                        "type one of ['Exact', 'PathPrefix']")
            elif len(value) > MAX_PATH:
                errs.too_long(f"{at}.path.value", MAX_PATH)
            elif any(s in value for s in BAD_PATH_SEQUENCES) or value.endswith(("/..", "/.")):
                errs.invalid(f"{at}.path.value", value, "must not contain '//', '/./', '/../', '%2f', '#' or end "
                                                        "with '/..' or '/.'")
    _match_values(errs, m.get("headers"), f"{at}.headers")
    _match_values(errs, m.get("queryParams"), f"{at}.queryParams")
    if m.get("method") is not None:
        errs.enum(f"{at}.method", m.get("method"), METHODS)


def _header_modifier(errs: v.Causes, mod: dict, at: str) -> None:
    for op in ("set", "add"):
        seen: set = set()
        for k, h in enumerate(_bounded(errs, f"{at}.{op}", mod.get(op), MAX_HEADERS)):
            h = v._dict(h)
            name = h.get("name")
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name or "") or len(name) > 256:
                errs.invalid(f"{at}.{op}[{k}].name", name, "must be an HTTP token")
            elif name.lower() in seen:
                errs.duplicate(f"{at}.{op}[{k}].name", name)
            else:
                seen.add(name.lower())
            value = h.get("value")
            if not isinstance(value, str):
                errs.required(f"{at}.{op}[{k}].value")
            elif len(value) > MAX_HEADER_VALUE:
                errs.too_long(f"{at}.{op}[{k}].value", MAX_HEADER_VALUE)
    for k, name in enumerate(_bounded(errs, f"{at}.remove", mod.get("remove"), MAX_HEADERS)):
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name or ""):
            errs.invalid(f"{at}.remove[{k}]", name, "must be an HTTP token")


def _filters(errs: v.Causes, items, at: str) -> list[str]:
    types = []
    for k, f in enumerate(_bounded(errs, at, items, MAX_FILTERS)):
        f, fp = v._dict(f), f"{at}[{k}]"
        t = f.get("type")
        errs.enum(f"{fp}.type", t, FILTER_TYPES)
        if t not in FILTER_FIELDS:
            continue
        types.append(t)
        field = FILTER_FIELDS[t]
        if f.get(field) is None:
            errs.required(f"{fp}.{field}", f"filter.{field} must be specified for {t} filter.type")
        for other in FILTER_FIELDS.values():
            if other != field and f.get(other) is not None:
                errs.forbidden(f"{fp}.{other}", f"filter.{other} must be nil if the filter.type is not "
                                                f"{[k for k, x in FILTER_FIELDS.items() if x == other][0]}")
        if t in ("RequestHeaderModifier", "ResponseHeaderModifier"):
            _header_modifier(errs, v._dict(f.get(field)), f"{fp}.{field}")
        elif t == "RequestRedirect":
            r = v._dict(f.get(field))
            if r.get("scheme") is not None:
                errs.enum(f"{fp}.requestRedirect.scheme", r.get("scheme"), SCHEMES)
            if r.get("hostname") is not None:
                _hostname(errs, f"{fp}.requestRedirect.hostname", r.get("hostname"))
                if isinstance(r.get("hostname"), str) and r["hostname"].startswith("*"):
                    errs.invalid(f"{fp}.requestRedirect.hostname", r["hostname"], "must not be a wildcard")
            if r.get("port") is not None:
                errs.port(f"{fp}.requestRedirect.port", r.get("port"))
            if r.get("statusCode") is not None and r.get("statusCode") not in REDIRECT_CODES:
                errs.not_supported(f"{fp}.requestRedirect.statusCode", r.get("statusCode"), REDIRECT_CODES)
            p = r.get("path")
            if p is not None:
                p = v._dict(p)
                errs.enum(f"{fp}.requestRedirect.path.type", p.get("type"), ("ReplaceFullPath", "ReplacePrefixMatch"))
                want = "replaceFullPath" if p.get("type") == "ReplaceFullPath" else "replacePrefixMatch"
                value = p.get(want)
                if isinstance(value, str) and (not value.startswith("/") or len(value) > MAX_PATH):
                    errs.invalid(f"{fp}.requestRedirect.path.{want}", value, "must be an absolute path of at most "
                                                                            f"{MAX_PATH} characters")
    for t in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"):
        if types.count(t) > 1:
            errs.invalid(at, t, f"{t} filter cannot be repeated")
    if "RequestRedirect" in types and "URLRewrite" in types:
        errs.invalid(at, "RequestRedirect, URLRewrite", "May specify either httpRouteFilterRequestRedirect or "
                                                        "httpRouteFilterRequestRewrite, but not both")
    return types


def _backend_ref(errs: v.Causes, b: dict, at: str) -> None:
    _name(errs, f"{at}.name", b.get("name"))
    kind, group = b.get("kind") or "Service", b.get("group") or ""
    if kind == "Service" and group == "" and b.get("port") is None:
        errs.required(f"{at}.port", "Must have port for Service reference")
    if b.get("port") is not None:
        errs.port(f"{at}.port", b.get("port"))
    w = b.get("weight")
    if w is not None and (not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= MAX_WEIGHT):
        errs.invalid(f"{at}.weight", w, f"must be between 0 and {MAX_WEIGHT}, inclusive")
    _filters(errs, b.get("filters"), f"{at}.filters")


def validate_http_route(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    for i, r in enumerate(_bounded(errs, "spec.parentRefs", spec.get("parentRefs"), MAX_PARENT_REFS)):
        _parent_ref(errs, v._dict(r), f"spec.parentRefs[{i}]")
    for i, h in enumerate(_bounded(errs, "spec.hostnames", spec.get("hostnames"), MAX_HOSTNAMES)):
        _hostname(errs, f"spec.hostnames[{i}]", h)
    for i, rule in enumerate(_bounded(errs, "spec.rules", spec.get("rules"), MAX_RULES)):
        rule, at = v._dict(rule), f"spec.rules[{i}]"
        for j, m in enumerate(_bounded(errs, f"{at}.matches", rule.get("matches"), MAX_MATCHES)):
            _match(errs, v._dict(m), f"{at}.matches[{j}]")
        types = _filters(errs, rule.get("filters"), f"{at}.filters")
        refs = _bounded(errs, f"{at}.backendRefs", rule.get("backendRefs"), MAX_BACKEND_REFS)
        if "RequestRedirect" in types and refs:
            errs.invalid(f"{at}", "RequestRedirect", "RequestRedirect filter must not be used together with "
                                                      "backendRefs")
        for j, b in enumerate(refs):
            _backend_ref(errs, v._dict(b), f"{at}.backendRefs[{j}]")


# --- ReferenceGrant (v1beta1) -------------------------------------------------------------------

def validate_reference_grant(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    for side, fields in (("from", ("kind", "namespace")), ("to", ("kind",))):
        items = spec.get(side)
        if not items:
            errs.required(f"spec.{side}")
        for i, item in enumerate(_bounded(errs, f"spec.{side}", items, 16)):
            item, at = v._dict(item), f"spec.{side}[{i}]"
            if item.get("group") is None:
                errs.required(f"{at}.group")
            for f in fields:
                if not item.get(f):
                    errs.required(f"{at}.{f}")
            if side == "from" and item.get("namespace"):
                errs.each(f"{at}.namespace", item["namespace"], v.dns1123_label_errors(item["namespace"]))


VALIDATORS = {"GatewayClass": validate_gateway_class, "Gateway": validate_gateway, "HTTPRoute": validate_http_route,
              "ReferenceGrant": validate_reference_grant}
UPDATE_VALIDATORS = {"GatewayClass": validate_gateway_class_update, "Gateway": validate_gateway_update}
v._VALIDATORS.update(VALIDATORS)
v._UPDATE_VALIDATORS.update(UPDATE_VALIDATORS)
