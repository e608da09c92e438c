"""The Gateway API side of the ingress controller: GatewayClass, Gateway, HTTPRoute → nginx model + status.

Pure, like model.py: API objects (dicts from the informer caches) in, one frozen `GwConfig`
(what nginxconf renders) and the status every object should carry out. Nothing here talks to
the API server or nginx, so each routing and status rule is tested on hand-made objects.

What is implemented, as the Gateway API spec states it (standard channel, v1):
  * GatewayClass: ours when spec.controllerName == CONTROLLER_NAME → Accepted=True.
  * Gateway of one of our classes: each listener becomes nginx `server`s on its port. HTTP,
    and HTTPS terminated with a kubernetes.io/tls Secret in the Gateway's namespace. A listener
    on a port the Ingress side owns (80/443 by default, plus the controller's own ports) is
    refused (Accepted=False PortUnavailable): Ingresses and Gateways never fight over one
    nginx `server`. Two listeners on one port with different protocols: the later one is
    Conflicted (ProtocolConflict). A certificate in another namespace needs a ReferenceGrant
    there (else RefNotPermitted); so does a backend Service in another namespace.
  * HTTPRoute attached by parentRefs (sectionName/port narrow to listeners), allowed by the
    listener's allowedRoutes (Same or All namespaces), on the intersection of the route's and
    the listener's hostnames (wildcards are suffixes, as the spec says; nginx's `*.x` agrees).
  * Matches: path Exact/PathPrefix (element-wise), headers Exact, queryParams Exact, method;
    precedence across every route on a hostname is the spec's: Exact path, longest prefix,
    method, most headers, most query params, oldest route, then namespace/name, then rule order.
    A request whose best path candidates do not match headers etc. falls back to shorter
    prefixes (every candidate of a location includes the shorter prefixes that also match).
  * Filters: RequestHeaderModifier (set/add/remove) and RequestRedirect (scheme, hostname,
    port, statusCode, path ReplaceFullPath). backendRefs to Services with weights (an nginx
    split); a backend that is missing or has no ready endpoint takes its share of requests
    and answers 500, as the spec asks.
Everything else (RegularExpression matches, URLRewrite, RequestMirror, ResponseHeaderModifier,
ExtensionRef, backend filters, timeouts, retry, sessionPersistence, ReplacePrefixMatch,
allowedRoutes Selector, TLS Passthrough) is refused in status — the route's Accepted=False
UnsupportedValue naming the field, a listener's Accepted=False — never silently ignored.
Values that reach nginx are restricted here (header names to [A-Za-z0-9-], query names to
[A-Za-z0-9_], match and header values to printable characters without `$`, quotes or
backslashes), on top of the API server's validation, so no object can inject configuration.
"""

from __future__ import annotations

import re
from base64 import b64decode
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from kubelab.ingress.model import (
    SERVICE_NAME_LABEL, TLS_SECRET_TYPE, Endpoint, TlsCert, Upstream, _d, _endpoints, _key, _l, tls_pair_error,
    upstream_name,
)

CONTROLLER_NAME = "kubelab.dev/gateway-controller"
GROUP = "gateway.networking.k8s.io"
CATCH_ALL = "*"
MAX_TOTAL_MATCHES = 2048   # per server: bounds the map blocks one hostname can make nginx hold
SAFE_VALUE = re.compile(r"[\x20-\x7e]*")
HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")
QUERY_NAME = re.compile(r"[A-Za-z0-9_]+")
SAFE_PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/-]*")
INTERNAL_PREFIX = "/.kubelab-gw"   # nginxconf's internal rule locations live there
_SAFE_ID = re.compile(r"[^A-Za-z0-9_]")


def _safe_value(s) -> bool:
    return isinstance(s, str) and SAFE_VALUE.fullmatch(s) is not None and not any(c in s for c in '$"\\')


# --- the model nginxconf renders ---------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    """One HTTPRoute match, flattened: path + conditions + the target (a Target name)."""

    exact: bool
    path: str
    method: str                                  # "" any
    headers: tuple[tuple[str, str], ...]         # (lower-case name, value)
    query: tuple[tuple[str, str], ...]
    target: str
    rank: tuple                                  # the spec's precedence; lower wins

    def covers(self, path: str, exact_location: bool) -> bool:
        """Whether a request reaching a location for `path` can match this path."""
        if self.exact:
            return exact_location and path == self.path
        p = self.path.rstrip("/")
        return p == "" or path == p or path.startswith(p + "/")


@dataclass(frozen=True)
class Backend:
    upstream: str     # Upstream name, "" when the backend is invalid (answers 500)
    weight: int
    service: str      # ns/name:port for the comment


@dataclass(frozen=True)
class Target:
    """What one rule does: redirect, or proxy to weighted backends with header changes."""

    name: str
    route: str                                   # ns/name#rule
    backends: tuple[Backend, ...] = ()
    set_headers: tuple[tuple[str, str], ...] = ()
    add_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    redirect: tuple[int, str] | None = None      # (status, URL expression built from safe parts)


@dataclass(frozen=True)
class GwServer:
    port: int
    host: str                                    # exact, `*.a.b`, or CATCH_ALL
    tls: TlsCert | None
    matches: tuple[Match, ...]                   # sorted by rank
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class GwConfig:
    servers: tuple[GwServer, ...] = ()
    upstreams: tuple[Upstream, ...] = ()

    @property
    def certs(self) -> tuple[TlsCert, ...]:
        seen = {s.tls.name: s.tls for s in self.servers if s.tls}
        return tuple(seen[k] for k in sorted(seen))


def condition(type_: str, ok: bool, reason: str, message: str = "", generation: int = 0) -> dict:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
            "observedGeneration": generation}


@dataclass
class Result:
    config: GwConfig
    class_status: dict[str, dict] = field(default_factory=dict)     # name → status
    gateway_status: dict[str, dict] = field(default_factory=dict)   # ns/name → status (no addresses)
    route_status: dict[str, list[dict]] = field(default_factory=dict)  # ns/name → our parents entries


# --- hostnames ---------------------------------------------------------------------------------

def _host_match(wild: str, host: str) -> bool:
    return wild.startswith("*.") and host.endswith(wild[1:]) and len(host) > len(wild) - 1


def intersect(listener: str | None, route_hosts: list[str]) -> list[str]:
    """The hostnames a route serves on a listener ([] = none in common)."""
    if not route_hosts:
        return [listener or CATCH_ALL]
    if not listener:
        return list(route_hosts)
    out = []
    for h in route_hosts:
        if h == listener or _host_match(listener, h):
            out.append(h)
        elif _host_match(h, listener):
            out.append(listener)
    return sorted(set(out))


# --- the build ---------------------------------------------------------------------------------

def _gen(o: Mapping) -> int:
    return int(_d(o.get("metadata")).get("generation") or 0)


def _age(o: Mapping) -> tuple:
    return (_d(o.get("metadata")).get("creationTimestamp") or "", _key(o))


class _Unsupported(Exception):
    pass


def granted(grants: Iterable[Mapping], from_kind: str, from_ns: str, to_kind: str, to_ns: str, to_name: str) -> bool:
    """Whether a ReferenceGrant in `to_ns` lets `from_kind` objects of `from_ns` refer to the core
    `to_kind` named `to_name` (a `to` entry without a name allows every object of that kind)."""
    for g in grants:
        if _d(g.get("metadata")).get("namespace") != to_ns:
            continue
        spec = _d(g.get("spec"))
        if any(_d(f).get("group") == GROUP and _d(f).get("kind") == from_kind and _d(f).get("namespace") == from_ns
               for f in _l(spec.get("from"))) and \
                any((_d(t).get("group") or "") == "" and _d(t).get("kind") == to_kind
                    and _d(t).get("name") in (None, "", to_name) for t in _l(spec.get("to"))):
            return True
    return False


def build(*, gatewayclasses: Iterable[Mapping], gateways: Iterable[Mapping], httproutes: Iterable[Mapping],
          services: Iterable[Mapping], endpointslices: Iterable[Mapping], secrets: Iterable[Mapping],
          referencegrants: Iterable[Mapping] = (), reserved_ports: Iterable[int] = (80, 443),
          controller: str = CONTROLLER_NAME) -> Result:
    result = Result(GwConfig())
    grants = list(referencegrants)
    ours = set()
    for gc in gatewayclasses:
        if _d(gc.get("spec")).get("controllerName") == controller:
            name = _d(gc.get("metadata")).get("name", "")
            if _d(gc.get("spec")).get("parametersRef"):   # no parameters kind exists for this controller
                result.class_status[name] = {"conditions": [condition(
                    "Accepted", False, "InvalidParameters", "parametersRef is not supported by kubelab's controller; "
                    "its Gateways are not programmed", _gen(gc))]}
                continue
            ours.add(name)
            result.class_status[name] = {"conditions": [condition("Accepted", True, "Accepted", "", _gen(gc))]}
    svc_by_key = {_key(s): s for s in services}
    slices: dict[str, list[Mapping]] = {}
    for sl in endpointslices:
        meta = _d(sl.get("metadata"))
        svc = _d(meta.get("labels")).get(SERVICE_NAME_LABEL)
        if svc:
            slices.setdefault(f"{meta.get('namespace', '')}/{svc}", []).append(sl)
    secret_by_key = {_key(s): s for s in secrets}
    reserved = set(reserved_ports)
    upstreams: dict[str, Upstream] = {}

    # listeners: (gateway key, listener name) → dict(port, protocol, hostname, tls, allowed, ok)
    port_owner: dict[int, tuple[str, str]] = {}   # port → (protocol, tls-listener key)
    listeners: dict[tuple[str, str], dict] = {}
    gws = sorted((g for g in gateways if _d(g.get("spec")).get("gatewayClassName") in ours), key=_age)
    for gw in gws:
        gkey, gns = _key(gw), _d(gw.get("metadata")).get("namespace", "")
        spec, gen = _d(gw.get("spec")), _gen(gw)
        lstatus = []
        all_ok = True
        unsupported_gw = [f for f in ("addresses", "infrastructure", "backendTLS") if spec.get(f)]
        for ln in _l(spec.get("listeners")):
            ln = _d(ln)
            name, port, proto = ln.get("name", ""), ln.get("port"), ln.get("protocol")
            conds = []
            accepted, reason, msg = True, "Accepted", ""
            resolved, rreason, rmsg = True, "ResolvedRefs", ""
            conflicted, creason = False, "NoConflicts"
            tls_cert = None
            ns_from = _d(_d(ln.get("allowedRoutes")).get("namespaces")).get("from") or "Same"
            kinds = [_d(k) for k in _l(_d(ln.get("allowedRoutes")).get("kinds"))]
            supported_kinds = [{"group": GROUP, "kind": "HTTPRoute"}]
            if kinds and not any(k.get("kind") == "HTTPRoute" and (k.get("group") or GROUP) == GROUP for k in kinds):
                resolved, rreason, rmsg = False, "InvalidRouteKinds", "only HTTPRoute is supported"
                supported_kinds = []
            if proto not in ("HTTP", "HTTPS"):
                accepted, reason, msg = False, "UnsupportedProtocol", f"protocol {proto} is not supported (HTTP, HTTPS)"
            elif port in reserved:
                accepted, reason, msg = False, "PortUnavailable", \
                    f"port {port} is served by the controller's Ingress side; use another port"
            elif ns_from == "Selector":
                accepted, reason, msg = False, "UnsupportedValue", "allowedRoutes.namespaces.from Selector is not " \
                                                                   "supported (use Same or All)"
            elif port in port_owner and port_owner[port][0] != proto:
                conflicted, creason = True, "ProtocolConflict"
                accepted, reason, msg = False, "ProtocolConflict", f"port {port} is already used for " \
                                                                     f"{port_owner[port][0]}"
            if proto == "HTTPS" and accepted:
                tls = _d(ln.get("tls"))
                if (tls.get("mode") or "Terminate") != "Terminate":
                    accepted, reason, msg = False, "UnsupportedValue", "tls.mode Passthrough is not supported"
                else:
                    refs = [_d(r) for r in _l(tls.get("certificateRefs"))]
                    ref = refs[0] if refs else {}
                    rns = ref.get("namespace") or gns
                    if (ref.get("kind") or "Secret") != "Secret" or (ref.get("group") or "") != "":
                        resolved, rreason, rmsg = False, "InvalidCertificateRef", "only core Secrets are supported"
                    elif rns != gns and not granted(grants, "Gateway", gns, "Secret", rns, ref.get("name", "")):
                        resolved, rreason, rmsg = False, "RefNotPermitted", \
                            f"secret {rns}/{ref.get('name')} is in another namespace and no ReferenceGrant allows it"
                    else:
                        tls_cert, problem = _cert(secret_by_key.get(f"{rns}/{ref.get('name', '')}"), rns,
                                                  ref.get("name", ""))
                        if problem:
                            resolved, rreason, rmsg = False, "InvalidCertificateRef", problem
            ok = accepted and resolved and not conflicted
            if ok:
                port_owner.setdefault(port, (proto, f"{gkey}/{name}"))
            listeners[(gkey, name)] = {"port": port, "protocol": proto, "hostname": ln.get("hostname") or None,
                                       "tls": tls_cert, "from": ns_from, "ns": gns, "ok": ok, "attached": 0,
                                       "kinds": supported_kinds}
            all_ok &= ok
            conds = [condition("Accepted", accepted, reason, msg, gen),
                     condition("Conflicted", conflicted, creason, "", gen),
                     condition("ResolvedRefs", resolved, rreason, rmsg, gen),
                     condition("Programmed", ok, "Programmed" if ok else "Invalid", "", gen)]
            lstatus.append({"name": name, "conds": conds})
        if unsupported_gw:
            # upstream's reasons: UnsupportedAddress for spec.addresses, Invalid for the rest
            gconds = [condition("Accepted", False,
                                "UnsupportedAddress" if unsupported_gw[0] == "addresses" else "Invalid",
                                f"spec.{unsupported_gw[0]} is not supported by kubelab's controller (the address "
                                "comes from the controller Service)", gen),
                      condition("Programmed", False, "Invalid", "", gen)]
            for (k, _), li in listeners.items():
                if k == gkey:
                    li["ok"] = False
            for ls in lstatus:
                ls["conds"] = [c if c["type"] != "Programmed" else condition("Programmed", False, "Invalid",
                                                                             "the Gateway is not accepted", gen)
                               for c in ls["conds"]]
        else:
            some = any(li["ok"] for (k, _), li in listeners.items() if k == gkey)
            gconds = [condition("Accepted", True, "Accepted", "", gen),
                      condition("Programmed", some, "Programmed" if some else "Invalid",
                                "" if all_ok else "some listeners are not programmed (see status.listeners)", gen)]
        result.gateway_status[gkey] = {"conditions": gconds, "listeners": lstatus}

    # routes
    by_server: dict[tuple[int, str], list[Match]] = {}
    server_tls: dict[tuple[int, str], TlsCert | None] = {}
    targets: dict[tuple[int, str], dict[str, Target]] = {}
    gw_by_key = {_key(g): g for g in gws}
    for route in sorted(httproutes, key=_age):
        rmeta, rspec = _d(route.get("metadata")), _d(route.get("spec"))
        rns, rkey, gen = rmeta.get("namespace", ""), _key(route), _gen(route)
        parents = []
        try:
            rules, resolved, rreason, rmsg = _rules(route, svc_by_key, slices, upstreams, grants)
            unsupported = ""
        except _Unsupported as e:
            rules, resolved, rreason, rmsg, unsupported = [], True, "ResolvedRefs", "", str(e)
        for pref in _l(rspec.get("parentRefs")):
            pref = _d(pref)
            if (pref.get("group") or GROUP) != GROUP or (pref.get("kind") or "Gateway") != "Gateway":
                continue
            gkey = f"{pref.get('namespace') or rns}/{pref.get('name', '')}"
            if gkey not in gw_by_key:
                continue   # not one of our Gateways: another controller writes that status entry
            ref_out = {k: pref[k] for k in ("group", "kind", "namespace", "name", "sectionName", "port") if k in pref}
            ref_out.setdefault("group", GROUP)
            ref_out.setdefault("kind", "Gateway")
            entry = {"parentRef": ref_out, "controllerName": controller}
            cands = [(n, li) for (k, n), li in listeners.items() if k == gkey
                     and (not pref.get("sectionName") or pref["sectionName"] == n)
                     and (not pref.get("port") or pref["port"] == li["port"])]
            if unsupported:
                acc = (False, "UnsupportedValue", unsupported)
            elif not cands:
                acc = (False, "NoMatchingParent", "no listener matches sectionName/port")
            else:
                allowed = [(n, li) for n, li in cands if li["ok"] and li["kinds"]
                           and (li["from"] == "All" or li["ns"] == rns)]
                if not allowed:
                    acc = (False, "NotAllowedByListeners", "no listener allows routes from this namespace")
                else:
                    attached = 0
                    for _n, li in allowed:
                        hosts = intersect(li["hostname"], [h for h in _l(rspec.get("hostnames")) if isinstance(h, str)])
                        if not hosts:
                            continue
                        attached += 1
                        li["attached"] += 1
                        for h in hosts:
                            skey = (li["port"], h)
                            server_tls.setdefault(skey, li["tls"])
                            for m, t in rules:
                                targets.setdefault(skey, {})[t.name] = t
                                by_server.setdefault(skey, []).append(m)
                    acc = (True, "Accepted", "") if attached else \
                        (False, "NoMatchingListenerHostname", "no hostname in common with any allowed listener")
            entry["conditions"] = [condition("Accepted", *acc, gen),
                                   condition("ResolvedRefs", resolved, rreason, rmsg, gen)]
            parents.append(entry)
        if parents:
            result.route_status[rkey] = parents

    for gkey, st in result.gateway_status.items():
        for ls in st["listeners"]:
            li = listeners[(gkey, ls["name"])]
            ls["attachedRoutes"] = li["attached"]
            ls["supportedKinds"] = li["kinds"]
            ls["conditions"] = ls.pop("conds")
    servers = []
    for skey in sorted(by_server):
        matches = tuple(sorted(by_server[skey], key=lambda m: m.rank)[:MAX_TOTAL_MATCHES])
        used = {m.target for m in matches}
        servers.append(GwServer(skey[0], skey[1], server_tls.get(skey), matches,
                                tuple(t for n, t in sorted(targets[skey].items()) if n in used)))
    result.config = GwConfig(tuple(servers), tuple(upstreams[k] for k in sorted(upstreams)))
    return result


def _cert(secret: Mapping | None, ns: str, name: str) -> tuple[TlsCert | None, str]:
    data = _d(_d(secret).get("data"))
    if secret is None or secret.get("type") != TLS_SECRET_TYPE or not data.get("tls.crt") or not data.get("tls.key"):
        return None, f"secret {ns}/{name} is missing or not of type {TLS_SECRET_TYPE} with tls.crt and tls.key"
    try:
        cert = TlsCert(_SAFE_ID.sub("-", f"gw_{ns}_{name}"), b64decode(data["tls.crt"]).decode(),
                       b64decode(data["tls.key"]).decode())
    except (ValueError, UnicodeDecodeError):
        return None, f"secret {ns}/{name} is not PEM"
    problem = tls_pair_error(cert.cert, cert.key)
    return (None, f"secret {ns}/{name}: {problem}") if problem else (cert, "")


_UNSUPPORTED_RULE_FIELDS = ("timeouts", "retry", "sessionPersistence")
_SUPPORTED_FILTERS = ("RequestHeaderModifier", "RequestRedirect")


def _rules(route: Mapping, svc_by_key, slices, upstreams: dict[str, Upstream],
           grants: list[Mapping]) -> tuple[list, bool, str, str]:
    """[(Match, Target)], and the ResolvedRefs condition. Raises _Unsupported naming the field."""
    meta, spec = _d(route.get("metadata")), _d(route.get("spec"))
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    age = _age(route)
    out = []
    resolved, rreason, rmsg = True, "ResolvedRefs", ""
    for i, rule in enumerate(_l(spec.get("rules"))):
        rule, at = _d(rule), f"spec.rules[{i}]"
        for f in _UNSUPPORTED_RULE_FIELDS:
            if rule.get(f):
                raise _Unsupported(f"{at}.{f} is not supported")
        tname = _SAFE_ID.sub("_", f"{ns}__{name}__{i}")
        sets, adds, removes, redirect = (), (), (), None
        for j, f in enumerate(_l(rule.get("filters"))):
            f, fp = _d(f), f"{at}.filters[{j}]"
            if f.get("type") not in _SUPPORTED_FILTERS:
                raise _Unsupported(f"{fp}.type {f.get('type')} is not supported")
            if f["type"] == "RequestHeaderModifier":
                mod = _d(f.get("requestHeaderModifier"))
                pairs = {}
                for op in ("set", "add"):
                    items = []
                    for h in _l(mod.get(op)):
                        h = _d(h)
                        if not HEADER_NAME.fullmatch(str(h.get("name", ""))) or not _safe_value(h.get("value")):
                            raise _Unsupported(f"{fp}.requestHeaderModifier.{op}: header names of letters, digits "
                                               "and '-', values of printable characters without '$', '\"' or '\\'")
                        items.append((h["name"], h["value"]))
                    pairs[op] = tuple(items)
                sets, adds = pairs["set"], pairs["add"]
                removes = tuple(str(x) for x in _l(mod.get("remove")))
                if not all(HEADER_NAME.fullmatch(x) for x in removes):
                    raise _Unsupported(f"{fp}.requestHeaderModifier.remove: header names of letters, digits and '-'")
            else:
                r = _d(f.get("requestRedirect"))
                p = _d(r.get("path"))
                if p and p.get("type") != "ReplaceFullPath":
                    raise _Unsupported(f"{fp}.requestRedirect.path.type {p.get('type')} is not supported")
                new_path = p.get("replaceFullPath") if p else None
                if new_path is not None and not SAFE_PATH.fullmatch(str(new_path)):
                    raise _Unsupported(f"{fp}.requestRedirect.path.replaceFullPath has characters nginx would parse")
                scheme = r.get("scheme") or "$scheme"
                host = r.get("hostname") or "$host"
                port = r.get("port")
                port_s = f":{port}" if port and not (scheme == "http" and port == 80 or scheme == "https" and
                                                     port == 443) else ""
                if port is None and not r.get("scheme"):
                    port_s = ":$server_port"
                url = f"{scheme}://{host}{port_s}" + (f"{new_path}$is_args$args" if new_path else "$request_uri")
                redirect = (int(r.get("statusCode") or 302), url)
        backends = []
        for j, b in enumerate(_l(rule.get("backendRefs"))):
            b, bp = _d(b), f"{at}.backendRefs[{j}]"
            if b.get("filters"):
                raise _Unsupported(f"{bp}.filters are not supported")
            weight = b.get("weight", 1)
            bns, bname, port = b.get("namespace") or ns, b.get("name", ""), b.get("port")
            label = f"{bns}/{bname}:{port}"
            if (b.get("kind") or "Service") != "Service" or (b.get("group") or "") != "":
                resolved, rreason, rmsg = False, "InvalidKind", f"{bp}: only Services are supported"
                backends.append(Backend("", weight, label))
                continue
            if bns != ns and not granted(grants, "HTTPRoute", ns, "Service", bns, bname):
                resolved, rreason, rmsg = False, "RefNotPermitted", \
                    f"{bp}: Service {label} is in another namespace and no ReferenceGrant allows it"
                backends.append(Backend("", weight, label))
                continue
            svc = svc_by_key.get(f"{bns}/{bname}")
            if svc is None:
                resolved, rreason, rmsg = False, "BackendNotFound", f"{bp}: Service {bns}/{bname} not found"
                backends.append(Backend("", weight, label))
                continue
            eps, _ = _endpoints(bns, svc, {"number": port}, slices.get(f"{bns}/{bname}", []))
            up = ""
            if eps:
                up = upstream_name(bns, bname, port)
                upstreams[up] = Upstream(up, label, tuple(eps))
            backends.append(Backend(up, weight, label))
        target = Target(tname, f"{ns}/{name}#{i}", tuple(backends), sets, adds, removes, redirect)
        for j, m in enumerate(_l(rule.get("matches")) or [{}]):
            m, mp = _d(m), f"{at}.matches[{j}]"
            path = _d(m.get("path"))
            ptype, pvalue = path.get("type") or "PathPrefix", path.get("value") or "/"
            if ptype not in ("Exact", "PathPrefix"):
                raise _Unsupported(f"{mp}.path.type {ptype} is not supported")
            if not SAFE_PATH.fullmatch(pvalue) or pvalue.startswith(INTERNAL_PREFIX):
                raise _Unsupported(f"{mp}.path.value has characters nginx would parse or is under {INTERNAL_PREFIX}")
            heads, query = [], []
            for kind, items, pat in (("headers", heads, HEADER_NAME), ("queryParams", query, QUERY_NAME)):
                for h in _l(m.get(kind)):
                    h = _d(h)
                    if (h.get("type") or "Exact") != "Exact":
                        raise _Unsupported(f"{mp}.{kind}: type {h.get('type')} is not supported")
                    if not pat.fullmatch(str(h.get("name", ""))) or not _safe_value(h.get("value")):
                        raise _Unsupported(f"{mp}.{kind}: names must match {pat.pattern}, values printable without "
                                           "'$', '\"' or '\\'")
                    items.append(((h["name"].lower() if kind == "headers" else h["name"]), h["value"]))
            exact = ptype == "Exact"
            rank = (0 if exact else 1, -len(pvalue.rstrip("/") or "/"), 0 if m.get("method") else 1,
                    -len(heads), -len(query), age, i, j)
            out.append((Match(exact, pvalue if exact else (pvalue.rstrip("/") or "/"), m.get("method") or "",
                              tuple(sorted(heads)), tuple(sorted(query)), tname, rank), target))
    return out, resolved, rreason, rmsg


def status_addresses(service: Mapping | None) -> list[dict]:
    """A Gateway's status.addresses: the controller Service's load balancer addresses."""
    out = []
    for i in _l(_d(_d(_d(service).get("status")).get("loadBalancer")).get("ingress")):
        i = _d(i)
        if i.get("ip"):
            entry = {"type": "IPAddress", "value": i["ip"]}
        elif i.get("hostname"):
            entry = {"type": "Hostname", "value": i["hostname"]}
        else:
            continue
        if entry not in out:
            out.append(entry)
    return out


__all__ = ["Backend", "CONTROLLER_NAME", "Endpoint", "GwConfig", "GwServer", "Match", "Result", "Target", "build",
           "intersect", "status_addresses"]
