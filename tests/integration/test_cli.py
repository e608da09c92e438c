"""The `kubelab` CLI against a real API server (on a real etcd): in-process `main()` for most
verbs, and `python -m kubelab.cli` subprocesses for exit codes and `get -w`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pytest
import yaml

from kubelab.cli.main import main
from test_field_validation import TYPO_POD  # the typo kubectl's tests use (tests/integration is on sys.path)

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
  labels: {app: demo, team: blue}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
---
apiVersion: v1
kind: Service
metadata:
  name: demo
  labels: {app: demo}
spec:
  selector: {app: demo}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-config
  labels: {app: demo}
data: {greeting: hello, size: big}
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def kl(apiserver, namespace):
    """Run the CLI in-process against the test API server, in the test's namespace."""

    def run(*args: str, input: str | None = None, ns: bool = True) -> Result:
        argv = ["--kubeconfig", apiserver.kubeconfig, *(["-n", namespace] if ns else []), *args]
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(input or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue())

    run.namespace = namespace
    return run


def cli_subprocess(apiserver, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelab.cli", "--kubeconfig", apiserver.kubeconfig, *args],
                          capture_output=True, text=True, timeout=timeout)


def api_get(apiserver, path: str) -> httpx.Response:
    return httpx.get(f"{apiserver.url}{path}", timeout=10)


@pytest.fixture
def applied(kl, tmp_path):
    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST)
    r = kl("apply", "-f", str(f))
    assert r.code == 0, r.err
    return f


def test_apply_created_unchanged_configured(kl, apiserver, tmp_path):
    ns = kl.namespace
    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST)
    r = kl("apply", "-f", str(f))
    assert (r.code, r.err) == (0, "")
    assert r.out == "deployment.apps/demo created\nservice/demo created\nconfigmap/demo-config created\n"

    r = kl("apply", "-f", "-", input=MANIFEST)  # stdin, same content
    assert r.out == "deployment.apps/demo unchanged\nservice/demo unchanged\nconfigmap/demo-config unchanged\n"

    edited = (MANIFEST.replace("replicas: 2", "replicas: 3").replace(", size: big", "")
              .replace('        - {name: B, value: "2"}\n', "").replace("team: blue", "team: red"))
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "app.yaml").write_text(edited)
    r = kl("apply", "-f", str(tmp_path / "dir"))
    assert r.out == "deployment.apps/demo configured\nservice/demo unchanged\nconfigmap/demo-config configured\n"

    d = api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/demo").json()
    assert d["spec"]["replicas"] == 3
    assert d["metadata"]["labels"] == {"app": "demo", "team": "red"}
    assert d["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    last = json.loads(d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3 and last["metadata"]["namespace"] == ns
    cm = api_get(apiserver, f"/api/v1/namespaces/{ns}/configmaps/demo-config").json()
    assert cm["data"] == {"greeting": "hello"}

    # a JSON List works too
    lst = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-list"}, "data": {"a": "b"}}]}
    (tmp_path / "list.json").write_text(json.dumps(lst))
    assert kl("apply", "-f", str(tmp_path / "list.json")).out == "configmap/from-list created\n"


def test_get_output_formats(kl, applied):
    ns = kl.namespace
    r = kl("get", "deploy")
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[0] == "demo" and len(lines) == 2

    wide = kl("get", "deployments", "-o", "wide").out.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "nginx:1.25", "app=demo"]

    y = yaml.safe_load(kl("get", "deploy", "demo", "-o", "yaml").out)
    assert y["kind"] == "Deployment" and y["metadata"]["name"] == "demo"
    j = json.loads(kl("get", "svc,cm", "-o", "json").out)
    assert j["kind"] == "List"
    assert sorted((i["kind"], i["metadata"]["name"]) for i in j["items"]) == \
        [("ConfigMap", "demo-config"), ("Service", "demo")]
    assert kl("get", "deploy/demo", "svc/demo", "-o", "name").out == "deployment.apps/demo\nservice/demo\n"

    assert kl("get", "cm", "-l", "app=demo", "-o", "name").out == "configmap/demo-config\n"
    assert "demo-config" not in kl("get", "cm", "-l", "app!=demo", "-o", "name").out
    r = kl("get", "cm", "--field-selector", "metadata.name=demo-config", "-o", "name")
    assert r.out == "configmap/demo-config\n"

    # -A: a NAMESPACE column, objects from several namespaces
    r = kl("get", "svc", "-A", ns=False)
    head, *rows = r.out.splitlines()
    assert head.split()[:2] == ["NAMESPACE", "NAME"]
    pairs = {tuple(x.split()[:2]) for x in rows}
    assert (ns, "demo") in pairs and ("default", "kubernetes") in pairs

    # several types: tables separated by a blank line, names prefixed by their type
    r = kl("get", "all")
    assert "deployment.apps/demo" in r.out and "service/demo" in r.out and "\n\n" in r.out
    r = kl("get", "deploy", "--show-labels")
    assert r.out.splitlines()[0].split()[-1] == "LABELS" and "app=demo,team=blue" in r.out

    r = kl("get", "pods")
    assert (r.code, r.out, r.err) == (0, "", f"No resources found in {ns} namespace.\n")


def test_jsonpath_outputs(kl, applied):
    assert kl("get", "deploy,svc", "-o", "jsonpath={.items[*].metadata.name}").out == "demo demo"
    r = kl("get", "cm", "-o", 'jsonpath={range .items[*]}{.metadata.name}={.data.greeting}{"\\n"}{end}')
    assert r.out == "demo-config=hello\n"
    r = kl("get", "deploy", "demo", "-o", 'jsonpath={.spec.template.spec.containers[?(@.name=="web")].image}')
    assert r.out == "nginx:1.25"
    r = kl("get", "svc", "demo", "-o=jsonpath={.spec.clusterIP}")
    assert r.out.startswith("10.") and r.code == 0


@pytest.fixture
def nodes(apiserver):
    """Hand-made Node objects (no node agent needed), removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    names = [f"kl-{tag}-a", f"kl-{tag}-b"]
    cidrs = ["10.244.1.0/24", None]
    for n, c in zip(names, cidrs):
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": {"kl-test": tag}},
                "spec": {"podCIDR": c, "podCIDRs": [c]} if c else {}}
        r = httpx.post(f"{apiserver.url}/api/v1/nodes", json=body, timeout=10)
        assert r.status_code == 201, r.text
    try:
        yield tag, names
    finally:
        for n in names:
            httpx.delete(f"{apiserver.url}/api/v1/nodes/{n}", timeout=10)


def test_custom_columns_on_nodes(kl, nodes):
    tag, names = nodes
    r = kl("get", "no", "-l", f"kl-test={tag}", "-o=custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "NAME" + " " * (len(names[0]) - 1) + "CIDR",
        f"{names[0]}   10.244.1.0/24",
        f"{names[1]}   <none>",
    ]
    r = kl("get", "nodes", "-l", f"kl-test={tag}", "-o", "custom-columns=BAD")
    assert r.code == 1 and r.err.startswith("error: unexpected custom-columns spec")


def test_describe_shows_sections_and_events(kl, applied, apiserver):
    ns = kl.namespace
    d = api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/demo").json()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "demo.kl1", "namespace": ns},
             "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo", "namespace": ns,
                                "uid": d["metadata"]["uid"]},
             "reason": "ScalingReplicaSet", "message": "Scaled up replica set demo-abc to 2", "type": "Normal",
             "source": {"component": "deployment-controller"}, "firstTimestamp": now, "lastTimestamp": now,
             "count": 1}
    r = httpx.post(f"{apiserver.url}/api/v1/namespaces/{ns}/events", json=event, timeout=10)
    assert r.status_code == 201, r.text
    r = kl("describe", "deploy", "demo")
    assert r.code == 0, r.err
    text = r.out
    for want in ("Name:", "Namespace:", "Labels:", "Annotations:", "Selector:", "Replicas:", "Pod Template:",
                 "Containers:", "Image:", "nginx:1.25", "Events:"):
        assert want in text, want
    ev = [line for line in text.splitlines() if "ScalingReplicaSet" in line]
    assert len(ev) == 1 and "deployment-controller" in ev[0] and "Scaled up replica set demo-abc to 2" in ev[0]
    assert "last-applied-configuration" not in text
    svc = kl("describe", "svc/demo").out
    assert "Selector:" in svc and "app=demo" in svc and "TargetPort:" in svc and "Events:" in svc
    r = kl("describe", "cm", "nope")
    assert r.code == 1 and r.err == 'Error from server (NotFound): configmaps "nope" not found\n'


def test_scale_expose_patch(kl, applied, apiserver):
    ns = kl.namespace
    assert kl("scale", "deploy/demo", "--replicas", "5").out == "deployment.apps/demo scaled\n"
    assert api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/demo").json()["spec"]["replicas"] == 5
    assert kl("scale", "deployment", "demo", "--replicas=1").out == "deployment.apps/demo scaled\n"
    assert api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/demo").json()["spec"]["replicas"] == 1
    r = kl("scale", "cm/demo-config", "--replicas", "2")
    assert r.code == 1 and "cannot scale configmaps" in r.err

    r = kl("expose", "deployment", "demo", "--port", "8080", "--target-port", "80", "--name", "demo-np",
           "--type", "NodePort")
    assert (r.code, r.out) == (0, "service/demo-np exposed\n"), r.err
    svc = api_get(apiserver, f"/api/v1/namespaces/{ns}/services/demo-np").json()
    assert svc["spec"]["selector"] == {"app": "demo"} and svc["spec"]["type"] == "NodePort"
    p = svc["spec"]["ports"][0]
    assert (p["port"], p["targetPort"]) == (8080, 80) and 30000 <= p["nodePort"] <= 32767
    r = kl("expose", "deploy/demo", "--name", "demo-auto")  # port from the pod template
    assert r.code == 0
    assert api_get(apiserver, f"/api/v1/namespaces/{ns}/services/demo-auto").json()["spec"]["ports"][0]["port"] == 80

    r = kl("patch", "deploy", "demo", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}')
    assert r.out == "deployment.apps/demo patched\n"
    c = api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/demo").json()["spec"]["template"]["spec"]["containers"]
    assert len(c) == 1 and c[0]["image"] == "nginx:1.27" and c[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert kl("patch", "cm/demo-config", "--type", "merge", "-p", '{"data":{"x":"y"}}').out == \
        "configmap/demo-config patched\n"
    assert kl("patch", "cm/demo-config", "--type", "merge", "-p", '{"data":{"x":"y"}}').out == \
        "configmap/demo-config patched (no change)\n"
    assert kl("patch", "cm", "demo-config", "--type", "json", "-p", '[{"op":"remove","path":"/data/x"}]').code == 0
    assert "x" not in api_get(apiserver, f"/api/v1/namespaces/{ns}/configmaps/demo-config").json()["data"]
    r = kl("patch", "cm", "demo-config", "-p", "{not json")
    assert r.code == 1 and r.err.startswith("error: unable to parse")


def test_create_generators_and_delete(kl, apiserver, tmp_path):
    ns = kl.namespace
    r = kl("create", "deployment", "gen", "--image=busybox:1.36", "--replicas", "2", "--port", "8080")
    assert r.out == "deployment.apps/gen created\n", r.err
    d = api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/gen").json()
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    assert kl("create", "configmap", "cfg", "--from-literal", "k=v").out == "configmap/cfg created\n"
    r = kl("create", "configmap", "cfg", "--from-literal", "k=v")
    assert r.code == 1 and r.err == 'Error from server (AlreadyExists): configmaps "cfg" already exists\n'
    extra_ns = f"kl-{uuid.uuid4().hex[:6]}"
    try:
        assert kl("create", "namespace", extra_ns, ns=False).out == f"namespace/{extra_ns} created\n"
    finally:
        httpx.delete(f"{apiserver.url}/api/v1/namespaces/{extra_ns}", timeout=10)

    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST)
    assert kl("create", "-f", str(f)).code == 0
    r = kl("delete", "-f", str(f))
    assert (r.code, r.err) == (0, "")
    assert r.out == ('deployment.apps "demo" deleted\nservice "demo" deleted\n'
                     'configmap "demo-config" deleted\n')
    assert api_get(apiserver, f"/apis/apps/v1/namespaces/{ns}/deployments/demo").status_code == 404
    assert api_get(apiserver, f"/api/v1/namespaces/{ns}/configmaps/demo-config").status_code == 404

    assert kl("create", "configmap", "l1", "--from-literal", "a=b").code == 0
    httpx.patch(f"{apiserver.url}/api/v1/namespaces/{ns}/configmaps/l1", json={"metadata": {"labels": {"x": "1"}}},
                headers={"Content-Type": "application/merge-patch+json"}, timeout=10).raise_for_status()
    r = kl("delete", "cm", "-l", "x=1")
    assert r.out == 'configmap "l1" deleted\n'
    assert api_get(apiserver, f"/api/v1/namespaces/{ns}/configmaps/cfg").status_code == 200  # not selected

    r = kl("delete", "deploy", "gen", "nope")
    assert r.code == 1
    assert r.out == 'deployment.apps "gen" deleted\n'
    assert r.err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    assert kl("delete", "deploy", "nope", "--ignore-not-found").code == 0


def test_errors_and_exit_codes_as_subprocess(apiserver, namespace, tmp_path):
    r = cli_subprocess(apiserver, "-n", namespace, "get", "pods", "nope")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == 'Error from server (NotFound): pods "nope" not found\n'

    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: c\n")
    r = cli_subprocess(apiserver, "-n", namespace, "apply", "-f", str(bad))
    assert r.returncode == 1
    assert r.stderr == 'The Pod "bad" is invalid: spec.containers[0].image: Required value\n'

    r = cli_subprocess(apiserver, "get", "foo")
    assert (r.returncode, r.stderr) == (1, 'error: the server doesn\'t have a resource type "foo"\n')
    r = cli_subprocess(apiserver, "get", "pods", "--no-such-flag")
    assert r.returncode == 1 and "usage: kubelab" in r.stderr and "Traceback" not in r.stderr  # kubectl's 1
    r = cli_subprocess(apiserver, "-n", namespace, "apply", "-f", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and r.stderr.startswith("error: the path") and "Traceback" not in r.stderr

    r = cli_subprocess(apiserver, "version")
    assert r.returncode == 0 and r.stdout.startswith("Client Version: v") and "Server Version: v1.32" in r.stdout

    # a kubeconfig whose context namespace becomes the CLI's default namespace
    kc = tmp_path / "kc"
    r = cli_subprocess(apiserver, "-n", namespace, "kubeconfig", "-o", str(kc))
    assert r.returncode == 0 and str(kc) in r.stdout
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == apiserver.url
    httpx.post(f"{apiserver.url}/api/v1/namespaces/{namespace}/configmaps", timeout=10,
               json={"metadata": {"name": "ctx-ns"}, "data": {}}).raise_for_status()
    r = subprocess.run([sys.executable, "-m", "kubelab.cli", "--kubeconfig", str(kc), "get", "cm", "-o", "name"],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "configmap/ctx-ns\n"), r.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_apply_interoperates_with_real_kubectl(kl, apiserver, tmp_path):
    """Same last-applied annotation: each tool sees the other's apply as unchanged, and a
    field removed from the file is removed whichever tool applied last."""
    f = tmp_path / "app.yaml"
    f.write_text(MANIFEST)
    env = {**os.environ, "HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / "cache")}

    def kubectl(*args):
        return subprocess.run(["kubectl", "--kubeconfig", apiserver.kubeconfig, "-n", kl.namespace, *args],
                              capture_output=True, text=True, env=env, timeout=60)

    r = kubectl("apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert kl("apply", "-f", str(f)).out.count(" unchanged\n") == 3
    f.write_text(MANIFEST.replace('        - {name: B, value: "2"}\n', ""))
    assert kl("apply", "-f", str(f)).out.startswith("deployment.apps/demo configured\n")
    r = kubectl("apply", "-f", str(f))
    assert r.stdout.count(" unchanged\n") == 3, r.stdout + r.stderr
    env_list = api_get(apiserver, f"/apis/apps/v1/namespaces/{kl.namespace}/deployments/demo").json()[
        "spec"]["template"]["spec"]["containers"][0]["env"]
    assert env_list == [{"name": "A", "value": "1"}]


class LineReader:
    """Lines of a subprocess's stdout, read by a thread so tests can wait with a deadline."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.q: queue.Queue = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_for(self, pred, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if pred(line):
                    self.lines.remove(line)
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching line; saw {self.lines!r}")
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError(f"stream ended; saw {self.lines!r}")
            self.lines.append(line)


def test_get_watch_shows_later_changes(kl, applied, apiserver):
    ns = kl.namespace
    proc = subprocess.Popen([sys.executable, "-m", "kubelab.cli", "--kubeconfig", apiserver.kubeconfig, "-n", ns,
                             "get", "deploy", "-w"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        reader = LineReader(proc)
        assert reader.wait_for(lambda line: line.startswith("NAME")).split()[:2] == ["NAME", "READY"]
        first = reader.wait_for(lambda line: line.split()[:1] == ["demo"])
        assert first.split()[1] == "0/2"
        # a change to the watched object and a new object both show up as rows
        assert kl("scale", "deploy/demo", "--replicas", "4").code == 0
        changed = reader.wait_for(lambda line: line.split()[:1] == ["demo"])
        assert changed.split()[1] == "0/4"
        assert kl("create", "deployment", "late", "--image=nginx").code == 0
        reader.wait_for(lambda line: line.split()[:1] == ["late"])
        assert proc.poll() is None  # still watching
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_get_watch_only_with_name_output(kl, applied, apiserver):
    ns = kl.namespace
    proc = subprocess.Popen([sys.executable, "-m", "kubelab.cli", "--kubeconfig", apiserver.kubeconfig, "-n", ns,
                             "get", "cm", "demo-config", "--watch-only", "-o", "name"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader = LineReader(proc)
        # --watch-only prints nothing until something changes; poll with patches until the watch is up
        deadline = time.monotonic() + 20
        n = 0
        while True:
            n += 1
            assert kl("patch", "cm", "demo-config", "--type", "merge", "-p", json.dumps({"data": {"n": str(n)}})).code == 0
            try:
                line = reader.wait_for(lambda line: True, timeout=1.0)
                break
            except TimeoutError:
                assert time.monotonic() < deadline
        assert line == "configmap/demo-config"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_reapplying_the_dns_addon_is_unchanged(kl):
    """Ports repeated over UDP and TCP (53) share a merge key; a second apply of the same file
    must still say unchanged (Ansible's changed=0 depends on it)."""
    addon = Path(__file__).resolve().parents[2] / "kubelab" / "dns" / "addon.yaml"
    text = addon.read_text().replace("namespace: kube-system", f"namespace: {kl.namespace}")
    text = text.replace("clusterIP: 10.96.0.10", "")  # the session's API server may hold it already
    first = kl("apply", "-f", "-", input=text)
    assert first.code == 0 and "deployment.apps/kube-dns created" in first.out, first.err
    again = kl("apply", "-f", "-", input=text)
    assert again.code == 0 and again.out.count("unchanged") == 3, again.out
    changed = kl("apply", "-f", "-", input=text.replace("--metrics-port=9153", "--metrics-port=9154"))
    assert "deployment.apps/kube-dns configured" in changed.out


STRICT_ERROR = ('Error from server (BadRequest): error when creating "{source}": Pod in version "v1" cannot be '
                'handled as a Pod: strict decoding error: unknown field "spec.containers[0].readinesProbe"\n')
TYPO_WARNING = 'Warning: unknown field "spec.containers[0].readinesProbe"\n'


def test_validate_strict_by_default_rejects_a_typo(kl, apiserver, tmp_path):
    """kubectl's `--validate=strict` default: the typo is an error (exit 1, kubectl's exact line), nothing is created."""
    f = tmp_path / "typo.yaml"
    f.write_text(TYPO_POD.format(name="typo"))
    r = kl("apply", "-f", str(f))
    assert (r.code, r.out, r.err) == (1, "", STRICT_ERROR.format(source=f))
    r = kl("create", "--validate=true", "-f", "-", input=TYPO_POD.format(name="typo"))
    assert (r.code, r.out, r.err) == (1, "", STRICT_ERROR.format(source="STDIN"))
    assert api_get(apiserver, f"/api/v1/namespaces/{kl.namespace}/pods/typo").status_code == 404
    r = kl("apply", "--validate=Warn", "-f", str(f))  # kubectl's values are lower case
    assert (r.code, r.err) == (1, 'error: invalid - validate option "Warn"; must be one of: strict (or true), '
                                  'warn, ignore (or false)\n')


def test_validate_warn_creates_and_prints_the_warning(kl, apiserver):
    r = kl("apply", "--validate=warn", "-f", "-", input=TYPO_POD.format(name="warned"))
    assert (r.code, r.out, r.err) == (0, "pod/warned created\n", TYPO_WARNING)
    pod = api_get(apiserver, f"/api/v1/namespaces/{kl.namespace}/pods/warned").json()
    container = pod["spec"]["containers"][0]
    assert "readinesProbe" not in container and container["ports"][0]["containerPort"] == 80

    # a re-apply is a strategic merge PATCH: warned about with warn, refused by the strict default
    changed = TYPO_POD.replace("image: nginx", "image: nginx:1.25").format(name="warned")
    r = kl("apply", "-f", "-", input=changed)
    assert r.code == 1 and r.out == ""
    assert 'strict decoding error: unknown field "spec.containers[0].readinesProbe"' in r.err
    assert len(r.err.splitlines()) == 1 and "Traceback" not in r.err
    r = kl("apply", "--validate=warn", "-f", "-", input=changed)
    assert (r.code, r.out, r.err) == (0, "pod/warned configured\n", TYPO_WARNING)
    assert api_get(apiserver, f"/api/v1/namespaces/{kl.namespace}/pods/warned").json()[
        "spec"]["containers"][0]["image"] == "nginx:1.25"

    # verbs without --validate send no fieldValidation: the server's default warns, as with kubectl patch
    r = kl("patch", "pod", "warned", "--type", "merge", "-p", '{"metadata":{"labels":{"a":"b"}},"spek":{}}')
    assert (r.code, r.out, r.err) == (0, "pod/warned patched\n", 'Warning: unknown field "spek"\n')


def test_validate_false_creates_silently(kl, apiserver):
    r = kl("apply", "--validate=false", "-f", "-", input=TYPO_POD.format(name="quiet"))
    assert (r.code, r.out, r.err) == (0, "pod/quiet created\n", "")
    r = kl("create", "--validate=ignore", "-f", "-", input=TYPO_POD.format(name="quiet2"))
    assert (r.code, r.out, r.err) == (0, "pod/quiet2 created\n", "")
    for name in ("quiet", "quiet2"):
        spec = api_get(apiserver, f"/api/v1/namespaces/{kl.namespace}/pods/{name}").json()["spec"]
        assert "readinesProbe" not in json.dumps(spec)


def test_sort_by_label_columns_go_template_and_go_durations(kl, apiserver):
    """kubectl's `--sort-by`, `-L`, `-o go-template`, JSONPath with escaped dots and Go durations
    (`delete --timeout 1m30s`), against the real API server."""
    for name, size, app in (("b-cm", "3", "web"), ("a-cm", "10", None), ("c-cm", "2", "db")):
        labels = ["--from-literal", f"size={size}"]
        assert kl("create", "configmap", name, *labels).code == 0
        if app:
            r = kl("patch", "configmap", name, "-p",
                   json.dumps({"metadata": {"labels": {"app.kubernetes.io/name": app, "tier": app[0]}}}))
            assert r.code == 0, r.err
    r = kl("get", "cm", "-l", "app.kubernetes.io/name", "--sort-by", "{.metadata.name}", "-L", "app.kubernetes.io/name",
           "-L", "tier")
    lines = r.out.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE", "NAME", "TIER"], r.out
    assert [line.split()[0] for line in lines[1:]] == ["b-cm", "c-cm"]
    assert lines[1].split()[-2:] == ["web", "w"] and lines[2].split()[-2:] == ["db", "d"]
    r = kl("get", "cm", "a-cm", "b-cm", "c-cm", "--sort-by", ".data.size", "-o", "name")
    assert r.out.split() == ["configmap/a-cm", "configmap/c-cm", "configmap/b-cm"]  # strings sort as text
    r = kl("get", "cm", "-l", "tier", "--sort-by", ".metadata.labels.tier", "-o",
           'go-template={{range .items}}{{.metadata.name}}:{{index .metadata.labels "app.kubernetes.io/name"}} {{end}}')
    assert r.code == 0 and r.out == "c-cm:db b-cm:web ", r.err
    r = kl("get", "cm", "b-cm", "-o", r"jsonpath={.metadata.labels.app\.kubernetes\.io/name}")
    assert r.out == "web"
    r = kl("get", "cm", "b-cm", "-o", "go-template={{with .data}}{{.size}}{{end}}")
    assert r.code == 1 and "{{with}} is not supported" in r.err and r.out == ""
    r = kl("get", "cm", "--sort-by", "{.metadata[}")
    assert r.code == 1 and r.err.startswith("error: couldn't parse --sort-by")
    r = kl("delete", "cm", "a-cm", "b-cm", "c-cm", "--timeout", "1m30s")
    assert r.code == 0 and r.out.count("deleted") == 3, r.err
    r = kl("delete", "cm", "x", "--timeout", "1d")
    assert r.code == 1 and "usage:" in r.err  # kubectl's exit code 1 for a bad flag value
