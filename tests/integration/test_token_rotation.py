"""Service-account token rotation against a real API server that serves TokenRequest (HTTPS,
client certificates, `--service-account-key-file`; the session `apiserver` has no signing key,
so this module starts its own, as test_security_satokens does):

(a) an ApiClient built in-cluster style (or from a kubeconfig `tokenFile`) picks up a token
    file replaced underneath it on its very next request: 403 as an account without a role,
    then 200 as one with a role, on the same client;
(b) the node agent's `satoken.refresh` replaces a pod's token when `requires_refresh` says so
    (clock injected, no waiting for real expiry): a new, different, valid token bound to the
    pod, written atomically, with the file's mode kept; and the pod's client follows it.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from urllib.parse import urlsplit

import pytest
import yaml

from kubelab.client import ApiClient, ApiError
from kubelab.client.kubeconfig import Connection, in_cluster
from kubelab.nodeagent import satoken
from kubelab.pki import tokens
from kubelab.testing import eventually, secure_apiserver, tls_client


@pytest.fixture(scope="module")
def secured(etcd):
    with secure_apiserver(etcd.url) as a:
        yield a


http = tls_client


def request_token(a, ns: str, account: str, spec: dict | None = None) -> str:
    with http(a) as h:
        r = h.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token",
                   json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}})
        assert r.status_code == 201, r.text
        return r.json()["status"]["token"]


@pytest.fixture
def ns(secured):
    """A namespace with accounts `viewer` (may list pods, once RBAC has caught up) and `nobody`."""
    name = f"kl-rot-{uuid.uuid4().hex[:6]}"
    with http(secured) as h:
        h.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        for account in ("viewer", "nobody"):
            h.post(f"/api/v1/namespaces/{name}/serviceaccounts", json={"metadata": {"name": account}}).raise_for_status()
        h.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/rolebindings", json={
            "metadata": {"name": "viewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": name}]}).raise_for_status()
    try:
        yield name
    finally:
        with http(secured) as h:
            h.delete(f"/api/v1/namespaces/{name}")


def replace_file(path: str, text: str) -> None:
    """As the node agent rotates: a new file renamed over the old one, in the same directory."""
    tmp = os.path.join(os.path.dirname(path), ".new")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


async def wait_rbac(a, ns: str, token: str) -> None:
    def listed() -> int:
        with http(a, None, token) as h:
            return h.get(f"/api/v1/namespaces/{ns}/pods").status_code
    await eventually(lambda: listed() == 200, timeout=40, interval=0.2, what="RBAC binding applied")


async def list_status(client: ApiClient, ns: str) -> int:
    try:
        await client.list("pods", namespace=ns)
        return 200
    except ApiError as e:
        return e.code


async def test_in_cluster_client_follows_a_replaced_token_file(secured, ns, tmp_path, monkeypatch):
    viewer = request_token(secured, ns, "viewer", {"expirationSeconds": 3600})
    nobody = request_token(secured, ns, "nobody", {"expirationSeconds": 3600})
    await wait_rbac(secured, ns, viewer)
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(nobody)
    shutil.copyfile(f"{secured.extra['dir']}/ca.crt", sa / "ca.crt")
    url = urlsplit(secured.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", url.hostname)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
    conn = in_cluster(sa_dir=str(sa))
    assert conn.server == secured.url and conn.token_file == str(sa / "token")
    client = ApiClient(connection=conn)
    try:
        with pytest.raises(ApiError) as e:
            await client.list("pods", namespace=ns)
        assert e.value.code == 403 and f"system:serviceaccount:{ns}:nobody" in e.value.message
        replace_file(str(sa / "token"), viewer)
        assert await list_status(client, ns) == 200          # the very next request, same client
        assert client.connection.token == viewer
        (sa / "token").write_text("not-a-token")             # in place, as a hand edit would
        assert await list_status(client, ns) == 401
        (sa / "token").write_text(viewer)
        assert await list_status(client, ns) == 200
    finally:
        await client.aclose()


async def test_kubeconfig_token_file_is_followed(secured, ns, tmp_path):
    viewer = request_token(secured, ns, "viewer", {"expirationSeconds": 3600})
    nobody = request_token(secured, ns, "nobody", {"expirationSeconds": 3600})
    await wait_rbac(secured, ns, viewer)
    (tmp_path / "token").write_text(nobody)
    cfg = tmp_path / "config"
    cfg.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": secured.url,
                                               "certificate-authority": f"{secured.extra['dir']}/ca.crt"}}],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    client = ApiClient.from_kubeconfig(str(cfg))
    try:
        assert await list_status(client, ns) == 403
        replace_file(str(tmp_path / "token"), viewer)
        assert await list_status(client, ns) == 200
    finally:
        await client.aclose()


def _create_pod(a, ns: str, name: str) -> dict:
    with http(a) as h:
        r = h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": name}, "spec": {
            "nodeName": "n1", "serviceAccountName": "viewer", "containers": [{"name": "c", "image": "busybox"}]}})
        assert r.status_code == 201, r.text
        return r.json()


async def test_node_agent_refresh_rotates_the_pod_token(secured, ns, tmp_path, monkeypatch):
    d = secured.extra["dir"]
    key = tokens.load_verify_key(f"{d}/sa.key")
    pod = _create_pod(secured, ns, "p")
    pod_dir = str(tmp_path / "p")
    node = ApiClient(connection=Connection(server=secured.url, ca_file=f"{d}/ca.crt",
                                           client_cert=f"{d}/node-n1.crt", client_key=f"{d}/node-n1.key"))
    try:
        # a short-lived first token (the server's minimum, 10 minutes), so the 48 h one differs
        sa_dir = await satoken.write_files(node, pod, pod_dir, expiration=600)
        assert sa_dir is not None
        path = os.path.join(sa_dir, "token")
        os.chmod(path, 0o640)  # not the default: a refresh must keep it
        first = open(path).read()
        first_ino = os.stat(path).st_ino
        issued, expires = satoken.token_times(pod_dir)
        assert expires - issued == 600 and abs(issued - time.time()) < 60

        # the pod's own client, in-cluster style, on the mounted directory
        url = urlsplit(secured.url)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", url.hostname)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
        app = ApiClient(connection=in_cluster(sa_dir=sa_dir))
        try:
            async def allowed() -> bool:
                return await list_status(app, ns) == 200
            await eventually(allowed, timeout=40, interval=0.2, what="RBAC binding applied")
            assert await list_status(app, ns) == 200 and app.connection.token == first

            # 50% of its life: nothing to do, the file is untouched
            assert await satoken.refresh(node, pod, pod_dir, now=issued + 300) is False
            assert os.stat(path).st_ino == first_ino and open(path).read() == first

            # 81%: a new token, renamed over the old file (a reader of the old one is unaffected)
            with open(path) as reader:
                assert await satoken.refresh(node, pod, pod_dir, now=issued + 0.81 * 600) is True
                assert reader.read() == first
            second = open(path).read()
            assert second != first and os.stat(path).st_ino != first_ino
            assert os.stat(path).st_mode & 0o777 == 0o640
            assert sorted(os.listdir(sa_dir)) == ["ca.crt", "namespace", "token"]  # no temporary left
            claims = tokens.verify(second, key)
            assert claims["sub"] == f"system:serviceaccount:{ns}:viewer"
            assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
            assert claims["exp"] - claims["iat"] == satoken.EXPIRATION
            # the record (what a restarted agent decides on) follows; the new token is fresh
            assert satoken.token_times(pod_dir) == (claims["iat"], claims["exp"])
            assert not satoken.requires_refresh(issued_at=claims["iat"], expires_at=claims["exp"], now=time.time())
            assert await satoken.refresh(node, pod, pod_dir) is False
            os.unlink(os.path.join(pod_dir, satoken.RECORD))  # written by an older agent: the claims decide
            assert satoken.token_times(pod_dir) == (claims["iat"], claims["exp"])

            # the pod's client sends the new token on its next request
            assert await list_status(app, ns) == 200 and app.connection.token == second

            # a failed refresh (the pod was deleted and recreated: another uid) keeps the token
            stale = {**pod, "metadata": {**pod["metadata"], "uid": str(uuid.uuid4())}}
            assert await satoken.refresh(node, stale, pod_dir, now=claims["iat"] + 25 * 3600) is False
            assert open(path).read() == second
        finally:
            await app.aclose()
    finally:
        await node.aclose()
