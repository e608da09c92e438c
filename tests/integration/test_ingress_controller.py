"""The ingress controller process (python -m kubelab.ingress) with real nginx against a real API
server + etcd, no lab: backends are HTTP servers on loopback named by EndpointSlices, nginx
listens on 127.0.0.1. One controller for the module (started once, checked many ways):
host/path routing (Prefix element-wise, Exact, ImplementationSpecific), default backend 404,
503 without ready endpoints, TLS by SNI (curl --resolve --cacert) and the 308 redirect,
status.loadBalancer from the published Service, other classes ignored with an Event, hostile
paths refused without breaking nginx, and an endpoint change under steady load with no
failed request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubelab.testing import _spawn, free_port, kubectl, wait_until

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("kubectl") is None
                                or shutil.which("curl") is None, reason="needs nginx, kubectl and curl")


class _Backend(ThreadingHTTPServer):
    daemon_threads = True


def _backend(name: str) -> _Backend:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = f"{name} {self.path} {self.headers.get('Host')} x-gw={self.headers.get('X-Gw')}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_DELETE = do_GET  # noqa: N815 - the Gateway tests match on the method

        def setup(self) -> None:  # headers and body are two writes: without NODELAY each waits a delayed ACK
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:
            pass
    srv = _Backend(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _service(ns: str, name: str, port: int) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
             "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": f"{name}-1", "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
             "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
             "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}]


def _rule(host: str, *paths: tuple[str, str, str]) -> dict:
    return {"host": host, "http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": 80}}}} for p, t, s in paths]}}


class Env:
    def __init__(self, apiserver) -> None:
        self.kubeconfig = apiserver.kubeconfig
        self.ns = f"ing-{uuid.uuid4().hex[:6]}"
        self.cls = f"kubelab.test/{self.ns}"
        self.work = tempfile.mkdtemp(prefix="kubelab-ingress-")
        self.http, self.https, self.gw_port, self.gw_tls = free_port(), free_port(), free_port(), free_port()
        self.gw_controller = f"kubelab.test/gw-{self.ns}"
        self.backends = {n: _backend(n) for n in ("app-a", "app-b", "app-a2")}
        self.proc = None

    def k(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return kubectl(self.kubeconfig, *args, **kw)

    def apply(self, *objs: dict) -> None:
        self.k("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))

    def curl(self, host: str, path: str = "/", *, tls: bool = False, port: int = 0,
             extra: tuple[str, ...] = ()) -> tuple[int, str]:
        port = port or (self.https if tls else self.http)
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5", "--noproxy", "*", *extra]
        if tls:
            args += ["--resolve", f"{host}:{port}:127.0.0.1", "--cacert", f"{self.work}/tls.crt",
                     f"https://{host}:{port}{path}"]
        else:
            args += ["-H", f"Host: {host}", f"http://127.0.0.1:{port}{path}"]
        p = subprocess.run(args, capture_output=True, text=True, timeout=10)
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body

    def conf(self) -> str:
        with open(f"{self.work}/conf/nginx.conf") as f:
            return f.read()


@pytest.fixture(scope="module")
def env(apiserver):
    e = Env(apiserver)
    nginx_pid = None
    try:
        e.k("create", "namespace", e.ns)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=tls.test", "-addext", "subjectAltName=DNS:tls.test", "-keyout", f"{e.work}/tls.key",
                        "-out", f"{e.work}/tls.crt"], check=True, capture_output=True, timeout=60)
        e.k("-n", e.ns, "create", "secret", "tls", "tls-test", f"--cert={e.work}/tls.crt", f"--key={e.work}/tls.key")
        e.apply(
            {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
             "metadata": {"name": e.ns, "annotations": {"ingressclass.kubernetes.io/is-default-class": "false"}},
             "spec": {"controller": e.cls}},
            *_service(e.ns, "app-a", e.backends["app-a"].server_address[1]),
            *_service(e.ns, "app-b", e.backends["app-b"].server_address[1]),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty", "namespace": e.ns},
             "spec": {"ports": [{"name": "http", "port": 80}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "controller", "namespace": e.ns},
             "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": e.ns},
             "spec": {"ingressClassName": e.ns,
                      "tls": [{"hosts": ["tls.test"], "secretName": "tls-test"}],
                      "rules": [_rule("a.test", ("/", "Prefix", "app-a"), ("/api", "Prefix", "app-b"),
                                      ("/exact", "Exact", "app-b"), ("/is", "ImplementationSpecific", "app-b")),
                                _rule("tls.test", ("/", "Prefix", "app-a")),
                                _rule("*.wild.test", ("/", "Prefix", "app-b")),
                                _rule("down.test", ("/", "Prefix", "empty"))]}},
        )
        env_vars = {"PYTHONPATH": os.getcwd()}
        e.proc = _spawn([sys.executable, "-m", "kubelab.ingress", "--kubeconfig", e.kubeconfig,
                         "--controller-class", e.cls, "--publish-service", f"{e.ns}/controller",
                         "--gateway-controller-name", e.gw_controller,
                         "--conf-dir", f"{e.work}/conf", "--run-dir", f"{e.work}/run", "--listen", "127.0.0.1",
                         "--http-port", str(e.http), "--https-port", str(e.https),
                         "--health-port", str(free_port()), "--default-backend-port", str(free_port())],
                        f"{e.work}/controller.log", env=env_vars)
        wait_until(lambda: e.curl("a.test")[0] == 200 or e.proc.popen.poll() is not None, timeout=60,
                   what="the controller's nginx to route a.test")
        assert e.proc.popen.poll() is None, e.proc.log()
        with open(f"{e.work}/run/nginx.pid") as f:
            nginx_pid = int(f.read())
        yield e
    finally:
        if e.proc is not None:
            e.proc.stop()
        if nginx_pid:  # the controller stops its nginx; make sure, by the PID it wrote
            try:
                os.kill(nginx_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        e.k("delete", "namespace", e.ns, "--wait=false", check=False)
        e.k("delete", "ingressclass", e.ns, check=False)
        e.k("delete", "gatewayclass", e.ns, check=False)
        for b in e.backends.values():
            b.shutdown()
        shutil.rmtree(e.work, ignore_errors=True)


def test_host_and_path_routing(env):
    assert env.curl("a.test", "/")[1].startswith("app-a / a.test")
    assert env.curl("a.test", "/api")[1].startswith("app-b /api")
    assert env.curl("a.test", "/api/v1")[1].startswith("app-b /api/v1")
    assert env.curl("a.test", "/apix")[1].startswith("app-a /apix")      # Prefix is element-wise
    assert env.curl("a.test", "/exact")[1].startswith("app-b /exact")
    assert env.curl("a.test", "/exact/more")[1].startswith("app-a")      # Exact is exact
    assert env.curl("a.test", "/isx")[1].startswith("app-b /isx")        # ImplementationSpecific: nginx prefix
    assert env.curl("x.wild.test", "/")[1].startswith("app-b / x.wild.test")
    assert env.curl("x.y.wild.test", "/")[0] == 404                     # `*` is exactly one label
    assert env.curl("wild.test", "/")[0] == 404


def test_unknown_host_gets_default_backend_404_and_no_endpoints_503(env):
    code, body = env.curl("nobody.test", "/")
    assert (code, body.strip()) == (404, "default backend - 404")
    assert env.curl("down.test", "/")[0] == 503


def test_tls_by_sni_and_redirect(env):
    code, body = env.curl("tls.test", "/x", tls=True)
    assert (code, body.split()[:2]) == (200, ["app-a", "/x"])
    assert env.curl("tls.test", "/x")[0] == 308
    unknown = subprocess.run(["curl", "-sS", "--max-time", "5", "--resolve", f"other.test:{env.https}:127.0.0.1",
                              "-k", f"https://other.test:{env.https}/"], capture_output=True, text=True)
    assert unknown.returncode != 0  # no certificate for an unknown name: the handshake is refused
    assert "ssl_certificate" in env.conf() and "BEGIN" not in env.conf()  # keys stay in files


def test_status_follows_the_published_service(env):
    for ip in ("192.0.2.10", "192.0.2.11"):
        env.k("-n", env.ns, "patch", "service", "controller", "--subresource=status", "--type=merge",
              "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}))
        wait_until(lambda: ip in env.k("-n", env.ns, "get", "ingress", "web").stdout, timeout=20,
                   what=f"ingress status {ip}")


def test_other_class_is_ignored_with_an_event(env):
    env.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "other", "namespace": env.ns},
               "spec": {"ingressClassName": "someone-else", "rules": [_rule("other.test", ("/", "Prefix", "app-a"))]}})
    wait_until(lambda: "Ignored" in env.k("-n", env.ns, "get", "events",
                                          "--field-selector", "involvedObject.name=other").stdout,
               timeout=20, what="the Ignored event")
    assert env.curl("other.test")[0] == 404 and "other.test" not in env.conf()


def test_hostile_paths_are_refused_and_nginx_keeps_working(env):
    evil = ['/x";} server { listen 9999; } #', "/a;b", "/$host", "/x{y}", "/a b"]
    env.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "evil", "namespace": env.ns},
               "spec": {"ingressClassName": env.ns, "rules": [
                   _rule("evil.test", *((p, "ImplementationSpecific", "app-b") for p in evil),
                         ("/fine", "Prefix", "app-b"))]}})
    wait_until(lambda: env.curl("evil.test", "/fine")[0] == 200, timeout=20, what="the safe path of evil.test")
    conf = env.conf()
    assert "9999" not in conf and "/a;b" not in conf and "$host\"" not in conf
    events = env.k("-n", env.ns, "get", "events", "--field-selector", "involvedObject.name=evil").stdout
    assert "InvalidPath" in events
    assert env.curl("a.test", "/api")[1].startswith("app-b")


def test_endpoint_change_under_load_drops_no_request(env):
    """Move app-a from one backend to another while 50 req/s flow: every request answers 200,
    and traffic follows the new endpoint."""
    results: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            t = time.monotonic()
            code, body = env.curl("a.test", "/")
            results.append((t, code, body.split()[0] if body else ""))
            time.sleep(max(0.0, 0.02 - (time.monotonic() - t)))
    threads = [threading.Thread(target=load) for _ in range(2)]
    for th in threads:
        th.start()
    try:
        wait_until(lambda: len(results) > 20, timeout=20, what="load running")
        changed = time.monotonic()
        env.apply(_service(env.ns, "app-a", env.backends["app-a2"].server_address[1])[1])
        wait_until(lambda: any(t > changed and who == "app-a2" for t, _, who in results), timeout=20,
                   what="traffic on the new endpoint")
        followed = min(t for t, _, who in results if t > changed and who == "app-a2") - changed
        time.sleep(0.5)  # keep the load on a little after the switch (not synchronisation)
    finally:
        stop.set()
        for th in threads:
            th.join()
    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:5]
    assert len(results) > 40 and followed < 5, (len(results), followed)


# --- Gateway API on the same controller and nginx -----------------------------------------------

def _gw_objects(env) -> list[dict]:
    ns = env.ns
    return [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": ns},
         "spec": {"controllerName": env.gw_controller}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": ns},
         "spec": {"gatewayClassName": ns, "listeners": [
             {"name": "web", "port": env.gw_port, "protocol": "HTTP", "hostname": "*.gw.test"},
             {"name": "taken", "port": env.http, "protocol": "HTTP"},
             {"name": "tls", "port": env.gw_tls, "protocol": "HTTPS", "hostname": "tls.test",
              "tls": {"certificateRefs": [{"name": "tls-test"}]}},
             {"name": "xns", "port": env.gw_tls, "protocol": "HTTPS", "hostname": "other.tls.test",
              "tls": {"certificateRefs": [{"name": "tls-test", "namespace": "default"}]}}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "secure", "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "tls"}],
                  "rules": [{"backendRefs": [{"name": "app-b", "port": 80}]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "web"}], "hostnames": ["shop.gw.test"], "rules": [
             {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
              "backendRefs": [{"name": "app-a", "port": 80, "weight": 90}, {"name": "app-b", "port": 80, "weight": 10}]},
             {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "headers": [{"name": "X-Env", "value": "b"}]}],
              "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Gw",
                                                                                                 "value": "set"}]}}],
              "backendRefs": [{"name": "app-b", "port": 80}]},
             {"matches": [{"path": {"type": "Exact", "value": "/only-a"}}, {"method": "DELETE"},
                          {"queryParams": [{"name": "v", "value": "a"}]}],
              "backendRefs": [{"name": "app-a", "port": 80}]},
             {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
              "filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "new.gw.test",
                                                                          "statusCode": 301}}]},
             {"matches": [{"path": {"type": "PathPrefix", "value": "/gone"}}],
              "backendRefs": [{"name": "missing", "port": 80}]}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "elsewhere",
                                                                                          "namespace": ns},
         "spec": {"parentRefs": [{"name": "gw", "sectionName": "web"}], "hostnames": ["other.test"],
                  "rules": [{"backendRefs": [{"name": "app-a", "port": 80}]}]}},
    ]


@pytest.fixture(scope="module")
def gw(env):
    env.apply(*_gw_objects(env))
    wait_until(lambda: env.curl("shop.gw.test", "/only-a", port=env.gw_port)[0] == 200, timeout=60,
               what="the Gateway's listener to route shop.gw.test")
    return env


def split_counts(ip: str, port: int, host: str, path: str, n: int) -> dict[str, int]:
    """Which backend answered each of `n` requests on one keep-alive connection (nginx draws
    the split per request, so reusing the connection changes nothing but the test's time)."""
    import http.client

    counts: dict[str, int] = {"app-b": 0}
    conn = http.client.HTTPConnection(ip, port, timeout=10)
    try:
        for _ in range(n):
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            body = resp.read().decode()
            assert resp.status == 200, (resp.status, body)
            counts[body.split()[0]] = counts.get(body.split()[0], 0) + 1
    finally:
        conn.close()
    return counts


def _cond(conds: list, ctype: str) -> tuple:
    c = next(c for c in conds if c["type"] == ctype)
    return c["status"], c["reason"]


def test_gateway_matches_precedence_and_filters(gw):
    p = gw.gw_port
    # app-a's endpoint may be app-a2's server after the rollout test: both are "app-a"
    assert gw.curl("shop.gw.test", "/only-a", port=p)[1].split()[:2] in (["app-a", "/only-a"], ["app-a2", "/only-a"])
    assert gw.curl("shop.gw.test", "/x?v=a", port=p)[1].split()[1] == "/x?v=a"
    for _ in range(5):  # query param and method: always app-a, never the 10 % of the split
        assert gw.curl("shop.gw.test", "/x?v=a", port=p)[1].startswith("app-a")
        assert gw.curl("shop.gw.test", "/x", port=p, extra=("-X", "DELETE"))[1].startswith("app-a")
    code, body = gw.curl("shop.gw.test", "/api/v1", port=p, extra=("-H", "X-Env: b"))          # header + set
    assert code == 200 and body.startswith("app-b /api/v1") and "x-gw=set" in body
    assert gw.curl("shop.gw.test", "/api/v1", port=p, extra=("-H", "X-Env: B"))[1].find("x-gw=set") < 0  # exact
    code, _ = gw.curl("shop.gw.test", "/old", port=p, extra=("-D", "-"))
    assert code == 301
    hdrs = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--noproxy", "*", "-H", "Host: shop.gw.test",
                           f"http://127.0.0.1:{p}/old?q=1"], capture_output=True, text=True, timeout=10).stdout
    assert f"Location: http://new.gw.test:{p}/old?q=1" in hdrs
    assert gw.curl("shop.gw.test", "/gone/x", port=p)[0] == 500          # backend not found answers 500
    assert gw.curl("unknown.gw.test", "/", port=p)[0] == 404             # no route for that hostname
    code, body = gw.curl("tls.test", "/s", tls=True, port=gw.gw_tls)     # HTTPS listener, SNI, the Secret's cert
    assert code == 200 and body.startswith("app-b /s tls.test"), body


def test_gateway_weighted_split_90_10(gw):
    """1,000 requests through nginx's split: app-b's share within ±5 % of 10 %."""
    counts = split_counts("127.0.0.1", gw.gw_port, "shop.gw.test", "/split", 1000)
    assert 50 <= counts["app-b"] <= 150, counts


def test_gateway_status_conditions(gw):
    def status(kind: str, name: str) -> dict:
        return json.loads(gw.k("-n", gw.ns, "get", kind, name, "-o", "json").stdout).get("status") or {}

    wait_until(lambda: status("gatewayclass", gw.ns).get("conditions"), timeout=30, what="GatewayClass status")
    assert _cond(status("gatewayclass", gw.ns)["conditions"], "Accepted") == ("True", "Accepted")
    wait_until(lambda: status("gateway", "gw").get("listeners"), timeout=30, what="Gateway status")
    st = status("gateway", "gw")
    assert _cond(st["conditions"], "Accepted") == ("True", "Accepted")
    assert _cond(st["conditions"], "Programmed") == ("True", "Programmed")
    ls = {x["name"]: x for x in st["listeners"]}
    assert ls["web"]["attachedRoutes"] == 1
    assert _cond(ls["taken"]["conditions"], "Accepted") == ("False", "PortUnavailable")
    assert _cond(ls["tls"]["conditions"], "ResolvedRefs") == ("True", "ResolvedRefs")
    assert _cond(ls["xns"]["conditions"], "ResolvedRefs") == ("False", "RefNotPermitted")  # no ReferenceGrant
    wait_until(lambda: status("httproute", "elsewhere").get("parents"), timeout=30, what="HTTPRoute status")
    shop = status("httproute", "shop")["parents"][0]
    assert shop["controllerName"] == gw.gw_controller
    assert _cond(shop["conditions"], "Accepted") == ("True", "Accepted")
    assert _cond(shop["conditions"], "ResolvedRefs") == ("False", "BackendNotFound")
    other = status("httproute", "elsewhere")["parents"][0]
    assert _cond(other["conditions"], "Accepted") == ("False", "NoMatchingListenerHostname")
    table = gw.k("-n", gw.ns, "get", "gateway", "gw").stdout
    assert table.split("\n")[0].split() == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"], table
    assert gw.k("get", "gatewayclass", gw.ns).stdout.split("\n")[1].split()[:3] == [gw.ns, gw.gw_controller, "True"]
