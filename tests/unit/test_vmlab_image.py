"""tests/vm/vmlab.py's pure parts, without VMs: what goes into the image (and its cache key),
and which leftovers of an interrupted VM run the next run removes (and which it must not)."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "vm"))
import vmlab  # noqa: E402


def role_defaults(role: str) -> dict:
    with open(os.path.join(ROOT, "ansible", "roles", role, "defaults", "main.yml")) as f:
        return yaml.safe_load(f)


def test_the_image_holds_what_the_roles_install():
    """The roles' packages are installed in the image (so their apt tasks find them present),
    and the venv is the one the roles use."""
    wanted = set(role_defaults("common")["common_packages"]) | set(role_defaults("etcd")["etcd_packages"])
    assert wanted <= set(vmlab.REPO_PACKAGES)
    assert role_defaults("kubelab")["kubelab_venv"] == vmlab.VENV
    hooks = " ".join(vmlab.mmdebstrap_argv(rootfs="R", files_dir="F", debs_out="D", wheels_dir="W"))
    assert "apt-get install -y -q --no-install-recommends " + " ".join(vmlab.REPO_PACKAGES) in hooks
    assert "--download-only" not in hooks
    assert f"python3 -m venv {vmlab.VENV}" in hooks and "pip install -q --no-index --no-deps" in hooks
    assert "systemctl disable nginx etcd" in hooks  # no etcd on workers; nginx as `common` leaves it


def test_dependency_wheels_leave_kubelab_out(tmp_path):
    for name in ("kubelab-0.1.0-py3-none-any.whl", "httpx-0.29.0-py3-none-any.whl", "aetcd-1.0.0-py3-none-any.whl",
                 "notes.txt"):
        (tmp_path / name).write_text(name)
    assert [os.path.basename(w) for w in vmlab.dependency_wheels(str(tmp_path))] == [
        "aetcd-1.0.0-py3-none-any.whl", "httpx-0.29.0-py3-none-any.whl"]


def test_image_key_follows_what_goes_in():
    wheels = {"httpx-0.29.0-py3-none-any.whl": "a" * 64}
    key = vmlab.image_key(wheels)
    assert key == vmlab.image_key(dict(wheels))
    assert key != vmlab.image_key({"httpx-0.29.0-py3-none-any.whl": "b" * 64})  # same name, new build
    assert key != vmlab.image_key({**wheels, "h11-0.16.0-py3-none-any.whl": "c" * 64})


def test_a_run_is_stale_once_its_owner_is_gone():
    alive = {("10", "500")}

    def is_alive(owner: dict) -> bool:
        return (str(owner["pid"]), owner["start"]) in alive
    assert not vmlab.is_stale({"owner": {"pid": 10, "start": "500"}}, is_alive)
    assert vmlab.is_stale({"owner": {"pid": 10, "start": "501"}}, is_alive)  # the PID was reused
    assert vmlab.is_stale({"owner": {"pid": 11, "start": "500"}}, is_alive)
    assert vmlab.is_stale({"workers": 2}, is_alive)  # recorded before owners were: stale
    assert not vmlab.is_stale({"owner": {"pid": 11, "start": "1"}, "detached": True}, is_alive)  # `vmlab.py up`


def test_owner_alive_tells_this_process_from_a_reused_pid():
    me = {"pid": os.getpid(), "start": vmlab.proc_start_time(os.getpid())}
    assert me["start"] and vmlab.owner_alive(me)
    assert not vmlab.owner_alive({**me, "start": str(int(me["start"]) + 1)})
    p = subprocess.Popen(["true"])
    p.wait()
    assert vmlab.proc_start_time(p.pid) is None


def test_only_processes_of_this_run_are_ours():
    run_dir = "/var/tmp/kubelab-vm/run-ab12"
    qemu = f"qemu-system-x86_64\0-name\0worker-1\0-pidfile\0{run_dir}/worker-1/qemu.pid\0".encode()
    assert vmlab.owns(qemu, "qemu-system", run_dir)
    assert not vmlab.owns(qemu, "qemu-system", "/var/tmp/kubelab-vm/run-cd34")  # another run's VM
    assert not vmlab.owns(b"sleep\x00100\x00", "qemu-system", run_dir)  # the PID now names something else
    assert not vmlab.owns(b"", "qemu-system", run_dir)  # gone
    server = f"/usr/bin/python3\0-m\0http.server\0--directory\0{run_dir}/repo\0".encode()
    assert vmlab.owns(server, "http.server", f"{run_dir}/repo")


def test_reaping_skips_live_and_detached_runs(tmp_path):
    """Runs whose owner lives (this process) or that are detached are left alone; a run dir
    without a state file is never touched."""
    live = vmlab.VMLab(cache_dir=str(tmp_path), tag="aaaa")
    live.save()
    detached = vmlab.VMLab(cache_dir=str(tmp_path), tag="bbbb", owner={"pid": 1, "start": "0"}, detached=True)
    detached.save()
    os.makedirs(tmp_path / "run-cccc")
    assert vmlab.reap_stale_runs(str(tmp_path)) == []
    assert sorted(os.listdir(tmp_path)) == ["run-aaaa", "run-bbbb", "run-cccc"]


def test_reaping_removes_a_dead_runs_leftovers(tmp_path):
    """A run whose owner is gone: its (recorded, already gone) processes are not signalled,
    its links are deleted by name (none exist here) and its run dir is removed."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = vmlab.VMLab(cache_dir=str(tmp_path), tag="dddd", owner={"pid": dead.pid, "start": "1"},
                        repo_pid=dead.pid, vms=[vmlab.VM(name="control-plane", index=0, ssh_port=1)])
    stale.save()
    os.makedirs(os.path.join(stale.run_dir, "control-plane"))
    with open(os.path.join(stale.run_dir, "control-plane", "qemu.pid"), "w") as f:
        f.write(str(os.getpid()))  # a recorded PID that is not a qemu of this run: never signalled
    assert vmlab.reap_stale_runs(str(tmp_path)) == [stale.run_dir]
    assert not os.path.exists(stale.run_dir)
