"""Garbage collection through ownerReferences (Background, Foreground, Orphan) and the
namespace controller, on a real API server."""

from __future__ import annotations

import uuid

import pytest

from kubelab.client import NotFound
from kubelab.testing import eventually


@pytest.fixture
def controllers(spawn):
    return spawn("kubelab.controllers", "--leader-elect=false",
                         "--controllers=replicaset,garbagecollector,namespace,serviceaccount")


def replicaset(name: str, replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                     "template": {"metadata": {"labels": {"rs": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def pods_of(api, ns, rs):
    return (await api.list("pods", namespace=ns, label_selector=f"rs={rs}"))["items"]


async def gone(api, resource, name, ns=None):
    try:
        await api.get(resource, name, namespace=ns)
        return False
    except NotFound:
        return True


async def test_background_foreground_orphan(api, namespace, controllers):
    ns = namespace
    for name in ("bg", "fg", "orph"):
        await api.create("replicasets", replicaset(name), namespace=ns)
    for name in ("bg", "fg", "orph"):
        await eventually(lambda: _n(pods_of(api, ns, name), 2), timeout=15, what=f"{name} pods")

    # Background: the owner goes at once, the GC deletes the dependents
    await api.delete("replicasets", "bg", namespace=ns, propagation_policy="Background")
    await eventually(lambda: _n(pods_of(api, ns, "bg"), 0), timeout=15, what="bg pods collected")

    # Foreground: the owner stays (finalizer) until its dependents are gone
    out = await api.delete("replicasets", "fg", namespace=ns, propagation_policy="Foreground")
    assert "foregroundDeletion" in out["metadata"]["finalizers"]
    await eventually(lambda: gone(api, "replicasets", "fg", ns), timeout=15, what="fg owner removed")
    assert await pods_of(api, ns, "fg") == []

    # Orphan: the owner goes, the dependents stay without the ownerReference
    uid = (await api.get("replicasets", "orph", namespace=ns))["metadata"]["uid"]
    await api.delete("replicasets", "orph", namespace=ns, propagation_policy="Orphan")
    await eventually(lambda: gone(api, "replicasets", "orph", ns), timeout=15, what="orph owner removed")
    left = await pods_of(api, ns, "orph")
    assert len(left) == 2
    assert all(uid not in [r["uid"] for r in p["metadata"].get("ownerReferences") or []] for p in left)

    # a dependent of an owner that never existed (or is long gone) is collected
    await api.create("configmaps", {"metadata": {"name": "dangling", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "nobody", "uid": str(uuid.uuid4())}]}}, namespace=ns)
    await eventually(lambda: gone(api, "configmaps", "dangling", ns), timeout=15, what="dangling dependent collected")


async def _n(coro, n):
    return len(await coro) == n


async def test_namespace_deletion_empties_then_removes_it(api, controllers):
    ns = f"t-{uuid.uuid4().hex[:8]}"
    await api.create("namespaces", {"metadata": {"name": ns}})
    await eventually(lambda: _exists(api, "serviceaccounts", "default", ns), timeout=10, what="default ServiceAccount")
    await api.create("configmaps", {"metadata": {"name": "cfg"}, "data": {"a": "b"}}, namespace=ns)
    await api.create("replicasets", replicaset("web"), namespace=ns)
    await eventually(lambda: _n(pods_of(api, ns, "web"), 2), timeout=15, what="pods")
    await api.delete("namespaces", ns)
    await eventually(lambda: gone(api, "namespaces", ns), timeout=30, what="namespace deleted")
    for resource in ("configmaps", "replicasets", "pods", "serviceaccounts"):
        assert (await api.list(resource, namespace=ns))["items"] == [], resource


async def _exists(api, resource, name, ns):
    return not await gone(api, resource, name, ns)
