"""HTTP routes of the API server: route the request, call the registry, render the answer.

Resource paths are routed by hand (one catch-all, `ResourceRouter`) rather than one FastAPI
route per resource and verb: the grammar is small and regular (request.py), and this keeps
per-request overhead low. `ResourceHandler` has one method per verb; `COLLECTION_ROUTES` and
`OBJECT_ROUTES` below are the whole routing table — a new subresource is one line there and
one method on the handler. Every error leaves as a Kubernetes Status.

The ASGI stack, outermost first: security.Guard (authn, authz, limits; parses the path once
into the scope) → ResourceRouter (resource paths → ResourceHandler) → FastAPI (discovery,
health, OpenAPI, websockets, lifespan).
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from kubelab.resources import BY_PLURAL, ResourceType
from kubelab.serving import health_report

from . import discovery, eviction, metricsapi, nodeproxy, portforward, tokenrequest
from . import status as st
from .bootstrap import bootstrap
from .metrics import Metrics
from .registry import Registry
from .request import (
    JSON_CT,
    OPTIONS_KIND,
    Target,
    decode_body,
    field_validation,
    options_from_query,
    read_body,
    target_of,
    wants_table,
    watch_requested,
)
from .security import Guard, SecurityConfig
from .selector import SelectorError, labels_match, parse_fields, parse_labels
from .storage import Storage

log = logging.getLogger("kubelab.apiserver")


@dataclass
class Settings:
    etcd_servers: str = "http://127.0.0.1:2379"
    advertise_address: str = "127.0.0.1"
    secure_port: int = 6443
    service_cidr: str = "10.96.0.0/12"
    pod_cidr: str = "10.244.0.0/16"
    dns_domain: str = "cluster.local"
    bookmark_interval: float = 5.0
    security: dict | None = None  # security.SecurityConfig fields (TLS client CA, tokens, authz, limits)
    kubelet_client: dict | None = None  # nodeproxy.kubelet_ssl_context kwargs: HTTPS to node agents
    service_external_ip_cidrs: list[str] | None = None  # Service externalIPs allowed (externalips.py)


SETTINGS_ENV = "KUBELAB_APISERVER_SETTINGS"


def app_from_env() -> Guard:
    """The app for `--workers N` processes, configured from the environment."""
    import os
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return create_app(Settings(**json.loads(os.environ[SETTINGS_ENV])))


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _json(obj, code: int = 200) -> Response:
    return Response(_dumps(obj), status_code=code, media_type=JSON_CT)


def _status(err: st.StatusError) -> Response:
    return Response(_dumps(err.to_status()), status_code=err.code, media_type=JSON_CT, headers=err.headers)


_NOT_ALLOWED = "the server does not allow this method on the requested resource"
MAX_WARNING_BYTES = 4096  # upstream truncates the Warning headers of one response near 4 KiB too


def add_warnings(response: Response, warnings: list[str]) -> None:
    """One `Warning: 299 - "<text>"` header per warning (RFC 7234, as upstream writes them;
    kubectl prints each as `Warning: <text>`)."""
    total = 0
    for text in dict.fromkeys(warnings):
        value = '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        total += len(value)
        if total > MAX_WARNING_BYTES:
            break
        # headers travel as latin-1: pass a UTF-8 text through byte for byte, as Go writes it
        response.headers.append("Warning", value.encode().decode("latin-1"))


def _to_table(rt: ResourceType, objs: list[dict], rv: str, include_object: str | None = None) -> dict:
    from . import tables
    return tables.to_table(rt, objs, resource_version=rv, include_object=include_object or "Metadata")


def _etcd_unavailable(e: Exception) -> bool:
    """etcd unreachable or timing out: a 503 the client retries, not an internal error."""
    return type(e).__module__.split(".")[0] in ("aetcd", "grpc")


# ---- the routing table -------------------------------------------------------------------
# HTTP method → ResourceHandler method, for a collection (`/…/pods`) and for one object or
# its subresource (`/…/pods/NAME[/SUB]`, keyed by (subresource or None, method); method "*":
# any). Whatever is not here is 405. A new subresource: one line here, one method below.

COLLECTION_ROUTES: dict[str, str] = {"GET": "list", "POST": "create", "DELETE": "delete_collection"}

OBJECT_ROUTES: dict[tuple[str | None, str], str] = {
    (None, "GET"): "get", (None, "PUT"): "update", (None, "PATCH"): "patch", (None, "DELETE"): "delete",
    ("status", "GET"): "get", ("status", "PUT"): "update", ("status", "PATCH"): "patch",
    ("finalize", "GET"): "get", ("finalize", "PUT"): "update",
    ("scale", "GET"): "get_scale", ("scale", "PUT"): "update_scale", ("scale", "PATCH"): "patch",
    # GET on binding/token reads the object, as before this table (upstream answers 405)
    ("binding", "GET"): "get", ("binding", "POST"): "bind",
    ("eviction", "POST"): "evict",  # policy/v1 Eviction (`kubectl drain`), PodDisruptionBudgets honoured
    ("token", "GET"): "get", ("token", "POST"): "token",
    ("log", "GET"): "pod_log",
    ("exec", "*"): "needs_websocket", ("attach", "*"): "needs_websocket",
    # kubectl ≤ 1.30 asks for a raw SPDY upgrade, which an ASGI server cannot take over: a clear 400
    ("portforward", "*"): "portforward_refused",
    ("ephemeralcontainers", "GET"): "get",
    ("ephemeralcontainers", "PUT"): "ephemeral_refused", ("ephemeralcontainers", "PATCH"): "ephemeral_refused",
    ("proxy", "*"): "node_proxy",
}

# Subresources that upgrade to a WebSocket: FastAPI routes them (path → ResourceHandler method).
WEBSOCKET_ROUTES: dict[str, str] = {
    "/api/v1/namespaces/{namespace}/pods/{name}/exec": "pod_exec",
    "/api/v1/namespaces/{namespace}/pods/{name}/attach": "pod_attach",
    "/api/v1/namespaces/{namespace}/pods/{name}/portforward": "pod_portforward",
}


class ResourceHandler:
    """Serves the resource paths: one method per verb, each `(target, request, call) → Response`.

    `call` carries what the query says about the whole request (dry run, field validation,
    a collection's selectors) and collects the warnings. Errors leave as StatusError and
    become a Status in `__call__`."""

    def __init__(self, registry: Registry, metrics: Metrics, *, sa_signer: tokenrequest.Signer,
                 kubelet_tls) -> None:
        self.registry = registry
        self.metrics = metrics
        self.sa_signer = sa_signer
        self.kubelet_tls = kubelet_tls

    async def __call__(self, target: Target, request: Request) -> Response:
        started = time.perf_counter()
        verb, res, code = request.method.lower(), target.rt.plural + (f"/{target.sub}" if target.sub else ""), 500
        warnings: list[str] = []  # sent even with an error, as upstream sends what it recorded
        try:
            try:
                response = await self.dispatch(target, request, Call(request, warnings))
                if isinstance(response, StreamingResponse):
                    verb = "watch"
            except st.StatusError as e:
                response = _status(e)
            except Exception as e:
                if not _etcd_unavailable(e):
                    raise
                log.warning("etcd unavailable on %s %s: %s", request.method, request.url.path, e)
                response = _status(st.StatusError(503, f"etcdserver: unavailable ({type(e).__name__}); try again",
                                                  reason="ServiceUnavailable", headers={"Retry-After": "1"}))
            if warnings:
                add_warnings(response, warnings)
            code = response.status_code
            return response
        except Exception as e:
            log.exception("internal error on %s %s", request.method, request.url.path)
            return _status(st.StatusError(500, f"Internal error occurred: {type(e).__name__}"))
        finally:
            self.metrics.observe(verb, res, code, time.perf_counter() - started)

    async def dispatch(self, t: Target, request: Request, call: "Call") -> Response:
        method = request.method
        if t.name is None:
            call.selectors = _selectors(t, request.query_params)  # a bad selector is a 400 on any verb
            name = COLLECTION_ROUTES.get(method)
        else:
            name = OBJECT_ROUTES.get((t.sub, method)) or OBJECT_ROUTES.get((t.sub, "*"))
        if name is None:
            raise st.StatusError(405, _NOT_ALLOWED)
        return await getattr(self, name)(t, request, call)

    async def get_object(self, plural: str, namespace: str | None, name: str) -> dict:
        """nodeproxy's and tokenrequest's way to read pods, nodes and service accounts."""
        return await self.registry.get(BY_PLURAL[plural], namespace, name)

    # -- collections

    async def list(self, t: Target, request: Request, call: "Call") -> Response:
        q = request.query_params
        labels, fields = call.selectors
        if watch_requested(q.getlist("watch")):
            return self.watch(t, request, labels, fields)
        limit = q.get("limit")
        listed = await self.registry.list(t.rt, t.namespace, labels=labels, fields=fields,
                                          limit=int(limit) if limit and limit.isdigit() else 0,
                                          continue_token=q.get("continue"),
                                          resource_version=q.get("resourceVersion"))
        if wants_table(request):
            table = _to_table(t.rt, listed["items"], listed["metadata"]["resourceVersion"], q.get("includeObject"))
            if "continue" in listed["metadata"]:
                table["metadata"]["continue"] = listed["metadata"]["continue"]
            return _json(table)
        return _json(listed)

    def watch(self, t: Target, request: Request, labels, fields) -> StreamingResponse:
        q = request.query_params
        timeout = q.get("timeoutSeconds")
        table = wants_table(request)
        events = self.registry.watch(t.rt, t.namespace, resource_version=q.get("resourceVersion"), labels=labels,
                                     fields=fields, bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
                                     timeout=float(timeout) if timeout and timeout.isdigit() else 1800.0)

        async def stream():
            try:
                async for ev in events:
                    if table and ev["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        obj = ev["object"]
                        ev = {"type": ev["type"],
                              "object": _to_table(t.rt, [obj], obj["metadata"].get("resourceVersion", ""),
                                                q.get("includeObject"))}
                    yield _dumps(ev) + b"\n"
            except st.StatusError as e:
                yield _dumps({"type": "ERROR", "object": e.to_status()}) + b"\n"
            finally:
                await events.aclose()

        return StreamingResponse(stream(), media_type=JSON_CT)

    async def create(self, t: Target, request: Request, call: "Call") -> Response:
        body = await _body(request)
        return _json(await self.registry.create(t.rt, t.namespace, body, dry_run=call.dry_run,
                                                field_validation=call.validation, warnings=call.warnings), 201)

    async def delete_collection(self, t: Target, request: Request, call: "Call") -> Response:
        labels, fields = call.selectors
        options = await _delete_options(request)
        return _json(await self.registry.delete_collection(t.rt, t.namespace, labels=labels, fields=fields,
                                                           options=options))

    # -- one object

    async def get(self, t: Target, request: Request, call: "Call") -> Response:
        obj = await self.registry.get(t.rt, t.namespace, t.name)
        if wants_table(request):
            return _json(_to_table(t.rt, [obj], obj["metadata"]["resourceVersion"],
                                   request.query_params.get("includeObject")))
        return _json(obj)

    async def update(self, t: Target, request: Request, call: "Call") -> Response:
        body = await _body(request)
        return _json(await self.registry.update(t.rt, t.namespace, t.name, body, subresource=t.sub,
                                                dry_run=call.dry_run, field_validation=call.validation,
                                                warnings=call.warnings))

    async def patch(self, t: Target, request: Request, call: "Call") -> Response:
        ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await read_body(request)
        return _json(await self.registry.patch(t.rt, t.namespace, t.name, body, ct, subresource=t.sub,
                                               dry_run=call.dry_run,
                                               field_manager=request.query_params.get("fieldManager"),
                                               field_validation=call.validation, warnings=call.warnings))

    async def delete(self, t: Target, request: Request, call: "Call") -> Response:
        options = await _delete_options(request)
        return _json(await self.registry.delete(t.rt, t.namespace, t.name, options, dry_run=call.dry_run))

    # -- subresources

    async def get_scale(self, t: Target, request: Request, call: "Call") -> Response:
        return _json(await self.registry.get_scale(t.rt, t.namespace, t.name))

    async def update_scale(self, t: Target, request: Request, call: "Call") -> Response:
        body = await _body(request)
        return _json(await self.registry.update_scale(t.rt, t.namespace, t.name, body, dry_run=call.dry_run,
                                                      field_validation=call.validation, warnings=call.warnings))

    async def bind(self, t: Target, request: Request, call: "Call") -> Response:
        body = await _body(request)
        return _json(await self.registry.bind(t.namespace, t.name, body), 201)

    async def evict(self, t: Target, request: Request, call: "Call") -> Response:
        body = await _body(request)
        return _json(await eviction.evict(self.registry, t.namespace, t.name, body, dry_run=call.dry_run), 201)

    async def token(self, t: Target, request: Request, call: "Call") -> Response:
        body = await _body(request)
        if self.registry.admission_check is not None:  # NodeRestriction: a node's tokens bind to its pods
            await self.registry.admission_check(t.rt, body, None)
        return _json(await self.sa_signer.issue(body, namespace=t.namespace, name=t.name,
                                                get_object=self.get_object), 201)

    async def pod_log(self, t: Target, request: Request, call: "Call") -> Response:
        return await nodeproxy.pod_log(request, namespace=t.namespace, name=t.name, get_object=self.get_object,
                                       tls=self.kubelet_tls)

    async def node_proxy(self, t: Target, request: Request, call: "Call") -> Response:
        return await nodeproxy.node_proxy(request, node=t.name, path=t.proxy_path, get_object=self.get_object,
                                          tls=self.kubelet_tls)

    async def needs_websocket(self, t: Target, request: Request, call: "Call") -> Response:
        raise st.bad_request(f"{t.rt.plural}/{t.sub} needs a WebSocket upgrade (subprotocol v5.channel.k8s.io)")

    async def portforward_refused(self, t: Target, request: Request, call: "Call") -> Response:
        return await portforward.spdy_upgrade_refused(request, namespace=t.namespace, name=t.name,
                                                      get_object=self.get_object)

    async def ephemeral_refused(self, t: Target, request: Request, call: "Call") -> Response:
        # refused with the field named, not 404: kubectl debug dereferences a 404's details
        raise st.invalid(t.rt, t.name, [{
            "reason": "FieldValueForbidden", "field": "spec.ephemeralContainers",
            "message": "Forbidden: ephemeral containers are not run by kubelab's node agent; use "
                       "`kubectl debug --copy-to=NAME --same-node -it` or `kubectl exec`"}])

    # -- websocket subresources (WEBSOCKET_ROUTES: FastAPI routes them, as websocket scopes)

    async def pod_exec(self, websocket: WebSocket, namespace: str, name: str) -> None:
        await nodeproxy.pod_exec(websocket, namespace=namespace, name=name, get_object=self.get_object,
                                 tls=self.kubelet_tls)

    async def pod_attach(self, websocket: WebSocket, namespace: str, name: str) -> None:
        await nodeproxy.pod_exec(websocket, namespace=namespace, name=name, get_object=self.get_object,
                                 tls=self.kubelet_tls, action="attach")

    async def pod_portforward(self, websocket: WebSocket, namespace: str, name: str) -> None:
        await portforward.pod_portforward(websocket, namespace=namespace, name=name, get_object=self.get_object,
                                          tls=self.kubelet_tls)


class Call:
    """What the query says about one request as a whole, and the warnings it collects."""

    __slots__ = ("dry_run", "selectors", "validation", "warnings")

    def __init__(self, request: Request, warnings: list[str]) -> None:
        q = request.query_params
        self.dry_run: bool = q.get("dryRun") == "All"
        # checked on every write, so a bad value is a 422 even where the body would fail first
        self.validation: str = (field_validation(q.get("fieldValidation"), request.method)
                                if request.method in OPTIONS_KIND else "Warn")
        self.warnings = warnings
        self.selectors: tuple = (None, None)  # (labels, fields) of a collection request


def _selectors(t: Target, q):
    try:
        return parse_labels(q.get("labelSelector")), parse_fields(t.rt.plural, q.get("fieldSelector"))
    except SelectorError as e:
        raise st.bad_request(str(e)) from None


async def _body(request: Request) -> dict:
    return decode_body(await read_body(request), request.headers.get("content-type", ""))


async def _delete_options(request: Request) -> dict:
    raw = await read_body(request)
    options = decode_body(raw, JSON_CT) if raw.strip() else {}
    options_from_query(options, request.query_params)
    return options


def create_app(settings: Settings | None = None, *, storage: Storage | None = None) -> Guard:
    settings = settings or Settings()
    storage = storage or Storage(settings.etcd_servers, **(settings.security or {}).get("etcd", {}))
    registry = Registry(storage, bookmark_interval=settings.bookmark_interval)
    from .externalips import ExternalIPPolicy, parse_cidrs
    registry.external_ips = ExternalIPPolicy(parse_cidrs(settings.service_external_ip_cidrs),
                                             service_cidr=settings.service_cidr, pod_cidr=settings.pod_cidr,
                                             apiserver_address=settings.advertise_address)
    kubelet_tls = nodeproxy.kubelet_ssl_context(**settings.kubelet_client) if settings.kubelet_client else None
    metrics = Metrics(watchers=lambda: registry.watchers)
    handler = ResourceHandler(registry, metrics, sa_signer=tokenrequest.Signer.from_security(settings.security),
                              kubelet_tls=kubelet_tls)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await storage.connect()
        await registry.start()
        await bootstrap(registry, advertise_address=settings.advertise_address,
                        secure_port=settings.secure_port, service_cidr=settings.service_cidr,
                        pod_cidr=settings.pod_cidr, dns_domain=settings.dns_domain)
        log.info("API server ready (etcd %s)", settings.etcd_servers)
        yield
        await registry.stop()
        await storage.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.registry = registry
    app.state.metrics = metrics
    _error_handlers(app)
    _non_resource_routes(app, settings, storage, metrics)
    for path, method in WEBSOCKET_ROUTES.items():
        app.add_api_websocket_route(path, getattr(handler, method))

    @app.api_route("/apis/metrics.k8s.io/v1beta1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def metrics_api(path: str, request: Request):
        """metrics.k8s.io served by the API server itself (as metrics-server would), read-only."""
        target = metricsapi.parse(request.url.path)
        if target is None:
            raise st.StatusError(404, "the server could not find the requested resource")
        if request.method != "GET":
            raise st.StatusError(405, "the metrics API is read-only", reason="MethodNotAllowed")
        try:
            labels = parse_labels(request.query_params.get("labelSelector"))
        except SelectorError as e:
            raise st.bad_request(str(e)) from None

        async def list_objects(plural: str, namespace: str | None) -> list[dict]:
            return (await registry.list(BY_PLURAL[plural], namespace))["items"]
        return _json(await metricsapi.serve(*target, list_objects=list_objects, tls=kubelet_tls,
                                            label_match=lambda o: labels_match(labels, o)))

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(path: str):
        raise st.StatusError(404, "the server could not find the requested resource")

    return Guard(ResourceRouter(app, handler), SecurityConfig.from_dict(settings.security), registry)


def _error_handlers(app: FastAPI) -> None:
    """Whatever FastAPI itself answers (unknown paths, its own validation, crashes) leaves as a Status."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        msg = "the server could not find the requested resource" if exc.status_code == 404 else str(exc.detail)
        return _status(st.StatusError(exc.status_code, msg))

    @app.exception_handler(st.StatusError)
    async def status_error(request: Request, exc: st.StatusError):
        return _status(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _status(st.bad_request(str(exc)))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _status(st.StatusError(500, f"Internal error occurred: {type(exc).__name__}"))


def _non_resource_routes(app: FastAPI, settings: Settings, storage: Storage, metrics: Metrics) -> None:
    """Version, health, metrics, discovery and OpenAPI: FastAPI routes (off the hot path)."""

    @app.get("/version")
    async def version():
        return _json(discovery.VERSION)

    @app.get("/healthz")
    @app.get("/livez")
    async def healthz():
        return PlainTextResponse("ok")

    @app.get("/readyz")
    async def readyz(request: Request):
        etcd_ok = await storage.healthy()
        checks = {"ping": lambda: None, "etcd": lambda: None if etcd_ok else "etcd is not reachable"}
        status, body = health_report("readyz", checks, verbose="verbose" in request.query_params)
        return PlainTextResponse(body, status_code=503 if status != 200 else 200)

    @app.get("/metrics")
    async def prom():
        return Response(metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)

    @app.get("/api")
    async def api(request: Request):
        return _json(discovery.api_versions(f"{settings.advertise_address}:{settings.secure_port}"))

    @app.get("/apis")
    async def apis():
        return _json(discovery.api_group_list())

    @app.get("/api/{version}")
    async def core_resources(version: str):
        doc = discovery.resource_list("", version)
        if doc is None:
            raise st.StatusError(404, "the server could not find the requested resource")
        return _json(doc)

    @app.get("/apis/{group}/{version}")
    async def group_resources(group: str, version: str):
        doc = discovery.resource_list(group, version)
        if doc is None:
            raise st.StatusError(404, "the server could not find the requested resource")
        return _json(doc)

    @app.get("/openapi/v2")
    async def openapi_v2(request: Request):
        from . import openapi_v2
        if "proto-openapi.spec.v2" in request.headers.get("accept", ""):
            return Response(openapi_v2.protobuf(), media_type=openapi_v2.PROTOBUF_CONTENT_TYPE)
        return _json(openapi_v2.document())

    @app.get("/openapi/v3")
    async def openapi_index():
        from . import openapi
        return _json(openapi.index())

    @app.get("/openapi/v3/{gv:path}")
    async def openapi_doc(gv: str):
        from . import openapi
        doc = openapi.document(gv)
        if doc is None:
            raise st.StatusError(404, "the server could not find the requested resource")
        return _json(doc)


class ResourceRouter:
    """ASGI entry: resource paths go straight to the handler, everything else (discovery,
    health, OpenAPI, websockets, lifespan) to FastAPI. Skipping FastAPI's routing and
    middleware on the hot path roughly halves per-request overhead. The path was parsed by
    the Guard already (request.target_of caches it in the scope)."""

    def __init__(self, app: FastAPI, handler: ResourceHandler) -> None:
        self.app = app
        self.handler = handler
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            target = target_of(scope)
            if target is not None:
                response = await self.handler(target, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
