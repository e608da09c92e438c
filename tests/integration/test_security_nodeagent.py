"""The node agent's API (10250) over TLS: a client certificate is required at the handshake,
only the API server's kubelet-client identity (or system:masters) may call logs/exec, and the
API server relays `kubectl logs`/`kubectl exec` to it with `--kubelet-client-certificate`.

The agent side is the real `kubelab.nodeagent.server` (uvicorn, PeerCertProtocol, the
authorization middleware) serving a stub agent that holds one pod, so no netns is needed;
exec runs through nsenter into a `sleep` process we start (root)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import uuid
from types import SimpleNamespace

import httpx
import pytest

from kubelab.nodeagent import containers as ctr
from kubelab.nodeagent import procs, server
from kubelab.nodeagent import tls as agent_tls
from kubelab.pki import ca as pki
from kubelab.pki import certs
from kubelab.testing import free_port, start_apiserver, wait_until

KUBECTL = shutil.which("kubectl")
LOG_TEXT = "hello from the pod\nsecond line\n"


class StubWorker:
    def __init__(self, pod: dict, pod_dir: str, container: ctr.Container) -> None:
        self.pod, self.dir, self.done = pod, pod_dir, False
        self.containers = {container.name: container}
        self.spec_containers = pod["spec"]["containers"]

    def container_spec(self, name: str) -> dict | None:
        return next((c for c in self.spec_containers if c["name"] == name), None)


class StubAgent:
    def __init__(self, cfg: SimpleNamespace) -> None:
        self.cfg, self.workers, self.server = cfg, {}, None

    def find(self, ns: str, name: str) -> StubWorker | None:
        return self.workers.get((ns, name))


@pytest.fixture(scope="module")
def pki_dir():
    d = tempfile.mkdtemp(prefix="kubelab-pki-na-")
    os.chmod(d, 0o700)
    try:
        certs.init(d, apiserver_ips=["127.0.0.1"], nodes=["n1"], node_ips={"n1": "127.0.0.1"})
        certs.issue_identity(d, certs.user_identity("viewer"))
        foreign = pki.create_ca("evil-ca")
        pki.write_pair(d, "foreign-admin", pki.issue(foreign, cn="admin", orgs=["system:masters"]))
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def agent(pki_dir):
    """The node agent API with TLS on a loopback port, holding pod default/p (container c)."""
    work = tempfile.mkdtemp(prefix="kubelab-na-tls-")
    sleeper = subprocess.Popen(["sleep", "300"])
    th = None
    try:
        pod = {"metadata": {"namespace": "default", "name": "p"}, "spec": {"containers": [{"name": "c"}]}}
        c = ctr.Container(name="c", image="busybox", state="running", init_pid=sleeper.pid,
                          init_start=procs.start_time(sleeper.pid) or 0,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        os.makedirs(os.path.dirname(ctr.log_path(work, "c", 0)))
        with open(ctr.log_path(work, "c", 0), "w") as f:
            f.write(LOG_TEXT)
        tls = agent_tls.from_flags(f"{pki_dir}/node-n1.crt", f"{pki_dir}/node-n1.key", f"{pki_dir}/ca.crt")
        a = StubAgent(SimpleNamespace(node_name="n1", address="127.0.0.1", port=free_port(), tls=tls))
        a.workers[("default", "p")] = StubWorker(pod, work, c)
        th = threading.Thread(target=lambda: asyncio.run(server.serve(a)), daemon=True)
        th.start()
        wait_until(lambda: a.server is not None and a.server.started, timeout=15, what="node agent API")
        yield a
    finally:
        if th is not None:
            wait_until(lambda: a.server is not None, timeout=5, what="server object")
            a.server.should_exit = True
            th.join(10)
        sleeper.kill()
        sleeper.wait()
        shutil.rmtree(work, ignore_errors=True)


def client_ctx(pki_dir: str, ident: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=f"{pki_dir}/ca.crt")  # verifies the node IP SAN too
    if ident:
        ctx.load_cert_chain(f"{pki_dir}/{ident}.crt", f"{pki_dir}/{ident}.key")
    return ctx


def url(agent, path: str) -> str:
    return f"https://127.0.0.1:{agent.cfg.port}{path}"


def raw_request(agent, ctx: ssl.SSLContext) -> bytes:
    """Handshake, then a GET /healthz; what comes back (raises on a TLS alert)."""
    with socket.create_connection(("127.0.0.1", agent.cfg.port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            out = b""
            while chunk := t.recv(4096):
                out += chunk
            return out


# ---- unit: the flags and the identity rule --------------------------------------------

def test_flags_must_come_together(pki_dir):
    assert agent_tls.from_flags(None, None, None) is None
    with pytest.raises(ValueError, match="go together"):
        agent_tls.from_flags(f"{pki_dir}/node-n1.crt", None, f"{pki_dir}/ca.crt")
    with pytest.raises(ValueError, match="--client-ca-file is required"):
        agent_tls.from_flags(f"{pki_dir}/node-n1.crt", f"{pki_dir}/node-n1.key", None)
    with pytest.raises(ValueError, match="not found"):
        agent_tls.from_flags(f"{pki_dir}/nope.crt", f"{pki_dir}/node-n1.key", f"{pki_dir}/ca.crt")


def test_only_the_apiserver_identity_or_masters_may_call():
    def cert(cn, *orgs):
        return {"subject": ((("commonName", cn),), *((("organizationName", o),) for o in orgs))}
    assert agent_tls.caller(cert("kube-apiserver-kubelet-client")) == ("kube-apiserver-kubelet-client", True)
    assert agent_tls.caller(cert("admin", "system:masters"))[1]
    assert agent_tls.caller(cert("system:node:n2", "system:nodes")) == ("system:node:n2", False)
    assert agent_tls.caller(None) == ("system:anonymous", False)


def test_node_certificate_serves_its_ip(pki_dir):
    from cryptography import x509
    with open(f"{pki_dir}/node-n1.crt", "rb") as f:
        c = x509.load_pem_x509_certificate(f.read())
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    usage = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ExtendedKeyUsageOID.SERVER_AUTH in list(usage)


# ---- the agent's TLS and authorization -------------------------------------------------

@pytest.mark.root
def test_no_client_certificate_fails_the_handshake(agent, pki_dir):
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        raw_request(agent, client_ctx(pki_dir, None))
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        raw_request(agent, client_ctx(pki_dir, "foreign-admin"))
    # plain HTTP on the TLS port gets no HTTP answer either
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{agent.cfg.port}/containerLogs/default/p/c", timeout=3)
    assert raw_request(agent, client_ctx(pki_dir, "apiserver-kubelet-client")).startswith(b"HTTP/1.1 200")


@pytest.mark.root
@pytest.mark.parametrize("ident", ["node-n1", "user-viewer", "kube-proxy"])
def test_other_identities_get_403(agent, pki_dir, ident):
    with httpx.Client(verify=client_ctx(pki_dir, ident), timeout=5) as h:
        assert h.get(url(agent, "/healthz")).status_code == 200  # stays open
        r = h.get(url(agent, "/containerLogs/default/p/c"))
        assert r.status_code == 403
        assert "Forbidden" in r.text and LOG_TEXT not in r.text
        assert h.get(url(agent, "/pods")).status_code == 403

    async def ws() -> int:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus
        try:
            async with connect(f"wss://127.0.0.1:{agent.cfg.port}/exec/default/p/c?command=id&stdout=1",
                               subprotocols=["v5.channel.k8s.io"], ssl=client_ctx(pki_dir, ident)):
                return 101
        except InvalidStatus as e:
            return e.response.status_code
    assert asyncio.run(ws()) == 403


@pytest.mark.root
@pytest.mark.parametrize("ident", ["apiserver-kubelet-client", "admin"])
def test_apiserver_identity_reads_logs(agent, pki_dir, ident):
    with httpx.Client(verify=client_ctx(pki_dir, ident), timeout=5) as h:
        r = h.get(url(agent, "/containerLogs/default/p/c"), params={"tailLines": "1"})
        assert r.status_code == 200, r.text
        assert r.text == "second line\n"


# ---- the API server relays through it ---------------------------------------------------

@pytest.fixture(scope="module")
def relay(etcd, agent, pki_dir):
    """An API server (plain HTTP on loopback) with the kubelet client flags; a Node whose
    InternalIP/port is the TLS agent and a pod bound to it."""
    a = start_apiserver(etcd.url, args=[
        "--kubelet-client-certificate", f"{pki_dir}/apiserver-kubelet-client.crt",
        "--kubelet-client-key", f"{pki_dir}/apiserver-kubelet-client.key",
        "--kubelet-certificate-authority", f"{pki_dir}/ca.crt"])
    node, ns = f"kl-{uuid.uuid4().hex[:6]}", f"kl-na-{uuid.uuid4().hex[:6]}"
    try:
        with httpx.Client(base_url=a.url, timeout=10) as h:
            h.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
            h.post("/api/v1/nodes", json={"metadata": {"name": node}}).raise_for_status()
            h.patch(f"/api/v1/nodes/{node}/status", headers={"content-type": "application/merge-patch+json"},
                    json={"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                     "daemonEndpoints": {"kubeletEndpoint": {"Port": agent.cfg.port}}}}
                    ).raise_for_status()
            h.post(f"/api/v1/namespaces/{ns}/pods", json={
                "metadata": {"name": "p"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}).raise_for_status()
        agent.workers[(ns, "p")] = agent.workers[("default", "p")]
        yield SimpleNamespace(api=a, node=node, ns=ns)
    finally:
        agent.workers.pop((ns, "p"), None)
        with httpx.Client(base_url=a.url, timeout=10) as h:
            h.delete(f"/api/v1/namespaces/{ns}/pods/p", params={"gracePeriodSeconds": "0"})
            h.delete(f"/api/v1/nodes/{node}")
            h.delete(f"/api/v1/namespaces/{ns}")
        a.stop()


@pytest.mark.root
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_logs_and_exec_relayed_over_tls(relay):
    kc = ["kubectl", "--kubeconfig", relay.api.kubeconfig, "-n", relay.ns]
    r = subprocess.run([*kc, "logs", "p"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == LOG_TEXT
    r = subprocess.run([*kc, "exec", "p", "--", "sh", "-c", "echo exec-ok; exit 3"], capture_output=True,
                       text=True, timeout=30)
    assert r.stdout == "exec-ok\n", r.stderr
    assert r.returncode == 3


@pytest.mark.root
def test_apiserver_without_kubelet_client_cert_cannot_read_logs(relay, apiserver):
    """The session API server (no --kubelet-client-*) speaks plain HTTP to the TLS port: no logs."""
    r = httpx.get(f"{apiserver.url}/api/v1/namespaces/{relay.ns}/pods/p/log", timeout=15)
    assert r.status_code == 500
    assert LOG_TEXT not in r.text
    ok = httpx.get(f"{relay.api.url}/api/v1/namespaces/{relay.ns}/pods/p/log", timeout=15)
    assert ok.status_code == 200 and ok.text == LOG_TEXT


def test_apiserver_refuses_half_kubelet_flags(etcd, pki_dir):
    r = subprocess.run([sys.executable, "-m", "kubelab.apiserver", "--etcd-servers", etcd.url,
                        "--port", str(free_port()), "--kubelet-client-certificate",
                        f"{pki_dir}/apiserver-kubelet-client.crt"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "go together" in r.stderr


# ---- end to end: a secured simulated cluster with real node agents ------------------------

@pytest.fixture(scope="module")
def secure_cluster(etcd):
    from kubelab.nodeagent.simnodes import SimCluster
    c = SimCluster(etcd.url, nodes_count=1, backoff_base=1.0, tls=True)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.root
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_secured_agent_mounts_token_and_serves_logs_exec_over_tls(secure_cluster):
    """Agents on HTTPS with their node credentials; a pod reads its service-account files;
    kubectl logs/exec go API server → agent over mutual TLS; a node's cert gets 403."""
    c, n = secure_cluster, secure_cluster.nodes[0]
    d = c.pki_dir
    ns = f"kl-e2e-{uuid.uuid4().hex[:6]}"
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    with httpx.Client(base_url=c.url, timeout=10, **c.http_kw()) as h:
        h.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "default"}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "p"}, "spec": {
            "nodeName": n.name, "containers": [{"name": "c", "image": "busybox", "command": [
                "sh", "-c", f"cat {sa}/namespace; echo; head -c 20 {sa}/token; echo; "
                            f"sha256sum < {sa}/ca.crt | cut -c1-16; "
                            "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; sleep 3600"]}]}}
               ).raise_for_status()

        def running() -> bool:
            return (h.get(f"/api/v1/namespaces/{ns}/pods/p").json().get("status") or {}).get("phase") == "Running"
        try:
            wait_until(running, timeout=60, interval=0.2, what="pod running")
            kc = ["kubectl", "--kubeconfig", f"{d}/admin.kubeconfig", "-n", ns]

            def logs() -> str:
                r = subprocess.run([*kc, "logs", "p"], capture_output=True, text=True, timeout=20)
                return r.stdout if r.returncode == 0 and "10.96.0.1" in r.stdout else ""
            out = wait_until(logs, timeout=20, interval=0.2, what="pod logs")
            token_file = os.path.join(n.root_dir, "pods", h.get(f"/api/v1/namespaces/{ns}/pods/p").json()
                                      ["metadata"]["uid"], "serviceaccount", "token")
            with open(token_file) as f:
                token = f.read()
            with open(f"{d}/ca.crt", "rb") as f:   # the node's pki dir is hidden from the container
                ca_sum = hashlib.sha256(f.read()).hexdigest()[:16]
            assert out.splitlines() == [ns, token[:20], ca_sum, "10.96.0.1:443"]
            r = subprocess.run([*kc, "exec", "p", "--", "cat", f"{sa}/namespace"], capture_output=True, text=True,
                               timeout=30)
            assert r.returncode == 0 and r.stdout == ns, r.stderr
            # the mounted token authenticates as the pod's account
            with httpx.Client(base_url=c.url, timeout=10, verify=ssl.create_default_context(cafile=f"{d}/ca.crt"),
                              headers={"Authorization": f"Bearer {token}"}) as as_sa:
                r = as_sa.get(f"/api/v1/namespaces/{ns}/pods")
                assert r.status_code == 403 and f"system:serviceaccount:{ns}:default" in r.text
            # the node's own certificate may not call the agent's logs
            r = n.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", f"{d}/ca.crt",
                      "--cert", f"{d}/node-{n.name}.crt", "--key", f"{d}/node-{n.name}.key",
                      f"https://{n.ip}:10250/containerLogs/{ns}/p/c", check=False)
            assert r.stdout == "403"
        finally:
            h.delete(f"/api/v1/namespaces/{ns}/pods/p", params={"gracePeriodSeconds": "0"})
            h.delete(f"/api/v1/namespaces/{ns}")
