"""The informer's store and event application (no server needed)."""

import asyncio

import pytest

from kubelab.client import Store, key_of
from kubelab.client.informer import Informer


def obj(name, ns="default", rv="1", node=None):
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, "spec": {"nodeName": node}}


def test_store_indexes_follow_updates():
    s = Store({"node": lambda o: [o["spec"]["nodeName"]] if o["spec"]["nodeName"] else []})
    s.put(obj("a", node="n1"))
    s.put(obj("b", node="n1"))
    assert sorted(key_of(o) for o in s.by_index("node", "n1")) == ["default/a", "default/b"]
    s.put(obj("a", node="n2", rv="2"))
    assert [key_of(o) for o in s.by_index("node", "n1")] == ["default/b"]
    assert [key_of(o) for o in s.by_index("node", "n2")] == ["default/a"]
    s.delete("default/b")
    assert s.by_index("node", "n1") == [] and len(s.by_index("namespace", "default")) == 1


def test_handlers_see_add_update_delete_and_late_handlers_get_state():
    inf = Informer.__new__(Informer)
    inf.store, inf._handlers = Store(), []
    inf.rt = None
    seen = []
    inf.add_handler(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                    on_update=lambda a, b: seen.append(("upd", b["metadata"]["resourceVersion"])),
                    on_delete=lambda o: seen.append(("del", o["metadata"]["name"])))
    inf._apply("ADDED", obj("x"))
    inf._apply("MODIFIED", obj("x", rv="2"))
    inf._apply("DELETED", obj("x", rv="3"))
    assert seen == [("add", "x"), ("upd", "2"), ("del", "x")]
    inf._apply("ADDED", obj("y"))
    late = []
    inf.add_handler(on_add=lambda o: late.append(o["metadata"]["name"]))
    assert late == ["y"]


def test_add_indexer_indexes_what_is_stored_and_keeps_the_first_of_a_name():
    s = Store()
    s.put(obj("a", node="n1"))
    s.add_indexer("node", lambda o: [o["spec"]["nodeName"]] if o["spec"]["nodeName"] else [])
    s.add_indexer("node", lambda o: ["other"])  # a second loop asking for the same index: kept as is
    assert [key_of(o) for o in s.by_index("node", "n1")] == ["default/a"]
    s.put(obj("b", node="n1"))
    s.delete("default/a")
    assert [key_of(o) for o in s.by_index("node", "n1")] == ["default/b"] and s.by_index("node", "other") == []


async def test_an_informer_starts_once_and_says_so():
    inf = Informer(None, "pods")

    async def idle():
        await asyncio.Event().wait()

    inf.run = idle
    assert not inf.started
    task = inf.start()
    try:
        assert inf.started
        with pytest.raises(RuntimeError, match="already started"):
            inf.start()
    finally:
        task.cancel()
