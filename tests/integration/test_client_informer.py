"""Informer behaviour against real API servers: handlers, indexes, reconnect without relist."""

from __future__ import annotations

import asyncio

from kubelab.client import ApiClient, Informer, WorkQueue
from kubelab.testing import eventually, start_apiserver


async def test_informer_handlers_and_indexes(api, namespace):
    events: list[tuple[str, str]] = []
    inf = Informer(api, "pods", namespace=namespace,
                   indexers={"node": lambda o: [o["spec"]["nodeName"]] if o["spec"].get("nodeName") else []})
    inf.add_handler(on_add=lambda o: events.append(("add", o["metadata"]["name"])),
                    on_update=lambda a, b: events.append(("update", b["metadata"]["name"])),
                    on_delete=lambda o: events.append(("delete", o["metadata"]["name"])))
    task = asyncio.create_task(inf.run())
    try:
        await inf.wait_synced(timeout=10)
        pod = {"metadata": {"name": "i1"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        await api.create("pods", pod, namespace=namespace)
        await api.bind("i1", "node-x", namespace=namespace)
        await eventually(lambda: [o["metadata"]["name"] for o in inf.store.by_index("node", "node-x")] == ["i1"],
                         what="pod indexed by node")
        await api.delete("pods", "i1", namespace=namespace, grace_period_seconds=0)
        await eventually(lambda: ("delete", "i1") in events, what="delete handler")
        assert events == [("add", "i1"), ("update", "i1"), ("delete", "i1")]
        assert inf.store.by_index("node", "node-x") == []
    finally:
        task.cancel()


async def test_informer_resumes_after_api_server_restart_without_relisting(etcd, api, namespace):
    """The informer's watch breaks when its API server dies; it reconnects from its last
    resourceVersion and catches up on what changed meanwhile, with no second list."""
    own = start_apiserver(etcd.url)
    port = int(own.url.rsplit(":", 1)[1])
    client = ApiClient(server=own.url)
    inf = Informer(client, "configmaps", namespace=namespace)
    task = asyncio.create_task(inf.run())
    try:
        await inf.wait_synced(timeout=10)
        await api.create("configmaps", {"metadata": {"name": "before"}}, namespace=namespace)
        await eventually(lambda: f"{namespace}/before" in inf.store, what="first object")
        own.proc.stop()
        await api.create("configmaps", {"metadata": {"name": "while-down"}}, namespace=namespace)
        await api.delete("configmaps", "before", namespace=namespace)
        own2 = start_apiserver(etcd.url, port=port)
        try:
            await eventually(lambda: sorted(inf.store.keys()) == [f"{namespace}/while-down"], timeout=30,
                             what="informer caught up after restart")
            assert inf.relists == 1
        finally:
            own2.stop()
    finally:
        task.cancel()
        await client.aclose()
        own.stop()


async def test_workqueue_with_informer_processes_each_key_once_per_change(api, namespace):
    q = WorkQueue()
    inf = Informer(api, "configmaps", namespace=namespace)
    inf.add_handler(on_add=lambda o: q.add(o["metadata"]["name"]),
                    on_update=lambda a, b: q.add(b["metadata"]["name"]))
    task = asyncio.create_task(inf.run())
    processed: list[str] = []
    try:
        await inf.wait_synced(timeout=10)
        await api.create("configmaps", {"metadata": {"name": "q"}, "data": {"v": "0"}}, namespace=namespace)
        for i in range(1, 20):
            await api.patch("configmaps", "q", {"data": {"v": str(i)}}, namespace=namespace)

        async def worker() -> None:
            while True:
                key = await q.get()
                processed.append(inf.store.get(f"{namespace}/{key}")["data"]["v"])
                q.done(key)

        w = asyncio.create_task(worker())
        await eventually(lambda: processed and processed[-1] == "19", what="last version processed")
        w.cancel()
        assert len(processed) <= 20  # bursts coalesce; never more work than changes
    finally:
        task.cancel()
