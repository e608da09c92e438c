"""HTTP routes of the API server: parse the request, call the registry, render the answer.

Resource paths are routed by hand (one catch-all) rather than one FastAPI route per
resource and verb: the grammar is small and regular, and this keeps per-request overhead
low. Every error leaves as a Kubernetes Status.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import unquote

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from kubelab.resources import BY_PLURAL, RESOURCES, ResourceType
from kubelab.serving import health_report

from . import discovery, metricsapi, nodeproxy, portforward, tokenrequest
from . import status as st
from .bootstrap import bootstrap
from .metrics import Metrics
from .registry import Registry
from .selector import SelectorError, labels_match, parse_fields, parse_labels
from .storage import Storage

log = logging.getLogger("kubelab.apiserver")

MAX_BODY = 3 * 1024 * 1024
_BY_GVR = {(r.group, r.version, r.plural): r for r in RESOURCES}
JSON_CT = "application/json"


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


def app_from_env() -> "ResourceRouter":
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


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None
    proxy_path: str = ""  # nodes/NAME/proxy/<this>: the node agent path


def parse_path(path: str) -> Target | None:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
        if not namespace:
            return None
    rt = _BY_GVR.get((group, version, rest[0]))
    proxy_path = ""
    if rt is not None and rt.plural == "nodes" and len(rest) > 3 and rest[2] == "proxy":
        proxy_path, rest = "/".join(rest[3:]), rest[:3]
    if rt is None or len(rest) > 3 or (namespace and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in rt.subresources:
        return None
    if name == "":
        return None
    return Target(rt, namespace, name, sub, proxy_path)


def wants_table(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "as=Table" in accept


async def read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise st.StatusError(413, "Request entity too large: limit is 3145728")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise st.StatusError(413, "Request entity too large: limit is 3145728")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(body: bytes, content_type: str) -> dict:
    ct = content_type.split(";")[0].strip().lower()
    if ct == "application/vnd.kubernetes.protobuf":
        from . import protobuf
        try:
            return protobuf.decode(body)
        except ValueError as e:
            raise st.StatusError(415 if "unsupported" in str(e).lower() else 400, str(e)) from None
    if ct in ("", JSON_CT, "*/*", "text/plain"):
        try:
            obj = json.loads(body or b"null")
        except RecursionError:
            raise st.bad_request("error decoding JSON: nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as e:
            raise st.bad_request(f"error decoding JSON: {e}") from None
    elif ct in ("application/yaml", "application/x-yaml", "text/yaml"):
        from . import yamlbody
        try:
            obj = yamlbody.load(body)
        except yamlbody.YamlBodyError as e:
            raise st.bad_request(str(e)) from None
    else:
        raise st.StatusError(415, "the body of the request was in an unknown format - accepted media types "
                                  "include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
    if not isinstance(obj, dict):
        raise st.bad_request("the body of the request was in an unknown format: expected a JSON object")
    from .shapes import MAX_DEPTH, too_deep
    if too_deep(obj):
        raise st.bad_request(f"the request body is nested deeper than {MAX_DEPTH} levels")
    return obj


# What PUT and PATCH may name after the object (None: the object itself); anything else is 405.
_WRITABLE_SUBRESOURCES = {"PUT": (None, "status", "scale", "finalize"), "PATCH": (None, "status", "scale")}


def watch_requested(values: list[str]) -> bool:
    """`?watch=`: the first value counts, as Go's url.Values.Get reads it. The authorizer
    (security.request_attributes) and the handler both ask this, so `?watch=false&watch=true`
    cannot be authorized as a list and served as a watch."""
    return bool(values) and values[0] in ("true", "1")


_OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def field_validation(value: str | None, method: str) -> str:
    """The `fieldValidation` query parameter: Strict, Warn or Ignore; unset means Warn (the
    server default since 1.27). Anything else is the 422 upstream's option validation gives."""
    from .shapes import FIELD_VALIDATION, go_quote
    if not value:
        return "Warn"
    if value in FIELD_VALIDATION:
        return value
    kind = _OPTIONS_KIND.get(method, "CreateOptions")
    message = (f"Unsupported value: {go_quote(value)}: supported values: "
               + ", ".join(go_quote(v) for v in ("", *FIELD_VALIDATION)))
    raise st.StatusError(422, f'{kind}.meta.k8s.io "" is invalid: fieldValidation: {message}', reason="Invalid",
                         details={"group": "meta.k8s.io", "kind": kind, "causes": [
                             {"reason": "FieldValueNotSupported", "message": message, "field": "fieldValidation"}]})


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


def create_app(settings: Settings | None = None, *, storage: Storage | None = None) -> "ResourceRouter":
    settings = settings or Settings()
    storage = storage or Storage(settings.etcd_servers, **(settings.security or {}).get("etcd", {}))
    registry = Registry(storage, bookmark_interval=settings.bookmark_interval)
    from .externalips import ExternalIPPolicy, parse_cidrs
    registry.external_ips = ExternalIPPolicy(parse_cidrs(settings.service_external_ip_cidrs),
                                             service_cidr=settings.service_cidr, pod_cidr=settings.pod_cidr,
                                             apiserver_address=settings.advertise_address)
    kubelet_tls = nodeproxy.kubelet_ssl_context(**settings.kubelet_client) if settings.kubelet_client else None
    sa_signer = tokenrequest.Signer.from_security(settings.security)
    metrics = Metrics(watchers=lambda: registry.watchers)

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

    # ---- non-resource endpoints --------------------------------------------------------

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

    # ---- resources -----------------------------------------------------------------------

    async def resource(target: Target, request: Request) -> Response:
        started = time.perf_counter()
        verb, res, code = request.method.lower(), target.rt.plural + (f"/{target.sub}" if target.sub else ""), 500
        warnings: list[str] = []  # sent even with an error, as upstream sends what it recorded
        try:
            try:
                response = await dispatch(target, request, warnings)
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
            metrics.observe(verb, res, code, time.perf_counter() - started)

    async def dispatch(t: Target, request: Request, warnings: list[str]) -> Response:
        q = request.query_params
        method = request.method
        rt = t.rt
        dry_run = q.get("dryRun") == "All"
        validation = field_validation(q.get("fieldValidation"), method) if method in _OPTIONS_KIND else "Warn"
        if t.name is None:
            try:
                labels = parse_labels(q.get("labelSelector"))
                fields = parse_fields(rt.plural, q.get("fieldSelector"))
            except SelectorError as e:
                raise st.bad_request(str(e)) from None
            if method == "GET":
                if watch_requested(q.getlist("watch")):
                    return watch_response(t, request, labels, fields)
                limit = q.get("limit")
                listed = await registry.list(rt, t.namespace, labels=labels, fields=fields,
                                             limit=int(limit) if limit and limit.isdigit() else 0,
                                             continue_token=q.get("continue"),
                                             resource_version=q.get("resourceVersion"))
                if wants_table(request):
                    table = _to_table(rt, listed["items"], listed["metadata"]["resourceVersion"],
                                      q.get("includeObject"))
                    if "continue" in listed["metadata"]:
                        table["metadata"]["continue"] = listed["metadata"]["continue"]
                    return _json(table)
                return _json(listed)
            if method == "POST":
                body = decode_body(await read_body(request), request.headers.get("content-type", ""))
                return _json(await registry.create(rt, t.namespace, body, dry_run=dry_run,
                                                   field_validation=validation, warnings=warnings), 201)
            if method == "DELETE":
                raw = await read_body(request)
                options = decode_body(raw, JSON_CT) if raw.strip() else {}
                _options_from_query(options, q)
                return _json(await registry.delete_collection(rt, t.namespace, labels=labels, fields=fields,
                                                              options=options))
            raise st.StatusError(405, "the server does not allow this method on the requested resource")
        # single object
        if t.sub == "token" and method == "POST":
            body = decode_body(await read_body(request), request.headers.get("content-type", ""))
            if registry.admission_check is not None:  # NodeRestriction: a node's tokens bind to its pods
                await registry.admission_check(rt, body, None)
            return _json(await sa_signer.issue(body, namespace=t.namespace, name=t.name, get_object=get_object), 201)
        if t.sub == "proxy":
            return await nodeproxy.node_proxy(request, node=t.name, path=t.proxy_path, get_object=get_object,
                                              tls=kubelet_tls)
        if t.sub == "log" and method == "GET":
            return await nodeproxy.pod_log(request, namespace=t.namespace, name=t.name, get_object=get_object,
                                           tls=kubelet_tls)
        if t.sub in ("exec", "attach"):
            raise st.bad_request(f"pods/{t.sub} needs a WebSocket upgrade (subprotocol v5.channel.k8s.io)")
        if t.sub == "ephemeralcontainers" and method != "GET":
            # refused with the field named, not 404: kubectl debug dereferences a 404's details
            raise st.invalid(rt, t.name, [{
                "reason": "FieldValueForbidden", "field": "spec.ephemeralContainers",
                "message": "Forbidden: ephemeral containers are not run by kubelab's node agent; use "
                           "`kubectl debug --copy-to=NAME --same-node -it` or `kubectl exec`"}])
        if t.sub == "portforward":
            return await portforward.spdy_upgrade_refused(request, namespace=t.namespace, name=t.name,
                                                          get_object=get_object)
        if method == "GET":
            if t.sub == "scale":
                return _json(await registry.get_scale(rt, t.namespace, t.name))
            obj = await registry.get(rt, t.namespace, t.name)
            if wants_table(request):
                return _json(_to_table(rt, [obj], obj["metadata"]["resourceVersion"], q.get("includeObject")))
            return _json(obj)
        if method == "POST" and t.sub == "binding":
            body = decode_body(await read_body(request), request.headers.get("content-type", ""))
            return _json(await registry.bind(t.namespace, t.name, body), 201)
        if method in ("PUT", "PATCH") and t.sub not in _WRITABLE_SUBRESOURCES.get(method, ()):
            # pods/log, pods/binding, serviceaccounts/token...: never a whole-object write
            raise st.StatusError(405, "the server does not allow this method on the requested resource")
        if method == "PUT":
            body = decode_body(await read_body(request), request.headers.get("content-type", ""))
            if t.sub == "scale":
                return _json(await registry.update_scale(rt, t.namespace, t.name, body, dry_run=dry_run,
                                                         field_validation=validation, warnings=warnings))
            return _json(await registry.update(rt, t.namespace, t.name, body, subresource=t.sub, dry_run=dry_run,
                                               field_validation=validation, warnings=warnings))
        if method == "PATCH":
            ct = request.headers.get("content-type", "").split(";")[0].strip().lower()
            body = await read_body(request)
            return _json(await registry.patch(rt, t.namespace, t.name, body, ct, subresource=t.sub,
                                              dry_run=dry_run, field_manager=q.get("fieldManager"),
                                              field_validation=validation, warnings=warnings))
        if method == "DELETE" and t.sub is None:
            raw = await read_body(request)
            options = decode_body(raw, JSON_CT) if raw.strip() else {}
            _options_from_query(options, q)
            return _json(await registry.delete(rt, t.namespace, t.name, options, dry_run=dry_run))
        raise st.StatusError(405, "the server does not allow this method on the requested resource")

    def watch_response(t: Target, request: Request, labels, fields) -> StreamingResponse:
        q = request.query_params
        timeout = q.get("timeoutSeconds")
        table = wants_table(request)
        events = registry.watch(t.rt, t.namespace, resource_version=q.get("resourceVersion"), labels=labels,
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

    async def get_object(plural: str, namespace: str | None, name: str) -> dict:
        return await registry.get(BY_PLURAL[plural], namespace, name)

    @app.websocket("/api/v1/namespaces/{namespace}/pods/{name}/exec")
    async def pod_exec(websocket: WebSocket, namespace: str, name: str):
        await nodeproxy.pod_exec(websocket, namespace=namespace, name=name, get_object=get_object,
                                 tls=kubelet_tls)

    @app.api_route("/apis/metrics.k8s.io/v1beta1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def metrics_api(path: str, request: Request):
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

    @app.websocket("/api/v1/namespaces/{namespace}/pods/{name}/attach")
    async def pod_attach(websocket: WebSocket, namespace: str, name: str):
        await nodeproxy.pod_exec(websocket, namespace=namespace, name=name, get_object=get_object,
                                 tls=kubelet_tls, action="attach")

    @app.websocket("/api/v1/namespaces/{namespace}/pods/{name}/portforward")
    async def pod_portforward(websocket: WebSocket, namespace: str, name: str):
        await portforward.pod_portforward(websocket, namespace=namespace, name=name, get_object=get_object,
                                          tls=kubelet_tls)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(path: str):
        raise st.StatusError(404, "the server could not find the requested resource")

    from .security import Guard, SecurityConfig  # imports this module: import here
    return Guard(ResourceRouter(app, resource), SecurityConfig.from_dict(settings.security), registry)


class ResourceRouter:
    """ASGI entry: resource paths go straight to the handler, everything else (discovery,
    health, OpenAPI, websockets, lifespan) to FastAPI. Skipping FastAPI's routing and
    middleware on the hot path roughly halves per-request overhead."""

    def __init__(self, app: FastAPI, handler) -> None:
        self.app = app
        self.handler = handler
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/api/", "/apis/")):
            target = parse_path(scope["path"])
            if target is not None:
                response = await self.handler(target, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _options_from_query(options: dict, q) -> None:
    if q.get("propagationPolicy"):
        options["propagationPolicy"] = q["propagationPolicy"]
    if q.get("gracePeriodSeconds", "").lstrip("-").isdigit():
        options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
