"""`kubelab up --tls` on a real lab (root): the lab PKI, etcd and the API server on mutual TLS,
each component with its own identity, node agents on HTTPS, DNS pods on their
service-account tokens; the admin kubeconfig works with the real kubectl, nothing answers
without credentials."""

from __future__ import annotations

import os
import ssl
import subprocess

import httpx
import pytest

from kubelab.lab.testing import Lab
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]


# the lab (tests/e2e/conftest.py)
LAB_WORKERS = 1
LAB_UP = ("--tls", "--demo")


def pki(lab: Lab, name: str) -> str:
    return os.path.join(lab.plan.lab_dir, "pki", name)


def test_up_secured_end_to_end(lab):
    assert lab.plan.tls and lab.plan.api_url.startswith("https://")
    assert "PKI: lab CA" in lab.up_output and "DNS serving" in lab.up_output
    # the student's kubeconfig (embedded admin certificate) drives the real kubectl
    with open(os.path.join(lab.home, ".kube", "config")) as f:
        user_kc = f.read()
    assert "client-key-data" in user_kc and "https://" in user_kc
    r = lab.kubectl("get", "nodes", "-o", "name")
    assert "node/worker-1" in r.stdout
    # the demo's pods run and their logs/exec go API server -> node agent over mutual TLS
    pods = lab.kubectl("get", "pods", "-n", "demo", "-o", "name").stdout.split()
    assert pods
    r = lab.kubectl("exec", "-n", "demo", pods[0].split("/")[1], "--", "cat",
                    "/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    assert r.stdout == "demo"
    # DNS pods talk to the API in-cluster with their token (kube-dns answered during `up`);
    # they run as system:serviceaccount:kube-system:kube-dns
    dns = lab.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "name").stdout.split()
    assert dns
    r = lab.kubectl("logs", "-n", "kube-system", dns[0].split("/")[1])
    assert r.returncode == 0


def test_nothing_answers_without_credentials(lab):
    cp = lab.plan.control_plane
    anon = ssl.create_default_context(cafile=pki(lab, "ca.crt"))
    r = httpx.get(f"{lab.plan.api_url}/api/v1/pods", verify=anon, timeout=10)
    assert r.status_code == 401
    node_ip = lab.plan.workers[0].ip
    with pytest.raises(httpx.HTTPError):  # no client certificate: the node agent's handshake fails
        httpx.get(f"https://{node_ip}:10250/pods", verify=anon, timeout=10)
    with pytest.raises(httpx.HTTPError):  # etcd: client certificates only
        httpx.get(f"https://{cp.ip}:2379/v2/keys", verify=anon, timeout=10)
    # a node's credentials cannot read another's logs through its agent
    node = ssl.create_default_context(cafile=pki(lab, "ca.crt"))
    node.load_cert_chain(pki(lab, "node-worker-1.crt"), pki(lab, "node-worker-1.key"))
    assert httpx.get(f"https://{node_ip}:10250/pods", verify=node, timeout=10).status_code == 403


def test_components_run_with_their_own_identity(lab):
    with open(os.path.join(lab.plan.lab_dir, "lab.json")) as f:
        record = f.read()
    for kc in ("kube-controller-manager.kubeconfig", "kube-scheduler.kubeconfig", "kube-proxy.kubeconfig",
               "node-worker-1.kubeconfig"):
        assert pki(lab, kc) in record
    p = subprocess.run(["kubectl", "--kubeconfig", pki(lab, "kube-scheduler.kubeconfig"), "auth", "can-i",
                        "delete", "nodes"], capture_output=True, text=True, timeout=30)
    assert p.stdout.strip() == "no"
    st = lab.run("status", *lab.lab_args())
    assert "unreachable" not in st.stdout, st.stdout
    wait_until(lambda: "HTTP" not in lab.run("status", *lab.lab_args()).stdout, timeout=20, what="all healthy")


def test_etcd_opens_only_to_the_api_server(lab):
    """Issue 13: a user certificate the lab CA signs (`kubelab pki issue user jane`) gets no raw
    etcd access; the API server's etcd client certificate (etcd CA) does. Real etcdctl, run in
    a worker's netns against the control plane's etcd over the node network."""
    d = os.path.join(lab.plan.lab_dir, "pki")
    lab.run("pki", "issue", "user", "jane", "--group", "system:masters", "--dir", d)
    cp, w = lab.plan.control_plane, lab.plan.workers[0]

    def etcdctl(ident: str, ca: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", w.netns, "etcdctl", "--endpoints", f"https://{cp.ip}:2379",
                               "--cacert", pki(lab, ca), "--cert", pki(lab, f"{ident}.crt"),
                               "--key", pki(lab, f"{ident}.key"), "--dial-timeout", "3s", "--command-timeout", "5s",
                               "get", "/registry/", "--prefix", "--keys-only", "--limit", "5"],
                              capture_output=True, text=True, timeout=30, env={**os.environ, "ETCDCTL_API": "3"})
    ok = etcdctl("apiserver-etcd-client", "etcd-ca.crt")
    assert ok.returncode == 0 and "/registry/" in ok.stdout, ok.stdout + ok.stderr
    for ident in ("user-jane", "admin", "node-worker-1"):
        for ca in ("etcd-ca.crt", "ca.crt"):
            p = etcdctl(ident, ca)
            assert p.returncode != 0 and "/registry/" not in p.stdout, f"{ident} read etcd: {p.stdout[:200]}"
