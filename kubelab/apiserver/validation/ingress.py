"""Validation of networking.k8s.io/v1 Ingress and IngressClass (upstream pkg/apis/networking/validation).

Why a module of its own: Ingress rules are self-contained (hosts, paths, backends, TLS, status
addresses) and register themselves into the package's validator registry on import, so the
generic `validate()` path (shapes first, metadata, then the kind) stays the one entry point.

What the API server enforces is upstream's contract, no more: a host is a DNS name (or
`*.` + one), never an IP; Exact/Prefix paths are absolute and free of `//`, `/./`, `/../`,
`%2f`; a backend is a Service (name + port name XOR number) or a resource. Anything that a
data plane must additionally refuse (characters nginx would parse) is the controller's job
(kubelab.ingress.model), as ingress-nginx's admission webhook does upstream.
Pure: object in, StatusCauses out.
"""

from __future__ import annotations

import re

from kubelab.apiserver import validation as v

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
CONTROLLER_MAX = 250
PARAMETER_SCOPES = ("Cluster", "Namespace")
_WILDCARD = re.compile(r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MSG_WILDCARD = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
                "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
                "alphanumeric character (e.g. '*.example.com')")
MSG_NOT_IP = "must be a DNS name, not an IP address"


def host_errors(host: str) -> list[str]:
    """A rule's or a TLS entry's host: a DNS-1123 subdomain, or `*.` + one (wildcard)."""
    if host.startswith("*"):
        return [] if _WILDCARD.fullmatch(host) and len(host) <= 253 else [MSG_WILDCARD]
    return v.dns1123_subdomain_errors(host)


def _backend(errs: v.Causes, backend, path: str) -> None:
    b = v._dict(backend)
    service, resource = b.get("service"), b.get("resource")
    if service is not None and resource is not None:
        errs.invalid(path, backend, "cannot set both service and resource backends")
        return
    if service is None and resource is None:
        errs.invalid(path, backend, "one backend must be specified")
        return
    if resource is not None:
        r = v._dict(resource)
        for f in ("kind", "name"):
            if not r.get(f):
                errs.required(f"{path}.resource.{f}")
        return
    s = v._dict(service)
    name = s.get("name") or ""
    if not name:
        errs.required(f"{path}.service.name")
    else:
        errs.each(f"{path}.service.name", name, v.dns1035_label_errors(name))
    port = v._dict(s.get("port"))
    pname, number = port.get("name") or "", port.get("number") or 0
    ppath = f"{path}.service.port"
    if pname and number:
        errs.invalid(ppath, port, "cannot set both port name & port number")
    elif pname:
        errs.each(f"{ppath}.name", pname, v.port_name_errors(pname))
    elif number:
        if not 1 <= number <= 65535:
            errs.invalid(f"{ppath}.number", number, v.MSG_PORT_RANGE)
    else:
        errs.invalid(ppath, port, "port name or number is required")


def _http_path(errs: v.Causes, p: dict, path: str) -> None:
    ptype, text = p.get("pathType"), p.get("path") or ""
    if not ptype:
        errs.required(f"{path}.pathType", "pathType must be specified")
    elif ptype not in PATH_TYPES:
        errs.not_supported(f"{path}.pathType", ptype, PATH_TYPES)
    if ptype in ("Exact", "Prefix"):
        if not text.startswith("/"):
            errs.invalid(f"{path}.path", text, "must be an absolute path")
        for seq in INVALID_PATH_SEQUENCES:
            if seq in text:
                errs.invalid(f"{path}.path", text, f"must not contain '{seq}'")
        for suffix in INVALID_PATH_SUFFIXES:
            if text.endswith(suffix):
                errs.invalid(f"{path}.path", text, f"cannot end with '{suffix}'")
    elif ptype == "ImplementationSpecific" and text and not text.startswith("/"):
        errs.invalid(f"{path}.path", text, "must be an absolute path")
    _backend(errs, p.get("backend"), f"{path}.backend")


def _status(errs: v.Causes, obj: dict) -> None:
    lb = v._dict(v._dict(obj.get("status")).get("loadBalancer"))
    for i, ing in enumerate(v._list(lb.get("ingress"))):
        ing, at = v._dict(ing), f"status.loadBalancer.ingress[{i}]"
        if ing.get("ip") and not v._is_ip(ing["ip"]):
            errs.invalid(f"{at}.ip", ing["ip"], "must be a valid IP address")
        host = ing.get("hostname")
        if host:
            errs.each(f"{at}.hostname", host, v.dns1123_subdomain_errors(host))
            if v._is_ip(host):
                errs.invalid(f"{at}.hostname", host, "must be a DNS name, not an IP address")


def validate_ingress(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    rules = v._list(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        errs.invalid("spec.rules", rules, "either `defaultBackend` or `rules` must be specified")
    if spec.get("defaultBackend") is not None:
        _backend(errs, spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules):
        rule, at = v._dict(rule), f"spec.rules[{i}]"
        host = rule.get("host") or ""
        if host:
            if v._is_ip(host):
                errs.invalid(f"{at}.host", host, MSG_NOT_IP)
            else:
                errs.each(f"{at}.host", host, host_errors(host))
        if rule.get("http") is not None:
            paths = v._list(v._dict(rule["http"]).get("paths"))
            if not paths:
                errs.required(f"{at}.http.paths")
            for j, p in enumerate(paths):
                _http_path(errs, v._dict(p), f"{at}.http.paths[{j}]")
    for i, tls in enumerate(v._list(spec.get("tls"))):
        tls, at = v._dict(tls), f"spec.tls[{i}]"
        for j, host in enumerate(v._list(tls.get("hosts"))):
            errs.each(f"{at}.hosts[{j}]", host, host_errors(host))
        if tls.get("secretName"):
            errs.each(f"{at}.secretName", tls["secretName"], v.dns1123_subdomain_errors(tls["secretName"]))
    cls = spec.get("ingressClassName")
    if cls is not None:
        errs.each("spec.ingressClassName", cls, v.dns1123_subdomain_errors(cls))
        if CLASS_ANNOTATION in v._dict(v._dict(obj.get("metadata")).get("annotations")):
            errs.invalid(f"metadata.annotations.{CLASS_ANNOTATION}",
                         obj["metadata"]["annotations"][CLASS_ANNOTATION],
                         "can not be set when the class field is also set")
    _status(errs, obj)


def validate_ingress_class(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    controller = spec.get("controller") or ""
    if not controller:
        errs.required("spec.controller")
    elif len(controller) > CONTROLLER_MAX:
        errs.too_long("spec.controller", CONTROLLER_MAX)
    else:
        domain, slash, rest = controller.partition("/")
        if not slash or not rest:
            errs.invalid("spec.controller", controller, "must be a domain-prefixed path (such as \"acme.io/foo\")")
        else:
            errs.each("spec.controller", controller, v.dns1123_subdomain_errors(domain))
            if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
                errs.invalid("spec.controller", controller, "path must be valid URL path characters")
    params = spec.get("parameters")
    if params is not None:
        p, at = v._dict(params), "spec.parameters"
        for f in ("kind", "name"):
            if not p.get(f):
                errs.required(f"{at}.{f}")
        scope = p.get("scope")
        if scope is not None and scope not in PARAMETER_SCOPES:
            errs.not_supported(f"{at}.scope", scope, PARAMETER_SCOPES)
        if scope == "Namespace" and not p.get("namespace"):
            errs.required(f"{at}.namespace", "`parameters.scope` is set to 'Namespace'")
        if scope != "Namespace" and p.get("namespace"):
            errs.forbidden(f"{at}.namespace", "`parameters.scope` is set to 'Cluster'")


def validate_ingress_class_update(errs: v.Causes, obj: dict, old: dict) -> None:
    new_c = v._dict(obj.get("spec")).get("controller")
    old_c = v._dict(old.get("spec")).get("controller")
    if old_c and new_c != old_c:
        errs.invalid("spec.controller", new_c, v.MSG_IMMUTABLE)


VALIDATORS = {"Ingress": validate_ingress, "IngressClass": validate_ingress_class}
UPDATE_VALIDATORS = {"IngressClass": validate_ingress_class_update}
v._VALIDATORS.update(VALIDATORS)
v._UPDATE_VALIDATORS.update(UPDATE_VALIDATORS)
