"""The ingress add-on manifest: upstream's names, the image the catalogue maps to
`python -m kubelab.ingress`, and a least-privilege role checked with the API server's own
RBAC evaluator (what the e2e test confirms with `kubectl auth can-i` on a lab)."""

from __future__ import annotations

import os

import yaml

from kubelab.apiserver.rbac import Attributes, Policy, UserInfo
from kubelab.ingress import model
from kubelab.nodeagent import images

ADDON = os.path.join(os.path.dirname(model.__file__), "addon.yaml")
SA = UserInfo("system:serviceaccount:ingress-nginx:ingress-nginx", ("system:serviceaccounts",))


def docs() -> dict[str, dict]:
    with open(ADDON) as f:
        return {d["kind"]: d for d in yaml.safe_load_all(f) if d}


def test_names_and_image():
    d = docs()
    assert d["Namespace"]["metadata"]["name"] == "ingress-nginx"
    assert d["Service"]["metadata"]["name"] == "ingress-nginx-controller" and d["Service"]["spec"]["type"] == "LoadBalancer"
    cls = d["IngressClass"]
    assert cls["metadata"]["name"] == "nginx" and cls["spec"]["controller"] == model.CONTROLLER
    assert cls["metadata"]["annotations"][model.DEFAULT_CLASS_ANNOTATION] == "true"
    assert d["GatewayClass"]["spec"]["controllerName"] == "kubelab.dev/gateway-controller"
    assert {"name": "gateway-http", "port": 8080, "targetPort": 8080, "protocol": "TCP"} in d["Service"]["spec"]["ports"]
    container = d["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    argv = images.resolve(container["image"], container.get("command"), container.get("args"))
    assert argv[1:3] == ["-m", "kubelab.ingress"]
    assert any(m["mountPath"] == "/etc/nginx" for m in container["volumeMounts"])


def test_role_is_least_privilege():
    d = docs()
    policy = Policy.from_objects(cluster_roles=[d["ClusterRole"]], cluster_role_bindings=[d["ClusterRoleBinding"]])

    def can(verb: str, group: str, resource: str, sub: str = "") -> bool:
        return policy.allows(Attributes(SA, verb, api_group=group, resource=resource, subresource=sub,
                                        namespace="shop"))[0]
    for verb in ("list", "watch"):
        for group, res in (("", "services"), ("", "secrets"), ("discovery.k8s.io", "endpointslices"),
                           ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "ingressclasses")):
            assert can(verb, group, res), (verb, res)
    assert can("patch", "networking.k8s.io", "ingresses", "status")
    for res in ("gatewayclasses", "gateways", "httproutes"):   # the Gateway API side
        assert can("watch", "gateway.networking.k8s.io", res) and can("patch", "gateway.networking.k8s.io", res,
                                                                          "status")
        assert not can("update", "gateway.networking.k8s.io", res) and not can("create", "gateway.networking.k8s.io",
                                                                                 res)
    assert can("create", "", "events")
    for verb, group, res, sub in (("get", "", "secrets", ""), ("create", "", "secrets", ""),
                                  ("update", "networking.k8s.io", "ingresses", ""), ("list", "", "pods", ""),
                                  ("create", "", "pods", "exec"), ("delete", "", "services", ""),
                                  ("update", "discovery.k8s.io", "endpointslices", "")):
        assert not can(verb, group, res, sub), (verb, res, sub)
