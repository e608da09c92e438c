"""A secured cluster end to end: etcd with mutual TLS, the API server on HTTPS with client
certificates, static and service-account tokens, RBAC + Node authorization, limits; driven
by the real kubectl, the kubelab client and raw TLS sockets."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest

from kubelab.client import ApiClient
from kubelab.client.kubeconfig import render
from kubelab.pki import ca as pki
from kubelab.pki import certs, tokens
from kubelab.testing import Proc, _spawn, eventually, free_port, start_apiserver, wait_until

KUBECTL = shutil.which("kubectl")
STATIC_TOKEN = "s3cr3t-" + uuid.uuid4().hex


@dataclass
class Cluster:
    dir: str
    url: str
    admin_kubeconfig: str
    etcd_url: str = ""

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def ssl_context(self, ident: str | None = "admin") -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.path("ca.crt"))
        if ident:
            ctx.load_cert_chain(self.path(f"{ident}.crt"), self.path(f"{ident}.key"))
        return ctx

    def http(self, ident: str | None = "admin", **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.ssl_context(ident), timeout=10, **kw)

    def kubeconfig(self, ident: str) -> str:
        path = self.path(f"{ident}.test.kubeconfig")
        with open(path, "w") as f:
            f.write(render(server=self.url, ca_file=self.path("ca.crt"), client_cert=self.path(f"{ident}.crt"),
                           client_key=self.path(f"{ident}.key")))
        return path


def _start_tls_etcd(d: str) -> tuple[Proc, str, str]:
    data = tempfile.mkdtemp(prefix="kubelab-etcd-tls-")
    client, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{client}"
    cmd = [shutil.which("etcd") or "/usr/bin/etcd", "--name", "default", "--data-dir", data,
           "--listen-client-urls", url, "--advertise-client-urls", url,
           "--listen-peer-urls", f"https://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
           f"https://127.0.0.1:{peer}", "--initial-cluster", f"default=https://127.0.0.1:{peer}",
           "--log-level", "warn", *certs.etcd_flags(d)]
    proc = _spawn(cmd, data + ".log")
    ctx = ssl.create_default_context(cafile=os.path.join(d, "etcd-ca.crt"))
    ctx.load_cert_chain(os.path.join(d, "apiserver-etcd-client.crt"), os.path.join(d, "apiserver-etcd-client.key"))

    def healthy():
        if proc.popen.poll() is not None:
            raise RuntimeError(f"etcd exited: {proc.log()}")
        return httpx.get(f"{url}/health", verify=ctx, timeout=1).status_code == 200
    try:
        wait_until(healthy, timeout=40, what="TLS etcd /health")
    except Exception:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)
        os.unlink(data + ".log")
        raise
    return proc, url, data


@pytest.fixture(scope="module")
def cluster():
    d = tempfile.mkdtemp(prefix="kubelab-pki-")
    os.chmod(d, 0o700)
    certs.init(d, apiserver_ips=["127.0.0.1"], nodes=["n1", "n2"], server_url="https://127.0.0.1:6443")
    for u, groups in (("viewer", ()), ("jane", ())):
        certs.issue_identity(d, certs.user_identity(u, groups))
    ca = certs.load_ca(d)
    # an expired admin certificate from the right CA, and an admin certificate from a foreign CA
    old = pki.issue(ca, cn="admin", orgs=["system:masters"], days=1,
                    not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))
    pki.write_pair(d, "expired-admin", old)
    foreign = pki.create_ca("evil-ca")
    pki.write_pair(d, "foreign-ca", foreign)
    pki.write_pair(d, "foreign-admin", pki.issue(foreign, cn="admin", orgs=["system:masters"]))
    with open(os.path.join(d, "tokens.csv"), "w") as f:
        f.write(f'{STATIC_TOKEN},tina,tina-uid,"readers"\n')
    etcd_proc, etcd_url, etcd_data = _start_tls_etcd(d)
    try:
        a = start_apiserver(etcd_url, args=[*certs.apiserver_flags(d), "--token-auth-file", f"{d}/tokens.csv",
                                            "--max-watches-per-client", "3", "--request-body-timeout", "2"],
                            ca_file=f"{d}/ca.crt", client_cert=f"{d}/admin.crt", client_key=f"{d}/admin.key")
        try:
            c = Cluster(d, a.url, a.kubeconfig, etcd_url)
            with c.http() as h:
                r = h.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json={
                    "metadata": {"name": "viewer-view"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "User", "name": "viewer"}, {"kind": "Group", "name": "readers"}]})
                assert r.status_code == 201, r.text
            yield c
        finally:
            a.stop()
    finally:
        etcd_proc.stop()
        shutil.rmtree(etcd_data, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(etcd_data + ".log"):
            os.unlink(etcd_data + ".log")


def kubectl(kubeconfig: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "--request-timeout", "10s", *args],
                          capture_output=True, text=True, input=input, timeout=60)


# ---- TLS and authentication ---------------------------------------------------------------

@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_real_kubectl_works_with_the_admin_kubeconfig(cluster):
    r = kubectl(cluster.admin_kubeconfig, "get", "namespaces", "-o", "name")
    assert r.returncode == 0, r.stderr
    assert "namespace/kube-system" in r.stdout
    r = kubectl(cluster.admin_kubeconfig, "auth", "can-i", "delete", "pods", "-n", "kube-system")
    assert (r.returncode, r.stdout.strip()) == (0, "yes")
    # impersonation: the admin may ask as someone else; a viewer may not impersonate
    r = kubectl(cluster.admin_kubeconfig, "auth", "can-i", "create", "pods", "--as=viewer")
    assert r.stdout.strip() == "no", r.stderr
    r = kubectl(cluster.admin_kubeconfig, "get", "pods", "--as=jane")
    assert r.returncode != 0 and 'User "jane" cannot list resource "pods"' in r.stderr
    r = kubectl(cluster.kubeconfig("user-viewer"), "get", "pods", "--as=admin", "--as-group=system:masters")
    assert r.returncode != 0 and 'cannot impersonate resource "users"' in r.stderr, r.stderr
    r = kubectl(cluster.admin_kubeconfig, "auth", "can-i", "--list", "--as=viewer")
    assert r.returncode == 0 and "deployments.apps" in r.stdout and "secrets" not in r.stdout


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_real_kubectl_fails_clearly_with_a_foreign_kubeconfig(cluster):
    # kubeconfig trusting another CA: kubectl refuses the server's certificate
    wrong = cluster.path("wrong.kubeconfig")
    with open(wrong, "w") as f:
        f.write(render(server=cluster.url, ca_file=cluster.path("foreign-ca.crt"),
                       client_cert=cluster.path("foreign-admin.crt"), client_key=cluster.path("foreign-admin.key")))
    r = kubectl(wrong, "get", "pods")
    assert r.returncode != 0
    assert "certificate signed by unknown authority" in r.stderr, r.stderr
    # the right CA but a client certificate from a foreign CA: the server ends the handshake
    wrong2 = cluster.path("wrong2.kubeconfig")
    with open(wrong2, "w") as f:
        f.write(render(server=cluster.url, ca_file=cluster.path("ca.crt"),
                       client_cert=cluster.path("foreign-admin.crt"), client_key=cluster.path("foreign-admin.key")))
    r = kubectl(wrong2, "get", "pods")
    assert r.returncode != 0
    assert "certificate" in r.stderr.lower() or "tls" in r.stderr.lower(), r.stderr


def _handshake_and_get(cluster: Cluster, ident: str) -> bytes:
    ctx = cluster.ssl_context(None)
    ctx.load_cert_chain(cluster.path(f"{ident}.crt"), cluster.path(f"{ident}.key"))
    port = int(cluster.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(65536)


@pytest.mark.parametrize("ident", ["expired-admin", "foreign-admin"])
def test_bad_client_certificates_are_rejected_at_the_tls_handshake(cluster, ident):
    # TLS 1.3 reports the server's rejection of a client certificate on the first read.
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)) as e:
        data = _handshake_and_get(cluster, ident)
        if not data:  # the server closed without answering: the same rejection
            raise ConnectionResetError("closed")
    assert "HTTP/1.1" not in str(e.value)
    assert _handshake_and_get(cluster, "admin").startswith(b"HTTP/1.1 200")


def test_anonymous_gets_401_except_health_and_version(cluster):
    with cluster.http(None) as h:
        r = h.get("/api/v1/namespaces/default/pods")
        assert r.status_code == 401
        assert r.json()["kind"] == "Status" and r.json()["reason"] == "Unauthorized"
        assert h.get("/apis").status_code == 401
        for path in ("/healthz", "/readyz", "/livez", "/version"):
            assert h.get(path).status_code == 200, path
        assert h.get("/api/v1/pods", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_static_token_user_gets_its_groups_roles(cluster):
    with cluster.http(None, headers={"Authorization": f"Bearer {STATIC_TOKEN}"}) as h:
        assert h.get("/api/v1/namespaces/default/pods").status_code == 200  # group readers -> view
        r = h.delete("/api/v1/namespaces/default/services/kubernetes")
        assert r.status_code == 403
        assert r.json()["message"] == ('services "kubernetes" is forbidden: User "tina" cannot delete resource '
                                       '"services" in API group "" in the namespace "default"')


def test_plain_http_to_the_tls_port_is_not_served(cluster):
    try:
        r = httpx.get(cluster.url.replace("https://", "http://") + "/api/v1/pods", timeout=5)
    except httpx.TransportError:
        return  # the TLS server hung up on plain HTTP
    assert r.status_code >= 400 and "items" not in r.text


# ---- service-account tokens -----------------------------------------------------------------

def test_service_account_tokens_forged_and_deleted(cluster):
    with cluster.http() as admin:
        name = f"bot-{uuid.uuid4().hex[:6]}"
        sa = admin.post("/api/v1/namespaces/default/serviceaccounts", json={"metadata": {"name": name}}).json()
        uid = sa["metadata"]["uid"]
        r = admin.post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json={
            "metadata": {"name": f"{name}-view"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]})
        assert r.status_code == 201, r.text
        key = tokens.load_signing_key(cluster.path("sa.key"))
        good = tokens.service_account_token(key, namespace="default", name=name, uid=uid)
        forged = tokens.service_account_token(pki.new_key("rsa"), namespace="default", name=name, uid=uid)
        stale = tokens.service_account_token(key, namespace="default", name=name, uid="an-older-uid")

        def as_token(t):
            return cluster.http(None, headers={"Authorization": f"Bearer {t}"})
        with as_token(good) as h:
            assert h.get("/api/v1/namespaces/default/pods").status_code == 200
            assert h.get("/api/v1/namespaces/kube-system/pods").status_code == 403  # RoleBinding: default only
            r = h.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}})
            assert r.status_code == 403 and f"system:serviceaccount:default:{name}" in r.json()["message"]
        for bad in (forged, stale):
            with as_token(bad) as h:
                assert h.get("/api/v1/namespaces/default/pods").status_code == 401
        assert admin.delete(f"/api/v1/namespaces/default/serviceaccounts/{name}").status_code == 200

        def revoked():
            with as_token(good) as h:
                return h.get("/api/v1/namespaces/default/pods").status_code == 401
        wait_until(revoked, timeout=10, what="the deleted service account's token to stop working")


# ---- authorization --------------------------------------------------------------------------

def _pod(name: str, node: str | None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def test_view_user_reads_but_cannot_create_or_exec(cluster):
    name = f"v-{uuid.uuid4().hex[:6]}"
    with cluster.http() as admin:
        assert admin.post("/api/v1/namespaces/default/pods", json=_pod(name, None)).status_code == 201
    with cluster.http("user-viewer") as h:
        assert h.get("/api/v1/namespaces/default/pods").status_code == 200
        r = h.post("/api/v1/namespaces/default/pods", json=_pod(name + "x", None))
        assert r.status_code == 403
        assert r.json()["message"] == ('pods is forbidden: User "viewer" cannot create resource "pods" in API group '
                                       '"" in the namespace "default"')
        r = h.post(f"/api/v1/namespaces/default/pods/{name}/exec?command=sh&stdin=true")
        assert r.status_code == 403 and 'cannot create resource "pods/exec"' in r.json()["message"]
        assert h.get("/api/v1/namespaces/default/secrets").status_code == 403
        assert h.delete(f"/api/v1/namespaces/default/pods/{name}").status_code == 403
    if KUBECTL:  # the real kubectl exec (websocket, then SPDY fallback) prints the denial
        r = kubectl(cluster.kubeconfig("user-viewer"), "exec", name, "--", "true")
        assert r.returncode != 0
        assert f'pods "{name}" is forbidden: User "viewer" cannot create resource "pods/exec"' in r.stderr, r.stderr
    with cluster.http("user-jane") as h:  # no bindings at all
        assert h.get("/api/v1/namespaces/default/pods").status_code == 403
        assert h.get("/api").status_code == 200  # discovery for every authenticated user


def test_a_node_cannot_touch_another_nodes_pod(cluster):
    mine, theirs = f"p1-{uuid.uuid4().hex[:6]}", f"p2-{uuid.uuid4().hex[:6]}"
    with cluster.http() as admin:
        for name, node in ((mine, "n1"), (theirs, "n2")):
            assert admin.post("/api/v1/namespaces/default/pods", json=_pod(name, node)).status_code == 201
    patch = {"status": {"phase": "Running"}}
    hdr = {"Content-Type": "application/merge-patch+json"}
    with cluster.http("node-n1") as n1:
        r = n1.patch(f"/api/v1/namespaces/default/pods/{theirs}/status", content=json.dumps(patch), headers=hdr)
        assert r.status_code == 403, r.text
        assert r.json()["reason"] == "Forbidden" and "system:node:n1" in r.json()["message"]
        r = n1.patch(f"/api/v1/namespaces/default/pods/{mine}/status", content=json.dumps(patch), headers=hdr)
        assert r.status_code == 200, r.text
        assert n1.delete(f"/api/v1/namespaces/default/pods/{theirs}").status_code == 403
        assert n1.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1").status_code == 200
        r = n1.post("/api/v1/nodes", json={"metadata": {"name": "n1"}})
        assert r.status_code in (201, 409), r.text
        assert n1.patch("/api/v1/nodes/n1/status", content=b"{}", headers=hdr).status_code == 200
        assert n1.patch("/api/v1/nodes/n2", content=b"{}", headers=hdr).status_code == 403
        assert n1.get("/api/v1/namespaces/default/secrets").status_code == 403


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_and_kubelab_auth_can_i_agree(cluster):
    kc = cluster.kubeconfig("user-viewer")
    for verb, res, want in (("list", "pods", "yes"), ("create", "pods", "no"), ("create", "pods/exec", "no"),
                            ("get", "deployments", "yes"), ("get", "secrets", "no")):
        r = kubectl(kc, "auth", "can-i", verb, res)
        assert r.stdout.strip() == want, (verb, res, r.stdout, r.stderr)
        r2 = subprocess.run([sys.executable, "-m", "kubelab.cli", "--kubeconfig", kc, "auth", "can-i", verb, res],
                            capture_output=True, text=True, timeout=60)
        assert r2.stdout.strip().split(" ")[0] == want, (verb, res, r2.stdout, r2.stderr)
        assert r2.returncode == (0 if want == "yes" else 1)


async def test_kubelab_client_works_over_tls(cluster):
    client = ApiClient.from_kubeconfig(cluster.kubeconfig("admin"))
    try:
        name = f"c-{uuid.uuid4().hex[:6]}"
        await client.create("configmaps", {"metadata": {"name": name}, "data": {"a": "b"}}, namespace="default")
        assert (await client.get("configmaps", name, namespace="default"))["data"] == {"a": "b"}
        await client.delete("configmaps", name, namespace="default")
    finally:
        await client.aclose()


# ---- limits ---------------------------------------------------------------------------------

# ---- etcd trusts only the API server (issue 13) ------------------------------------------------

ETCDCTL = shutil.which("etcdctl")


def etcdctl(cluster: Cluster, ident: str, *args: str, ca: str = "etcd-ca.crt") -> subprocess.CompletedProcess:
    """The real etcdctl (v3 API) against the cluster's etcd, as the certificate `ident`."""
    return subprocess.run([ETCDCTL, "--endpoints", cluster.etcd_url, "--cacert", cluster.path(ca),
                           "--cert", cluster.path(f"{ident}.crt"), "--key", cluster.path(f"{ident}.key"),
                           "--dial-timeout", "3s", "--command-timeout", "5s", *args],
                          capture_output=True, text=True, timeout=30, env={**os.environ, "ETCDCTL_API": "3"})


@pytest.mark.skipif(ETCDCTL is None, reason="etcdctl not installed (apt-get install etcd-client)")
def test_etcd_refuses_every_certificate_of_the_cluster_ca(cluster):
    """The attack of issue 13: `kubelab pki issue user jane` gave jane raw etcd access (every
    Secret, every RoleBinding). etcd now trusts only its own CA: jane, the admin, a node and a
    component certificate all fail the handshake; the API server's etcd client reads."""
    ok = etcdctl(cluster, "apiserver-etcd-client", "get", "/registry/namespaces/default", "--keys-only")
    assert ok.returncode == 0 and "/registry/namespaces/default" in ok.stdout, ok.stdout + ok.stderr
    assert etcdctl(cluster, "etcd-healthcheck-client", "endpoint", "health").returncode == 0
    for ident in ("user-jane", "admin", "node-n1", "kube-controller-manager", "apiserver-kubelet-client"):
        for ca in ("etcd-ca.crt", "ca.crt"):  # whichever CA the attacker trusts for etcd's server
            p = etcdctl(cluster, ident, "get", "/registry/", "--prefix", "--keys-only", ca=ca)
            assert p.returncode != 0, f"{ident} read etcd: {p.stdout[:300]}"
            assert "/registry/" not in p.stdout


def test_object_larger_than_etcd_limit_is_413(cluster):
    with cluster.http() as h:
        big = {"metadata": {"name": "big"}, "data": {"x": "a" * (1600 * 1024)}}
        r = h.post("/api/v1/namespaces/default/configmaps", json=big)
        assert r.status_code == 413 and r.json()["kind"] == "Status"
        assert h.get("/api/v1/namespaces/default/configmaps/big").status_code == 404
        # a patch that grows an object past the limit is refused too (etcd would refuse it later)
        name = f"grow-{uuid.uuid4().hex[:6]}"
        path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
        rule = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
        assert h.post(path, json={"metadata": {"name": name}, "rules": [rule]}).status_code == 201
        huge = [{**rule, "resourceNames": ["n" * 1000] * 1700}]  # ~1.7 MB: under the 3 MiB body limit
        r = h.patch(f"{path}/{name}", content=json.dumps({"rules": huge}),
                    headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 413 and "the limit is 1572864" in r.json()["message"]
        assert h.get(f"{path}/{name}").json()["rules"] == [rule]


async def test_watch_count_cap_per_client_is_429_with_retry_after(cluster):
    ctx = cluster.ssl_context("kube-proxy")
    async with httpx.AsyncClient(base_url=cluster.url, verify=ctx, timeout=10) as h:
        streams = []
        try:
            for _ in range(3):
                cm = h.stream("GET", "/api/v1/services?watch=true&timeoutSeconds=30")
                resp = await cm.__aenter__()
                streams.append(cm)
                assert resp.status_code == 200
            r = await h.get("/api/v1/services?watch=true&timeoutSeconds=30")
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert r.json()["reason"] == "TooManyRequests"
            assert (await h.get("/api/v1/services")).status_code == 200  # plain requests still pass
        finally:
            for cm in streams:
                await cm.__aexit__(None, None, None)

        async def freed():
            async with h.stream("GET", "/api/v1/services?watch=true&timeoutSeconds=1") as r:
                return r.status_code == 200
        await eventually(freed, timeout=10, what="watch slots to be released")


def test_a_slow_body_times_out_with_408(cluster):
    port = int(cluster.url.rsplit(":", 1)[1])
    ctx = cluster.ssl_context("admin")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"meta")
            started = time.monotonic()
            data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert time.monotonic() - started < 10


def test_node_proxy_authz_and_hostile_paths(cluster):
    """nodes/NAME/proxy/metrics (the kubelet's /metrics through the API server): only who may
    use nodes/proxy, only GET of the agent's status paths, never logs or exec by that road."""
    with cluster.http() as admin:
        r = admin.post("/api/v1/nodes", json={"metadata": {"name": "proxied"}, "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": free_port()}}}})
        assert r.status_code in (201, 409), r.text
        try:
            # nothing listens there: a clear 503, not a hang or a 500
            r = admin.get("/api/v1/nodes/proxied/proxy/metrics")
            assert r.status_code == 503 and "failed to reach the node agent" in r.json()["message"]
            for path in ("containerLogs/default/p/c", "exec/default/p/c", "pods/../containerLogs/x/y/z", ""):
                r = admin.get(f"/api/v1/nodes/proxied/proxy/{path}")
                assert r.status_code == 404, (path, r.text)
            r = admin.post("/api/v1/nodes/proxied/proxy/metrics", content=b"")
            assert r.status_code == 405 and r.json()["kind"] == "Status"
            assert admin.get("/api/v1/nodes/nosuch/proxy/metrics").status_code == 404
        finally:
            admin.delete("/api/v1/nodes/proxied")
    for ident in ("user-viewer", "user-jane", "node-n1"):  # view does not grant nodes/proxy; nor does Node
        with cluster.http(ident) as h:
            r = h.get("/api/v1/nodes/proxied/proxy/metrics")
            assert r.status_code == 403 and 'resource "nodes/proxy"' in r.json()["message"], (ident, r.text)
    with cluster.http(None) as anonymous:
        assert anonymous.get("/api/v1/nodes/proxied/proxy/metrics").status_code == 401
