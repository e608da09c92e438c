"""Garbage collector decisions (pure)."""

from kubelab.controllers.garbagecollector import gc_plan, owner_index, owner_plan


def obj(refs=(), finalizers=None, deleting=False):
    m = {"name": "x", "uid": "me", "ownerReferences": [{"uid": u, "kind": "ReplicaSet", "name": u} for u in refs]}
    if finalizers:
        m["finalizers"] = finalizers
    if deleting:
        m["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": m}


def test_gc_plan():
    assert gc_plan(obj(), {}) == "keep"
    assert gc_plan(obj(["a"]), {"a": True}) == "keep"
    assert gc_plan(obj(["a"]), {"a": False}) == "delete"
    assert gc_plan(obj(["a", "b"]), {"a": False, "b": True}) == "trim"
    assert gc_plan(obj(["a", "b"]), {"a": False, "b": False}) == "delete"


def test_owner_plan():
    assert owner_plan(obj(), []) == "none"
    assert owner_plan(obj(finalizers=["orphan"], deleting=True), [obj()]) == "orphan"
    assert owner_plan(obj(finalizers=["foregroundDeletion"], deleting=True), [obj()]) == "cascade"
    assert owner_plan(obj(finalizers=["foregroundDeletion"], deleting=True), []) == "finalize-foreground"
    assert owner_plan(obj(finalizers=["example.com/x"], deleting=True), []) == "none"


def test_owner_index():
    assert owner_index(obj(["a", "b"])) == ["a", "b"]
