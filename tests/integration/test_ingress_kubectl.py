"""Ingress and IngressClass through the real kubectl: create (protobuf generator), apply, get
(Table columns), describe, the status subresource, a 422 naming the field for each upstream
validation rule. (RBAC of the aggregated roles: tests/unit/test_ingress_api.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

CLASS = """\
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: {name}
  annotations: {{ingressclass.kubernetes.io/is-default-class: "true"}}
spec: {{controller: k8s.io/ingress-nginx}}
"""

GOOD = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: nginx
  tls: [{hosts: [a.example.com], secretName: a-tls}]
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: app-a, port: {number: 80}}}}
  - host: "*.b.example.com"
    http:
      paths:
      - {path: /api, pathType: Exact, backend: {service: {name: app-b, port: {name: http}}}}
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


def test_apply_get_describe_status(kubectl):
    p = kubectl("apply", "-f", "-", input=GOOD)
    assert p.returncode == 0 and "ingress.networking.k8s.io/web created" in p.stdout, p.stderr
    rows = kubectl("get", "ing").stdout.splitlines()
    assert rows[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], rows
    assert rows[1].split()[:4] == ["web", "nginx", "a.example.com,*.b.example.com", "80,"], rows
    text = kubectl("describe", "ingress", "web").stdout
    for line in ("Ingress Class:    nginx", "a-tls terminates a.example.com", "/api   app-b:http"):
        assert line in text, text
    # status is written only through /status (what the controller does)
    obj = json.loads(kubectl("get", "ingress", "web", "-o", "json").stdout)
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}
    p = kubectl("replace", "-f", "-", input=json.dumps(obj))
    assert p.returncode == 0, p.stderr
    stored = json.loads(kubectl("get", "ingress", "web", "-o", "json").stdout)
    assert not stored.get("status", {}).get("loadBalancer", {}).get("ingress")  # the main resource ignores status
    p = kubectl("patch", "ingress", "web", "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": obj["status"]}))
    assert p.returncode == 0, p.stderr
    assert kubectl("get", "ing", "web").stdout.splitlines()[1].split()[3] == "192.0.2.7"
    bad = kubectl("patch", "ingress", "web", "--subresource=status", "--type=merge",
                  "-p", '{"status":{"loadBalancer":{"ingress":[{"ip":"not-an-ip"}]}}}')
    assert bad.returncode == 1 and "status.loadBalancer.ingress[0].ip" in bad.stderr, bad.stderr


def test_create_ingress_generator_is_protobuf(kubectl):
    p = kubectl("create", "ingress", "gen", "--class=nginx", "--rule=foo.example.com/bar*=svc1:8080",
                "--rule=other.example.com/=svc2:http,tls=other-tls")
    assert p.returncode == 0 and "ingress.networking.k8s.io/gen created" in p.stdout, p.stderr
    spec = json.loads(kubectl("get", "ingress", "gen", "-o", "json").stdout)["spec"]
    assert spec["rules"][0]["http"]["paths"][0] == {
        "path": "/bar", "pathType": "Prefix", "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}}
    assert spec["tls"] == [{"hosts": ["other.example.com"], "secretName": "other-tls"}]


def test_ingressclass_cluster_scoped(kubectl, namespace):
    name = f"cls-{namespace}"
    p = kubectl("apply", "-f", "-", input=CLASS.format(name=name))
    assert p.returncode == 0, p.stderr
    try:
        rows = kubectl("get", "ingressclass", name).stdout.splitlines()
        assert rows[0].split() == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
        assert rows[1].split()[:3] == [name, "k8s.io/ingress-nginx", "<none>"]
        p = kubectl("patch", "ingressclass", name, "--type=merge", "-p", '{"spec":{"controller":"x.io/other"}}')
        assert p.returncode == 1 and "spec.controller" in p.stderr and "field is immutable" in p.stderr
    finally:
        kubectl("delete", "ingressclass", name)


def _ing(spec: str) -> str:
    return f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: bad}}\nspec:\n  {spec}\n"


_B = "backend: {service: {name: s, port: {number: 80}}}"
BAD = [
    ("ingressClassName: nginx", "spec.rules", "either `defaultBackend` or `rules` must be specified"),
    (f"rules: [{{host: 10.0.0.1, http: {{paths: [{{path: /, pathType: Prefix, {_B}}}]}}}}]",
     "spec.rules[0].host", "must be a DNS name, not an IP address"),
    (f"rules: [{{host: 'a;b', http: {{paths: [{{path: /, pathType: Prefix, {_B}}}]}}}}]",
     "spec.rules[0].host", "RFC 1123 subdomain"),
    (f"rules: [{{http: {{paths: [{{path: /a, {_B}}}]}}}}]", "spec.rules[0].http.paths[0].pathType",
     "pathType must be specified"),
    (f"rules: [{{http: {{paths: [{{path: /a, pathType: Regex, {_B}}}]}}}}]",
     "spec.rules[0].http.paths[0].pathType", "Unsupported value"),
    (f"rules: [{{http: {{paths: [{{path: a, pathType: Exact, {_B}}}]}}}}]",
     "spec.rules[0].http.paths[0].path", "must be an absolute path"),
    (f"rules: [{{http: {{paths: [{{path: /a//b, pathType: Prefix, {_B}}}]}}}}]",
     "spec.rules[0].http.paths[0].path", "must not contain '//'"),
    ("rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {}}}}]}}]",
     "spec.rules[0].http.paths[0].backend.service.port", "port name or number is required"),
    ("defaultBackend: {service: {name: s, port: {number: 70000}}}",
     "spec.defaultBackend.service.port.number", "must be between 1 and 65535"),
    ("defaultBackend: {}", "spec.defaultBackend", "one backend must be specified"),
    ("defaultBackend: {service: {name: s, port: {number: 80}}}\n  tls: [{hosts: ['*'], secretName: x}]",
     "spec.tls[0].hosts[0]", "wildcard"),
    ("defaultBackend: {service: {name: s, port: {number: 80}}}\n  rulez: []", "", 'unknown field "spec.rulez"'),
]


@pytest.mark.parametrize("spec,field,message", BAD, ids=[f"{i}-{b[1] or 'unknown'}" for i, b in enumerate(BAD)])
def test_bad_ingresses_get_422_naming_the_field(kubectl, spec, field, message):
    p = kubectl("apply", "-f", "-", input=_ing(spec))
    assert p.returncode == 1 and message in p.stderr and field in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert kubectl("get", "ingress", "bad").returncode == 1  # nothing was stored


def test_api_resources(kubectl):
    rows = [r.split() for r in kubectl("api-resources", "--api-group=networking.k8s.io").stdout.splitlines()[1:]]
    assert ["ingressclasses", "networking.k8s.io/v1", "false", "IngressClass"] in rows
    assert ["ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"] in rows


# --- Gateway API kinds (same API server; the controller side: test_ingress_controller.py) -----

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r}}
spec:
  parentRefs: [{{name: gw}}]
  {spec}
"""
BAD_ROUTES = [
    ("rules: [{matches: [{path: {type: Exact, value: a}}]}]", "spec.rules[0].matches[0].path.value",
     "must be an absolute path"),
    ("rules: [{matches: [{headers: [{name: 'a b', value: x}]}]}]", "spec.rules[0].matches[0].headers[0].name",
     "HTTP token"),
    ("rules: [{backendRefs: [{name: s, port: 80, weight: 2000000}]}]", "spec.rules[0].backendRefs[0].weight",
     "between 0 and 1000000"),
    ("rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]}]",
     "spec.rules[0].filters[0].requestRedirect.statusCode", "Unsupported value"),
    ("hostnames: ['*']", "spec.hostnames[0]", "DNS name"),
    ("rulez: []", "", 'unknown field "spec.rulez"'),
]


@pytest.mark.parametrize("spec,field,message", BAD_ROUTES, ids=[f"{i}-{b[1] or 'unknown'}"
                                                                for i, b in enumerate(BAD_ROUTES)])
def test_bad_httproutes_get_422_naming_the_field(kubectl, spec, field, message):
    p = kubectl("apply", "-f", "-", input=ROUTE.format(spec=spec))
    assert p.returncode == 1 and message in p.stderr and field in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert kubectl("get", "httproute", "r").returncode == 1  # nothing was stored


def test_gateway_kinds_served(kubectl):
    rows = [r.split() for r in kubectl("api-resources", "--api-group=gateway.networking.k8s.io").stdout
            .splitlines()[1:]]
    assert ["gatewayclasses", "gc", "gateway.networking.k8s.io/v1", "false", "GatewayClass"] in rows
    assert ["gateways", "gtw", "gateway.networking.k8s.io/v1", "true", "Gateway"] in rows
    assert ["httproutes", "gateway.networking.k8s.io/v1", "true", "HTTPRoute"] in rows
    assert ["referencegrants", "refgrant", "gateway.networking.k8s.io/v1beta1", "true", "ReferenceGrant"] in rows
    grant = ("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\nspec:\n"
             "  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: web}]\n"
             "  to: [{group: '', kind: Service}]\n")
    p = kubectl("apply", "-f", "-", input=grant)
    assert p.returncode == 0 and "referencegrant.gateway.networking.k8s.io/g created" in p.stdout, p.stderr
    assert kubectl("get", "refgrant").stdout.split("\n")[1].split()[0] == "g"
    p = kubectl("apply", "-f", "-", input=grant.replace("to: [{group: '', kind: Service}]", "to: []"))
    assert p.returncode == 1 and "spec.to" in p.stderr, p.stderr
    p = kubectl("apply", "-f", "-", input=ROUTE.format(spec="hostnames: [a.test]\n  rules: [{backendRefs: "
                                                            "[{name: s, port: 80}]}]"))
    assert p.returncode == 0, p.stderr
    out = kubectl("get", "httproutes").stdout.splitlines()
    assert out[0].split() == ["NAME", "HOSTNAMES", "AGE"] and out[1].split()[:2] == ["r", "a.test"]
    # the status subresource: a user's write to spec does not touch status, and vice versa
    route = json.loads(kubectl("get", "httproute", "r", "-o", "json").stdout)
    assert "status" not in route or not route["status"].get("parents")
    kubectl("delete", "httproute", "r")
