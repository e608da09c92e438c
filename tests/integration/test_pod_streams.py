"""The kubectl debugging streams — `port-forward` (pod/ and svc/), `attach`, `run -it --rm` —
with the real kubectl 1.32 and 1.33 against a secured simulated cluster: HTTPS API server with
RBAC, one real node agent on mutual TLS, real pod netns. Also the bounds (authz, hostile
frames, stream limits, sockets freed) on the same cluster: one cluster start for the module."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import shutil
import signal
import ssl
import subprocess
import time
import uuid

import httpx
import pytest

from kubelab.client import spdy
from kubelab.testing import wait_until

pytestmark = pytest.mark.root
KUBECTL = shutil.which("kubectl")
KUBECTL_DIR = os.path.dirname(os.path.realpath(KUBECTL)) if KUBECTL else ""


def kubectl_bin(version: str) -> str:
    path = os.path.join(KUBECTL_DIR, f"kubectl.{version}")
    assert os.path.exists(path), f"kubectl.{version} is needed beside {KUBECTL}"
    return path


@pytest.fixture(scope="module")
def pf(etcd):
    """The cluster, a namespace with an agnhost pod (`web`, netexec on 8080) and a Service."""
    from kubelab.nodeagent.simnodes import SimCluster
    c = SimCluster(etcd.url, nodes_count=1, backoff_base=1.0, tls=True)
    c.start()
    ns = f"pf-{uuid.uuid4().hex[:6]}"
    h = httpx.Client(base_url=c.url, timeout=10, **c.http_kw())
    try:
        h.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "default"}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {
            "nodeName": c.nodes[0].name, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "registry.k8s.io/e2e-test-images/agnhost:2.39",
                            "args": ["netexec", "--http-port=8080"], "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}).raise_for_status()
        h.post(f"/api/v1/namespaces/{ns}/services", json={"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}).raise_for_status()

        def ready() -> bool:
            st = h.get(f"/api/v1/namespaces/{ns}/pods/web").json().get("status") or {}
            return any(x["type"] == "Ready" and x["status"] == "True" for x in st.get("conditions") or [])
        wait_until(ready, timeout=60, interval=0.2, what="pod web Ready")
        c.ns, c.h = ns, h
        yield c
    finally:
        try:
            h.delete(f"/api/v1/namespaces/{ns}/pods/web", params={"gracePeriodSeconds": "0"})
            h.delete(f"/api/v1/namespaces/{ns}")
        finally:
            h.close()
            c.stop()


class Forward:
    """A running `kubectl port-forward` (started and stopped by PID)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()          # "Forwarding from 127.0.0.1:PORT -> 8080"
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            err = self.stop()
            raise AssertionError(f"kubectl port-forward did not start: {line!r} {err!r}")
        self.port = int(m.group(1))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


def kc(c, version: str | None = None) -> list[str]:
    return [kubectl_bin(version) if version else KUBECTL, "--kubeconfig", f"{c.pki_dir}/admin.kubeconfig",
            "-n", c.ns]


def pod_connections(c, port: int) -> int:
    """Established TCP connections to `port` inside the pod's netns."""
    uid = c.h.get(f"/api/v1/namespaces/{c.ns}/pods/web").json()["metadata"]["uid"]
    netns = f"{c.nodes[0].prefix}{uid}"
    out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Htn", "state", "established",
                          f"( sport = :{port} )"], capture_output=True, text=True, check=True).stdout
    return len([x for x in out.splitlines() if x.strip()])


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("version", ["1.32", "1.33"])
def test_kubectl_port_forward_pod_and_service(pf, version):
    """The tunnel kubectl 1.31+ opens (WebSocket carrying SPDY) reaches the pod's port; several
    connections in parallel; a closed connection frees the pod's socket."""
    fwd = Forward([*kc(pf, version), "port-forward", "pod/web", ":8080"])
    try:
        with httpx.Client(timeout=10) as h:
            for _ in range(3):
                assert h.get(f"http://127.0.0.1:{fwd.port}/hostname").text == "web"

        async def many() -> list[str]:
            async with httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_keepalive_connections=0)) as a:
                rs = await asyncio.gather(*[a.get(f"http://127.0.0.1:{fwd.port}/echo?msg=m{i}") for i in range(8)])
            return [r.text for r in rs]
        assert asyncio.run(many()) == [f"m{i}" for i in range(8)]
        # a 1 MiB body up and back: flow in both directions, no frame lost
        body = os.urandom(1 << 20)
        with httpx.Client(timeout=20) as h:
            r = h.post(f"http://127.0.0.1:{fwd.port}/echo", params={"msg": "x"}, content=body)
            assert r.status_code == 200
        wait_until(lambda: pod_connections(pf, 8080) == 0, timeout=15, interval=0.2,
                   what="the pod's forwarded sockets closed")
    finally:
        err = fwd.stop()
    assert "error" not in err.lower(), err
    svc = Forward([*kc(pf, version), "port-forward", "svc/web", ":80"])
    try:
        assert httpx.get(f"http://127.0.0.1:{svc.port}/hostname", timeout=10).text == "web"
    finally:
        svc.stop()


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_port_forward_to_a_closed_port_reports_the_error(pf):
    fwd = Forward([*kc(pf), "port-forward", "pod/web", ":9"])
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{fwd.port}/", timeout=10)
    finally:
        err = fwd.stop()
    assert "error forwarding port 9 to pod" in err and "connection refused" in err.lower(), err


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_127_spdy_upgrade_gets_a_clear_error(pf):
    r = subprocess.run([*kc(pf, "1.27"), "port-forward", "pod/web", ":8080"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "WebSocket tunnel of kubectl 1.31+" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_port_forward_needs_create_on_pods_portforward(pf):
    """Authz matrix: get on pods is not enough; create on pods/portforward is."""
    ns, user = pf.ns, f"pf-user-{uuid.uuid4().hex[:4]}"
    h = pf.h
    role = {"metadata": {"name": user}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
    h.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", json=role).raise_for_status()
    h.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", json={
        "metadata": {"name": user}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
        "subjects": [{"kind": "User", "name": user}]}).raise_for_status()
    r = subprocess.run([*kc(pf), "--as", user, "port-forward", "pod/web", ":8080"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "forbidden" in r.stderr.lower() and "portforward" in r.stderr, r.stderr
    r = subprocess.run([*kc(pf), "--as", user, "attach", "web"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "forbidden" in r.stderr.lower() and "attach" in r.stderr, r.stderr
    role["rules"].append({"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]})
    h.put(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{user}", json=role).raise_for_status()

    def allowed() -> bool:
        try:
            fwd = Forward([*kc(pf), "--as", user, "port-forward", "pod/web", ":8080"])
        except AssertionError:
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{fwd.port}/hostname", timeout=10).text == "web"
        finally:
            fwd.stop()
    wait_until(allowed, timeout=40, interval=1, what="port-forward allowed once the role grants it")


# ---- hostile clients, straight on the wire ------------------------------------------------

class RawTunnel:
    """A minimal WebSocket client (wsproto) for the tunnel: `websockets` refuses the subprotocol
    `SPDY/3.1+portforward.k8s.io` ('/' is not a token character), kubectl does not."""

    def __init__(self, pf) -> None:
        self.pf = pf

    async def __aenter__(self) -> "RawTunnel":
        from urllib.parse import urlsplit

        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request
        ctx = ssl.create_default_context(cafile=f"{self.pf.pki_dir}/ca.crt")
        ctx.load_cert_chain(f"{self.pf.pki_dir}/admin.crt", f"{self.pf.pki_dir}/admin.key")
        u = urlsplit(self.pf.url)
        self.reader, self.writer = await asyncio.open_connection(u.hostname, u.port, ssl=ctx)
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.events: list = []
        self.writer.write(self.conn.send(Request(host=u.netloc, target=f"/api/v1/namespaces/{self.pf.ns}/pods/web/"
                                                 "portforward", subprotocols=["SPDY/3.1+portforward.k8s.io"])))
        ev = await self._next()
        assert isinstance(ev, AcceptConnection), ev
        return self

    async def _next(self):
        while not self.events:
            data = await self.reader.read(65536)
            self.conn.receive_data(data or None)
            self.events += list(self.conn.events())
            if not data and not self.events:
                raise ConnectionError("closed")
        return self.events.pop(0)

    async def send(self, data: bytes) -> None:
        from wsproto.events import BytesMessage
        self.writer.write(self.conn.send(BytesMessage(data=data)))
        await self.writer.drain()

    async def recv(self) -> bytes:
        from wsproto.events import BytesMessage, CloseConnection
        while True:
            ev = await self._next()
            if isinstance(ev, BytesMessage):
                return bytes(ev.data)
            if isinstance(ev, CloseConnection):
                raise ConnectionError("closed")

    async def __aexit__(self, *exc) -> None:
        self.writer.close()


def _hdr(kind: str, rid: str, port: str = "8080") -> dict:
    return {"streamtype": kind, "port": port, "requestid": rid}


async def _frames(ws, dec: spdy.Decoder, want, timeout: float = 15) -> list:
    got: list = []
    async with asyncio.timeout(timeout):
        while not want(got):
            got += dec.feed(await ws.recv())
    return got


async def test_stream_limit_oversized_frame_and_garbage(pf):
    from kubelab.apiserver import portforward
    enc, dec = spdy.Encoder(), spdy.Decoder()
    async with RawTunnel(pf) as ws:
        # more streams than allowed: the extra ones are refused, the session survives
        n = portforward.MAX_STREAMS + 2
        for i in range(n):
            await ws.send(enc.syn_stream(2 * i + 1, _hdr("error" if i % 2 == 0 else "data", f"r{i}")))
        got = await _frames(ws, dec, lambda g: len(g) >= n)
        rst = [f for f in got if isinstance(f, spdy.ControlFrame) and f.type == spdy.RST_STREAM]
        assert [f.value for f in rst] == [spdy.REFUSED_STREAM] * 2
        # a bad header (no requestid) is reset, a PING is answered
        await ws.send(enc.syn_stream(2 * n + 1, {"streamtype": "data", "port": "8080"}) + enc.ping(41))
        got = await _frames(ws, dec, lambda g: len(g) >= 2)
        assert [(f.type, f.value) for f in got] == [(spdy.RST_STREAM, spdy.PROTOCOL_ERROR), (spdy.PING, 41)]
        # a frame over the limit ends the session with GOAWAY
        await ws.send(b"\x00\x00\x00\x01" + (spdy.MAX_FRAME + 1).to_bytes(4, "big"))
        got = await _frames(ws, dec, lambda g: any(getattr(f, "type", 0) == spdy.GOAWAY for f in g))
        assert got[-1].value == spdy.PROTOCOL_ERROR
        async with asyncio.timeout(10):
            with pytest.raises(ConnectionError):
                while True:
                    await ws.recv()


async def test_session_end_frees_the_pod_socket(pf):
    enc, dec = spdy.Encoder(), spdy.Decoder()
    async with RawTunnel(pf) as ws:
        await ws.send(enc.syn_stream(1, _hdr("error", "0")) + enc.data(1, fin=True)
                      + enc.syn_stream(3, _hdr("data", "0"))
                      + enc.data(3, b"GET /hostname HTTP/1.1\r\nHost: x\r\n\r\n"))
        got = await _frames(ws, dec, lambda g: b"web" in b"".join(f.data for f in g if isinstance(f, spdy.DataFrame)))
        assert [f.stream_id for f in got if isinstance(f, spdy.ControlFrame) and f.type == spdy.SYN_REPLY] == [1, 3]
        assert await asyncio.to_thread(pod_connections, pf, 8080) == 1   # keep-alive: still open
    # kubectl went away without closing its streams: the pod's socket is closed anyway
    await asyncio.to_thread(wait_until, lambda: pod_connections(pf, 8080) == 0, timeout=15, interval=0.2,
                            what="the pod socket closed with the session")


def test_plain_request_and_missing_subprotocol_get_a_status(pf):
    r = pf.h.post(f"/api/v1/namespaces/{pf.ns}/pods/nope/portforward")
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    r = pf.h.post(f"/api/v1/namespaces/{pf.ns}/pods/web/portforward")
    assert r.status_code == 400 and "WebSocket tunnel" in r.json()["message"]


# ---- attach and run -it --------------------------------------------------------------------

def on_terminal(argv: list[str], keys: list[bytes], *, timeout: float = 60) -> tuple[int, bytes]:
    """Run `argv` on a pty, typing each of `keys` once the previous output has settled; the
    exit code and everything it printed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""

    def read_until(pred, limit: float) -> None:
        nonlocal out
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not pred():
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return
    try:
        read_until(lambda: b"command prompt" in out, timeout)
        for k in keys:
            seen = len(out)
            os.write(fd, k)
            read_until(lambda: len(out) > seen + len(k) + 2, 15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                try:
                    while True:
                        r, _, _ = select.select([fd], [], [], 0.1)
                        if not r:
                            break
                        out += os.read(fd, 4096)
                except OSError:
                    pass
                return os.waitstatus_to_exitcode(status), out
            read_until(lambda: False, 0.2)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError(f"{argv[1:]} did not end: {out[-500:]!r}")
    finally:
        os.close(fd)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_run_it_rm_gets_a_shell_with_job_control(pf):
    """`kubectl run -it --rm` (1.33): the container's own sh on a terminal, what is typed
    reaches it, the pod is deleted after the shell exits."""
    node = {"spec": {"nodeName": pf.nodes[0].name}}   # no scheduler in this cluster
    code, out = on_terminal([*kc(pf, "1.33"), "run", "-it", "--rm", "shell", "--image=busybox",
                             "--restart=Never", f"--overrides={json.dumps(node)}", "--", "sh"],
                            [b"echo marker-$((6*7)); [ -t 0 ] && echo on-a-terminal\r", b"exit 0\r"])
    assert code == 0, out
    assert b"marker-42" in out and b"\non-a-terminal" in out and b"Cannot set tty" not in out, out
    assert b'pod "shell" deleted' in out
    assert pf.h.get(f"/api/v1/namespaces/{pf.ns}/pods/shell").status_code in (200, 404)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_attach_tty_and_stdin_pipe(pf):
    """`kubectl attach -it` to a running tty container (1.32), and `run -i` with a pipe: stdin
    in, output out, the exit code carried through."""
    h, ns = pf.h, pf.ns
    h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "att"}, "spec": {
        "nodeName": pf.nodes[0].name, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "busybox", "command": ["sh"], "stdin": True, "tty": True}]}}
           ).raise_for_status()
    try:
        wait_until(lambda: (h.get(f"/api/v1/namespaces/{ns}/pods/att").json().get("status") or {}).get("phase")
                   == "Running", timeout=60, interval=0.2, what="pod att running")
        code, out = on_terminal([*kc(pf), "attach", "-it", "att"], [b"echo attached-$((1+1))\r", b"exit\r"])
        assert b"attached-2" in out and code == 0, out
        # the shell exited: the container restarts (restartPolicy Always), its log holds the session
        r = subprocess.run([*kc(pf), "logs", "att", "--previous"], capture_output=True, text=True, timeout=30)
        assert "attached-2" in r.stdout, r.stderr
    finally:
        h.delete(f"/api/v1/namespaces/{ns}/pods/att", params={"gracePeriodSeconds": "0"})
    node = json.dumps({"spec": {"nodeName": pf.nodes[0].name}})
    r = subprocess.run([*kc(pf), "run", "-i", "--rm", "upper", "--image=busybox", "--restart=Never",
                        f"--overrides={node}", "--", "tr", "a-z", "A-Z"], input="abc\n", capture_output=True,
                       text=True, timeout=90)
    assert r.returncode == 0 and r.stdout.startswith("ABC\n"), (r.stdout, r.stderr)
    r = subprocess.run([*kc(pf), "run", "-i", "--rm", "fails", "--image=busybox", "--restart=Never",
                        f"--overrides={node}", "--", "sh", "-c", "echo before-exit; exit 3"], capture_output=True,
                       text=True, timeout=90)
    assert r.returncode == 3 and "before-exit" in r.stdout, (r.stdout, r.stderr)


def test_attach_refusals(pf):
    """A plain request, an unknown container: a Status, nothing attached."""
    r = pf.h.post(f"/api/v1/namespaces/{pf.ns}/pods/web/attach")
    assert r.status_code == 400 and "WebSocket" in r.json()["message"]
    r = subprocess.run([*kc(pf), "attach", "web", "-c", "nope"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "nope" in r.stderr and "Traceback" not in r.stderr, r.stderr


# ---- kubectl top: the metrics API --------------------------------------------------------

def _millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_top_nodes_and_pods(pf):
    """kubectl finds metrics.k8s.io by discovery; a spinning container shows its CPU, every
    container its memory (from /proc of its processes)."""
    h, ns = pf.h, pf.ns
    h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "spin", "labels": {"app": "spin"}}, "spec": {
        "nodeName": pf.nodes[0].name, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "while :; do :; done"]}]}}
           ).raise_for_status()
    try:
        wait_until(lambda: (h.get(f"/api/v1/namespaces/{ns}/pods/spin").json().get("status") or {}).get("phase")
                   == "Running", timeout=60, interval=0.2, what="pod spin running")
        r = subprocess.run([*kc(pf), "top", "nodes", "--no-headers"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.split()[0] == pf.nodes[0].name, r.stderr
        assert r.stdout.split()[3].endswith("Mi")

        def spinning() -> str:
            r = subprocess.run([*kc(pf, "1.33"), "top", "pods", "--no-headers", "-l", "app=spin"], capture_output=True,
                               text=True, timeout=30)
            return r.stdout if r.returncode == 0 and r.stdout and _millicores(r.stdout.split()[1]) >= 100 else ""
        out = wait_until(spinning, timeout=30, interval=1, what="the spinning pod's CPU in kubectl top")
        assert out.split()[0] == "spin" and len(out.splitlines()) == 1   # the label selector applies
        r = subprocess.run([*kc(pf), "top", "pod", "web", "--containers", "--no-headers"], capture_output=True,
                           text=True, timeout=30)
        pod, container, _cpu, mem = r.stdout.split()
        assert (pod, container) == ("web", "c") and mem.endswith("Mi") and int(mem[:-2]) > 0, r.stderr
    finally:
        h.delete(f"/api/v1/namespaces/{ns}/pods/spin", params={"gracePeriodSeconds": "0"})


def test_metrics_api_is_read_only_and_authorized(pf):
    h, ns = pf.h, pf.ns
    base = "/apis/metrics.k8s.io/v1beta1"
    assert any(g["name"] == "metrics.k8s.io" for g in h.get("/apis").json()["groups"])
    kinds = {r["name"]: (r["kind"], r["verbs"]) for r in h.get(base).json()["resources"]}
    assert kinds == {"nodes": ("NodeMetrics", ["get", "list"]), "pods": ("PodMetrics", ["get", "list"])}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = h.request(method, f"{base}/namespaces/{ns}/pods/web", json={})
        assert r.status_code == 405 and r.json()["kind"] == "Status", method
    r = h.get(f"{base}/namespaces/{ns}/pods/nope")
    assert r.status_code == 404 and r.json()["details"]["group"] == "metrics.k8s.io"
    assert h.get(f"{base}/namespaces/{ns}/pods", params={"labelSelector": "a in (("}).status_code == 400
    assert h.get(f"{base}/namespaces/{ns}/nodes").status_code == 404    # nodes are not namespaced
    # a user without get/list on pods.metrics.k8s.io is refused; the `view` role grants it
    user = f"top-{uuid.uuid4().hex[:4]}"
    r = h.get(f"{base}/namespaces/{ns}/pods", headers={"Impersonate-User": user})
    assert r.status_code == 403 and "pods.metrics.k8s.io" in r.json()["message"]
    h.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", json={
        "metadata": {"name": user}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                "name": "view"},
        "subjects": [{"kind": "User", "name": user}]}).raise_for_status()

    def allowed() -> bool:
        r = h.get(f"{base}/namespaces/{ns}/pods", headers={"Impersonate-User": user})
        return r.status_code == 200 and any(i["metadata"]["name"] == "web" for i in r.json()["items"])
    wait_until(allowed, timeout=40, interval=0.5, what="view grants the metrics API")
    assert h.get(f"{base}/nodes", headers={"Impersonate-User": user}).status_code == 403   # cluster scope: no


# ---- kubectl debug ---------------------------------------------------------------------------

@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_debug_refused_clearly_and_copy_to_works(pf):
    """Ephemeral containers are refused with a 422 naming the field (kubectl used to crash on
    the bare 404); `kubectl debug --copy-to -it` gets a shell in a copy of the pod."""
    for version in ("1.32", "1.33"):
        r = subprocess.run([*kc(pf, version), "debug", "web", "--image=busybox", "-it", "--target=c"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "spec.ephemeralContainers: Forbidden" in r.stderr, r.stderr
        assert "panic" not in r.stderr
    pod = pf.h.get(f"/api/v1/namespaces/{pf.ns}/pods/web").json()
    assert not pod["spec"].get("ephemeralContainers")            # nothing changed
    try:
        code, out = on_terminal([*kc(pf), "debug", "web", "--image=busybox", "-it", "--copy-to=web-debug",
                                 "--same-node", "--", "sh"], [b"echo debug-$((2*21))\r", b"exit\r"])
        assert b"debug-42" in out, out
    finally:
        pf.h.delete(f"/api/v1/namespaces/{pf.ns}/pods/web-debug", params={"gracePeriodSeconds": "0"})


# ---- lifecycle hooks and the grace period ------------------------------------------------------

def test_post_start_and_pre_stop_hooks_within_the_grace_period(pf, tmp_path):
    """postStart (exec) runs in the container; preStop (exec, then httpGet) runs before SIGTERM
    and inside terminationGracePeriodSeconds: a preStop that would sleep 60 s is cut at the
    3 s grace (+ the kubelet's 2 s for SIGTERM). A failing postStart kills the attempt."""
    h, ns = pf.h, pf.ns
    sh = "trap 'echo term >> /host/log; exit 0' TERM; while :; do sleep 0.2; done"
    h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "hooks"}, "spec": {
        "nodeName": pf.nodes[0].name, "terminationGracePeriodSeconds": 3,
        "volumes": [{"name": "host", "hostPath": {"path": str(tmp_path), "type": "Directory"}}],
        "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", sh],
                        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                        "lifecycle": {
                            "postStart": {"exec": {"command": ["sh", "-c", "echo post >> /host/log"]}},
                            "preStop": {"exec": {"command": ["sh", "-c", "echo pre >> /host/log; sleep 60"]}}}}]}}
           ).raise_for_status()
    log = tmp_path / "log"
    wait_until(lambda: log.exists() and log.read_text() == "post\n", timeout=60, interval=0.2, what="postStart ran")
    t0 = time.monotonic()
    h.delete(f"/api/v1/namespaces/{ns}/pods/hooks")
    wait_until(lambda: h.get(f"/api/v1/namespaces/{ns}/pods/hooks").status_code == 404, timeout=30, interval=0.2,
               what="pod hooks gone")
    took = time.monotonic() - t0
    assert log.read_text() == "post\npre\nterm\n"        # preStop before SIGTERM, which the trap saw
    assert 3 <= took < 15, took                          # the grace period held the pod, and bounded preStop

    h.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "badhook"}, "spec": {
        "nodeName": pf.nodes[0].name, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"],
                        "lifecycle": {"postStart": {"httpGet": {"port": 1, "path": "/"}}}}]}}).raise_for_status()
    try:
        def restarted() -> bool:
            st = h.get(f"/api/v1/namespaces/{ns}/pods/badhook").json().get("status") or {}
            return any(c.get("restartCount", 0) >= 1 for c in st.get("containerStatuses") or [])
        wait_until(restarted, timeout=60, interval=0.5, what="a failed postStart restarts the container")
        events = h.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
        assert any(e["reason"] == "FailedPostStartHook" and e["involvedObject"]["name"] == "badhook" for e in events)
    finally:
        h.delete(f"/api/v1/namespaces/{ns}/pods/badhook", params={"gracePeriodSeconds": "0"})
