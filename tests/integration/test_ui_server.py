"""kubelab ui's server on a real API server (no lab): the watch fan-out, live updates over SSE,
and the attacks: writes, DNS rebinding, hostile queries, trace flooding, external assets."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import socket

import httpx
import uvicorn

from kubelab.client import ApiClient
from kubelab.ui import hub as hubmod
from kubelab.ui import server as srv
from kubelab.ui import view

ROUTES = ["/", "/trace", "/timeline", "/rules", "/api/map.svg", "/api/stream", "/api/object?id=pod:a/b",
          "/api/stats", "/static/ui.js"]


class Running:
    def __init__(self, base: str, app, hub: hubmod.Hub, api: hubmod.ReadOnlyApi, calls: list) -> None:
        self.base, self.app, self.hub, self.api, self.calls = base, app, hub, api, calls


@contextlib.asynccontextmanager
async def ui_server(apiserver_url: str, *, trace=None, node_info=None):
    api = hubmod.ReadOnlyApi(ApiClient(server=apiserver_url))
    hub = hubmod.Hub(api)
    hub.start()
    await hub.wait_synced(30)
    calls: list = []
    ctx = srv.UiContext(hub=hub, lab_name="t", node_info=node_info or {}, trace=trace)
    app = srv.create_app(ctx)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await c.get(f"http://127.0.0.1:{port}/api/stats")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield Running(f"http://127.0.0.1:{port}", app, hub, api, calls)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await hub.stop()
        await api.aclose()
        sock.close()


async def next_map_event(lines, *, newer_than: int, timeout: float = 15.0) -> int:
    async def go():
        event = None
        async for line in lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "map":
                v = json.loads(line[6:])["version"]
                if v > newer_than:
                    return v
    return await asyncio.wait_for(go(), timeout)


def a_pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def test_two_browsers_share_one_watch_per_resource_and_one_render(apiserver, api, namespace):
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=20) as c:
        async with c.stream("GET", ui.base + "/api/stream") as s1, c.stream("GET", ui.base + "/api/stream") as s2:
            assert s1.headers["content-type"].startswith("text/event-stream")
            l1, l2 = s1.aiter_lines(), s2.aiter_lines()
            v1 = await next_map_event(l1, newer_than=-1)
            await next_map_event(l2, newer_than=-1)
            stats = (await c.get(ui.base + "/api/stats")).json()
            assert stats["subscribers"] == 2
            assert stats["watches_open"] == {r: 1 for r in hubmod.WATCHED}
            assert stats["watches_opened"] == {r: 1 for r in hubmod.WATCHED}
            # both browsers fetch the map for the same version: drawn once
            r1, r2 = await asyncio.gather(c.get(ui.base + "/api/map.svg"), c.get(ui.base + "/api/map.svg"))
            assert r1.text == r2.text and r1.headers["X-Map-Version"] == r2.headers["X-Map-Version"]
            renders = (await c.get(ui.base + "/api/stats")).json()["map_renders"]
            await c.get(ui.base + "/")
            assert (await c.get(ui.base + "/api/stats")).json()["map_renders"] == renders

            # a change reaches both streams, and the next map shows it
            await api.create("pods", a_pod("live-1"), namespace=namespace)
            w1, w2 = await asyncio.gather(next_map_event(l1, newer_than=v1), next_map_event(l2, newer_than=v1))
            assert w1 > v1 and w2 > v1
            svg = html.unescape((await c.get(ui.base + "/api/map.svg")).text)
            assert f'id="pod:{namespace}/live-1"' in svg
            # a burst of changes: still one watch each
            await asyncio.gather(*(api.create("pods", a_pod(f"burst-{i}"), namespace=namespace) for i in range(5)))
            stats = (await c.get(ui.base + "/api/stats")).json()
            assert stats["watches_opened"] == {r: 1 for r in hubmod.WATCHED}
        # browsers gone: their streams are released
        for _ in range(100):
            if (await c.get(ui.base + "/api/stats")).json()["subscribers"] == 0:
                break
            await asyncio.sleep(0.05)
        assert (await c.get(ui.base + "/api/stats")).json()["subscribers"] == 0


async def test_clicked_object_shows_yaml_and_its_events(apiserver, api, namespace):
    await api.create("pods", a_pod("clicked"), namespace=namespace)
    await api.create("events", {"metadata": {"name": "clicked.1"}, "type": "Warning", "reason": "Probe",
                                "message": "something happened",
                                "involvedObject": {"kind": "Pod", "name": "clicked", "namespace": namespace},
                                "source": {"component": "test"}}, namespace=namespace)
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=10) as c:
        r = await c.get(ui.base + "/api/object", params={"id": f"pod:{namespace}/clicked"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert "name: clicked" in body["yaml"] and "managedFields" not in body["yaml"]
        assert [e["reason"] for e in body["events"]] == ["Probe"]
        assert body["command"] == f"kubectl get pod clicked -o yaml -n {namespace}"
        for bad in ("", "secret:kube-system/x", "pod:", "pods:a/b", "x" * 600):
            r = await c.get(ui.base + "/api/object", params={"id": bad})
            assert r.status_code == 400 and "id:" in r.json()["error"]
        assert (await c.get(ui.base + "/api/object", params={"id": "pod:nope/nope"})).status_code == 404


async def test_read_only_every_route_refuses_writes(apiserver, api, namespace):
    await api.create("pods", a_pod("keep"), namespace=namespace)
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=10) as c:
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            for route in ROUTES + [f"/api/object?id=pod:{namespace}/keep"]:
                r = await c.request(method, ui.base + route, content=b'{"spec": {}}')
                assert r.status_code == 405, (method, route, r.status_code)
    assert (await api.get("pods", "keep", namespace=namespace))["metadata"]["name"] == "keep"
    # and the server's client cannot write even if a route tried
    for verb in ("create", "replace", "patch", "delete", "delete_collection", "bind", "request"):
        assert not hasattr(hubmod.ReadOnlyApi, verb)


async def test_dns_rebinding_host_is_refused(apiserver):
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=10) as c:
        for host in ("evil.example", "evil.example:8001", "127.0.0.1.nip.io", "localhost.evil.example"):
            r = await c.get(ui.base + "/api/stats", headers={"Host": host})
            assert r.status_code == 403, host
        assert (await c.get(ui.base + "/", headers={"Host": "localhost:8001"})).status_code == 200


async def test_every_asset_is_local_and_the_csp_says_so(apiserver):
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=10) as c:
        for route in ("/", "/trace", "/timeline", "/rules"):
            r = await c.get(ui.base + route)
            assert "default-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert not re.search(r'(src|href)="(https?:)?//', r.text), route
            assert '<div class="shell"' in r.text and "$ " in r.text    # each view names its shell command
        for asset in ("/static/ui.js", "/static/ui.css"):
            assert (await c.get(ui.base + asset)).status_code == 200
        assert "http" not in (await c.get(ui.base + "/static/ui.js")).text


HOSTILE_TRACE = [
    ({"from": "x; rm -rf /", "to": "nginx"}, "from:"), ({"from": "$(id)", "to": "nginx"}, "from:"),
    ({"from": "a/b/c", "to": "nginx"}, "from:"), ({"from": "client", "to": "nginx;reboot"}, "to:"),
    ({"from": "client", "to": "-x"}, "to:"), ({"from": "client", "to": "@10.0.0.1"}, "to:"),
    ({"from": "client", "to": "nginx:99999"}, "to:"), ({"from": "client", "to": "a" * 400}, "to:"),
    ({"from": "client"}, "to:"), ({"to": "nginx"}, "from:"), ({"from": "client", "to": "nginx\n"}, "to:")]


async def test_hostile_trace_query_is_a_clear_400_and_runs_nothing(apiserver):
    calls = []

    async def fake_trace(ns, pod, target):
        calls.append((ns, pod, target))
        raise AssertionError("must not run")
    async with ui_server(apiserver.url, trace=fake_trace) as ui, httpx.AsyncClient(timeout=10) as c:
        for params, names in HOSTILE_TRACE:
            r = await c.get(ui.base + "/trace", params=params)
            assert r.status_code == 400, params
            assert re.search(r'<p class="error" role="alert">' + re.escape(names), r.text), (params, r.text[-500:])
            assert "Traceback" not in r.text
    assert calls == []


async def test_trace_of_an_unknown_pod_is_404_and_floods_are_bounded(apiserver, api, namespace):
    await api.create("pods", a_pod("src"), namespace=namespace)
    gate = asyncio.Event()
    started = []

    async def slow_trace(ns, pod, target):
        started.append(pod)
        await gate.wait()
        return ({"pod": {"name": pod, "namespace": ns}, "target": target}, [])
    async with ui_server(apiserver.url, trace=slow_trace) as ui, httpx.AsyncClient(timeout=20) as c:
        for _ in range(100):
            if ui.hub.get("pods", f"{namespace}/src"):
                break
            await asyncio.sleep(0.05)
        r = await c.get(ui.base + "/trace", params={"from": f"{namespace}/nope", "to": "nginx"})
        assert r.status_code == 404 and "not found" in r.text
        q = {"from": f"{namespace}/src", "to": "nginx"}
        first = [asyncio.create_task(c.get(ui.base + "/trace", params=q)) for _ in range(srv.TRACE_CONCURRENCY)]
        for _ in range(200):
            if len(started) == srv.TRACE_CONCURRENCY:
                break
            await asyncio.sleep(0.02)
        extra = await c.get(ui.base + "/trace", params=q)
        assert extra.status_code == 429 and "busy" in extra.text
        gate.set()
        assert [(await t).status_code for t in first] == [200] * srv.TRACE_CONCURRENCY
        assert len(started) == srv.TRACE_CONCURRENCY


async def test_rules_and_trace_say_why_they_cannot_run_without_root_access(apiserver, api, namespace):
    await api.create("pods", a_pod("p"), namespace=namespace)
    info = {"worker-1": view.NodeInfo("kl-t-worker-1", "10.0.0.11", "worker")}
    async with ui_server(apiserver.url, node_info=info) as ui, httpx.AsyncClient(timeout=10) as c:
        ui.app.state.ctx.why_no_netns = "run it with sudo"
        r = await c.get(ui.base + "/rules", params={"node": "worker-9"})
        assert r.status_code == 400 and "node:" in r.text and "worker-1" in r.text
        r = await c.get(ui.base + "/rules", params={"node": "worker-1"})
        assert r.status_code == 503 and "run it with sudo" in r.text
        for _ in range(100):
            if ui.hub.get("pods", f"{namespace}/p"):
                break
            await asyncio.sleep(0.05)
        r = await c.get(ui.base + "/trace", params={"from": f"{namespace}/p", "to": "nginx"})
        assert r.status_code == 503 and "run it with sudo" in r.text


async def test_shutdown_ends_every_stream(apiserver):
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=20) as c:
        async with c.stream("GET", ui.base + "/api/stream") as s:
            lines = s.aiter_lines()
            await next_map_event(lines, newer_than=-1)
            await ui.hub.close_streams()

            async def drain():
                async for _ in lines:
                    pass
            await asyncio.wait_for(drain(), 10)  # the stream ended by itself


async def test_live_streams_are_bounded(apiserver):
    async with ui_server(apiserver.url) as ui, httpx.AsyncClient(timeout=20) as c:
        ui.app.state.ctx.max_streams = 2
        async with c.stream("GET", ui.base + "/api/stream") as s1, c.stream("GET", ui.base + "/api/stream") as s2:
            await next_map_event(s1.aiter_lines(), newer_than=-1)
            await next_map_event(s2.aiter_lines(), newer_than=-1)
            r = await c.get(ui.base + "/api/stream")
            assert r.status_code == 503 and "too many live pages" in r.text
            assert (await c.get(ui.base + "/api/map.svg")).status_code == 200   # the rest still works
