"""The ingress add-on on a real lab (ONE lab for the module): `kubelab up --ingress` runs the
controller as pods (registry.k8s.io/ingress-nginx/controller → python -m kubelab.ingress with
Debian's nginx), reached from the host through the Service's NodePorts on a worker's address:
two apps by host and path, TLS by SNI (curl --resolve --cacert), 503 and 404, status filled
from the Service, the rendered nginx.conf readable with kubectl exec, and the controller's
least-privilege RBAC; then the Gateway API on the same pods: a Gateway of the add-on's class
`kubelab` and an HTTPRoute with path and header matches and a 90/10 split measured over 1,000
requests, the Gateway's address from the controller Service."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from kubelab.lab.testing import Lab
from kubelab.testing import kubectl, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NS = "shop"
SA = "system:serviceaccount:ingress-nginx:ingress-nginx"


def _app(name: str) -> list[dict]:
    labels = {"app": name}
    return [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                 "metadata": {"labels": labels},
                 "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                     "name": "app", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                     "args": ["serve-hostname"], "ports": [{"containerPort": 9376}]}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
             "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 9376}]}}]


def _paths(*paths: tuple[str, str, str]) -> dict:
    return {"paths": [{"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": 80}}}}
                      for p, t, s in paths]}


class Env:
    def __init__(self, lab: Lab, work: str) -> None:
        self.lab, self.work = lab, work
        svc = json.loads(lab.kubectl("-n", "ingress-nginx", "get", "svc", "ingress-nginx-controller",
                                     "-o", "json").stdout)
        ports = {p["name"]: p["nodePort"] for p in svc["spec"]["ports"]}
        self.node_ip = lab.plan.workers[0].ip
        self.http, self.https, self.gateway = ports["http"], ports["https"], ports["gateway-http"]

    def curl(self, host: str, path: str = "/", *, tls: bool = False, port: int = 0,
             extra: tuple[str, ...] = ()) -> tuple[int, str]:
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5", "--noproxy", "*", *extra]
        if tls:
            args += ["--resolve", f"{host}:{self.https}:{self.node_ip}", "--cacert", f"{self.work}/tls.crt",
                     f"https://{host}:{self.https}{path}"]
        else:
            args += ["-H", f"Host: {host}", f"http://{self.node_ip}:{port or self.http}{path}"]
        p = subprocess.run(args, capture_output=True, text=True, timeout=15)
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body.strip()


@pytest.fixture(scope="module")
def env():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab.create(workers=2)
    work = tempfile.mkdtemp(prefix="kubelab-ingress-e2e-")
    try:
        lab.up("--no-kubeconfig", "--no-dns", "--ingress")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=tls.test", "-addext", "subjectAltName=DNS:tls.test", "-keyout", f"{work}/tls.key",
                        "-out", f"{work}/tls.crt"], check=True, capture_output=True, timeout=60)
        lab.kubectl("create", "namespace", NS)
        lab.kubectl("-n", NS, "create", "secret", "tls", "tls-test", f"--cert={work}/tls.crt", f"--key={work}/tls.key")
        objs = [*_app("app-a"), *_app("app-b"),
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty", "namespace": NS},
                 "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]}},
                {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": NS},
                 "spec": {"tls": [{"hosts": ["tls.test"], "secretName": "tls-test"}], "rules": [
                     {"host": "a.test", "http": _paths(("/", "Prefix", "app-a"), ("/b", "Prefix", "app-b"))},
                     {"host": "b.test", "http": _paths(("/", "Prefix", "app-b"))},
                     {"host": "tls.test", "http": _paths(("/", "Prefix", "app-a"))},
                     {"host": "down.test", "http": _paths(("/", "Prefix", "empty"))}]}}]
        kubectl(lab.kubeconfig, "apply", "-f", "-",
                input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
        e = Env(lab, work)
        wait_until(lambda: e.curl("a.test")[1].startswith("app-a") and e.curl("b.test")[1].startswith("app-b"),
                   timeout=120, interval=0.5, what="both apps answering through the ingress")
        yield e
    finally:
        left = lab.cleanup()
        subprocess.run(["rm", "-rf", work], check=False)
        assert not left, left


def test_host_and_path_routing(env):
    assert env.curl("a.test", "/")[1].startswith("app-a")
    assert env.curl("a.test", "/b/x")[1].startswith("app-b")
    assert env.curl("a.test", "/bx")[1].startswith("app-a")
    assert env.curl("b.test", "/anything")[1].startswith("app-b")


def test_tls_by_sni(env):
    code, body = env.curl("tls.test", "/", tls=True)
    assert code == 200 and body.startswith("app-a")
    assert env.curl("tls.test")[0] == 308


def test_503_and_default_backend_404(env):
    assert env.curl("down.test")[0] == 503
    assert env.curl("unknown.test") == (404, "default backend - 404")


def test_status_filled_from_the_controller_service(env):
    lab = env.lab
    svc = json.loads(lab.kubectl("-n", "ingress-nginx", "get", "svc", "ingress-nginx-controller", "-o", "json").stdout)
    if not (svc.get("status") or {}).get("loadBalancer", {}).get("ingress"):
        # no LoadBalancer controller in this lab: write the address it would have written
        lab.kubectl("-n", "ingress-nginx", "patch", "svc", "ingress-nginx-controller", "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": env.node_ip}]}}}))

    def same() -> bool:
        svc = json.loads(lab.kubectl("-n", "ingress-nginx", "get", "svc", "ingress-nginx-controller",
                                     "-o", "json").stdout)
        ing = json.loads(lab.kubectl("-n", NS, "get", "ingress", "shop", "-o", "json").stdout)
        want = [{k: v for k, v in i.items() if k in ("ip", "hostname")} for i in svc["status"]["loadBalancer"]["ingress"]]
        return want and (ing.get("status") or {}).get("loadBalancer", {}).get("ingress") == want
    wait_until(same, timeout=60, interval=0.5, what="the Ingress status to follow the controller Service")


def test_rendered_config_readable_with_kubectl_exec(env):
    pod = env.lab.kubectl("-n", "ingress-nginx", "get", "pods", "-o", "name").stdout.split()[0]
    conf = env.lab.kubectl("-n", "ingress-nginx", "exec", pod, "--", "cat", "/etc/nginx/nginx.conf").stdout
    assert 'server_name "a.test";' in conf and "upstream shop_app-a_80" in conf and "return 503;" in conf


def test_controller_rbac_is_least_privilege(env):
    def can(*args: str) -> str:
        return env.lab.kubectl("auth", "can-i", *args, f"--as={SA}", check=False).stdout.strip()
    assert can("list", "secrets", "-n", NS) == "yes"
    assert can("get", "secrets", "-n", NS) == "no"
    assert can("create", "ingresses.networking.k8s.io", "-n", NS) == "no"
    assert can("patch", "ingresses.networking.k8s.io", "--subresource=status", "-n", NS) == "yes"
    assert can("list", "pods", "-n", NS) == "no"


GATEWAY = [
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": NS},
     "spec": {"gatewayClassName": "kubelab", "listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}},
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": NS},
     "spec": {"parentRefs": [{"name": "web"}], "hostnames": ["gw.test"], "rules": [
         {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
          "backendRefs": [{"name": "app-a", "port": 80, "weight": 90}, {"name": "app-b", "port": 80, "weight": 10}]},
         {"matches": [{"path": {"type": "PathPrefix", "value": "/beta"}, "headers": [{"name": "X-Canary",
                                                                                      "value": "yes"}]}],
          "backendRefs": [{"name": "app-b", "port": 80}]}]}}]


@pytest.fixture(scope="module")
def gateway(env):
    kubectl(env.lab.kubeconfig, "apply", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": GATEWAY}))
    wait_until(lambda: env.curl("gw.test", "/beta", port=env.gateway, extra=("-H", "X-Canary: yes"))[0] == 200,
               timeout=120, interval=0.5, what="the Gateway listener answering through the controller Service")
    return env


def test_gateway_path_and_header_matches(gateway):
    for _ in range(10):  # the header match always wins over the 90/10 rule; without it, never app-b only
        code, body = gateway.curl("gw.test", "/beta/x", port=gateway.gateway, extra=("-H", "X-Canary: yes"))
        assert code == 200 and body.startswith("app-b"), body
    assert gateway.curl("other.test", "/", port=gateway.gateway)[0] == 404


def test_gateway_weighted_split_90_10(gateway):
    """1,000 requests on 8 keep-alive connections (nginx draws the split per request): app-b's
    share within ±5 % of 10 %."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    def batch(n: int) -> int:
        conn, b = http.client.HTTPConnection(gateway.node_ip, gateway.gateway, timeout=15), 0
        try:
            for _ in range(n):
                conn.request("GET", "/", headers={"Host": "gw.test"})
                resp = conn.getresponse()
                body = resp.read().decode()
                assert resp.status == 200, body
                b += body.startswith("app-b")
        finally:
            conn.close()
        return b
    with ThreadPoolExecutor(8) as pool:
        app_b = sum(pool.map(batch, [125] * 8))
    assert 50 <= app_b <= 150, app_b


def test_gateway_status_and_address(gateway):
    lab = gateway.lab

    def status() -> dict:
        return json.loads(lab.kubectl("-n", NS, "get", "gateway", "web", "-o", "json").stdout).get("status") or {}
    svc = json.loads(lab.kubectl("-n", "ingress-nginx", "get", "svc", "ingress-nginx-controller", "-o", "json").stdout)
    lb = [i.get("ip") for i in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []]
    if not lb:  # as the Ingress status test: the address a LoadBalancer controller would have written
        lab.kubectl("-n", "ingress-nginx", "patch", "svc", "ingress-nginx-controller", "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": gateway.node_ip}]}}}))
        lb = [gateway.node_ip]
    wait_until(lambda: [a["value"] for a in status().get("addresses") or []] == lb, timeout=60, interval=0.5,
               what="the Gateway's status.addresses from the controller Service")
    programmed = next(c for c in status()["conditions"] if c["type"] == "Programmed")
    assert programmed["status"] == "True"
    route = json.loads(lab.kubectl("-n", NS, "get", "httproute", "shop", "-o", "json").stdout)
    accepted = next(c for c in route["status"]["parents"][0]["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "Accepted")
