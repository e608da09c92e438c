"""The real kubectl against the kubelab API server: the acceptance list of issue 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import yaml

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels: {app: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector: {app: demo}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-config
data: {greeting: hello}
"""


@pytest.fixture
def kubectl(apiserver, namespace):
    home = tempfile.mkdtemp(prefix="kubelab-kubectl-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": apiserver.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}

    def run(*args: str, check: bool = True, input: str | None = None, ns: bool = True) -> subprocess.CompletedProcess:
        cmd = [KUBECTL, *(["-n", namespace] if ns else []), *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, input=input, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}")
        return p

    run.env = env
    run.namespace = namespace
    yield run
    shutil.rmtree(home, ignore_errors=True)


def test_version_and_api_resources(kubectl):
    v = json.loads(kubectl("version", "-o", "json", ns=False).stdout)
    assert v["serverVersion"]["minor"] == "32"
    out = kubectl("api-resources", ns=False).stdout
    for row in (("pods", "po", "v1", "true", "Pod"), ("deployments", "deploy", "apps/v1", "true", "Deployment"),
                ("nodes", "no", "v1", "false", "Node"), ("endpointslices", "discovery.k8s.io/v1")):
        assert any(all(cell in line.split() for cell in row) for line in out.splitlines()), row


def test_create_namespace_and_configmap_protobuf(kubectl):
    name = f"kc-{int(time.time() * 1000) % 100000}"
    assert kubectl("create", "namespace", name, ns=False).stdout.strip() == f"namespace/{name} created"
    try:
        out = kubectl("create", "configmap", "lit", "--from-literal=a=b").stdout
        assert out.strip() == "configmap/lit created"
        cm = json.loads(kubectl("get", "configmap", "lit", "-o", "json").stdout)
        assert cm["data"] == {"a": "b"}
        out = kubectl("create", "deployment", "pb", "--image=nginx", "--replicas=2", "--port=80").stdout
        assert out.strip() == "deployment.apps/pb created"
        d = json.loads(kubectl("get", "deploy", "pb", "-o", "json").stdout)
        assert d["spec"]["replicas"] == 2
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
        assert d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
        out = kubectl("create", "service", "clusterip", "pbs", "--tcp=80:8080").stdout
        assert out.strip() == "service/pbs created"
        s = json.loads(kubectl("get", "svc", "pbs", "-o", "json").stdout)
        assert s["spec"]["ports"][0]["targetPort"] == 8080 and s["spec"]["clusterIP"].startswith("10.")
    finally:
        kubectl("delete", "namespace", name, "--wait=false", ns=False, check=False)


def test_apply_get_scale_describe_delete(kubectl):
    out = kubectl("apply", "-f", "-", input=MANIFEST).stdout
    assert "deployment.apps/demo created" in out and "service/demo created" in out and \
        "configmap/demo-config created" in out
    out = kubectl("apply", "-f", "-", input=MANIFEST).stdout
    assert "deployment.apps/demo unchanged" in out
    out = kubectl("apply", "-f", "-", input=MANIFEST.replace("replicas: 2", "replicas: 3")).stdout
    assert "deployment.apps/demo configured" in out
    assert json.loads(kubectl("get", "deploy", "demo", "-o", "json").stdout)["spec"]["replicas"] == 3
    out = kubectl("apply", "--server-side", "-f", "-", input=MANIFEST).stdout
    assert "deployment.apps/demo serverside-applied" in out

    table = kubectl("get", "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = kubectl("get", "deployments", "-o", "wide").stdout.splitlines()
    assert "CONTAINERS" in wide[0] and "IMAGES" in wide[0] and "nginx" in wide[1]
    svc = kubectl("get", "svc", "demo").stdout.splitlines()
    assert svc[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"] and "80/TCP" in svc[1]
    y = yaml.safe_load(kubectl("get", "configmap", "demo-config", "-o", "yaml").stdout)
    assert y["data"] == {"greeting": "hello"}
    assert kubectl("get", "deploy,svc", "-l", "app=demo", "-o", "name").stdout.split() == ["deployment.apps/demo"]
    everywhere = kubectl("get", "services", "-A", ns=False).stdout.splitlines()
    assert everywhere[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == ["default", "kubernetes"] for line in everywhere)
    assert any(line.split()[:2] == [kubectl.namespace, "demo"] for line in everywhere)

    by_name = kubectl("get", "svc", "-A", "--sort-by=.metadata.name", ns=False).stdout.splitlines()
    assert len(by_name) > 2 and [line.split()[1] for line in by_name[1:]] == \
        sorted(line.split()[1] for line in by_name[1:])

    assert "deployment.apps/demo scaled" in kubectl("scale", "deployment", "demo", "--replicas=5").stdout
    assert json.loads(kubectl("get", "deploy", "demo", "-o", "json").stdout)["spec"]["replicas"] == 5

    desc = kubectl("describe", "deployment", "demo").stdout
    assert "Name:" in desc and "demo" in desc and "nginx" in desc

    out = kubectl("delete", "-f", "-", input=MANIFEST).stdout
    assert 'deployment.apps "demo" deleted' in out and 'service "demo" deleted' in out
    assert kubectl("get", "deploy,svc,cm", "-o", "name").stdout.strip() == ""


def test_get_watch_shows_later_change(kubectl):
    kubectl("create", "configmap", "watched", "--from-literal=v=1")
    p = subprocess.Popen([KUBECTL, "-n", kubectl.namespace, "get", "configmaps", "-w"], env=kubectl.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first.split()[:2] == ["NAME", "DATA"]
        lines = [p.stdout.readline()]
        kubectl("create", "configmap", "later", "--from-literal=a=1", "--from-literal=b=2")
        deadline = time.monotonic() + 20
        while not any(line.split()[:2] == ["later", "2"] for line in lines):
            assert time.monotonic() < deadline, lines
            lines.append(p.stdout.readline())
    finally:
        p.terminate()
        p.wait(10)


def test_errors_print_like_kubernetes(kubectl):
    p = kubectl("get", "pod", "nope", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: bad-1}\nspec:\n  containers:\n  - name: c\n"
    p = kubectl("create", "-f", "-", input=bad, check=False)
    assert p.returncode == 1
    assert 'The Pod "bad-1" is invalid: spec.containers[0].image: Required value' in p.stderr
    twice = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: twice}\n"
    kubectl("create", "-f", "-", input=twice)
    p = kubectl("create", "-f", "-", input=twice, check=False)
    assert 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "twice" already exists' \
        in p.stderr
