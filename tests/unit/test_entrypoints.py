"""Every component starts by hand as `python -m kubelab.<component> --help`, and those that
talk to the API server take the same connection flags as the Kubernetes binaries."""

import subprocess
import sys

import pytest

CLIENTS = ["controllers", "scheduler", "nodeagent", "proxy", "dns", "netpol"]


@pytest.mark.parametrize("component", ["apiserver", "cni", "cli", *CLIENTS])
def test_help(component):
    p = subprocess.run([sys.executable, "-m", f"kubelab.{component}", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "usage" in p.stdout.lower()
    if component in CLIENTS:
        assert "--kubeconfig" in p.stdout and "--server" in p.stdout


def test_apiserver_flags():
    out = subprocess.run([sys.executable, "-m", "kubelab.apiserver", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    for flag in ("--etcd-servers", "--bind-address", "--port", "--advertise-address"):
        assert flag in out


def test_bad_flag_is_one_line_and_nonzero():
    p = subprocess.run([sys.executable, "-m", "kubelab.apiserver", "--service-cluster-ip-range", "nonsense"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0
