"""NetworkPolicy through the real kubectl: apply/get/describe, a 422 naming the field for each
upstream validation rule, RBAC (view may read, not write), and the namespace name label."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

GOOD = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchLabels: {role: fe}}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: 80}, {port: http, protocol: TCP}, {port: 8000, endPort: 8080}]
"""


@pytest.fixture
def kubectl(apiserver, namespace):
    home = tempfile.mkdtemp(prefix="kubelab-kubectl-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": apiserver.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([KUBECTL, "-n", namespace, *args], env=env, capture_output=True, text=True,
                              input=input, timeout=60)
    run.namespace = namespace
    yield run
    shutil.rmtree(home, ignore_errors=True)


def test_apply_get_describe(kubectl):
    p = kubectl("apply", "-f", "-", input=GOOD)
    assert p.returncode == 0 and "networkpolicy.networking.k8s.io/web created" in p.stdout, p.stderr
    out = kubectl("get", "netpol").stdout.splitlines()
    assert out[0].split() == ["NAME", "POD-SELECTOR", "AGE"] and out[1].split()[:2] == ["web", "app=web"]
    obj = json.loads(kubectl("get", "networkpolicy", "web", "-o", "json").stdout)
    assert obj["spec"]["policyTypes"] == ["Ingress"]
    assert [p.get("protocol") for p in obj["spec"]["ingress"][0]["ports"]] == ["TCP", "TCP", "TCP"]
    text = kubectl("describe", "networkpolicy", "web").stdout
    for line in ("PodSelector:     app=web", "Allowing ingress traffic:", "To Port: 80/TCP",
                 "NamespaceSelector: team=a", "PodSelector: role=fe", "CIDR: 10.0.0.0/8", "Except: 10.1.0.0/16",
                 "Not affecting egress traffic", "Policy Types: Ingress"):
        assert line in text, text


BAD = [
    ("ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]", "spec.ingress[0].from[0].ipBlock.cidr",
     "must be a valid CIDR value"),
    ("ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}}]}]",
     "spec.ingress[0].from[0].ipBlock.except[0]", "must be a strict subset of `cidr`"),
    ("egress: [{ports: [{port: 90, endPort: 80}]}]", "spec.egress[0].ports[0].endPort",
     "must be greater than or equal to `port`"),
    ("ingress: [{ports: [{port: my--port}]}]", "spec.ingress[0].ports[0].port", "must not contain consecutive hyphens"),
    ("policyTypes: ['']", "spec.policyTypes[0]", 'Unsupported value: "": supported values: "Ingress", "Egress"'),
    ("ingress: [{from: [{}]}]", "spec.ingress[0].from[0]", "must specify a peer"),
    ("ingress: [{fromm: []}]", "", 'unknown field "spec.ingress[0].fromm"'),
]


@pytest.mark.parametrize("spec,field,message", BAD, ids=[b[1] or "unknown" for b in BAD])
def test_bad_policies_get_422_naming_the_field(kubectl, spec, field, message):
    doc = f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: bad}}\nspec:\n  podSelector: {{}}\n  {spec}\n"
    p = kubectl("apply", "-f", "-", input=doc)
    assert p.returncode == 1 and message in p.stderr and field in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert kubectl("get", "networkpolicy", "bad").returncode == 1  # nothing was stored
