"""The kube-dns add-on manifest: what pods' resolv.conf points at must be what it creates."""

from __future__ import annotations

from pathlib import Path

import yaml

import kubelab.dns

ADDON = Path(kubelab.dns.__file__).with_name("addon.yaml")


def _docs() -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(ADDON.read_text())}


def test_service_is_kube_dns_on_10_96_0_10() -> None:
    svc = _docs()["Service"]
    assert (svc["metadata"]["name"], svc["metadata"]["namespace"]) == ("kube-dns", "kube-system")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert svc["spec"]["selector"] == {"k8s-app": "kube-dns"}
    ports = {(p["name"], p["protocol"], p["port"]) for p in svc["spec"]["ports"]}
    assert {("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)} <= ports


def test_deployment_runs_two_ready_probed_replicas_of_kubelab_dns() -> None:
    docs = _docs()
    dep = docs["Deployment"]
    assert dep["metadata"]["namespace"] == "kube-system" and dep["spec"]["replicas"] == 2
    tmpl = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= tmpl["metadata"]["labels"].items()
    assert tmpl["metadata"]["labels"]["k8s-app"] == docs["Service"]["spec"]["selector"]["k8s-app"]
    assert tmpl["spec"]["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    (c,) = tmpl["spec"]["containers"]
    assert c["image"] == "kubelab/dns" and "command" not in c  # the catalogue runs kubelab.dns
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}


def test_args_are_accepted_by_the_server_cli() -> None:
    from kubelab.dns.__main__ import build_parser

    (c,) = _docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(c["args"])
    assert args.listen == "0.0.0.0:53" and args.health_port == 8080 and args.metrics_port == 9153
    assert args.upstream == "none"  # nothing leaves the lab
