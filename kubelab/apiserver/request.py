"""The API server's request grammar: what a request names and what its body says.

Why a module of its own: the authorizer (security.Guard) and the resource handler (app.py)
both have to understand a request path the same way — if they disagreed, a request could be
authorized as one thing and served as another. Both read it from here, and the Guard parses
each path once and leaves the result in the ASGI scope (`target_of`), so the router reuses it.
Nothing here does I/O beyond reading the request body; nothing imports app.py or security.py.

- `Target` / `parse_path`: `/api/v1/namespaces/NS/pods/NAME/status` → (resource type,
  namespace, name, subresource); None for anything that is not a resource path.
- `read_body` / `decode_body`: the body with its size cap, decoded by Content-Type (JSON,
  YAML, protobuf) into a dict, or a Status (400/413/415).
- `field_validation`, `watch_requested`, `options_from_query`: the query parameters whose
  grammar the handler and the authorizer must agree on.
- `wants_table`: content negotiation (`Accept: ...;as=Table`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.requests import Request

from kubelab.resources import RESOURCES, ResourceType

from . import status as st

MAX_BODY = 3 * 1024 * 1024  # upstream's request-body limit (3 MiB); 413 above it
JSON_CT = "application/json"
_BY_GVR = {(r.group, r.version, r.plural): r for r in RESOURCES}

# The scope key under which the parsed Target travels from the Guard to the router. Absent: not
# parsed yet (the Guard skips open-mode reads); present and None: not a resource path.
TARGET_KEY = "kubelab.target"


@dataclass(frozen=True)
class Target:
    """What a resource path names. `name` None: the collection; `sub` None: the object itself."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None
    proxy_path: str = ""  # nodes/NAME/proxy/<this>: the node agent path


def parse_path(path: str) -> Target | None:
    """The resource a path names, or None (discovery, health, unknown resources, bad shapes)."""
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


def target_of(scope: dict) -> Target | None:
    """The request's Target, parsed at most once per request (cached in the scope)."""
    if TARGET_KEY not in scope:
        path = scope["path"]
        scope[TARGET_KEY] = parse_path(path) if path.startswith(("/api/", "/apis/")) else None
    return scope[TARGET_KEY]


def wants_table(request: Request) -> bool:
    """kubectl get asks for `application/json;as=Table;v=v1;g=meta.k8s.io` (server-side printing)."""
    return "as=Table" in request.headers.get("accept", "")


async def read_body(request: Request) -> bytes:
    """The whole body, refused with 413 as soon as it passes MAX_BODY (announced or streamed)."""
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
    """A request body as a dict, by its media type; a 400/415 Status for anything else."""
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


def watch_requested(values: list[str]) -> bool:
    """`?watch=`: the first value counts, as Go's url.Values.Get reads it. The authorizer
    (security.request_attributes) and the handler both ask this, so `?watch=false&watch=true`
    cannot be authorized as a list and served as a watch."""
    return bool(values) and values[0] in ("true", "1")


OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def field_validation(value: str | None, method: str) -> str:
    """The `fieldValidation` query parameter: Strict, Warn or Ignore; unset means Warn (the
    server default since 1.27). Anything else is the 422 upstream's option validation gives."""
    from .shapes import FIELD_VALIDATION, go_quote
    if not value:
        return "Warn"
    if value in FIELD_VALIDATION:
        return value
    kind = OPTIONS_KIND.get(method, "CreateOptions")
    message = (f"Unsupported value: {go_quote(value)}: supported values: "
               + ", ".join(go_quote(v) for v in ("", *FIELD_VALIDATION)))
    raise st.StatusError(422, f'{kind}.meta.k8s.io "" is invalid: fieldValidation: {message}', reason="Invalid",
                         details={"group": "meta.k8s.io", "kind": kind, "causes": [
                             {"reason": "FieldValueNotSupported", "message": message, "field": "fieldValidation"}]})


def options_from_query(options: dict, q) -> None:
    """DeleteOptions given as query parameters (kubectl sends them so) override the body's."""
    if q.get("propagationPolicy"):
        options["propagationPolicy"] = q["propagationPolicy"]
    if q.get("gracePeriodSeconds", "").lstrip("-").isdigit():
        options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
