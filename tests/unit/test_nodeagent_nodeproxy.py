"""kubelab.apiserver.nodeproxy against a fake node agent on loopback (no root needed): the
container rules, log streaming with its query, and the exec relay with v5.channel.k8s.io."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, WebSocket  # module level: route annotations are strings
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute

from kubelab.apiserver import nodeproxy
from kubelab.apiserver.status import StatusError
from kubelab.testing import free_port, wait_until


def serve(app) -> tuple[uvicorn.Server, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="websockets-sansio", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, timeout=10, what="server")
    return server, port


@pytest.fixture(scope="module")
def fake_node():
    seen = {}

    async def logs(request):
        seen["log"] = (request.path_params, dict(request.query_params))
        if request.path_params["container"] == "waiting":
            return PlainTextResponse('container "waiting" in pod "p" is waiting to start: ContainerCreating',
                                     status_code=400)
        return PlainTextResponse("line 1\nline 2\n")

    async def exec_ws(ws):
        seen["exec"] = (ws.path_params, ws.query_params.getlist("command"),
                        ws.headers.get("sec-websocket-protocol"))
        await ws.accept(subprotocol="v5.channel.k8s.io")
        msg = await ws.receive_bytes()          # stdin frame, echoed on stdout
        await ws.send_bytes(b"\x01" + msg[1:].upper())
        await ws.send_bytes(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
        await ws.close()

    app = Starlette(routes=[Route("/containerLogs/{namespace}/{pod}/{container}", logs),
                            WebSocketRoute("/exec/{namespace}/{pod}/{container}", exec_ws)])
    server, port = serve(app)
    yield port, seen
    server.should_exit = True


@pytest.fixture(scope="module")
def front(fake_node):
    port, _ = fake_node
    objects = {
        ("pods", "ns1", "p"): {"metadata": {"name": "p", "namespace": "ns1"},
                               "spec": {"nodeName": "n1", "containers": [{"name": "c"}, {"name": "waiting"}]}},
        ("pods", "ns1", "solo"): {"metadata": {"name": "solo", "namespace": "ns1"},
                                  "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}},
        ("pods", "ns1", "unscheduled"): {"metadata": {"name": "unscheduled"}, "spec": {"containers": [{"name": "c"}]}},
        ("nodes", None, "n1"): {"metadata": {"name": "n1"},
                                "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                           "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}},
    }

    async def get_object(plural, namespace, name):
        try:
            return objects[(plural, namespace, name)]
        except KeyError:
            raise StatusError(404, f'{plural} "{name}" not found') from None

    app = FastAPI()

    @app.get("/api/v1/namespaces/{namespace}/pods/{name}/log")
    async def pod_log(namespace: str, name: str, request: Request):
        return await nodeproxy.pod_log(request, namespace=namespace, name=name, get_object=get_object)

    @app.websocket("/api/v1/namespaces/{namespace}/pods/{name}/exec")
    async def pod_exec(websocket: WebSocket, namespace: str, name: str):
        await nodeproxy.pod_exec(websocket, namespace=namespace, name=name, get_object=get_object)

    server, p = serve(app)
    yield f"127.0.0.1:{p}"
    server.should_exit = True


def test_pick_container():
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    assert nodeproxy.pick_container(pod, "b") == "b"
    with pytest.raises(StatusError) as e:
        nodeproxy.pick_container(pod, None)
    assert e.value.message == "a container name must be specified for pod p, choose one of: [a b]"
    with pytest.raises(StatusError):
        nodeproxy.pick_container(pod, "z")
    assert nodeproxy.pick_container({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}, None) == "a"


def test_log_proxied_with_query(front, fake_node):
    _, seen = fake_node
    r = httpx.get(f"http://{front}/api/v1/namespaces/ns1/pods/p/log",
                  params={"container": "c", "follow": "true", "tailLines": "5", "previous": "false"})
    assert r.status_code == 200 and r.text == "line 1\nline 2\n"
    assert r.headers["content-type"].startswith("text/plain")
    params, query = seen["log"]
    assert params == {"namespace": "ns1", "pod": "p", "container": "c"}
    assert query == {"follow": "true", "tailLines": "5", "previous": "false"}
    r = httpx.get(f"http://{front}/api/v1/namespaces/ns1/pods/solo/log")  # the only container
    assert r.status_code == 200


@pytest.mark.parametrize("path,code,fragment", [
    ("ns1/pods/p/log", 400, "a container name must be specified"),
    ("ns1/pods/p/log?container=waiting", 400, "is waiting to start"),
    ("ns1/pods/missing/log", 404, 'pods "missing" not found'),
    ("ns1/pods/unscheduled/log", 400, "does not have a host assigned"),
])
def test_log_errors_are_status(front, path, code, fragment):
    r = httpx.get(f"http://{front}/api/v1/namespaces/{path}")
    body = r.json()
    assert r.status_code == code and body["kind"] == "Status" and fragment in body["message"]


async def test_exec_relayed(front, fake_node):
    from websockets.asyncio.client import connect
    _, seen = fake_node
    url = f"ws://{front}/api/v1/namespaces/ns1/pods/p/exec?command=tr&command=a-z&command=A-Z&container=c&stdin=true&stdout=true"
    async with connect(url, subprotocols=["v5.channel.k8s.io"]) as ws:
        assert ws.subprotocol == "v5.channel.k8s.io"
        await ws.send(b"\x00hello")
        frames = [m async for m in ws]
    assert frames[0] == b"\x01HELLO"
    assert json.loads(frames[1][1:]) == {"metadata": {}, "status": "Success"}
    params, command, proto = seen["exec"]
    assert params["container"] == "c" and command == ["tr", "a-z", "A-Z"] and proto == "v5.channel.k8s.io"


async def test_exec_errors(front):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    url = f"ws://{front}/api/v1/namespaces/ns1/pods/missing/exec?command=true"
    async with connect(url, subprotocols=["v5.channel.k8s.io"]) as ws:
        frames = [m async for m in ws]
    st = json.loads(frames[0][1:])
    assert frames[0][0] == 3 and st["status"] == "Failure" and st["code"] == 404
    with pytest.raises(InvalidStatus):  # only v5.channel.k8s.io is accepted
        async with connect(url, subprotocols=["v4.channel.k8s.io"]):
            pass
