"""`pods/log` and `pods/exec`: the API server proxies them to the node agent of the pod's node
(its InternalIP, port from status.daemonEndpoints.kubeletEndpoint, 10250 by default), as the
real API server does to the kubelet.

- log: `GET .../pods/NAME/log?container=&follow=&tailLines=&previous=&limitBytes=` → text/plain;
  with follow the body is a chunked stream that ends when the container stops.
- attach: the same WebSocket protocol as exec without `command`, bound by the node agent to
  the container's stdin/terminal (`stdin`/`tty` in its spec).
- exec: kubectl ≥ 1.30 upgrades to a WebSocket offering subprotocol `v5.channel.k8s.io`; the
  node agent speaks the same protocol, so frames are relayed unchanged both ways (channel byte
  0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close).

`get_object(plural, namespace, name)` is how these functions read pods and nodes (the app passes
`lambda plural, ns, name: registry.get(lookup(plural), ns, name)`); it raises StatusError.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from .status import StatusError

log = logging.getLogger(__name__)

SUBPROTOCOL = "v5.channel.k8s.io"
GetObject = Callable[[str, str | None, str], Awaitable[dict]]
LOG_PARAMS = ("follow", "tailLines", "previous", "limitBytes", "timestamps", "sinceSeconds")
EXEC_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")


def kubelet_ssl_context(*, cert_file: str, key_file: str, ca_file: str | None = None) -> ssl.SSLContext:
    """The API server's TLS client towards node agents (`--kubelet-client-certificate/-key`):
    it presents the kubelet-client certificate; the agent's serving certificate is verified
    against `--kubelet-certificate-authority` (node IP in its SANs) when given, else not
    verified, as kube-apiserver does without that flag."""
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl._create_unverified_context()
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _status(e: StatusError) -> JSONResponse:
    return JSONResponse(e.to_status(), status_code=e.code)


def pick_container(pod: dict, requested: str | None) -> str:
    """The container a log/exec request means (kubectl's and the API server's rules)."""
    name = pod["metadata"]["name"]
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    all_names = names + [c["name"] for c in spec.get("initContainers") or []]
    if requested:
        if requested not in all_names:
            raise StatusError(400, f"container {requested} is not valid for pod {name}")
        return requested
    if len(names) == 1:
        return names[0]
    raise StatusError(400, f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")


async def node_address(pod: dict, get_object: GetObject) -> str:
    """host:port of the node agent running `pod`."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise StatusError(400, f"pod {pod['metadata']['name']} does not have a host assigned")
    return _node_agent_address(await get_object("nodes", None, node_name))


def _node_agent_address(node: dict) -> str:
    """host:port of a Node's agent (its InternalIP and the kubelet endpoint port)."""
    node_name = node["metadata"]["name"]
    status = node.get("status") or {}
    ip = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    if not ip:
        raise StatusError(500, f"node {node_name} has no InternalIP address")
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def pod_log(request: Request, *, namespace: str, name: str, get_object: GetObject,
                  tls: ssl.SSLContext | None = None) -> Response:
    """GET pods/NAME/log."""
    q = request.query_params
    try:
        pod = await get_object("pods", namespace, name)
        container = pick_container(pod, q.get("container"))
        addr = await node_address(pod, get_object)
    except StatusError as e:
        return _status(e)
    params = {k: q[k] for k in LOG_PARAMS if k in q}
    url = f"{'https' if tls else 'http'}://{addr}/containerLogs/{namespace}/{name}/{container}"
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), verify=tls if tls else True)
    try:
        upstream = await client.send(client.build_request("GET", url, params=params), stream=True)
    except httpx.HTTPError as e:
        await client.aclose()
        return _status(StatusError(500, f"failed to reach the node agent at {addr}: {e}"))
    if upstream.status_code >= 400:
        body = (await upstream.aread()).decode(errors="replace").strip()
        await upstream.aclose()
        await client.aclose()
        code = upstream.status_code if upstream.status_code in (400, 403, 404) else 500
        return _status(StatusError(code if code != 404 else 400, body or f"node agent answered {code}"))

    async def body():
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            pass
        finally:
            await upstream.aclose()
            await client.aclose()
    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


# The node agent paths `nodes/NAME/proxy/...` reaches: its read-only status endpoints. Logs and
# exec go through pods/log and pods/exec (authorized per pod), never through the node proxy.
NODE_PROXY_PATHS = ("metrics", "healthz", "pods")


async def node_proxy(request: Request, *, node: str, path: str, get_object: GetObject,
                     tls: ssl.SSLContext | None = None) -> Response:
    """GET nodes/NAME/proxy/PATH for the status paths above (`kubectl get --raw
    /api/v1/nodes/worker-1/proxy/metrics`); anything else is refused, not forwarded."""
    if request.method != "GET":
        return _status(StatusError(405, f"the node proxy serves only GET (not {request.method})",
                                   reason="MethodNotAllowed"))
    if path not in NODE_PROXY_PATHS:
        return _status(StatusError(404, f"the node proxy serves only {', '.join('/' + p for p in NODE_PROXY_PATHS)} "
                                        f"(not /{path})"))
    try:
        node_obj = await get_object("nodes", None, node)
        addr = _node_agent_address(node_obj)
    except StatusError as e:
        return _status(e)
    url = f"{'https' if tls else 'http'}://{addr}/{path}"
    try:
        async with httpx.AsyncClient(timeout=10.0, verify=tls if tls else True, trust_env=False) as client:
            upstream = await client.get(url)
    except httpx.HTTPError as e:
        return _status(StatusError(503, f"failed to reach the node agent at {addr}: {e}", reason="ServiceUnavailable"))
    return Response(upstream.content, status_code=upstream.status_code,
                    media_type=upstream.headers.get("content-type", "text/plain"))


def _failure_frame(e: StatusError) -> bytes:
    st = {"metadata": {}, "status": "Failure", "message": e.message, "reason": e.reason, "code": e.code}
    return b"\x03" + json.dumps(st).encode()


async def pod_exec(websocket: WebSocket, *, namespace: str, name: str, get_object: GetObject,
                   tls: ssl.SSLContext | None = None, action: str = "exec") -> None:
    """WebSocket pods/NAME/exec (or, `action="attach"`, pods/NAME/attach: the same channels
    bound to the container's own stdin/terminal), relayed to the node agent."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    offered = list(websocket.scope.get("subprotocols") or []) + \
        [s.strip() for s in websocket.headers.get("sec-websocket-protocol", "").split(",") if s.strip()]
    if SUBPROTOCOL not in offered:
        await websocket.close(code=1002)  # before accept: the upgrade is refused (403)
        return
    await websocket.accept(subprotocol=SUBPROTOCOL)
    q = websocket.query_params
    try:
        pod = await get_object("pods", namespace, name)
        container = pick_container(pod, q.get("container"))
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            what = "exec into" if action == "exec" else "attach"
            raise StatusError(400, f"cannot {what} a container in a completed pod; current phase is "
                                   f"{pod['status']['phase']}")
        addr = await node_address(pod, get_object)
    except StatusError as e:
        await websocket.send_bytes(_failure_frame(e))
        await websocket.close()
        return
    query = urlencode([(k, v) for k, v in q.multi_items() if k in EXEC_PARAMS])
    url = f"{'wss' if tls else 'ws'}://{addr}/{action}/{namespace}/{name}/{container}?{query}"
    try:
        async with connect(url, subprotocols=[SUBPROTOCOL], max_size=None, open_timeout=10,
                           ping_interval=None, **({"ssl": tls} if tls else {})) as upstream:
            async def down() -> None:
                async for msg in upstream:
                    await websocket.send_bytes(msg if isinstance(msg, bytes) else msg.encode())

            async def up() -> None:
                while True:
                    msg = await websocket.receive()
                    if msg["type"] == "websocket.disconnect":
                        return
                    data = msg.get("bytes")
                    if data is None:
                        data = (msg.get("text") or "").encode()
                    await upstream.send(data)

            tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            for t in done:
                if t.exception() and not isinstance(t.exception(), (WebSocketDisconnect, WebSocketException)):
                    log.warning("exec relay: %s", t.exception())
    except (OSError, WebSocketException, asyncio.TimeoutError) as e:
        try:
            await websocket.send_bytes(_failure_frame(StatusError(500, f"failed to reach the node agent at {addr}: {e}")))
        except Exception:
            pass
    try:
        await websocket.close()
    except RuntimeError:
        pass
