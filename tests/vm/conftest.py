"""The VM cluster for tests/vm: image, 3 VMs under qemu (TCG), ansible/site.yml, teardown.

These tests run only via `make test-vm` (KUBELAB_TEST_VM=1): they take minutes and several GB
of memory. Phase times (image, boot, ansible, second ansible run, tests) are printed at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmlab  # noqa: E402

from kubelab.testing import kubectl  # noqa: E402

ENABLED = os.environ.get("KUBELAB_TEST_VM") == "1"
TIMES = vmlab.TIMES


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if not str(item.fspath).startswith(here):
            continue
        item.add_marker(pytest.mark.vm)
        item.add_marker(pytest.mark.timeout(3600))  # the first test also waits for image + boot + Ansible
        if not ENABLED:
            item.add_marker(pytest.mark.skip(reason="VM tests run only via `make test-vm` (KUBELAB_TEST_VM=1)"))


def pytest_configure(config):
    config.addinivalue_line("markers", "vm: end-to-end on qemu VMs provisioned by Ansible (make test-vm)")


def pytest_terminal_summary(terminalreporter):
    if TIMES:
        terminalreporter.write_sep("=", "VM phase times (seconds)")
        for name, secs in TIMES.items():
            terminalreporter.write_line(f"{name:<24} {secs:8.1f}")


class Cluster:
    def __init__(self, lab: vmlab.VMLab, kubeconfig: str, first_run: subprocess.CompletedProcess):
        self.lab = lab
        self.kubeconfig = kubeconfig
        self.first_run = first_run

    def kubectl(self, *args: str, timeout: float = 90, check: bool = True) -> subprocess.CompletedProcess:
        return kubectl(self.kubeconfig, *args, request_timeout="60s", timeout=timeout, check=check)

    def ssh(self, vm: str, *cmd: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.ssh(vm, *cmd, timeout=timeout, check=check)


@pytest.fixture(scope="session")
def vmcluster():
    # asked for explicitly (make test-vm): what is missing is a failure, never a silent skip
    if os.geteuid() != 0:
        pytest.fail("VM tests need root (taps, bridge): sudo make test-vm")
    missing = vmlab.need(*vmlab.HOST_TOOLS, "kubectl")
    if not shutil.which("ansible-playbook", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]):
        missing.append("ansible-playbook")
    if missing:
        pytest.fail(f"missing host tools: {', '.join(missing)} (make test-vm installs them)")
    attach = os.environ.get("KUBELAB_VM_RUN_DIR")  # reuse VMs from `vmlab.py up` (still torn down at the end)
    lab = vmlab.VMLab.load(attach) if attach else vmlab.VMLab(workers=int(os.environ.get("KUBELAB_VM_WORKERS", "2")))
    if attach:
        lab.adopt()
    # a CI timeout's SIGTERM unwinds like Ctrl-C, through the teardown below (SIGKILL cannot:
    # then the next run removes what this one left, vmlab.reap_stale_runs)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    t_start = time.monotonic()
    try:
        if not attach:
            lab.prepare()
            lab.boot()
        t0 = time.monotonic()
        if attach and os.environ.get("KUBELAB_VM_PROVISIONED") == "1":  # by hand: Ansible already ran
            logs = sorted(f for f in os.listdir(lab.run_dir) if f.startswith("ansible-") and f.endswith(".log"))
            with open(os.path.join(lab.run_dir, logs[-1])) as f:
                first = subprocess.CompletedProcess([], 0, f.read(), "")
        else:
            first = lab.ansible_playbook()
            lab.phase("ansible", t0)
        assert first.returncode == 0, f"ansible-playbook failed:\n{first.stdout[-8000:]}"
        TIMES.update(lab.times)
        yield Cluster(lab, lab.kubeconfig(), first)
    finally:
        TIMES.update(lab.times)
        t0 = time.monotonic()
        left = lab.teardown()
        TIMES["teardown"] = round(time.monotonic() - t0, 1)
        TIMES["total"] = round(time.monotonic() - t_start, 1)
        signal.signal(signal.SIGTERM, previous)
        assert not left, f"VM residue after teardown: {left}"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
