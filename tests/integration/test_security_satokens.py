"""TokenRequest on a real API server (HTTPS, client certificates, `--service-account-key-file`
the private key): the token it returns authenticates as the service account, RBAC applies to
it, it dies with the account; a node may request tokens only for its pods' accounts."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import httpx
import pytest

from kubelab.pki import tokens
from kubelab.testing import secure_apiserver, tls_client

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="module")
def secured(etcd):
    with secure_apiserver(etcd.url, nodes=["n1", "n2"]) as a:
        yield a


client = tls_client


@pytest.fixture
def ns(secured):
    name = f"kl-sa-{uuid.uuid4().hex[:6]}"
    with client(secured) as h:
        h.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{name}/serviceaccounts", json={"metadata": {"name": "bot"}}).raise_for_status()
    try:
        yield name
    finally:
        with client(secured) as h:
            h.delete(f"/api/v1/namespaces/{name}")


def request_token(h: httpx.Client, ns: str, name: str, spec: dict | None = None) -> httpx.Response:
    return h.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
                  json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}})


def test_token_from_tokenrequest_authenticates_until_the_account_is_deleted(secured, ns):
    with client(secured) as h:
        r = request_token(h, ns, "bot", {"expirationSeconds": 1200})
        assert r.status_code == 201, r.text
        tr = r.json()
        assert tr["kind"] == "TokenRequest" and tr["spec"]["expirationSeconds"] == 1200
        token = tr["status"]["token"]
        claims = tokens.verify(token, tokens.load_verify_key(f"{secured.extra['dir']}/sa.key"))
        assert claims["sub"] == f"system:serviceaccount:{ns}:bot"
    with client(secured, None, token) as sa:
        r = sa.get(f"/api/v1/namespaces/{ns}/pods")
        assert r.status_code == 403, r.text  # authenticated (not 401), but no role yet
        assert f"system:serviceaccount:{ns}:bot" in r.json()["message"]
    with client(secured) as h:
        h.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", json={
            "metadata": {"name": "bot-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": ns}]}).raise_for_status()

    def listed() -> int:
        with client(secured, None, token) as sa:
            return sa.get(f"/api/v1/namespaces/{ns}/pods").status_code
    from kubelab.testing import wait_until
    wait_until(lambda: listed() == 200, timeout=40, interval=0.2, what="RBAC binding applied")
    with client(secured) as h:
        h.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/bot").raise_for_status()
    wait_until(lambda: listed() == 401, timeout=10, interval=0.2, what="token revoked with its account")


def test_tokenrequest_errors(secured, ns):
    with client(secured) as h:
        r = request_token(h, ns, "nobody")
        assert r.status_code == 404 and r.json()["kind"] == "Status"
        r = request_token(h, ns, "bot", {"expirationSeconds": 10})
        assert r.status_code == 422 and r.json()["reason"] == "Invalid"
        r = request_token(h, ns, "bot", {"boundObjectRef": {"kind": "Pod", "name": "ghost"}})
        assert r.status_code == 404


def test_node_requests_tokens_only_for_its_pods(secured, ns):
    with client(secured) as h:
        h.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "other"}}).raise_for_status()
        r = h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "p"}, "spec": {
            "nodeName": "n1", "serviceAccountName": "bot", "containers": [{"name": "c", "image": "busybox"}]}})
        assert r.status_code == 201, r.text
        pod_uid = r.json()["metadata"]["uid"]
    with client(secured, "node-n1") as n1:
        r = request_token(n1, ns, "bot", {"boundObjectRef": {"kind": "Pod", "name": "p", "uid": pod_uid}})
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["boundObjectRef"]["uid"] == pod_uid
        assert request_token(n1, ns, "other").status_code == 403
    with client(secured, "node-n2") as n2:
        assert request_token(n2, ns, "bot").status_code == 403


def test_a_token_for_another_audience_is_not_an_api_credential(secured, ns):
    """A token minted for Vault (or any audience but the API server's) gets 401 here."""
    with client(secured) as h:
        r = request_token(h, ns, "bot", {"audiences": ["https://vault.example"]})
        assert r.status_code == 201, r.text
        vault_token = r.json()["status"]["token"]
        assert tokens.verify(vault_token, tokens.load_verify_key(f"{secured.extra['dir']}/sa.key"))["aud"] == [
            "https://vault.example"]
        r = request_token(h, ns, "bot", {"audiences": [tokens.DEFAULT_ISSUER, "https://vault.example"]})
        both = r.json()["status"]["token"]
    with client(secured, None, vault_token) as sa:
        r = sa.get(f"/api/v1/namespaces/{ns}/pods")
        assert r.status_code == 401 and r.json()["kind"] == "Status", r.text
    with client(secured, None, both) as sa:  # one of the audiences is the API server's
        assert sa.get(f"/api/v1/namespaces/{ns}/pods").status_code == 403


def test_a_pod_bound_token_dies_with_its_pod(secured, ns):
    from kubelab.testing import wait_until
    pod_spec = {"serviceAccountName": "bot", "containers": [{"name": "c", "image": "busybox"}]}
    with client(secured) as h:
        pod = h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "bound"}, "spec": pod_spec}).json()
        r = request_token(h, ns, "bot", {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "bound",
                                                            "uid": pod["metadata"]["uid"]}})
        assert r.status_code == 201, r.text
        token = r.json()["status"]["token"]

    def status() -> int:
        with client(secured, None, token) as sa:
            return sa.get(f"/api/v1/namespaces/{ns}/pods").status_code

    assert status() == 403  # authenticated as the account, no role
    with client(secured) as h:
        h.delete(f"/api/v1/namespaces/{ns}/pods/bound").raise_for_status()
    wait_until(lambda: status() == 401, timeout=15, interval=0.2, what="token revoked with its pod")
    with client(secured) as h:  # a new pod of the same name is another object: still revoked
        h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "bound"}, "spec": pod_spec}
               ).raise_for_status()
    import time
    time.sleep(2.5)  # past the authenticator's 2 s lookup cache: the answer must stay 401
    assert status() == 401


def test_a_pod_bound_token_needs_the_pods_account(secured, ns):
    with client(secured) as h:
        h.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "other"}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "runs-as-bot"}, "spec": {
            "serviceAccountName": "bot", "containers": [{"name": "c", "image": "busybox"}]}}).raise_for_status()
        r = request_token(h, ns, "other", {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                              "name": "runs-as-bot"}})
        assert r.status_code == 400 and "different serviceaccount" in r.json()["message"], r.text


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_create_token(secured, ns):
    r = subprocess.run(["kubectl", "--kubeconfig", secured.kubeconfig, "-n", ns, "create", "token", "bot",
                        "--duration", "15m"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    claims = tokens.verify(r.stdout.strip(), tokens.load_verify_key(f"{secured.extra['dir']}/sa.key"))
    assert claims["sub"] == f"system:serviceaccount:{ns}:bot" and claims["exp"] - claims["iat"] == 900


# ---- the node agent's side: the files it writes and the mount a container sees ----------

def _create_pod(a, ns: str, name: str, **spec) -> dict:
    with client(a) as h:
        r = h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": name}, "spec": {
            "nodeName": "n1", "serviceAccountName": "bot", "containers": [{"name": "c", "image": "busybox"}],
            **spec}})
        assert r.status_code == 201, r.text
        return r.json()


async def test_node_agent_writes_the_pod_token_files(secured, ns, tmp_path):
    from kubelab.client import ApiClient
    from kubelab.client.kubeconfig import Connection
    from kubelab.nodeagent import satoken
    d = secured.extra["dir"]
    pod = _create_pod(secured, ns, "p")
    opted_out = _create_pod(secured, ns, "q", automountServiceAccountToken=False)
    node = ApiClient(connection=Connection(server=secured.url, ca_file=f"{d}/ca.crt",
                                           client_cert=f"{d}/node-n1.crt", client_key=f"{d}/node-n1.key"))
    try:
        sa_dir = await satoken.write_files(node, pod, str(tmp_path / "p"))
        assert sa_dir == str(tmp_path / "p" / "serviceaccount")
        assert await satoken.write_files(node, opted_out, str(tmp_path / "q")) is None
    finally:
        await node.aclose()
    claims = tokens.verify(open(f"{sa_dir}/token").read(), tokens.load_verify_key(f"{d}/sa.key"))
    assert claims["sub"] == f"system:serviceaccount:{ns}:bot"
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
    assert open(f"{sa_dir}/namespace").read() == ns
    assert open(f"{sa_dir}/ca.crt").read() == open(f"{d}/ca.crt").read()
    assert os.stat(f"{sa_dir}/token").st_mode & 0o077 == 0
    assert satoken.existing(str(tmp_path / "p")) == sa_dir and satoken.existing(str(tmp_path / "q")) is None
    # the token works against the API server as the account
    with client(secured, None, open(f"{sa_dir}/token").read()) as sa:
        assert sa.get(f"/api/v1/namespaces/{ns}/pods").status_code == 403  # authenticated, no role


@pytest.mark.root
def test_container_sees_the_mounted_files(tmp_path):
    """containers.start with etc["serviceaccount"]: the files appear at the Kubernetes path,
    read-only, in the container's own mount namespace only (host netns, a sleep as 'pause')."""
    from kubelab.nodeagent import containers as ctr
    from kubelab.testing import wait_until
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("tok-123")
    (sa / "namespace").write_text("dev")
    etc = {}
    for n, text in (("resolv.conf", "nameserver 192.0.2.53\n"), ("hosts", "127.0.0.1 localhost\n"),
                    ("hostname", "p\n")):
        (tmp_path / n).write_text(text)
        etc[n] = str(tmp_path / n)
    etc["serviceaccount"] = str(sa)
    pause = subprocess.Popen(["sleep", "300"])
    script = (f"cat {ctr.SA_MOUNT}/token; echo; cat {ctr.SA_MOUNT}/namespace; echo; "
              f"touch {ctr.SA_MOUNT}/x 2>/dev/null && echo writable || echo read-only")
    c = ctr.Container("c", "busybox")
    try:
        ctr.start(c, {"name": "c", "image": "busybox", "command": ["sh", "-c", script]},
                  pod={"metadata": {"name": "p"}, "spec": {}}, pod_dir=str(tmp_path / "pod"), netns="",
                  pause_pid=pause.pid, etc=etc, env={"PATH": ctr.DEFAULT_PATH})
        wait_until(lambda: ctr.poll_exit(c, str(tmp_path / "pod")), timeout=20, interval=0.05, what="container exit")
        out = open(ctr.log_path(str(tmp_path / "pod"), "c", 0)).read()
        assert c.exit_code == 0, out
        assert out.splitlines() == ["tok-123", "dev", "read-only"]
        assert not os.path.exists(f"{ctr.SA_MOUNT}/token") or open(f"{ctr.SA_MOUNT}/token").read() != "tok-123"
    finally:
        pause.kill()
        pause.wait()
        ctr.reap()
