"""The async REST client every component uses to talk to the API server (httpx).

Paths come from `kubelab.resources`, so callers name resources by plural (`pods`,
`endpointslices`) and never build URLs. Error answers raise typed `ApiError`s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx

from kubelab.resources import ResourceType, lookup

from .errors import ApiError, error_for
from .kubeconfig import Connection, load

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


def _resource(resource: str | ResourceType) -> ResourceType:
    if isinstance(resource, ResourceType):
        return resource
    try:
        return lookup(resource)
    except KeyError:
        raise ValueError(f'the server doesn\'t have a resource type "{resource}"') from None


def tls_context(conn: Connection):
    """The TLS settings for httpx: one SSLContext with the CA and the client certificate.
    (httpx 0.28 ignores `cert=` when `verify` is a CA path, so the certificate was never sent.)"""
    if not conn.server.startswith("https://"):
        return True  # plain HTTP: nothing to verify (httpx's default, no context built)
    import ssl
    if conn.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=conn.ca_file)
    if conn.client_cert:
        ctx.load_cert_chain(conn.client_cert, conn.client_key)
    return ctx


class ApiClient:
    """One connection pool to one API server; cheap to share across tasks."""

    def __init__(self, *, server: str | None = None, connection: Connection | None = None,
                 user_agent: str = "kubelab", timeout: float = 30.0) -> None:
        conn = connection or Connection(server=(server or "http://127.0.0.1:6443").rstrip("/"))
        self.connection = conn
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if conn.token:
            headers["Authorization"] = f"Bearer {conn.token}"
        self._http = httpx.AsyncClient(base_url=conn.server, headers=headers, verify=tls_context(conn),
                                       timeout=httpx.Timeout(timeout, connect=5.0),
                                       limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, *, context: str | None = None, **kw) -> "ApiClient":
        return cls(connection=load(path, context=context), **kw)

    @property
    def server(self) -> str:
        return self.connection.server

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
        rt = _resource(resource)
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

    @staticmethod
    def _decode(resp: httpx.Response) -> dict:
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

    async def create(self, resource: str | ResourceType, body: dict, *, namespace: str | None = None,
                     dry_run: bool = False) -> dict:
        ns = namespace or (body.get("metadata") or {}).get("namespace")
        return await self.request("POST", self.path(resource, namespace=ns), json_body=body,
                                  params={"dryRun": "All" if dry_run else None})

    async def replace(self, resource: str | ResourceType, name: str, body: dict, *, namespace: str | None = None,
                      subresource: str | None = None) -> dict:
        return await self.request("PUT", self.path(resource, name, namespace=namespace, subresource=subresource),
                                  json_body=body)

    async def patch(self, resource: str | ResourceType, name: str, patch, *, namespace: str | None = None,
                    subresource: str | None = None, patch_type: str = "merge",
                    field_manager: str | None = None, force: bool | None = None) -> dict:
        ct = PATCH_TYPES.get(patch_type, patch_type)
        content = patch if isinstance(patch, bytes) else json.dumps(patch).encode()
        params = {"fieldManager": field_manager, "force": None if force is None else str(force).lower()}
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
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    obj = ev.get("object") or {}
                    raise error_for(obj, int(obj.get("code") or 500))
                yield ev
