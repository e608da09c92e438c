"""`kubelab ui` flags and the web view's package boundary."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubelab.lab.lab import LabError
from kubelab.ui.lab import check_address, url_for

FORBIDDEN = ("apiserver", "controllers", "scheduler", "nodeagent", "proxy", "dns", "netpol", "ingress", "cni")


def test_loopback_by_default_and_a_warning_for_any_other_address():
    assert check_address(None) == ("127.0.0.1", None)
    assert check_address("127.0.0.2") == ("127.0.0.2", None)
    assert check_address("::1") == ("::1", None)
    addr, warning = check_address("0.0.0.0")
    assert addr == "0.0.0.0" and warning.startswith("warning:") and "other machines" in warning
    assert check_address("192.168.56.1")[1]
    for bad in ("example.com", "localhost;id", "", "999.1.1.1"):
        with pytest.raises(LabError, match="--address"):
            check_address(bad)
    assert url_for("0.0.0.0", 8001) == "http://127.0.0.1:8001/"
    assert url_for("::1", 8001) == "http://[::1]:8001/"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelab.cli", "ui", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_cli_errors_are_one_line(tmp_path):
    p = run("--name", "nolab", "--root-dir", str(tmp_path))
    assert p.returncode == 1 and p.stderr.strip().startswith("error: no lab named 'nolab'")
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    p = run("--name", "nolab", "--root-dir", str(tmp_path), "--port", "70000")
    assert p.returncode == 1 and p.stderr.strip() == "error: --port 70000: must be 1-65535"
    p = run("--name", "nolab", "--root-dir", str(tmp_path), "--address", "evil.example")
    assert p.returncode == 1 and "--address 'evil.example'" in p.stderr
    p = run("--name", "BAD;name", "--root-dir", str(tmp_path))
    assert p.returncode == 1 and "invalid lab name" in p.stderr and "Traceback" not in p.stderr


def test_the_web_view_imports_no_other_component_package():
    code = ("import sys, kubelab.ui.server, kubelab.ui.lab, kubelab.ui.hub, kubelab.ui.view, kubelab.cli.ui\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('kubelab.'))))")
    mods = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    bad = [m for m in mods if m.split(".")[1] in FORBIDDEN]
    assert not bad, bad
