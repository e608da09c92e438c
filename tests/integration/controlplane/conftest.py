"""Controllers and the scheduler act on the whole cluster, so each test module here gets an
etcd and API server of its own instead of the session's shared one."""

from __future__ import annotations

import pytest

from kubelab.controllers.simulation import spawn_component
from kubelab.testing import start_apiserver, start_etcd


@pytest.fixture(scope="module")
def apiserver():
    etcd = start_etcd()
    try:
        api = start_apiserver(etcd.url)
        try:
            yield api
        finally:
            api.stop()
    finally:
        etcd.stop()


@pytest.fixture
def spawn(apiserver):
    """Start components for one test, as `python -m MODULE --server URL ARGS` (env: extra
    environment); every one is stopped afterwards and the end of its log printed."""
    started = []

    def start(module: str, *args: str, env: dict | None = None):
        c = spawn_component(module, apiserver.url, *args, env=env)
        started.append(c)
        return c

    try:
        yield start
    finally:
        for c in started:
            c.stop()
            print(f"--- {' '.join(c.popen.args[2:4])} ---\n{c.log()[-3000:]}")
            c.cleanup()
