"""The request filter (security.Guard) on a fake app and registry: 401/403/429/413/408
decisions, SelfSubjectAccessReview, and the API server's security flags."""

from __future__ import annotations

import asyncio
import json

import pytest

from kubelab.apiserver import status as st
from kubelab.apiserver.__main__ import parse_args
from kubelab.pki.peer import PEER_CERT
from kubelab.apiserver.flags import security_settings
from kubelab.apiserver.rbac import default_cluster_role_bindings, default_cluster_roles
from kubelab.apiserver.security import Guard, SecurityConfig


class FakeRegistry:
    def __init__(self, objects: dict[str, list[dict]] | None = None) -> None:
        self.objects = objects or {}
        self.caches: dict = {}

    async def list(self, rt, namespace, **kw):
        items = self.objects.get(rt.plural, [])
        f = kw.get("fields")
        return {"items": [o for o in items if f is None or f(o)]}

    async def get(self, rt, namespace, name):
        for o in self.objects.get(rt.plural, []):
            if o["metadata"]["name"] == name and o["metadata"].get("namespace") in (None, namespace):
                return o
        raise st.StatusError(404, "not found")


class App:
    """Answers 200 after reading the whole body; `gate` holds requests open."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, scope, receive, send):
        self.calls += 1
        body = b""
        try:
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if not msg.get("more_body"):
                    break
        except st.StatusError as e:
            data = json.dumps(e.to_status()).encode()
            await send({"type": "http.response.start", "status": e.code, "headers": []})
            await send({"type": "http.response.body", "body": data})
            return
        if self.gate is not None:
            await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})


def peer(cn: str, *orgs: str) -> dict:
    return {"subject": tuple(((("organizationName", o),) for o in orgs)) + ((("commonName", cn),),)}


async def call(guard, method: str, path: str, *, cert=None, token=None, body: bytes = b"", chunks=None,
               query: bytes = b"", ct: bytes = b"application/json"):
    headers = [(b"content-type", ct)]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers,
             "client": ("10.0.0.1", 1234), "state": {PEER_CERT: cert}}
    parts = list(chunks) if chunks is not None else [body]

    async def receive():
        if parts:
            chunk = parts.pop(0)
            if chunk is None:
                await asyncio.sleep(3600)  # a client that stops sending
            return {"type": "http.request", "body": chunk, "more_body": bool(parts)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}
    out: dict = {"headers": {}}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in msg.get("headers", [])}
        elif msg["type"] == "http.response.body":
            out["body"] = json.loads(msg["body"]) if msg["body"] else None
    await guard(scope, receive, send)
    return out


def make(tmp_path=None, **cfg):
    reg = FakeRegistry({"clusterroles": default_cluster_roles(),
                        "clusterrolebindings": default_cluster_role_bindings() + [{
                            "metadata": {"name": "v"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
                            "subjects": [{"kind": "User", "name": "viewer"}]}],
                        "serviceaccounts": []})
    conf = SecurityConfig(client_ca_file="/ca.crt", authorization_mode="Node,RBAC", **cfg)
    app = App()
    return Guard(app, conf, reg), app


async def test_anonymous_401_public_paths_open():
    g, app = make()
    r = await call(g, "GET", "/api/v1/pods")
    assert r["status"] == 401 and r["body"]["reason"] == "Unauthorized" and app.calls == 0
    assert (await call(g, "GET", "/healthz"))["status"] == 200
    assert (await call(g, "GET", "/version"))["status"] == 200
    assert (await call(g, "GET", "/api/v1/pods", token="bogus"))["status"] == 401


async def test_rbac_allows_and_denies_with_kubernetes_message():
    g, app = make()
    assert (await call(g, "GET", "/api/v1/namespaces/d/pods", cert=peer("viewer")))["status"] == 200
    r = await call(g, "DELETE", "/api/v1/namespaces/d/pods/x", cert=peer("viewer"))
    assert r["status"] == 403
    assert r["body"]["message"] == ('pods "x" is forbidden: User "viewer" cannot delete resource "pods" in API '
                                    'group "" in the namespace "d"')
    assert r["body"]["details"] == {"kind": "pods", "name": "x"}
    assert (await call(g, "DELETE", "/api/v1/namespaces/d/pods/x", cert=peer("root", "system:masters")))["status"] == 200


async def test_selfsubjectaccessreview_answers_for_the_caller():
    g, app = make()
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "d"}}}
    r = await call(g, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", cert=peer("viewer"),
                   body=json.dumps(review).encode())
    assert r["status"] == 201 and r["body"]["status"]["allowed"] is True
    review["spec"]["resourceAttributes"]["verb"] = "create"
    r = await call(g, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", cert=peer("viewer"),
                   body=json.dumps(review).encode())
    assert r["body"]["status"]["allowed"] is False
    bad = await call(g, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", cert=peer("viewer"),
                     body=b"[1]")
    assert bad["status"] == 400


async def test_concurrent_request_cap_is_429_with_retry_after():
    g, app = make(max_requests_per_client=2)
    app.gate = asyncio.Event()
    admin = peer("root", "system:masters")
    held = [asyncio.create_task(call(g, "GET", "/api/v1/pods", cert=admin)) for _ in range(2)]
    for _ in range(100):
        if g.inflight.get("root") == 2:
            break
        await asyncio.sleep(0.01)
    r = await call(g, "GET", "/api/v1/pods", cert=admin)
    assert r["status"] == 429 and r["headers"]["retry-after"] == "1"
    other = asyncio.create_task(call(g, "GET", "/api/v1/pods", cert=peer("viewer")))  # another client: not capped
    app.gate.set()
    assert [x["status"] for x in await asyncio.gather(*held, other)] == [200, 200, 200]
    assert g.inflight == {}


async def test_object_body_cap_413_and_slow_body_408():
    g, _ = make(max_object_bytes=1000, body_timeout=0.2)
    admin = peer("root", "system:masters")
    r = await call(g, "POST", "/api/v1/namespaces/d/configmaps", cert=admin, chunks=[b"x" * 600, b"x" * 600])
    assert r["status"] == 413
    r = await call(g, "POST", "/api/v1/namespaces/d/configmaps", cert=admin, chunks=[b"{", None])
    assert r["status"] == 408 and r["body"]["reason"] == "Timeout"


async def test_service_account_token_needs_the_account():
    from kubelab.pki import ca as pki
    from kubelab.pki import tokens
    key = pki.new_key("ec")
    g, _ = make()
    g.authn.sa_public_key = key.public_key()
    g.authn.cache_ttl = 0
    t = tokens.service_account_token(key, namespace="d", name="bot", uid="u1")
    assert (await call(g, "GET", "/api", token=t))["status"] == 401  # no such account
    g.registry.objects["serviceaccounts"] = [{"metadata": {"name": "bot", "namespace": "d", "uid": "u1"}}]
    assert (await call(g, "GET", "/api", token=t))["status"] == 200
    g.registry.objects["serviceaccounts"][0]["metadata"]["uid"] = "u2"  # deleted and recreated
    assert (await call(g, "GET", "/api", token=t))["status"] == 401


# ---- flags ----------------------------------------------------------------------------------

def test_plain_http_refused_off_loopback():
    with pytest.raises(ValueError, match="refusing to serve plain HTTP on 0.0.0.0"):
        security_settings(parse_args(["--bind-address", "0.0.0.0"]))
    sec, uv = security_settings(parse_args(["--bind-address", "127.0.0.1"]))
    assert sec["authorization_mode"] == "AlwaysAllow" and uv == {}
    assert sec["max_requests_per_client"] == 0  # loopback dev mode: as before


def test_secured_defaults(tmp_path):
    from kubelab.pki import certs
    d = str(tmp_path)
    certs.init(d, apiserver_ips=["127.0.0.1"])
    sec, uv = security_settings(parse_args(["--bind-address", "0.0.0.0", *certs.apiserver_flags(d)]))
    assert sec["authorization_mode"] == "RBAC,Node"
    assert sec["etcd"]["cert_file"].endswith("apiserver-etcd-client.crt")
    assert uv["ssl_certfile"].endswith("apiserver.crt") and uv["ssl_cert_reqs"] == 1  # CERT_OPTIONAL
    with pytest.raises(ValueError, match="would refuse everyone"):
        security_settings(parse_args(["--tls-cert-file", f"{d}/apiserver.crt",
                                      "--tls-private-key-file", f"{d}/apiserver.key"]))
    with pytest.raises(ValueError, match="unknown authorization mode"):
        security_settings(parse_args([*certs.apiserver_flags(d), "--authorization-mode", "ABAC"]))
    with pytest.raises(ValueError, match="not found"):
        security_settings(parse_args(["--token-auth-file", f"{d}/missing.csv"]))


async def test_the_guard_parses_the_path_once_and_hands_the_target_on(monkeypatch):
    from kubelab.apiserver import request
    calls = []
    real = request.parse_path
    monkeypatch.setattr(request, "parse_path", lambda p: calls.append(p) or real(p))
    g, app = make()
    seen = []
    inner = g.app

    async def spy(scope, receive, send):
        seen.append(request.target_of(scope))  # what app.ResourceRouter does
        await inner(scope, receive, send)

    g.app = spy
    r = await call(g, "GET", "/api/v1/namespaces/d/pods/p", cert=peer("viewer"))
    assert r["status"] == 200
    assert calls == ["/api/v1/namespaces/d/pods/p"]  # authorized and routed from one parse
    assert (seen[0].rt.plural, seen[0].namespace, seen[0].name) == ("pods", "d", "p")
