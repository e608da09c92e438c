"""Without kubectl the tests that need it fail, naming where to get it (they used to skip)."""

from __future__ import annotations

import os
import subprocess
import sys

TESTS = '''
import shutil, pytest

@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_marked():
    pass

def test_skips_itself():
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed")

def test_unrelated_skip():
    pytest.skip("no GPU")
'''


def run(tmp_path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "test_k.py").write_text(TESTS)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/: its conftest as a plugin
    e = {k: v for k, v in os.environ.items() if k != "KUBELAB_TESTS_WITHOUT_KUBECTL"}
    e.update(PATH=os.path.dirname(sys.executable), PYTHONPATH=here, **env)  # a PATH without kubectl
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "-o", "addopts=", "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=e, cwd=tmp_path, timeout=120)


def test_missing_kubectl_fails_with_where_to_get_it(tmp_path):
    p = run(tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "1 failed, 1 skipped, 1 error" in p.stdout, p.stdout
    assert p.stdout.count("https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/") >= 2
    assert "no GPU" in p.stdout or "1 skipped" in p.stdout

