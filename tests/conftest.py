"""Shared fixtures: a real etcd and a real API server per test session (see kubelab.testing).

The host suite runs in parallel (`make test-host`: `pytest -n 3 --dist loadgroup`, pytest-xdist):
most of its wall time is waiting on labs, etcd and API servers, not CPU. Each worker is its own
pytest session (its own session-scoped etcd and API server). Run it serially for debugging with
`.venv/bin/python -m pytest --ignore=tests/vm -p no:xdist` (or `-n 0`).

Rules that keep a test module parallel-safe (every new test file must follow them):

1. A module runs whole on one worker (the scheduler below sends each file as one unit), so
   module-scoped fixtures start once. Modules that share one session-scoped fixture (e.g. one lab)
   say so with a module-level line `XDIST_GROUP = "NAME"`: the whole group goes to one worker.
   (Not `pytest.mark.xdist_group`: with pytest 9, xdist 3.8 loses the group it appends to node ids.)
2. No fixed names for anything machine-wide: netns, links, bridges, nft tables in the host netns,
   files or dirs outside tmp_path/tempfile, Kubernetes objects on the shared session API server
   (use the `namespace` fixture or a uuid suffix). Labs come from `kubelab.lab.testing.Lab`
   (random name, its own 10.213.x.0/24 subnet, disjoint per worker).
3. No fixed ports: `kubelab.testing.free_port()` (loopback, picked by the kernel).
4. "Nothing is left" assertions look only at the test's own resources (names with the lab's or
   the test's prefix, the PIDs it started, the root dir it made), never at the machine as a whole:
   another worker's lab is up meanwhile.
5. Every worker must collect the same test ids: no random or time-dependent values in
   parametrize ids (give `ids=` when a parameter holds a uuid-suffixed name).
6. Wait on conditions (`wait_until`/`eventually`), with timeouts generous enough for a loaded
   machine; never a fixed sleep.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import uuid

import pytest

try:  # the parallel scheduler (pytest-xdist is a test dependency; without it the suite runs serially)
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pragma: no cover
    LoadScopeScheduling = None

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


GROUP_LINE = re.compile(r'^XDIST_GROUP = "([\w-]+)"', re.M)


@functools.cache
def xdist_group(path: str) -> str | None:
    """The `XDIST_GROUP = "NAME"` line of a test file, if any: the controller sees node ids
    only, so the group is read from the source, once per file."""
    try:
        with open(path, encoding="utf-8") as f:
            m = GROUP_LINE.search(f.read())
    except OSError:
        return None
    return m.group(1) if m else None


if LoadScopeScheduling is not None:
    class FileOrGroupScheduling(LoadScopeScheduling):
        """`--dist loadgroup` as this suite wants it: the tests of a file that says
        `XDIST_GROUP = "NAME"` go with their group, every other test with its file -- so
        module-scoped fixtures (a lab, an etcd + API server) start once, while plain loadgroup
        would spread an unmarked module's tests over all workers and start its lab on each.
        Work units go out in collection order (tests/e2e first: the labs are the long pole), not
        xdist's default most-tests-first, which would start the labs last."""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False
            self.rootdir = str(config.rootpath)

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # an xdist_group mark, where xdist keeps it
                return nodeid.rsplit("@", 1)[1]
            path = nodeid.split("::", 1)[0]
            group = xdist_group(os.path.join(self.rootdir, path))
            return f"group:{group}" if group else path

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue("dist") == "loadgroup":
            return FileOrGroupScheduling(config, log)
        return None
