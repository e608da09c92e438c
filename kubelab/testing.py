"""Start real etcd and API server processes for tests and benchmarks.

Used by `tests/conftest.py` and `bench/`: each gets its own etcd in a temporary data dir on
free loopback ports, and stops exactly the processes it started, by PID.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from kubelab.client.kubeconfig import render


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02,
               what: str = "condition") -> object:
    """Poll `cond` until truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def eventually(cond: Callable[[], Awaitable[object] | object], *, timeout: float = 10.0,
                     interval: float = 0.02, what: str = "condition") -> object:
    """Async `wait_until`: `cond` may be sync or async."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = cond()
            if asyncio.iscoroutine(value):
                value = await value
        except Exception as e:  # a condition may fail until it holds
            value, last_error = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                               + (f" (last error: {last_error})" if last_error else ""))
        await asyncio.sleep(interval)


@dataclass
class Proc:
    """A process this test or bench started: stopped by its PID only, its output in a file."""

    popen: subprocess.Popen
    log_path: str

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            (self.popen.kill if kill else self.popen.terminate)()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Stop it and remove its log."""
        self.stop()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def _spawn(cmd: list[str], log_path: str, env: dict | None = None) -> Proc:
    out = open(log_path, "ab")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env={**os.environ, **(env or {})}, start_new_session=True)
    out.close()
    return Proc(p, log_path)


@dataclass
class Etcd:
    url: str
    data_dir: str
    proc: Proc

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_etcd(*, timeout: float = 40.0) -> Etcd:
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    if not os.path.exists(etcd):
        raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
    data = tempfile.mkdtemp(prefix="kubelab-etcd-")
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    cmd = [etcd, "--name", "default", "--data-dir", data, "--listen-client-urls", url,
           "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
           "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "warn"]
    proc = _spawn(cmd, os.path.join(data, "..", os.path.basename(data) + ".log"),
                  env={"ETCD_UNSUPPORTED_ARCH": "arm64"} if os.uname().machine == "aarch64" else None)
    e = Etcd(url, data, proc)

    def healthy() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"etcd exited: {proc.log()[-4000:]}")
        return httpx.get(f"{url}/health", timeout=1).status_code == 200

    try:
        wait_until(healthy, timeout=timeout, what="etcd /health")
    except Exception:
        e.stop()
        raise
    return e


@dataclass
class ApiServer:
    url: str
    kubeconfig: str
    proc: Proc
    workdir: str
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_apiserver(etcd_url: str, *, port: int | None = None, bind_address: str = "127.0.0.1",
                    args: list[str] | None = None, timeout: float = 60.0, ca_file: str | None = None,
                    client_cert: str | None = None, client_key: str | None = None) -> ApiServer:
    """An API server on `bind_address` (give an address on a test bridge to reach it from
    other network namespaces). With `--tls-cert-file` in `args` it serves HTTPS: pass the
    CA (`ca_file`) and an admin client certificate for the readiness probe and kubeconfig."""
    port = port or free_port()
    work = tempfile.mkdtemp(prefix="kubelab-apiserver-")
    args = list(args or [])
    tls = "--tls-cert-file" in args
    if not tls and bind_address not in ("127.0.0.1", "localhost", "::1") and "--allow-insecure-http" not in args:
        args.append("--allow-insecure-http")  # test bridges: plain HTTP off loopback, on purpose
    url = f"{'https' if tls else 'http'}://{bind_address}:{port}"
    cmd = [sys.executable, "-m", "kubelab.apiserver", "--etcd-servers", etcd_url, "--bind-address", bind_address,
           "--port", str(port), *args]
    proc = _spawn(cmd, os.path.join(work, "apiserver.log"))
    kubeconfig = os.path.join(work, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(render(server=url, ca_file=ca_file, client_cert=client_cert, client_key=client_key))
    a = ApiServer(url, kubeconfig, proc, work)
    probe: dict = dict(timeout=1)
    if tls:
        import ssl
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl._create_unverified_context()
        if client_cert:
            ctx.load_cert_chain(client_cert, client_key)
        probe["verify"] = ctx

    def ready() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"API server exited: {proc.log()[-4000:]}")
        if httpx.get(f"{url}/readyz", **probe).status_code != 200:
            return False
        if tls and not client_cert:
            return True
        return httpx.get(f"{url}/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
                         **probe).status_code == 200

    try:
        wait_until(ready, timeout=timeout, what="API server /readyz")
    except Exception:
        print(proc.log()[-4000:], file=sys.stderr)
        a.stop()
        raise
    return a


@contextmanager
def secure_apiserver(etcd_url: str, *, nodes: Iterable[str] = ("n1",), users: Iterable[str] = (),
                     args: Iterable[str] = ()) -> Iterator[ApiServer]:
    """An HTTPS API server with a fresh lab PKI (client certificates, service-account tokens):
    `a.extra["dir"]` holds the CA, admin/node/user certificates and sa.key. Both go at exit."""
    from kubelab.pki import certs
    d = tempfile.mkdtemp(prefix="kubelab-pki-")
    os.chmod(d, 0o700)
    a = None
    try:
        certs.init(d, apiserver_ips=["127.0.0.1"], nodes=list(nodes))
        for user in users:
            certs.issue_identity(d, certs.user_identity(user))
        a = start_apiserver(etcd_url, args=[
            "--tls-cert-file", f"{d}/apiserver.crt", "--tls-private-key-file", f"{d}/apiserver.key",
            "--client-ca-file", f"{d}/ca.crt", "--service-account-key-file", f"{d}/sa.key", *args],
            ca_file=f"{d}/ca.crt", client_cert=f"{d}/admin.crt", client_key=f"{d}/admin.key")
        a.extra["dir"] = d
        yield a
    finally:
        if a is not None:
            a.stop()
        shutil.rmtree(d, ignore_errors=True)


def tls_client(a: ApiServer, ident: str | None = "admin", token: str | None = None) -> httpx.Client:
    """An httpx client of `secure_apiserver`'s: as the certificate `ident` (e.g. admin,
    user-alice, node-n1), or anonymous with None; a bearer `token` on top if given."""
    import ssl
    d = a.extra["dir"]
    ctx = ssl.create_default_context(cafile=f"{d}/ca.crt")
    if ident:
        ctx.load_cert_chain(f"{d}/{ident}.crt", f"{d}/{ident}.key")
    return httpx.Client(base_url=a.url, verify=ctx, timeout=10,
                        headers={"Authorization": f"Bearer {token}"} if token else {})


def kubectl(kubeconfig: str, *args: str, request_timeout: str = "30s", timeout: float = 60,
            check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """The real kubectl against `kubeconfig`; with `check`, a failure is an AssertionError
    that carries its output (what a test report should show)."""
    p = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, f"--request-timeout={request_timeout}", *args],
                       capture_output=True, text=True, timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p
