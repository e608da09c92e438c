"""The kubelab CLI and the real kubectl read the same merged $KUBECONFIG (two files: context and
user in one, cluster in the other), with the credentials embedded as `*-data`; running
commands leaves no private key in /tmp or anywhere else (issues 13 and 22)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from kubelab.pki import ca as pki
from kubelab.pki import certs
from kubelab.testing import secure_apiserver

KUBECTL = shutil.which("kubectl")


def files_containing(root: str, needle: bytes, since: float) -> list[str]:
    """Regular files under `root` changed since `since` whose bytes contain `needle`."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
                if not os.path.isfile(p) or os.path.islink(p) or st.st_mtime < since or st.st_size > 4 << 20:
                    continue
                with open(p, "rb") as f:
                    if needle in f.read():
                        found.append(p)
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def cluster(etcd):
    with secure_apiserver(etcd.url) as a:
        yield a


def test_merged_embedded_kubeconfig_and_no_key_on_disk(cluster, tmp_path):
    d = cluster.extra["dir"]
    # an admin identity that exists only in memory and in the kubeconfig (base64)
    me = pki.issue(certs.load_ca(d), cn="memory-admin", orgs=["system:masters"])
    key_pem = pki.key_pem(me.key)
    needle = key_pem.splitlines()[1]  # a line of the PEM body: found in any file that holds the key
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca_pem = f.read()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    first = tmp_path / "a.yaml"   # current-context, the context and the user
    second = tmp_path / "b.yaml"  # the cluster; its own current-context loses to the first file's
    first.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "mem",
        "contexts": [{"name": "mem", "context": {"cluster": "lab", "user": "mem", "namespace": "kube-system"}}],
        "users": [{"name": "mem", "user": {"client-certificate-data": b64(pki.cert_pem(me.cert)),
                                           "client-key-data": b64(key_pem)}}]}))
    second.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "lab", "cluster": {"server": cluster.url, "certificate-authority-data": b64(ca_pem)}}],
        "contexts": [{"name": "other", "context": {"cluster": "nowhere", "user": "nobody"}}]}))
    spill = tmp_path / "tmpdir"
    spill.mkdir()
    env = {**os.environ, "KUBECONFIG": f"{first}{os.pathsep}{second}", "TMPDIR": str(spill)}
    t0 = time.time() - 1
    for args in (["get", "namespaces", "-o", "name"], ["get", "configmaps", "-o", "name"],
                 ["auth", "can-i", "delete", "nodes"]):
        p = subprocess.run([sys.executable, "-m", "kubelab.cli", *args], capture_output=True, text=True,
                           timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stdout + p.stderr
        if args[1] == "namespaces":
            assert "namespace/kube-system" in p.stdout
        if args[1] == "configmaps":  # the first file's context namespace (kube-system) applies
            assert "configmap/kubeadm-config" in p.stdout
        if args[0] == "auth":
            assert p.stdout.strip() == "yes"
    if KUBECTL:  # the real kubectl reads the same two files the same way
        k = subprocess.run([KUBECTL, "config", "view", "--minify", "-o", "jsonpath={.contexts[0].name} "
                            "{.clusters[0].cluster.server}"], capture_output=True, text=True, timeout=30, env=env)
        assert k.stdout == f"mem {cluster.url}", k.stdout + k.stderr
        k = subprocess.run([KUBECTL, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
                           capture_output=True, text=True, timeout=30, env=env)
        assert k.returncode != 0 or k.stdout == "memory-admin", k.stdout + k.stderr
    assert not list(spill.iterdir()), "nothing may be written to $TMPDIR"
    assert files_containing("/tmp", needle, t0) == [], "a private key was written under /tmp"
