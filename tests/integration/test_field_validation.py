"""fieldValidation with the real kubectl: a typo in a manifest is reported, never silently dropped.

kubectl 1.32 sends `fieldValidation=Strict` for create/apply/replace by default (`--validate=strict`),
`Warn` with `--validate=warn` and `Ignore` with `--validate=false`; the server must answer as
Kubernetes 1.32 does. Raw HTTP checks pin the wire format (status codes, messages, the
`Warning` header) and that internal clients, which send no fieldValidation, keep working.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import httpx
import pytest

KUBECTL = shutil.which("kubectl")

TYPO_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: web
    image: nginx
    readinesProbe:
      httpGet: {{path: /, port: 80}}
    ports:
    - containerPort: 80
"""

# Real upstream v1.32 fields a partial field list would wrongly call unknown.
FULL_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: full
  labels: {app: full}
  annotations: {note: "many real fields"}
spec:
  replicas: 1
  revisionHistoryLimit: 3
  progressDeadlineSeconds: 120
  minReadySeconds: 0
  selector:
    matchLabels: {app: full}
    matchExpressions: [{key: app, operator: In, values: [full]}]
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata: {labels: {app: full}}
    spec:
      hostUsers: true
      enableServiceLinks: false
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway,
         labelSelector: {matchLabels: {app: full}}, matchLabelKeys: [pod-template-hash]}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 10
            podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: full}}}
      securityContext: {runAsNonRoot: false, fsGroup: 2000, seccompProfile: {type: RuntimeDefault}}
      dnsConfig: {options: [{name: ndots, value: "2"}]}
      volumes:
      - name: cfg
        configMap: {name: full-cfg, optional: true, items: [{key: a, path: a.txt}]}
      - name: scratch
        emptyDir: {sizeLimit: 10Mi}
      containers:
      - name: web
        image: nginx:1.25
        ports: [{name: http, containerPort: 80, protocol: TCP}]
        env:
        - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        resources:
          requests: {cpu: 10m, memory: 16Mi}
          limits: {memory: 64Mi}
        resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 5
        livenessProbe:
          tcpSocket: {port: 80}
        lifecycle:
          preStop: {sleep: {seconds: 1}}
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        volumeMounts:
        - {name: cfg, mountPath: /etc/cfg, readOnly: true}
        - {name: scratch, mountPath: /tmp}
---
apiVersion: v1
kind: Service
metadata:
  name: full
spec:
  selector: {app: full}
  ipFamilyPolicy: SingleStack
  trafficDistribution: PreferClose
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: full-cfg
immutable: false
data: {a: "1"}
"""


@pytest.fixture
def kubectl(apiserver, namespace):
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    home = tempfile.mkdtemp(prefix="kubelab-kubectl-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": apiserver.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "-n", namespace, *args], env=env, capture_output=True, text=True,
                              input=input, timeout=60)

    yield run
    shutil.rmtree(home, ignore_errors=True)


def _get(kubectl, *what: str) -> dict:
    p = kubectl("get", *what, "-o", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_strict_by_default_rejects_a_typo(kubectl):
    p = kubectl("apply", "-f", "-", input=TYPO_POD.format(name="typo"))
    assert p.returncode != 0
    assert 'strict decoding error: unknown field "spec.containers[0].readinesProbe"' in p.stderr, p.stderr
    assert "BadRequest" in p.stderr
    assert kubectl("get", "pod", "typo").returncode != 0  # nothing was created


def test_warn_creates_and_warns_without_storing_the_field(kubectl):
    p = kubectl("apply", "--validate=warn", "-f", "-", input=TYPO_POD.format(name="warned"))
    assert p.returncode == 0, p.stderr
    assert "pod/warned created" in p.stdout
    assert 'Warning: unknown field "spec.containers[0].readinesProbe"' in p.stderr, p.stderr
    container = _get(kubectl, "pod", "warned")["spec"]["containers"][0]
    assert "readinesProbe" not in container and container["ports"][0]["containerPort"] == 80


def test_validate_false_is_silent(kubectl):
    p = kubectl("apply", "--validate=false", "-f", "-", input=TYPO_POD.format(name="quiet"))
    assert p.returncode == 0, p.stderr
    assert "unknown field" not in p.stderr
    assert "readinesProbe" not in json.dumps(_get(kubectl, "pod", "quiet")["spec"])  # (the annotation keeps it)


def test_typo_in_a_reapply_patch(kubectl):
    """A second apply of an existing object sends a strategic merge PATCH: judged on the result."""
    good = TYPO_POD.replace("readinesProbe", "readinessProbe")
    assert kubectl("apply", "-f", "-", input=good.format(name="patched")).returncode == 0
    typo = good.replace("    ports:\n    - containerPort: 80\n", "    ports:\n    - contianerPort: 81\n"
                                                                    "      containerPort: 80\n")
    p = kubectl("apply", "-f", "-", input=typo.format(name="patched"))
    assert p.returncode != 0
    assert 'unknown field "spec.containers[0].ports[0].contianerPort"' in p.stderr, p.stderr
    p = kubectl("apply", "--validate=warn", "-f", "-",
                input=typo.replace("image: nginx", "image: nginx:1.25").format(name="patched"))
    assert p.returncode == 0, p.stderr
    assert 'Warning: unknown field "spec.containers[0].ports[0].contianerPort"' in p.stderr, p.stderr
    container = _get(kubectl, "pod", "patched")["spec"]["containers"][0]
    assert container["image"] == "nginx:1.25" and "contianerPort" not in json.dumps(container)


def test_many_real_upstream_fields_pass_strict(kubectl):
    p = kubectl("apply", "-f", "-", input=FULL_MANIFEST)
    assert p.returncode == 0, p.stderr
    assert "unknown field" not in p.stderr
    assert {"deployment.apps/full created", "service/full created", "configmap/full-cfg created"} <= \
        set(p.stdout.splitlines())
    spec = _get(kubectl, "deployment", "full")["spec"]["template"]["spec"]
    assert spec["hostUsers"] is True and spec["topologySpreadConstraints"][0]["matchLabelKeys"] == \
        ["pod-template-hash"]
    assert spec["containers"][0]["resizePolicy"] == [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]
    assert _get(kubectl, "service", "full")["spec"]["trafficDistribution"] == "PreferClose"
    p = kubectl("replace", "-f", "-", input=FULL_MANIFEST.split("---\n")[2])  # PUT, Strict
    assert p.returncode == 0, p.stderr
    p = kubectl("apply", "--server-side", "-f", "-", input=FULL_MANIFEST)
    assert p.returncode == 0 and "unknown field" not in p.stderr, p.stderr


# ---- the wire format ----------------------------------------------------------------------

def _url(apiserver, namespace: str, query: str = "", name: str = "") -> str:
    return f"{apiserver.url}/api/v1/namespaces/{namespace}/configmaps{'/' + name if name else ''}{query}"


def _cm(name: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}, **extra}


def test_wire_strict_warn_ignore_and_default(apiserver, namespace):
    with httpx.Client(timeout=10) as http:
        body = _cm("wire", datta={"x": "y"}, metadata={"name": "wire", "lables": {"a": "b"}})
        r = http.post(_url(apiserver, namespace, "?fieldValidation=Strict"), json=body)
        assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
        assert r.json()["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding '
                                       'error: unknown field "metadata.lables", unknown field "datta"')
        r = http.post(_url(apiserver, namespace), json=body)  # unset: Warn
        assert r.status_code == 201, r.text
        assert r.headers.get_list("warning") == ['299 - "unknown field \\"metadata.lables\\""',
                                                 '299 - "unknown field \\"datta\\""']
        assert "datta" not in r.json() and "lables" not in r.json()["metadata"]
        stored = http.get(_url(apiserver, namespace, name="wire")).json()
        assert "datta" not in stored and stored["data"] == {"k": "v"}
        r = http.put(_url(apiserver, namespace, "?fieldValidation=Ignore", "wire"), json=body)
        assert r.status_code == 200 and "warning" not in r.headers
        r = http.patch(_url(apiserver, namespace, "?fieldValidation=Strict", "wire"), json={"dat": {}},
                       headers={"content-type": "application/merge-patch+json"})
        assert r.status_code == 422 and r.json()["reason"] == "Invalid"  # upstream's patcher: 422, not 400
        assert r.json()["message"].endswith('strict decoding error: unknown field "dat"')
        assert r.json()["details"]["causes"][0]["field"] == "patch"
        r = http.post(_url(apiserver, namespace, "?fieldValidation=strict"), json=_cm("bad-value"))
        assert r.status_code == 422
        assert r.json()["message"] == ('CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
                                       '"strict": supported values: "", "Ignore", "Strict", "Warn"')


def test_wire_warning_header_escapes_odd_keys(apiserver, namespace):
    with httpx.Client(timeout=10) as http:
        r = http.post(_url(apiserver, namespace), json=_cm("odd", **{'a"b\nc': 1, "é": 2}))
        assert r.status_code == 201, r.text
        raw = [v for k, v in r.headers.raw if k.lower() == b"warning"]
        assert raw == [b'299 - "unknown field \\"a\\\\\\"b\\\\nc\\""', '299 - "unknown field \\"é\\""'.encode()]


async def test_internal_client_sends_no_field_validation_and_still_works(api, namespace):
    created = await api.create("configmaps", _cm("internal", extra="dropped"), namespace=namespace)
    assert "extra" not in created and created["data"] == {"k": "v"}
    patched = await api.patch("configmaps", "internal", {"data": {"k": "w"}, "nope": 1}, namespace=namespace,
                              patch_type="merge")
    assert patched["data"] == {"k": "w"} and "nope" not in patched
