"""`kubelab up --tls`: the plan and the component command lines (pure), the lab PKI and the
admin kubeconfig it writes."""

from __future__ import annotations

import base64
import os

import yaml

from kubelab.client.kubeconfig import load
from kubelab.lab import components, topology


def specs(plan) -> dict[str, components.ComponentSpec]:
    return {s.key: s for s in components.lab_specs(plan)}


def test_plain_stays_the_default():
    plan = topology.plan_lab(name="x", workers=1, root_dir="/tmp/kl-unit")
    assert not plan.tls and plan.api_url.startswith("http://")
    for s in specs(plan).values():
        assert not any("/pki/" in a or a.startswith("--tls") for a in s.argv), s.key
        assert s.health is None or s.health.startswith("http://")
    old = plan.to_dict()
    old.pop("tls")  # a record written before --tls existed
    assert topology.LabPlan.from_dict(old) == plan


def test_tls_command_lines():
    plan = topology.plan_lab(name="x", workers=1, root_dir="/tmp/kl-unit", tls=True)
    assert topology.LabPlan.from_dict(plan.to_dict()) == plan
    assert plan.api_url == "https://192.168.56.10:6443"
    d = components.pki_dir(plan)
    s = specs(plan)
    etcd, api = s["control-plane/etcd"], s["control-plane/apiserver"]
    assert "--client-cert-auth" in etcd.argv and etcd.health.startswith("https://")
    assert not any(a.startswith("http://") for a in etcd.argv)
    a = list(api.argv)
    assert a[a.index("--etcd-servers") + 1].startswith("https://")
    for flag, value in (("--client-ca-file", f"{d}/ca.crt"), ("--kubelet-client-certificate",
                        f"{d}/apiserver-kubelet-client.crt"), ("--service-account-key-file", f"{d}/sa.key"),
                        ("--etcd-certfile", f"{d}/apiserver-etcd-client.crt")):
        assert a[a.index(flag) + 1] == value
    assert "--allow-insecure-http" not in a
    for key, ident in (("control-plane/controllers", "kube-controller-manager"),
                       ("control-plane/scheduler", "kube-scheduler"), ("worker-1/proxy", "kube-proxy"),
                       ("control-plane/proxy", "kube-proxy"), ("worker-1/nodeagent", "node-worker-1")):
        argv = list(s[key].argv)
        assert argv[argv.index("--kubeconfig") + 1] == f"{d}/{ident}.kubeconfig", key
    na = list(s["worker-1/nodeagent"].argv)
    assert na[na.index("--tls-cert-file") + 1] == f"{d}/node-worker-1.crt"
    assert na[na.index("--client-ca-file") + 1] == f"{d}/ca.crt"
    assert s["worker-1/nodeagent"].health == "https://192.168.56.11:10250/healthz"


def test_lab_pki_and_admin_kubeconfig(tmp_path):
    plan = topology.plan_lab(name="x", workers=1, root_dir=str(tmp_path), tls=True)
    components.init_pki(plan)
    d = components.pki_dir(plan)
    for f in ("ca.crt", "apiserver.crt", "node-worker-1.crt", "node-worker-1.kubeconfig", "kube-proxy.kubeconfig",
              "etcd-server.crt", "sa.key"):
        assert os.path.exists(os.path.join(d, f)), f
    text = components.admin_kubeconfig(plan)
    cfg = yaml.safe_load(text)
    user = cfg["users"][0]["user"]
    with open(os.path.join(d, "admin.key"), "rb") as f:
        assert base64.b64decode(user["client-key-data"]) == f.read()
    path = tmp_path / "kc"
    path.write_text(text)
    conn = load(str(path))
    # embedded credentials stay in memory: no file path, and no key in the Connection's repr
    assert conn.server == plan.api_url and conn.client_cert_data and conn.client_key_data and conn.ca_data
    assert not (conn.client_cert or conn.client_key or conn.ca_file)
    assert b"PRIVATE KEY" not in repr(conn).encode() and "PRIVATE" not in repr(conn)
    # the node's serving certificate carries its IP (the API server verifies it)
    from cryptography import x509
    with open(os.path.join(d, "node-worker-1.crt"), "rb") as f:
        san = x509.load_pem_x509_certificate(f.read()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    assert "192.168.56.11" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    # without TLS: the plain kubeconfig, nothing secret
    plain = topology.plan_lab(name="x", workers=1, root_dir=str(tmp_path))
    assert "client-key" not in components.admin_kubeconfig(plain)


def test_node_agent_flags_insecure_only_without_tls_and_hides_the_lab():
    for tls in (True, False):
        plan = topology.plan_lab(name="x", workers=1, root_dir="/tmp/kl-unit", tls=tls)
        na = list(specs(plan)["worker-1/nodeagent"].argv)
        assert ("--insecure" in na) is (not tls)
        assert na[na.index("--hide-path") + 1] == plan.root_dir
