"""`kubelab pki init|issue|show|token` and `kubelab auth can-i`'s request: files in, lines out."""

from __future__ import annotations

import argparse
import json
import os
import stat

from kubelab.cli.auth import review_spec
from kubelab.cli.main import main
from kubelab.pki import ca as pki
from kubelab.pki import tokens


def test_init_issue_show_token(tmp_path, capsys):
    d = str(tmp_path / "pki")
    assert main(["pki", "init", "--dir", d, "--apiserver-ip", "192.168.56.10", "--node", "worker-1=192.168.56.11",
                 "--etcd", "cp=192.168.56.10"]) == 0
    out = capsys.readouterr().out
    assert "--tls-cert-file" in out and "--client-ca-file" in out and "BEGIN" not in out
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert os.path.exists(os.path.join(d, "kube-dns.kubeconfig"))
    assert main(["pki", "issue", "user", "jane", "--group", "devs", "--dir", d]) == 0
    cert = pki.load_cert(os.path.join(d, "user-jane.crt"))
    assert pki.describe(cert)["subject"] == {"CN": ["jane"], "O": ["devs"]}
    capsys.readouterr()
    assert main(["pki", "show", "--dir", d, "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown[os.path.join(d, "node-worker-1.crt")]["subject"]["O"] == ["system:nodes"]
    assert main(["pki", "token", "default/builder", "--uid", "u1", "--dir", d]) == 0
    token = capsys.readouterr().out.strip()
    claims = tokens.verify(token, tokens.load_verify_key(os.path.join(d, "sa.pub")))
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "builder", "uid": "u1"}


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["pki", "issue", "node", "n1", "--dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no CA in") and len(err.strip().splitlines()) == 1
    assert main(["pki", "token", "nonamespace", "--uid", "u", "--dir", str(tmp_path)]) == 1


class Ctx:
    def __init__(self, ns="team", all_ns=False):
        self.namespace, self.all_namespaces, self.args = ns, all_ns, argparse.Namespace()


def test_can_i_review_spec():
    assert review_spec(Ctx(), "create", "pods/exec", None, "") == {"resourceAttributes": {
        "verb": "create", "group": "", "version": "v1", "resource": "pods", "namespace": "team",
        "subresource": "exec"}}
    assert review_spec(Ctx(), "get", "deploy/web", None, "")["resourceAttributes"]["name"] == "web"
    assert review_spec(Ctx(), "list", "nodes", None, "")["resourceAttributes"].get("namespace") is None
    assert review_spec(Ctx(), "get", "/healthz", None, "") == {"nonResourceAttributes": {"path": "/healthz",
                                                                                         "verb": "get"}}
