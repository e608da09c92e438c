"""Shared fixtures: a real etcd and a real API server per test session (see kubelab.testing)."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from kubelab.client import ApiClient
from kubelab.testing import start_apiserver, start_etcd


@pytest.fixture(scope="session")
def etcd():
    e = start_etcd()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture(scope="session")
def apiserver(etcd):
    a = start_apiserver(etcd.url, args=["--bookmark-interval", "1"])
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture
async def api(apiserver):
    client = ApiClient(server=apiserver.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def namespace(api):
    name = f"t-{uuid.uuid4().hex[:8]}"
    await api.create("namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            await api.delete("namespaces", name)
        except Exception:
            pass


KUBECTL_MISSING = ("the real kubectl is needed and is not on the PATH: get it from "
                   "https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ (the suite runs 1.27 to 1.33; "
                   "README, Quick start). KUBELAB_TESTS_WITHOUT_KUBECTL=1 skips these tests instead.")


def _kubectl_skip(reason: str) -> bool:
    reason = reason.lower()
    return "kubectl" in reason and "not installed" in reason


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test skipped because kubectl is missing fails instead, saying where to get it: a
    green run without kubectl would prove nothing about kubectl compatibility."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("KUBELAB_TESTS_WITHOUT_KUBECTL") == "1" or shutil.which("kubectl"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3 else str(report.longrepr)
    if _kubectl_skip(reason):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: {KUBECTL_MISSING}"
