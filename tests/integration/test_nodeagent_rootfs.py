"""A container's root, built for real in a private mount namespace (no cluster needed): the
node's secrets hidden, exposed paths back, mount paths that do not exist on the node,
read-only node files, capabilities dropped, and nothing left on the node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from kubelab.nodeagent import rootfs

pytestmark = pytest.mark.root


@pytest.fixture
def node_dirs():
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespaces)")
    # under /var/tmp, not /tmp: a container gets a fresh /tmp, which would hide it anyway
    secret = tempfile.mkdtemp(prefix="kl-rootfs-secret-", dir="/var/tmp")
    work = tempfile.mkdtemp(prefix="kl-rootfs-")
    try:
        yield secret, work
    finally:
        shutil.rmtree(secret, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def run_in_root(spec: rootfs.RootSpec, script: str, *, uid: int | None = None, env: dict | None = None):
    if env is not None:
        with open(spec.env_file, "w") as f:
            json.dump(env, f)
    cmd = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--",
           sys.executable, "-I", "-m", "kubelab.nodeagent.rootfs", spec.to_json(), "--",
           *rootfs.setpriv_argv(uid=uid, gid=None), "sh", "-c", script]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_secrets_hidden_mounts_created_without_residue(node_dirs):
    secret, work = node_dirs
    os.makedirs(os.path.join(secret, "pki"))
    with open(os.path.join(secret, "pki", "ca.key"), "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\n")
    os.makedirs(os.path.join(secret, "tools"))
    with open(os.path.join(secret, "tools", "ok"), "w") as f:
        f.write("visible")
    src = os.path.join(work, "vol")
    os.makedirs(src)
    with open(os.path.join(src, "a"), "w") as f:
        f.write("A")
    root = os.path.join(work, "root")
    os.makedirs(root)
    spec = rootfs.RootSpec(root=root, hide=(secret,), expose=(os.path.join(secret, "tools"),),
                           mounts=(rootfs.Mount(src, "/cfg"), rootfs.Mount(src, "/etc/kl-new/deeper"),
                                   rootfs.Mount(src, "/var/run/secrets/x", read_only=False)),
                           workdir="/work/here", env_file=os.path.join(work, "env.json"))
    p = run_in_root(spec, f"""
        cat {secret}/pki/ca.key 2>&1; ls -A {secret}; cat {secret}/tools/ok; echo
        cat /cfg/a /etc/kl-new/deeper/a /run/secrets/x/a; echo; pwd; echo "$GREETING"
        touch /etc/passwd 2>&1; touch /etc/kl-new/x 2>&1; touch /cfg/b 2>&1; touch /run/secrets/x/w && echo rw
        umount -l {secret} 2>&1; grep CapEff /proc/self/status""", env={"GREETING": "hi", "PATH": "/usr/bin:/bin"})
    out = p.stdout
    assert p.returncode == 0, p.stderr + out
    assert "PRIVATE KEY" not in out and "No such file" in out and "visible" in out, out
    assert "AAA\n/work/here\nhi\n" in out, out
    assert out.count("Read-only file system") == 3 and "rw\n" in out and "must be superuser" in out, out
    assert "CapEff:\t00000000a80425fb" in out, out   # Docker's default set: no CAP_SYS_ADMIN
    # the container's environment was handed over once, then removed; nothing on the node
    assert not os.path.exists(spec.env_file)
    assert not any(os.path.exists(x) for x in ("/cfg", "/etc/kl-new", "/work/here"))
    assert os.listdir(root) == [] and os.path.exists(os.path.join(src, "w"))


def test_read_only_root_and_a_user(node_dirs):
    _, work = node_dirs
    root = os.path.join(work, "root")
    os.makedirs(root)
    spec = rootfs.RootSpec(root=root, read_only_root=True)
    p = run_in_root(spec, "id -u; touch /x 2>&1; touch /tmp/x 2>&1; grep CapEff /proc/self/status", uid=1234)
    assert p.stdout.splitlines()[0] == "1234", p.stdout + p.stderr
    assert p.stdout.count("Read-only file system") == 2 and "CapEff:\t0000000000000000" in p.stdout


def test_a_bad_spec_is_one_line_and_exit_128(node_dirs):
    _, work = node_dirs
    spec = rootfs.RootSpec(root=os.path.join(work, "missing"))
    p = run_in_root(spec, "echo never")
    assert p.returncode == 128 and "never" not in p.stdout
    assert p.stderr.startswith("kubelab: failed to set up the container's filesystem:") and "Traceback" not in p.stderr
