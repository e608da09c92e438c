"""Shared fixtures: a real etcd and a real API server per test session (see kubelab.testing)."""

from __future__ import annotations

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
