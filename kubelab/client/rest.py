"""The async REST client every component uses to talk to the API server (httpx).

Paths come from `kubelab.resources`, so callers name resources by plural (`pods`,
`endpointslices`) and never build URLs. Error answers raise typed `ApiError`s. Server
warnings (`Warning: 299 - "text"` headers, e.g. unknown fields under fieldValidation=Warn)
go to a warning handler, as in client-go: by default logged once per client.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import NamedTuple
from urllib.parse import quote

import httpx

from kubelab.resources import ResourceType, lookup

from .errors import ApiError, error_for  # noqa: F401  (ApiError: re-exported for callers of rest)
from .kubeconfig import Connection, load, read_token_file, ssl_context

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


log = logging.getLogger("kubelab.client")

WarningHandler = Callable[[str], None]
"""Gets the text of each server warning (code 299), e.g. `unknown field "spec.x"`."""


# ---- Warning headers (RFC 7234 section 5.5), parsed as client-go's ParseWarningHeaders -------------

class WarningHeader(NamedTuple):
    code: int
    agent: str
    text: str


_CODE = re.compile(r"[0-9]{3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Go's unicode.IsControl
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"(.*)', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)


def _rfc2047(text: str) -> str:
    """Old (RFC 2616) servers may encode the text as `=?utf-8?q?...?=`; undecodable stays as is."""
    from email.errors import HeaderParseError
    from email.header import decode_header, make_header
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, HeaderParseError):
        return text


def parse_warning_header(header: str) -> tuple[WarningHeader, str]:
    """The first warning in one header value, and the rest (after a comma) still to parse.

    Format: `code agent "text"` or `code agent "text" "date"`; the text is quoted with
    backslash escapes, so commas and quotes inside it are not separators. ValueError if malformed.
    """
    header = header.strip()
    parts = header.split(" ", 2)
    if len(parts) != 3:
        raise ValueError("invalid warning header: fewer than 3 segments")
    code, agent, rest = parts
    if not _CODE.fullmatch(code):
        raise ValueError("invalid warning header: code segment is not 3 digits")
    if not agent or _CONTROL.search(agent):
        raise ValueError("invalid warning header: empty or invalid agent")
    m = _QUOTED.match(rest)
    if not m:
        raise ValueError("invalid warning header: text is not a closed quoted string")
    text, rest = _ESCAPE.sub(r"\1", m.group(1)), m.group(2).strip()
    if "=?" in text:
        text = _rfc2047(text)
    if _CONTROL.search(text):
        raise ValueError("invalid warning header: invalid text")
    if rest.startswith('"'):  # the optional warn-date: quoted, no escapes
        end = rest.find('"', 1)
        if end < 0:
            raise ValueError("invalid warning header: unterminated date segment")
        rest = rest[end + 1:].strip()
    if rest:
        if rest[0] != ",":
            raise ValueError("invalid warning header: unexpected token after warn-text")
        rest = rest[1:].strip()
    return WarningHeader(int(code), agent, text), rest


def parse_warning_headers(headers: Iterable[str]) -> list[WarningHeader]:
    """All warnings in these header values (several per value, comma-separated). A malformed
    warning drops the rest of its value only, like client-go."""
    out: list[WarningHeader] = []
    for header in headers:
        while header:
            try:
                warning, header = parse_warning_header(header)
            except ValueError:
                break
            out.append(warning)
    return out


def warning_texts(headers: Iterable[str]) -> list[str]:
    """The texts handlers get: code 299 ("miscellaneous persistent warning") and not empty,
    the warnings client-go's logger and kubectl print."""
    return [w.text for w in parse_warning_headers(headers) if w.code == 299 and w.text]


class LogWarnings:
    """The default handler: each distinct text logged once (WARNING on `kubelab.client`), so a
    controller re-sending the same object does not flood its log."""

    MAX_REMEMBERED = 4096

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, text: str) -> None:
        if text in self._seen:
            return
        if len(self._seen) >= self.MAX_REMEMBERED:
            self._seen.clear()
        self._seen.add(text)
        log.warning("%s", text)


def resource_type(resource: str | ResourceType) -> ResourceType:
    """A ResourceType from itself or a name kubectl accepts (plural, singular, short name)."""
    if isinstance(resource, ResourceType):
        return resource
    try:
        return lookup(resource)
    except KeyError:
        raise ValueError(f'the server doesn\'t have a resource type "{resource}"') from None


_resource = resource_type  # the name this module used before; kept for callers on other branches


def tls_context(conn: Connection):
    """The TLS settings for httpx: one SSLContext with the CA and the client certificate
    (kubeconfig.ssl_context: embedded keys stay in memory).
    (httpx 0.28 ignores `cert=` when `verify` is a CA path, so the certificate was never sent.)"""
    if not conn.server.startswith("https://"):
        return True  # plain HTTP: nothing to verify (httpx's default, no context built)
    return ssl_context(conn)


class FileTokenAuth(httpx.Auth):
    """Bearer token from a file that is replaced underneath us: the pod's service-account token
    (the node agent rotates it before it expires), a kubeconfig's `tokenFile`.

    Like client-go's cached file token source (transport/token_source.go), the last good value
    is used and a failed read keeps it; a 401 makes the next request re-read the file. Instead
    of client-go's blind re-read every minute, each request does one os.stat (a couple of
    microseconds) and re-reads when the file's inode, size or mtime changed, so a rotation is
    seen by the very next request; the `period` re-read still catches an in-place rewrite of
    the same size within one mtime tick. The current token is also kept in `connection.token`.
    """

    def __init__(self, connection: Connection, *, period: float = 60.0, clock=time.monotonic) -> None:
        if not connection.token_file:
            raise ValueError("FileTokenAuth needs a connection with token_file")
        self.connection = connection
        self.path = connection.token_file
        self.period = period
        self._clock = clock
        self._sig: tuple | None = None
        self._read_at = float("-inf")
        self._failing = False

    def token(self) -> str | None:
        now = self._clock()
        try:
            st = os.stat(self.path)
            sig: tuple | None = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError as e:
            self._failed(e)
            return self.connection.token
        if sig != self._sig or now - self._read_at >= self.period:
            self._sig, self._read_at = sig, now  # a bad file is not re-read until it changes
            try:
                token = read_token_file(self.path)
            except (OSError, ValueError) as e:
                self._failed(e)
                return self.connection.token
            self._failing = False
            if token != self.connection.token:
                if self.connection.token is not None:
                    log.info("bearer token re-read from %s", self.path)
                self.connection.token = token
        return self.connection.token

    def _failed(self, e: Exception) -> None:
        if not self._failing:  # once per failing spell, not once per request
            log.warning("cannot read bearer token file %s (%s); keeping the last token", self.path, e)
        self._failing = True

    def reset(self) -> None:
        """The server said 401: re-read the file on the next request, whatever its stat says."""
        self._sig = None

    def auth_flow(self, request: httpx.Request):
        token = self.token()
        if token and "Authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.reset()


class ApiClient:
    """One connection pool to one API server; cheap to share across tasks."""

    def __init__(self, *, server: str | None = None, connection: Connection | None = None,
                 user_agent: str = "kubelab", timeout: float = 30.0,
                 warning_handler: WarningHandler | None = None) -> None:
        conn = connection or Connection(server=(server or "http://127.0.0.1:6443").rstrip("/"))
        self.connection = conn
        self.warning_handler: WarningHandler = warning_handler or LogWarnings()
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        # a token from a file goes on each request (re-read when the file changes); else a fixed header
        self.token_auth = FileTokenAuth(conn) if conn.token_file else None
        if self.token_auth is None and conn.token:
            headers["Authorization"] = f"Bearer {conn.token}"
        self._http = httpx.AsyncClient(base_url=conn.server, headers=headers, verify=tls_context(conn),
                                       auth=self.token_auth,
                                       timeout=httpx.Timeout(timeout, connect=5.0),
                                       limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, *, context: str | None = None, **kw) -> "ApiClient":
        return cls(connection=load(path, context=context), **kw)

    @property
    def server(self) -> str:
        return self.connection.server

    def bearer_token(self) -> str | None:
        """The token to send now (the file's latest, when it comes from a file): for
        connections made outside httpx, e.g. exec's websocket."""
        return self.token_auth.token() if self.token_auth is not None else self.connection.token

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "ApiClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # ---- plumbing ---------------------------------------------------------------------

    @staticmethod
    def path(resource: str | ResourceType, name: str | None = None, *, namespace: str | None = None,
             subresource: str | None = None) -> str:
        rt = resource_type(resource)
        p = rt.base_path(namespace if rt.namespaced else None)
        if name:
            p += "/" + quote(name, safe="")
            if subresource:
                p += "/" + subresource
        return p

    async def request(self, method: str, path: str, *, params: dict | None = None, json_body=None,
                      content: bytes | None = None, headers: dict | None = None) -> dict:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        resp = await self._http.request(method, path, params=params, content=content, headers=headers)
        return self._decode(resp)

    def _warnings(self, resp: httpx.Response) -> None:
        """One header lookup per response; parsing only when the server warned."""
        values = resp.headers.get_list("warning")
        if values:
            for text in warning_texts(values):
                self.warning_handler(text)

    def _decode(self, resp: httpx.Response) -> dict:
        self._warnings(resp)
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = {"message": resp.text[:500]}
        if resp.status_code >= 400:
            raise error_for(body if isinstance(body, dict) else {}, resp.status_code)
        return body

    # ---- verbs ------------------------------------------------------------------------

    async def get(self, resource: str | ResourceType, name: str, *, namespace: str | None = None,
                  subresource: str | None = None) -> dict:
        return await self.request("GET", self.path(resource, name, namespace=namespace, subresource=subresource))

    async def list(self, resource: str | ResourceType, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   resource_version: str | None = None, limit: int | None = None) -> dict:
        """A whole List, following `continue` pages when `limit` is given."""
        params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                  "resourceVersion": resource_version, "limit": limit}
        path = self.path(resource, namespace=namespace)
        result = await self.request("GET", path, params=params)
        while limit and (result.get("metadata") or {}).get("continue"):
            params["continue"] = result["metadata"]["continue"]
            params.pop("resourceVersion", None)
            page = await self.request("GET", path, params=params)
            result["items"].extend(page.get("items") or [])
            result["metadata"] = page.get("metadata", {})
        result.setdefault("items", [])
        return result

    # `field_validation` (Strict|Warn|Ignore) is sent as `fieldValidation`; None sends nothing,
    # and the server then warns about unknown fields (its default, Warn) and drops them.

    async def create(self, resource: str | ResourceType, body: dict, *, namespace: str | None = None,
                     dry_run: bool = False, field_validation: str | None = None) -> dict:
        ns = namespace or (body.get("metadata") or {}).get("namespace")
        return await self.request("POST", self.path(resource, namespace=ns), json_body=body,
                                  params={"dryRun": "All" if dry_run else None, "fieldValidation": field_validation})

    async def replace(self, resource: str | ResourceType, name: str, body: dict, *, namespace: str | None = None,
                      subresource: str | None = None, field_validation: str | None = None) -> dict:
        return await self.request("PUT", self.path(resource, name, namespace=namespace, subresource=subresource),
                                  json_body=body, params={"fieldValidation": field_validation})

    async def patch(self, resource: str | ResourceType, name: str, patch, *, namespace: str | None = None,
                    subresource: str | None = None, patch_type: str = "merge",
                    field_manager: str | None = None, force: bool | None = None,
                    field_validation: str | None = None) -> dict:
        ct = PATCH_TYPES.get(patch_type, patch_type)
        content = patch if isinstance(patch, bytes) else json.dumps(patch).encode()
        params = {"fieldManager": field_manager, "force": None if force is None else str(force).lower(),
                  "fieldValidation": field_validation}
        return await self.request("PATCH", self.path(resource, name, namespace=namespace, subresource=subresource),
                                  content=content, headers={"Content-Type": ct}, params=params)

    async def delete(self, resource: str | ResourceType, name: str, *, namespace: str | None = None,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: dict | None = None) -> dict:
        body: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if preconditions:
            body["preconditions"] = preconditions
        return await self.request("DELETE", self.path(resource, name, namespace=namespace), json_body=body)

    async def delete_collection(self, resource: str | ResourceType, *, namespace: str | None = None,
                                label_selector: str | None = None) -> dict:
        return await self.request("DELETE", self.path(resource, namespace=namespace),
                                  params={"labelSelector": label_selector})

    async def bind(self, pod: str, node: str, *, namespace: str) -> dict:
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return await self.request("POST", self.path("pods", pod, namespace=namespace, subresource="binding"),
                                  json_body=body)

    async def watch(self, resource: str | ResourceType, *, namespace: str | None = None,
                    resource_version: str | None = None, label_selector: str | None = None,
                    field_selector: str | None = None, timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True, accept: str | None = None) -> AsyncIterator[dict]:
        """Watch events (`{"type", "object"}`) until the server ends the stream.

        An ERROR event carrying a 410 is raised as `Gone` so callers relist. `accept` asks
        for another rendering, e.g. kubectl's `application/json;as=Table;v=v1;g=meta.k8s.io`.
        """
        params = {"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                  "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": "true" if allow_bookmarks else None}
        params = {k: v for k, v in params.items() if v is not None}
        read_timeout = (timeout_seconds + 30) if timeout_seconds else None
        async with self._http.stream("GET", self.path(resource, namespace=namespace), params=params,
                                     headers={"Accept": accept} if accept else None,
                                     timeout=httpx.Timeout(30.0, read=read_timeout)) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                self._decode(resp)
            self._warnings(resp)
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    obj = ev.get("object") or {}
                    raise error_for(obj, int(obj.get("code") or 500))
                yield ev
