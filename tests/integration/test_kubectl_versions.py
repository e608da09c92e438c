"""Every kubectl a course may hand out (1.27 to 1.33) against one real etcd + HTTPS API server.

`/usr/bin/kubectl` on the test machines picks the binary matching the server's minor version
(always 1.32 here), so the other versions are only exercised if they are run by name: the
`kubectl.1.<minor>` binaries beside the real path of `kubectl`. Each version gets its own
namespace on the shared server and runs the everyday verbs of a course. A version that is
missing fails (a green run without it would prove nothing about it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest
import yaml

from kubelab.testing import secure_apiserver, start_etcd, tls_client

VERSIONS = [f"1.{m}" for m in range(27, 34)]
MISSING = ("kubectl.{v} is needed and is not beside the real kubectl ({where}): the suite runs every "
           "kubectl from 1.27 to 1.33 by name; get each from https://dl.k8s.io/release/v{v}.0/bin/linux/amd64/kubectl "
           "and install it as kubectl.{v} next to kubectl. KUBELAB_TESTS_WITHOUT_KUBECTL=1 skips these tests instead.")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""


def binary(version: str) -> str | None:
    """`kubectl.<version>` beside the resolved `kubectl` (or anywhere on the PATH)."""
    real = shutil.which("kubectl")
    if real:
        candidate = os.path.join(os.path.dirname(os.path.realpath(real)), f"kubectl.{version}")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(f"kubectl.{version}")


@pytest.fixture(scope="module")
def server():
    e = start_etcd()
    try:
        with secure_apiserver(e.url) as a:
            with tls_client(a) as c:  # one node, so `get nodes` has a row to print
                r = c.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
                assert r.status_code == 201, r.text
            yield a
    finally:
        e.stop()


@pytest.fixture(params=VERSIONS)
def kubectl(request, server):
    version = request.param
    path = binary(version)
    if path is None:
        if os.environ.get("KUBELAB_TESTS_WITHOUT_KUBECTL") == "1":
            pytest.skip(f"kubectl.{version} is not installed")
        real = shutil.which("kubectl")
        pytest.fail(MISSING.format(v=version, where=os.path.dirname(os.path.realpath(real)) if real else "no kubectl on the PATH"),
                    pytrace=False)
    home = tempfile.mkdtemp(prefix=f"kubelab-kubectl-{version}-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": server.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}
    namespace = f"kv{version.replace('.', '')}-{uuid.uuid4().hex[:6]}"

    def run(*args: str, check: bool = True, input: str | None = None, ns: bool = True,
            timeout: str = "20s") -> subprocess.CompletedProcess:
        cmd = [path, f"--request-timeout={timeout}", *(["-n", namespace] if ns else []), *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, input=input, timeout=90,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl.{version} {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        if p.returncode == 0 and "warning" in p.stderr.lower():
            warnings.append(f"kubectl.{version} {' '.join(args)}: {p.stderr.strip()}")
        return p

    warnings: list[str] = []
    run.warnings = warnings
    run.version, run.minor, run.namespace = version, int(version.split(".")[1]), namespace
    assert run("create", "namespace", namespace, ns=False).stdout.strip() == f"namespace/{namespace} created"
    try:
        yield run
    finally:
        run("delete", "namespace", namespace, "--wait=false", ns=False, check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_everyday_verbs(kubectl):
    v = json.loads(kubectl("version", "-o", "json", ns=False).stdout)
    assert v["clientVersion"]["minor"] == str(kubectl.minor)
    assert v["serverVersion"]["minor"] == "32"
    # kubectl's own skew warning (server 1.32, supported skew ±1): the only warning allowed
    skew = [w for w in kubectl.warnings if "exceeds the supported minor version skew" in w]
    assert len(skew) == (1 if abs(kubectl.minor - 32) > 1 else 0), kubectl.warnings
    kubectl.warnings.clear()

    res = kubectl("api-resources", ns=False).stdout
    for row in (("pods", "po", "v1", "true", "Pod"), ("deployments", "deploy", "apps/v1", "true", "Deployment"),
                ("nodes", "no", "v1", "false", "Node")):
        assert any(all(cell in line.split() for cell in row) for line in res.splitlines()), (row, res)

    nodes = kubectl("get", "nodes", ns=False).stdout.splitlines()
    assert nodes[0].split()[:3] == ["NAME", "STATUS", "ROLES"] and nodes[1].split()[0] == "n1", nodes
    namespaces = kubectl("get", "ns", ns=False).stdout
    assert any(line.split()[:2] == [kubectl.namespace, "Active"] for line in namespaces.splitlines()), namespaces

    # create + Table columns
    out = kubectl("create", "deployment", "made", "--image=nginx", "--replicas=2").stdout
    assert out.strip() == "deployment.apps/made created"
    wide = kubectl("get", "deploy", "made", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "CONTAINERS" in wide[0] and "SELECTOR" in wide[0] and "app=made" in wide[1]

    # client-side apply twice (validation reads /openapi/v2 on 1.27, /openapi/v3 later)
    out = kubectl("apply", "-f", "-", input=MANIFEST)
    assert "deployment.apps/web created" in out.stdout and "service/web created" in out.stdout, out
    assert "openapi" not in out.stderr.lower(), out.stderr
    out = kubectl("apply", "-f", "-", input=MANIFEST).stdout
    assert "deployment.apps/web unchanged" in out and "service/web unchanged" in out, out
    out = kubectl("apply", "-f", "-", input=MANIFEST.replace("replicas: 1", "replicas: 2")).stdout
    assert "deployment.apps/web configured" in out, out
    # a misspelled field is refused by field validation (server-side or kubectl's own)
    bad = kubectl("apply", "-f", "-", input=MANIFEST.replace("replicas: 1", "replicaz: 1"), check=False)
    assert bad.returncode != 0 and "replicaz" in bad.stderr, bad
    out = kubectl("apply", "--server-side", "-f", "-", input=MANIFEST).stdout
    assert "deployment.apps/web serverside-applied" in out, out

    desc = kubectl("describe", "deployment", "web").stdout
    assert "Name:" in desc and "web" in desc and "nginx" in desc and "Replicas:" in desc

    assert kubectl("scale", "deployment", "web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    assert kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "3"

    assert kubectl("label", "deployment", "web", "tier=front").stdout.strip() == "deployment.apps/web labeled"
    assert kubectl("get", "deploy", "-l", "tier=front", "-o", "name").stdout.split() == ["deployment.apps/web"]

    out = kubectl("patch", "deployment", "web", "-p", '{"spec":{"replicas":4}}').stdout
    assert out.strip() == "deployment.apps/web patched"
    out = kubectl("patch", "svc", "web", "--type=merge", "-p", '{"metadata":{"annotations":{"a":"b"}}}').stdout
    assert out.strip() == "service/web patched"
    assert kubectl("get", "svc", "web", "-o", "jsonpath={.metadata.annotations.a}").stdout == "b"
    names = kubectl("get", "deploy", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas} {end}").stdout
    assert names.split() == ["made=2", "web=4"]

    # configmap, secret
    assert kubectl("create", "configmap", "cfg", "--from-literal=k=v").stdout.strip() == "configmap/cfg created"
    assert kubectl("get", "cm", "cfg", "-o", "jsonpath={.data.k}").stdout == "v"
    out = kubectl("create", "secret", "generic", "pw", "--from-literal=p=s3cret").stdout
    assert out.strip() == "secret/pw created"
    assert yaml.safe_load(kubectl("get", "secret", "pw", "-o", "yaml").stdout)["data"] == {"p": "czNjcmV0"}

    # auth can-i (admin: yes; an impersonated stranger: no)
    assert kubectl("auth", "can-i", "create", "deployments").stdout.strip() == "yes"
    p = kubectl("auth", "can-i", "delete", "nodes", "--as=nobody", check=False)
    assert p.returncode == 1 and p.stdout.strip() == "no", p

    # events (a list, possibly empty: the table header or kubectl's "No resources found")
    ev = kubectl("get", "events")
    assert ev.stdout.startswith("LAST SEEN") or "No resources found" in ev.stderr, ev

    # delete, then wait for it to be gone
    out = kubectl("delete", "deployment", "made", "--wait=false").stdout
    assert out.strip() == 'deployment.apps "made" deleted'
    kubectl("wait", "--for=delete", "deployment/made", "--timeout=30s")
    out = kubectl("delete", "-f", "-", input=MANIFEST).stdout
    assert 'deployment.apps "web" deleted' in out and 'service "web" deleted' in out
    assert kubectl("get", "deploy,svc", "-o", "name").stdout.strip() == ""
    # no verb made kubectl warn (e.g. "error calculating patch from openapi spec")
    assert kubectl.warnings == []


def test_explain(kubectl):
    p = kubectl("explain", "deployment", check=False)
    assert p.returncode == 0, p
    assert "KIND:" in p.stdout and "Deployment" in p.stdout and "VERSION:" in p.stdout and "apps/v1" in p.stdout, p.stdout
    p = kubectl("explain", "configmap.data", check=False)
    assert p.returncode == 0 and "data" in p.stdout, p


def test_openapi_v2_is_served_as_kubectl_asks_and_only_to_authenticated_users(server):
    """kubectl ≤ 1.27 asks for gnostic protobuf and parses the Content-Type as a MIME type;
    others get JSON; like every discovery path it is not for anonymous users."""
    with tls_client(server) as c:
        r = c.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
        assert r.status_code == 200 and r.headers["content-type"] == \
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" and r.content.startswith(b"\x0a\x032.0")
        r = c.get("/openapi/v2", headers={"Accept": "application/json"})
        assert r.status_code == 200 and r.json()["swagger"] == "2.0"
        r = c.get("/openapi/v2", headers={"Accept": "x" * 8000 + "proto-openapi.spec.v2"})
        assert r.status_code in (200, 400, 431)
        assert c.post("/openapi/v2", json={}).status_code in (403, 404, 405)
    with tls_client(server, ident=None) as anon:
        r = anon.get("/openapi/v2")
        assert r.status_code in (401, 403) and r.json()["kind"] == "Status"
