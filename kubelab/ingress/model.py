"""The ingress controller's view of the cluster: Ingresses boiled down to what nginx needs.

Pure: API objects (plain dicts from the informer caches) in, one frozen `Config` out, plus the
`Notice`s (Events) about what was refused or ignored. The renderer (nginxconf.py) only sees
this, so every routing decision is testable on hand-made objects and the whole nginx.conf
is checked in one string.

Rules, as ingress-nginx applies them (and the Ingress API documents):
  * an Ingress is ours when its class (spec.ingressClassName, else the legacy annotation
    kubernetes.io/ingress.class) is one of our IngressClasses (spec.controller == ours), or
    when it has no class and one of our IngressClasses is marked default (what upstream's
    DefaultIngressClass admission would have written in);
  * one nginx `server` per host; rules without a host go to the catch-all server `_`;
  * a path is owned by the oldest Ingress that claims it (creationTimestamp, then
    namespace/name); Exact beats Prefix for the same path; later claimants get an Event;
  * a backend resolves Service → port (by number or name) → the ready endpoints of its
    EndpointSlices (by pod IP: nginx talks to pods directly, as ingress-nginx does); a
    backend without any ready endpoint answers 503;
  * the catch-all server's `/` is the oldest Ingress's spec.defaultBackend, else the
    controller's own default backend (404);
  * TLS: a `kubernetes.io/tls` Secret named in spec.tls, for the hosts listed there
    (SNI picks the server); plain HTTP to such a host is redirected (308), ingress-nginx's
    ssl-redirect default.
Defence in depth against config injection: hosts must be DNS names (or `*.` + one) and paths
may use only URL characters nginx does not parse (no quotes, `;`, `{`, `}`, `$`, `#`, `\\`,
whitespace); anything else is refused here with an Event, whatever the API server let in.
"""

from __future__ import annotations

import re
from base64 import b64decode
from dataclasses import dataclass
from typing import Iterable, Mapping

CONTROLLER = "k8s.io/ingress-nginx"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TLS_SECRET_TYPE = "kubernetes.io/tls"
CATCH_ALL = "_"
DEFAULT_BACKEND = "upstream-default-backend"  # the controller's own 404 (served by nginx itself)
SUPPORTED_ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"

SAFE_PATH = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/-]*")
SAFE_HOST = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_UPSTREAM_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
MAX_HOST = 253
MAX_PATH = 1024


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int


@dataclass(frozen=True)
class Upstream:
    """One Service port's ready endpoints (nginx `upstream` block). Never empty: a backend
    without endpoints has no upstream and its locations answer 503."""

    name: str
    service: str  # ns/name:port, for the comment
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class Location:
    """One nginx location: `=` exact, `^~` a Kubernetes Prefix element (`/foo/`), `` nginx's
    own prefix (ImplementationSpecific)."""

    modifier: str   # "=" | "^~" | ""
    path: str
    upstream: str   # an Upstream name, DEFAULT_BACKEND, or "" for 503 (no ready endpoint)
    ingress: str    # ns/name that owns it
    service: str    # ns/name:port, for the comment ("" for the default backend)


@dataclass(frozen=True)
class TlsCert:
    name: str       # ns_secret: the file names under the cert directory
    cert: str       # PEM
    key: str        # PEM


@dataclass(frozen=True)
class Server:
    host: str                       # exact, `*.a.b`, or CATCH_ALL
    locations: tuple[Location, ...]
    tls: TlsCert | None = None


@dataclass(frozen=True)
class Config:
    servers: tuple[Server, ...]     # CATCH_ALL first
    upstreams: tuple[Upstream, ...]

    @property
    def certs(self) -> tuple[TlsCert, ...]:
        seen: dict[str, TlsCert] = {}
        for s in self.servers:
            if s.tls:
                seen.setdefault(s.tls.name, s.tls)
        return tuple(seen[k] for k in sorted(seen))


@dataclass(frozen=True)
class Notice:
    """An Event to record on an Ingress (namespace/name)."""

    namespace: str
    name: str
    type: str     # Normal | Warning
    reason: str
    message: str


def _d(v) -> dict:
    return v if isinstance(v, dict) else {}


def _l(v) -> list:
    return v if isinstance(v, list) else []


def _key(o: Mapping) -> str:
    m = _d(o.get("metadata"))
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def our_classes(classes: Iterable[Mapping], controller: str = CONTROLLER) -> tuple[set[str], bool]:
    """(names of our IngressClasses, whether one of them is the cluster default)."""
    names, default = set(), False
    for c in classes:
        if _d(c.get("spec")).get("controller") == controller:
            meta = _d(c.get("metadata"))
            names.add(meta.get("name", ""))
            default |= _d(meta.get("annotations")).get(DEFAULT_CLASS_ANNOTATION) == "true"
    return names, default


def ingress_class(ing: Mapping) -> str | None:
    cls = _d(ing.get("spec")).get("ingressClassName")
    return cls or _d(_d(ing.get("metadata")).get("annotations")).get(LEGACY_CLASS_ANNOTATION) or None


def is_ours(ing: Mapping, names: set[str], default: bool) -> bool:
    cls = ingress_class(ing)
    return cls in names if cls else default


def upstream_name(namespace: str, service: str, port: str | int) -> str:
    """`ns_svc_port`: `_` never occurs in a namespace, Service or port name, so no two collide."""
    return _UPSTREAM_CHARS.sub("-", f"{namespace}_{service}_{port}")


def _endpoints(namespace: str, svc: Mapping, port_ref: Mapping,
               slices: list[Mapping]) -> tuple[tuple[Endpoint, ...], str]:
    """The ready endpoints behind one Service port, and the port's display name."""
    number, pname = port_ref.get("number"), port_ref.get("name")
    sport = None
    for p in _l(_d(svc.get("spec")).get("ports")):
        p = _d(p)
        if (number and p.get("port") == number) or (pname and p.get("name") == pname):
            sport = p
            break
    label = str(number or pname)
    if sport is None:
        return (), label
    name = sport.get("name") or ""
    out: set[Endpoint] = set()
    for sl in slices:
        ports = [_d(p) for p in _l(sl.get("ports")) if (_d(p).get("name") or "") == name]
        if not ports or not isinstance(ports[0].get("port"), int):
            continue
        for ep in _l(sl.get("endpoints")):
            ep = _d(ep)
            if _d(ep.get("conditions")).get("ready") is False:
                continue
            for addr in _l(ep.get("addresses"))[:1]:
                out.add(Endpoint(str(addr), ports[0]["port"]))
    return tuple(sorted(out)), label


def _locations_for(path_type: str, path: str) -> list[tuple[str, str]]:
    if path_type == "Exact":
        return [("=", path)]
    if path_type == "Prefix":
        p = path.rstrip("/")
        return [("^~", "/")] if not p else [("=", p), ("^~", p + "/")]
    return [("", path or "/")]  # ImplementationSpecific: nginx's own prefix match


_TYPE_ORDER = {"Exact": 0, "Prefix": 1, "ImplementationSpecific": 2}


def build(*, ingresses: Iterable[Mapping], classes: Iterable[Mapping], services: Iterable[Mapping],
          endpointslices: Iterable[Mapping], secrets: Iterable[Mapping],
          controller: str = CONTROLLER) -> tuple[Config, list[Notice]]:
    names, default = our_classes(classes, controller)
    svc_by_key = {_key(s): s for s in services}
    slices_by_svc: dict[str, list[Mapping]] = {}
    for sl in endpointslices:
        meta = _d(sl.get("metadata"))
        svc = _d(meta.get("labels")).get(SERVICE_NAME_LABEL)
        if svc:
            slices_by_svc.setdefault(f"{meta.get('namespace', '')}/{svc}", []).append(sl)
    secret_by_key = {_key(s): s for s in secrets}
    notices: list[Notice] = []
    upstreams: dict[str, Upstream] = {}

    def note(ns: str, name: str, type_: str, reason: str, message: str) -> None:
        notices.append(Notice(ns, name, type_, reason, message))

    def backend(ns: str, b: Mapping, ing_name: str) -> tuple[str, str]:
        """(upstream name or "" for 503, service label)."""
        s = _d(b.get("service"))
        if not s:
            note(ns, ing_name, "Warning", "UnsupportedBackend",
                 "resource backends are not supported by this controller; answering 503")
            return "", ""
        port = _d(s.get("port"))
        svc = svc_by_key.get(f"{ns}/{s.get('name', '')}")
        eps, label = ((), str(port.get("number") or port.get("name")))
        if svc is not None and _d(svc.get("spec")).get("type") != "ExternalName":
            eps, label = _endpoints(ns, svc, port, slices_by_svc.get(f"{ns}/{s.get('name', '')}", []))
        service = f"{ns}/{s.get('name', '')}:{label}"
        if not eps:
            return "", service
        name = upstream_name(ns, s.get("name", ""), label)
        upstreams[name] = Upstream(name, service, eps)
        return name, service

    ours = []
    for ing in ingresses:
        meta = _d(ing.get("metadata"))
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if not is_ours(ing, names, default):
            cls = ingress_class(ing)
            note(ns, name, "Normal", "Ignored",
                 f"ingress class {cls!r} is not handled by {controller}" if cls else
                 f"no ingress class and no default IngressClass of {controller}; ignored")
            continue
        ours.append(ing)
        odd = sorted(k for k in _d(meta.get("annotations")) if k.startswith(SUPPORTED_ANNOTATION_PREFIX))
        if odd:
            note(ns, name, "Warning", "UnsupportedAnnotation",
                 f"annotations not implemented by kubelab's controller, ignored: {', '.join(odd)}")
    ours.sort(key=lambda i: (_d(i.get("metadata")).get("creationTimestamp") or "", _key(i)))

    # (host, modifier, path) -> Location; claims sorted so that the winner comes first
    claims: list[tuple[int, int, str, str, str, str, Mapping, str]] = []
    tls_for_host: dict[str, TlsCert] = {}
    default_backend: tuple[str, str, str] | None = None
    for order, ing in enumerate(ours):
        meta, spec = _d(ing.get("metadata")), _d(ing.get("spec"))
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if spec.get("defaultBackend") is not None and default_backend is None:
            up, service = backend(ns, _d(spec["defaultBackend"]), name)
            default_backend = (up, f"{ns}/{name}", service)
        for rule in _l(spec.get("rules")):
            rule = _d(rule)
            host = rule.get("host") or CATCH_ALL
            if host != CATCH_ALL and (len(host) > MAX_HOST or not SAFE_HOST.fullmatch(host)):
                note(ns, name, "Warning", "InvalidHost", f"host {host!r} refused: not a DNS name")
                continue
            for p in _l(_d(rule.get("http")).get("paths")):
                p = _d(p)
                ptype, path = p.get("pathType") or "ImplementationSpecific", p.get("path") or "/"
                if len(path) > MAX_PATH or not SAFE_PATH.fullmatch(path):
                    note(ns, name, "Warning", "InvalidPath",
                         f"path {path[:80]!r} refused: only URL characters nginx does not interpret are allowed")
                    continue
                for modifier, lpath in _locations_for(ptype, path):
                    claims.append((_TYPE_ORDER.get(ptype, 2), order, host, modifier, lpath, ns, _d(p.get("backend")),
                                   name))
        for t in _l(spec.get("tls")):
            t = _d(t)
            secret_name = t.get("secretName")
            if not secret_name:
                continue
            secret = secret_by_key.get(f"{ns}/{secret_name}")
            data = _d(_d(secret).get("data"))
            if secret is None or secret.get("type") != TLS_SECRET_TYPE or not data.get("tls.crt") \
                    or not data.get("tls.key"):
                note(ns, name, "Warning", "InvalidTLSSecret",
                     f"secret {ns}/{secret_name} is missing or not of type {TLS_SECRET_TYPE} with tls.crt and tls.key")
                continue
            try:
                cert = TlsCert(_UPSTREAM_CHARS.sub("-", f"{ns}_{secret_name}"), b64decode(data["tls.crt"]).decode(),
                               b64decode(data["tls.key"]).decode())
            except (ValueError, UnicodeDecodeError):
                note(ns, name, "Warning", "InvalidTLSSecret", f"secret {ns}/{secret_name} is not PEM")
                continue
            problem = tls_pair_error(cert.cert, cert.key)
            if problem:  # nginx -t would refuse the whole file: one bad Secret must not freeze every update
                note(ns, name, "Warning", "InvalidTLSSecret", f"secret {ns}/{secret_name}: {problem}")
                continue
            for h in _l(t.get("hosts")):
                if isinstance(h, str) and SAFE_HOST.fullmatch(h):
                    tls_for_host.setdefault(h, cert)

    # nginx refuses two locations on one path (`^~ /x/` and `/x/` included): one owner per
    # (exact?, path); Exact claims first, then Prefix, then ImplementationSpecific, oldest first.
    by_host: dict[str, dict[tuple[bool, str], Location]] = {CATCH_ALL: {}}
    for _, _, host, modifier, lpath, ns, b, name in sorted(claims, key=lambda c: (c[0], c[1])):
        locs = by_host.setdefault(host, {})
        slot = (modifier == "=", lpath)
        if slot in locs:
            owner = locs[slot].ingress
            if owner != f"{ns}/{name}":
                note(ns, name, "Warning", "PathConflict",
                     f"{host} {modifier or 'prefix'} {lpath} is already served by ingress {owner} (the older one wins)")
            continue
        up, service = backend(ns, b, name)
        locs[slot] = Location(modifier, lpath, up, f"{ns}/{name}", service)
    catch_all = by_host[CATCH_ALL]
    if (False, "/") not in catch_all:
        up, owner, service = default_backend or (DEFAULT_BACKEND, "", "")
        catch_all[(False, "/")] = Location("", "/", up, owner, service)
    servers = []
    for host in sorted(by_host, key=lambda h: (h != CATCH_ALL, h)):
        locs = tuple(sorted(by_host[host].values(), key=lambda loc: (loc.path, loc.modifier)))
        servers.append(Server(host, locs, tls_for_host.get(host) if host != CATCH_ALL else None))
    return Config(tuple(servers), tuple(upstreams[k] for k in sorted(upstreams))), notices


def tls_pair_error(cert_pem: str, key_pem: str) -> str | None:
    """Why nginx would refuse this certificate and key (None: it will load them). Checked here,
    as ingress-nginx does, because a config that fails `nginx -t` is not applied at all."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        return "tls.crt is not a PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        return "tls.key is not an unencrypted PEM private key"
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, raw) != \
            key.public_key().public_bytes(serialization.Encoding.DER, raw):
        return "tls.key does not match the certificate in tls.crt"
    return None


def status_addresses(service: Mapping | None) -> list[dict]:
    """What each Ingress's status.loadBalancer.ingress gets: the controller Service's load
    balancer addresses (ip/hostname), as ingress-nginx's --publish-service does."""
    out = []
    for i in _l(_d(_d(_d(service).get("status")).get("loadBalancer")).get("ingress")):
        i = _d(i)
        entry = {k: i[k] for k in ("ip", "hostname") if i.get(k)}
        if entry and entry not in out:
            out.append(entry)
    return out
