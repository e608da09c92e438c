"""Watch semantics on real etcd: list-then-watch loses nothing, 410 after compaction,
selectors on events, bookmarks, and a shared upstream watch for many clients."""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import pytest

from kubelab.client import ApiClient, Gone, Informer
from kubelab.testing import eventually


async def collect(api: ApiClient, resource: str, *, namespace: str, rv: str | None, until, **kw) -> list[dict]:
    events = []
    async for ev in api.watch(resource, namespace=namespace, resource_version=rv, timeout_seconds=30, **kw):
        if ev["type"] == "BOOKMARK":
            continue
        events.append(ev)
        if until(events):
            break
    return events


async def test_list_then_watch_loses_nothing_under_concurrent_writers(api, namespace):
    async def writer(w: int) -> None:
        for i in range(25):
            name = f"w{w}-{i}"
            await api.create("configmaps", {"metadata": {"name": name}, "data": {"v": "0"}}, namespace=namespace)
            await api.patch("configmaps", name, {"data": {"v": "1"}}, namespace=namespace)
            if i % 3 == 0:
                await api.delete("configmaps", name, namespace=namespace)

    writers = [asyncio.create_task(writer(w)) for w in range(4)]
    await asyncio.sleep(0)  # let writers start; the list below races them on purpose
    listed = await api.list("configmaps", namespace=namespace)
    state = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in listed["items"]}
    rv = listed["metadata"]["resourceVersion"]
    total_writes = 4 * 25 * 2 + 4 * 9  # creates + patches + deletes

    async def watch() -> list[dict]:
        out = []
        async for ev in api.watch("configmaps", namespace=namespace, resource_version=rv, timeout_seconds=60):
            out.append(ev)
            if all(w.done() for w in writers):
                final = await api.list("configmaps", namespace=namespace)
                if int(ev["object"]["metadata"]["resourceVersion"]) >= int(final["metadata"]["resourceVersion"]):
                    break
        return out

    events = [e for e in await asyncio.wait_for(watch(), 60) if e["type"] != "BOOKMARK"]
    await asyncio.gather(*writers)
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    dups = [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"])
            for e in events if revs.count(int(e["object"]["metadata"]["resourceVersion"])) > 1]
    assert revs == sorted(revs) and not dups, f"events out of order or duplicated: {dups}"
    assert all(r > int(rv) for r in revs)
    for ev in events:  # replaying the events over the list gives the final state
        name = ev["object"]["metadata"]["name"]
        if ev["type"] == "DELETED":
            state.pop(name, None)
        else:
            state[name] = ev["object"]["metadata"]["resourceVersion"]
    final = await api.list("configmaps", namespace=namespace)
    assert state == {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in final["items"]}
    assert len(events) <= total_writes


async def test_watch_without_rv_sends_current_objects_first(api, namespace):
    await api.create("configmaps", {"metadata": {"name": "pre"}}, namespace=namespace)
    events = await collect(api, "configmaps", namespace=namespace, rv=None, until=lambda evs: len(evs) >= 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "pre"


async def test_selector_transitions_become_added_and_deleted(api, namespace):
    await api.create("configmaps", {"metadata": {"name": "m", "labels": {"x": "1"}}}, namespace=namespace)
    rv = (await api.list("configmaps", namespace=namespace))["metadata"]["resourceVersion"]

    async def changes():
        await api.patch("configmaps", "m", {"metadata": {"labels": {"x": "2"}}}, namespace=namespace)
        await api.patch("configmaps", "m", {"metadata": {"labels": {"x": "1"}}}, namespace=namespace)
        await api.patch("configmaps", "m", {"data": {"k": "v"}}, namespace=namespace)

    task = asyncio.create_task(changes())
    events = await collect(api, "configmaps", namespace=namespace, rv=rv, label_selector="x=1",
                           until=lambda evs: len(evs) >= 3)
    await task
    assert [e["type"] for e in events] == ["DELETED", "ADDED", "MODIFIED"]


async def test_field_selector_on_watch(api, namespace):
    rv = (await api.list("pods", namespace=namespace))["metadata"]["resourceVersion"]
    pod = lambda n: {"metadata": {"name": n}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}  # noqa
    await api.create("pods", pod("mine"), namespace=namespace)
    await api.create("pods", pod("other"), namespace=namespace)
    await api.bind("other", "n2", namespace=namespace)
    await api.bind("mine", "n1", namespace=namespace)
    events = await collect(api, "pods", namespace=namespace, rv=rv, field_selector="spec.nodeName=n1",
                           until=lambda evs: len(evs) >= 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "mine"


async def test_bookmarks_and_timeout(apiserver, namespace):
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=30) as http:
        rv = (await http.get(f"/api/v1/namespaces/{namespace}/configmaps")).json()["metadata"]["resourceVersion"]
        lines = []
        async with http.stream("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                               params={"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                                       "timeoutSeconds": "3"}) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            async for line in r.aiter_lines():  # the server ends the stream at timeoutSeconds
                if line:
                    lines.append(json.loads(line))
    assert lines and all(ev["type"] == "BOOKMARK" for ev in lines)
    assert int(lines[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)


async def test_410_after_compaction_and_informer_relists(etcd, api, namespace):
    await api.create("configmaps", {"metadata": {"name": "old"}}, namespace=namespace)
    old_rv = (await api.list("configmaps", namespace=namespace))["metadata"]["resourceVersion"]
    inf = Informer(api, "configmaps", namespace=namespace)
    task = asyncio.create_task(inf.run())
    try:
        await inf.wait_synced(timeout=10)
        for i in range(5):
            await api.create("configmaps", {"metadata": {"name": f"new-{i}"}}, namespace=namespace)
        head = (await api.list("configmaps", namespace=namespace))["metadata"]["resourceVersion"]
        subprocess.run(["etcdctl", "--endpoints", etcd.url, "compact", head], check=True,
                       capture_output=True, env={"ETCDCTL_API": "3"})
        with pytest.raises(Gone):
            async for _ in api.watch("configmaps", namespace=namespace, resource_version=old_rv, timeout_seconds=5):
                pass
        with pytest.raises(Gone):
            await api.list("configmaps", namespace=namespace, resource_version=old_rv)
        await eventually(lambda: len(inf.store) == 6, timeout=10, what="informer has all 6 configmaps")
        # An informer that was disconnected since before the compaction: its watch gets
        # 410, it relists, and converges.
        stale = Informer(api, "configmaps", namespace=namespace)
        real_relist, calls = stale._relist, []

        async def first_relist_is_stale() -> None:
            calls.append(1)
            if len(calls) == 1:
                stale.resource_version = old_rv
                stale._synced.set()
                return
            await real_relist()

        stale._relist = first_relist_is_stale
        stale_task = asyncio.create_task(stale.run())
        try:
            await eventually(lambda: len(stale.store) == 6, timeout=15, what="stale informer relisted")
            assert len(calls) == 2
        finally:
            stale_task.cancel()
    finally:
        task.cancel()


async def test_many_watchers_share_one_etcd_watch(etcd, apiserver, namespace):
    def etcd_watchers() -> int:
        text = httpx.get(f"{etcd.url}/metrics").text
        return int(float(next(line.split()[1] for line in text.splitlines()
                              if line.startswith("etcd_debugging_mvcc_watcher_total"))))

    before = etcd_watchers()
    clients = [ApiClient(server=apiserver.url) for _ in range(10)]
    received: list[int] = [0] * 100
    rv = (await clients[0].list("configmaps", namespace=namespace))["metadata"]["resourceVersion"]

    async def watcher(i: int) -> None:
        async for ev in clients[i % 10].watch("configmaps", namespace=namespace, resource_version=rv,
                                               timeout_seconds=30):
            if ev["type"] == "ADDED":
                received[i] += 1
                return

    tasks = [asyncio.create_task(watcher(i)) for i in range(100)]
    try:
        async with httpx.AsyncClient(base_url=apiserver.url) as http:
            await eventually(lambda: _watchers(http), timeout=15, what="100 watches open")
        assert etcd_watchers() - before <= 1
        await clients[0].create("configmaps", {"metadata": {"name": "fanout"}}, namespace=namespace)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        assert received == [1] * 100
    finally:
        for t in tasks:
            t.cancel()
        for c in clients:
            await c.aclose()


async def _watchers(http: httpx.AsyncClient) -> bool:
    text = (await http.get("/metrics")).text
    n = next(float(line.split()[1]) for line in text.splitlines() if line.startswith("apiserver_registered_watchers"))
    return n >= 100
