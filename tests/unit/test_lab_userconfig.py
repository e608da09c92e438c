"""`kubelab up`/`down` and the user's kubeconfig, as kind does it: merge one cluster, user and
context `kubelab-<lab>` and make it current; remove exactly those; never follow a link
(issues 13 and 22)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from kubelab.client.kubeconfig import render
from kubelab.lab import userconfig
from kubelab.lab.userconfig import Target, UserConfigError

LAB = render(server="https://192.168.56.10:6443", name="kubelab-lab", user="kubelab-lab")
THEIRS = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
          "preferences": {"colors": True},
          "clusters": [{"name": "work", "cluster": {"server": "https://work.example:6443"}}],
          "users": [{"name": "me", "user": {"token": "t0k"}}],
          "contexts": [{"name": "work", "context": {"cluster": "work", "user": "me"}}]}


def names(cfg: dict, key: str) -> list[str]:
    return [e["name"] for e in cfg.get(key) or []]


def test_merge_and_remove_are_exact():
    merged = userconfig.merge(THEIRS, yaml.safe_load(LAB), "kubelab-lab")
    assert merged["current-context"] == "kubelab-lab" and merged["preferences"] == {"colors": True}
    for key in ("clusters", "users", "contexts"):
        assert names(merged, key)[-1] == "kubelab-lab" and len(names(merged, key)) == 2
    ctx = merged["contexts"][-1]["context"]
    assert ctx == {"cluster": "kubelab-lab", "user": "kubelab-lab"}
    again = userconfig.merge(merged, yaml.safe_load(LAB), "kubelab-lab")  # same name: replaced, not added
    assert again == merged
    assert userconfig.remove(merged, "kubelab-lab", "work") == THEIRS
    assert "current-context" not in userconfig.remove(merged, "kubelab-lab", "gone")


def test_install_then_uninstall_restores_the_users_file(tmp_path):
    t = Target(str(tmp_path / ".kube" / "config"))
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(yaml.safe_dump(THEIRS))
    os.chmod(t.path, 0o640)
    record, line = userconfig.install(LAB, "kubelab-lab", t)
    assert "kubelab-lab" in line and "use-context work" in line
    assert record["previous_context"] == "work" and not record["created_file"]
    assert "t0k" not in repr(record) and "server" not in repr(record)  # nothing secret in lab.json
    cfg = yaml.safe_load(open(t.path))
    assert cfg["current-context"] == "kubelab-lab" and names(cfg, "clusters") == ["work", "kubelab-lab"]
    assert oct(os.stat(t.path).st_mode & 0o777) == oct(0o640)  # the user's mode is kept
    assert not [f for f in os.listdir(tmp_path / ".kube") if f != "config"]  # no temporary left
    # the student adds a context of their own meanwhile: it stays
    cfg["contexts"].append({"name": "mine", "context": {"cluster": "work", "user": "me"}})
    (tmp_path / ".kube" / "config").write_text(yaml.safe_dump(cfg))
    line = userconfig.uninstall(record)
    assert "removed cluster, user and context kubelab-lab" in line and "current context: work" in line
    after = yaml.safe_load(open(t.path))
    assert names(after, "contexts") == ["work", "mine"] and after["current-context"] == "work"
    assert after["clusters"] == THEIRS["clusters"] and after["users"] == THEIRS["users"]
    assert userconfig.uninstall(record) is None  # twice: nothing to do


def test_a_file_up_created_goes_with_down(tmp_path):
    t = Target(str(tmp_path / ".kube" / "config"))
    record, _ = userconfig.install(LAB, "kubelab-lab", t)
    assert record["created_file"] and oct(os.stat(t.path).st_mode & 0o777) == oct(0o600)
    assert oct(os.stat(os.path.dirname(t.path)).st_mode & 0o777) == oct(0o700)
    assert "removed" in userconfig.uninstall(record)
    assert not os.path.exists(t.path)


def test_target_is_the_first_kubeconfig_file_else_home(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert userconfig.target({"KUBECONFIG": f"{a}{os.pathsep}{b}"}).path == a
    assert userconfig.target({"HOME": str(tmp_path)}).path.endswith("/.kube/config")


@pytest.mark.parametrize("where", ["file", "dir"])
def test_links_are_never_followed(tmp_path, where):
    """A root `up` must not write (or read) through a link the user planted in their home."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config").write_text("root: secret\n")
    home = tmp_path / "home"
    home.mkdir()
    if where == "file":
        (home / ".kube").mkdir()
        os.symlink(victim / "config", home / ".kube" / "config")
    else:
        os.symlink(victim, home / ".kube")
    t = Target(str(home / ".kube" / "config"))
    with pytest.raises(UserConfigError, match="symbolic link"):
        userconfig.read(t)
    with pytest.raises(UserConfigError, match="symbolic link"):
        userconfig.install(LAB, "kubelab-lab", t)
    with pytest.raises(UserConfigError, match="symbolic link"):
        userconfig.write(t, {"clusters": []})
    assert (victim / "config").read_text() == "root: secret\n" and os.listdir(victim) == ["config"]
    line = userconfig.uninstall({"path": t.path, "name": "kubelab-lab"})
    assert "symbolic link" in line and (victim / "config").read_text() == "root: secret\n"


def test_a_broken_user_kubeconfig_is_a_clear_error(tmp_path):
    (tmp_path / "config").write_text("clusters: [\n")
    with pytest.raises(UserConfigError, match="not valid YAML"):
        userconfig.install(LAB, "kubelab-lab", Target(str(tmp_path / "config")))
    assert (tmp_path / "config").read_text() == "clusters: [\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="`kubelab up` needs root")
def test_up_refuses_a_linked_kubeconfig_before_changing_anything(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("do not touch\n")
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    os.symlink(victim, home / ".kube" / "config")
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "KUBECONFIG")}
    env["HOME"] = str(home)
    p = subprocess.run([sys.executable, "-m", "kubelab.cli", "up", "--name", "tlink", "--root-dir", str(root),
                        "--node-subnet", "10.213.251.0/24", "--workers", "0"], capture_output=True, text=True,
                       timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and "symbolic link" in p.stderr and "Traceback" not in p.stderr, p.stdout + p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not root.exists() and victim.read_text() == "do not touch\n"


def test_get_kubeconfig_and_export_on_a_recorded_lab(tmp_path):
    """`kubelab get-kubeconfig` prints the lab's kubeconfig; `kubelab kubeconfig --export`
    merges it into the user's (recorded in lab.json, so `down` removes it); -o - prints."""
    from kubelab.lab import components, lab, state, topology
    plan = topology.plan_lab(name="kx", workers=1, root_dir=str(tmp_path / "root"))
    record = state.new_record(plan)
    state.save_record(plan.lab_dir, record)
    text = render(server=plan.api_url, name="kubelab-kx", user="kubelab-kx")
    with open(components.kubeconfig_path(plan), "w") as f:
        f.write(text)
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(yaml.safe_dump(THEIRS))
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "KUBECONFIG")}
    env["HOME"] = str(home)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "kubelab.cli", *args, "--name", "kx", "--root-dir",
                               str(tmp_path / "root")], capture_output=True, text=True, timeout=60, env=env)
    p = cli("get-kubeconfig")
    assert p.returncode == 0 and p.stdout == text, p.stderr
    assert cli("kubeconfig", "--export", "-o", "-").stdout == text
    p = cli("kubeconfig", "--export")
    assert p.returncode == 0 and "merged cluster, user and context kubelab-kx" in p.stdout, p.stderr
    cfg = yaml.safe_load((home / ".kube" / "config").read_text())
    assert cfg["current-context"] == "kubelab-kx" and names(cfg, "contexts") == ["work", "kubelab-kx"]
    rec = state.load_record(plan.lab_dir)["kubeconfig"]
    assert rec["path"] == str(home / ".kube" / "config") and rec["previous_context"] == "work"
    lines = []
    lab.restore_user_kubeconfig(rec, lines.append)
    assert yaml.safe_load((home / ".kube" / "config").read_text()) == THEIRS and lines
    p = subprocess.run([sys.executable, "-m", "kubelab.cli", "get-kubeconfig", "--name", "nolab", "--root-dir",
                        str(tmp_path / "root")], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1 and "no lab named 'nolab'" in p.stderr and "Traceback" not in p.stderr
