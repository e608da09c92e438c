"""`pods/NAME/portforward`: kubectl's SPDY session, terminated here and relayed to the node agent.

Why the API server speaks SPDY instead of passing bytes through as kube-apiserver does: an
ASGI server can accept kubectl 1.31+'s WebSocket tunnel (KEP-4006: subprotocol
`SPDY/3.1+portforward.k8s.io`, SPDY/3.1 frames inside binary messages) but cannot hand a raw
upgraded socket to the node agent. So the session is decoded here (kubelab.client.spdy) and
each forwarded connection becomes one WebSocket to the node agent's `/portForward` (raw bytes,
see kubelab.nodeagent.portforward), which then needs no SPDY at all.

The protocol kubectl drives (portforward.k8s.io): per local connection it opens an *error*
stream and a *data* stream, both with headers `streamtype`, `port`, `requestid`; it waits for
a SYN_REPLY on each, closes its side of the error stream at once, copies the local socket to
the data stream and back, and ends when the data stream is closed by us, after reading the
error stream to its end (any text there is printed as "an error occurred forwarding ...").

Invariants and bounds (a hostile client cannot exhaust the server):
- at most MAX_STREAMS open streams per session; more are refused with RST_STREAM (REFUSED);
- a frame larger than spdy.MAX_FRAME or a header block over spdy.MAX_HEADER_BYTES ends the
  session (GOAWAY), as does any framing error;
- per request at most QUEUE_FRAMES client frames wait for the node agent (then the session
  stops reading: back-pressure, not memory);
- a request whose pair is not complete within PAIR_TIMEOUT is reset (upstream's 30 s);
- every request ends by closing its node-agent WebSocket, whose end closes the pod socket:
  a closed stream frees its sockets; the session's end cancels them all.
- every frame to the client is encoded and sent under one lock: header blocks share one
  zlib stream, so they must reach the client in the order they were compressed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from kubelab.client import spdy

from .status import StatusError

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
TUNNEL_SUBPROTOCOL = "SPDY/3.1+" + PROTOCOL
MAX_STREAMS = 64          # 32 forwarded connections at once per kubectl session
QUEUE_FRAMES = 64         # client → pod frames waiting per request (≤ 2 MiB with kubectl's 32 KiB frames)
PAIR_TIMEOUT = 30.0
EOF = b""                 # in a request's queue: the client closed its side of the data stream
GetObject = Callable[[str, str | None, str], Awaitable[dict]]


@dataclass
class PortRequest:
    """One forwarded connection: kubectl's error + data stream pair with one requestid."""

    request_id: str
    port: int
    error_sid: int = 0
    data_sid: int = 0
    to_pod: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAMES))
    task: asyncio.Task | None = None
    timer: asyncio.TimerHandle | None = None


async def check_pod(namespace: str, name: str, get_object: GetObject) -> dict:
    """The pod, if a port can be forwarded to it now (else a StatusError kubectl prints)."""
    from .nodeproxy import node_address
    pod = await get_object("pods", namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise StatusError(400, f"unable to forward port because pod is not running. Current status={phase}")
    await node_address(pod, get_object)
    return pod


async def spdy_upgrade_refused(request: Request, *, namespace: str, name: str, get_object: GetObject) -> Response:
    """A plain (non-WebSocket) request for pods/NAME/portforward: kubectl ≤ 1.30's raw SPDY
    upgrade, which an ASGI server cannot take over. Answered with a Status saying so (after the
    pod's own errors, which matter more)."""
    try:
        await check_pod(namespace, name, get_object)
        raise StatusError(400, "kubelab serves port-forward only through the WebSocket tunnel of kubectl 1.31+ "
                               f"(subprotocol {TUNNEL_SUBPROTOCOL}); raw SPDY upgrades are not supported")
    except StatusError as e:
        return JSONResponse(e.to_status(), status_code=e.code)


class Session:
    """One kubectl port-forward session over an accepted WebSocket."""

    def __init__(self, ws: WebSocket, *, upstream_url: Callable[[int], str], tls: ssl.SSLContext | None,
                 pod_name: str) -> None:
        self.ws = ws
        self.upstream_url = upstream_url
        self.tls = tls
        self.pod_name = pod_name
        self.decoder = spdy.Decoder()
        self.encoder = spdy.Encoder()
        self.send_lock = asyncio.Lock()
        self.requests: dict[str, PortRequest] = {}
        self.streams: dict[int, str] = {}     # open stream id -> request id
        self.last_sid = 0

    async def send(self, build: Callable[[spdy.Encoder], bytes]) -> None:
        async with self.send_lock:
            await self.ws.send_bytes(build(self.encoder))

    async def run(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                data = msg.get("bytes")
                if data is None:
                    continue   # text messages are not part of the tunnel
                try:
                    frames = self.decoder.feed(data)
                except spdy.ProtocolError as e:
                    log.info("port-forward to %s: %s", self.pod_name, e)
                    await self.send(lambda enc: enc.goaway(self.last_sid, spdy.PROTOCOL_ERROR))
                    return
                for f in frames:
                    if await self.handle(f) is False:
                        return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            await self.close()

    async def handle(self, f: spdy.Frame) -> bool:
        if isinstance(f, spdy.DataFrame):
            rid = self.streams.get(f.stream_id)
            req = self.requests.get(rid) if rid else None
            if req is not None and f.stream_id == req.data_sid:
                if f.data:
                    await req.to_pod.put(f.data)
                if f.fin:
                    await req.to_pod.put(EOF)
            return True   # the error stream's FIN, or data for a stream already ended: nothing to do
        t = f.type
        if t == spdy.SYN_STREAM:
            await self.syn_stream(f)
        elif t == spdy.RST_STREAM:
            rid = self.streams.get(f.stream_id)
            if rid and rid in self.requests:
                self.end_request(self.requests[rid])
        elif t == spdy.PING:
            await self.send(lambda enc: enc.ping(f.value))
        elif t == spdy.GOAWAY:
            return False
        return True    # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to act on

    async def syn_stream(self, f: spdy.ControlFrame) -> None:
        sid, h = f.stream_id, f.headers
        self.last_sid = max(self.last_sid, sid)
        if sid in self.streams or sid % 2 == 0:
            await self.send(lambda enc: enc.rst_stream(sid, spdy.PROTOCOL_ERROR))
            return
        kind, rid, port_s = h.get("streamtype"), h.get("requestid"), h.get("port", "")
        if kind not in ("error", "data") or not rid or not port_s.isdigit() or not 0 < int(port_s) < 65536:
            await self.send(lambda enc: enc.rst_stream(sid, spdy.PROTOCOL_ERROR))
            return
        if len(self.streams) >= MAX_STREAMS:
            log.info("port-forward to %s: stream %d refused (%d streams open)", self.pod_name, sid, MAX_STREAMS)
            await self.send(lambda enc: enc.rst_stream(sid, spdy.REFUSED_STREAM))
            return
        req = self.requests.get(rid)
        if req is None:
            req = self.requests[rid] = PortRequest(rid, int(port_s))
            req.timer = asyncio.get_running_loop().call_later(PAIR_TIMEOUT, self._pair_timeout, rid)
        if req.port != int(port_s) or getattr(req, f"{kind}_sid") or req.task is not None:
            await self.send(lambda enc: enc.rst_stream(sid, spdy.PROTOCOL_ERROR))
            return
        setattr(req, f"{kind}_sid", sid)
        self.streams[sid] = rid
        await self.send(lambda enc: enc.syn_reply(sid))
        if req.error_sid and req.data_sid:
            if req.timer:
                req.timer.cancel()
            req.task = asyncio.create_task(self.forward(req), name=f"portforward {self.pod_name}:{req.port}")

    def _pair_timeout(self, rid: str) -> None:
        req = self.requests.get(rid)
        if req is not None and req.task is None:
            self.end_request(req)
            for sid in (req.error_sid, req.data_sid):
                if sid:
                    asyncio.ensure_future(self._quiet(lambda enc, s=sid: enc.rst_stream(s, spdy.CANCEL)))

    async def _quiet(self, build: Callable[[spdy.Encoder], bytes]) -> None:
        try:
            await self.send(build)
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass

    def end_request(self, req: PortRequest) -> None:
        """Forget the request; its forwarder (if any) is cancelled and closes its sockets."""
        self.requests.pop(req.request_id, None)
        for sid in (req.error_sid, req.data_sid):
            self.streams.pop(sid, None)
        if req.timer:
            req.timer.cancel()
        if req.task is not None and req.task is not asyncio.current_task():
            req.task.cancel()

    async def forward(self, req: PortRequest) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, WebSocketException

        error = ""
        try:
            async with connect(self.upstream_url(req.port), max_size=1 << 20, open_timeout=10, ping_interval=None,
                               **({"ssl": self.tls} if self.tls else {})) as up:
                first = await asyncio.wait_for(up.recv(), 15)
                if isinstance(first, str) and first:
                    error = first
                else:
                    async def to_pod() -> None:
                        while True:
                            data = await req.to_pod.get()
                            await up.send(data)   # EOF (b"") tells the agent to shut down writing
                            if data == EOF:
                                await asyncio.Event().wait()

                    async def to_client() -> None:
                        async for msg in up:
                            if isinstance(msg, bytes) and msg:
                                await self.send(lambda enc, m=msg: enc.data(req.data_sid, m))

                    tasks = [asyncio.create_task(to_pod()), asyncio.create_task(to_client())]
                    try:
                        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for t in tasks:
                            t.cancel()
                        await asyncio.gather(*tasks, return_exceptions=True)
                    for t in done:
                        if t.exception() and not isinstance(t.exception(), ConnectionClosed):
                            raise t.exception()
        except asyncio.CancelledError:
            raise
        except (OSError, WebSocketException, asyncio.TimeoutError) as e:
            error = f"error forwarding port {req.port} to pod {self.pod_name}: failed to reach the node agent: {e}"
        try:
            await self.send(lambda enc: enc.data(req.data_sid, fin=True))
            await self.send(lambda enc: (enc.data(req.error_sid, error.encode()) if error else b"")
                            + enc.data(req.error_sid, fin=True))
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass
        finally:
            self.end_request(req)

    async def close(self) -> None:
        tasks = [r.task for r in self.requests.values() if r.task is not None]
        for r in list(self.requests.values()):
            self.end_request(r)
        await asyncio.gather(*tasks, return_exceptions=True)


async def pod_portforward(websocket: WebSocket, *, namespace: str, name: str, get_object: GetObject,
                          tls: ssl.SSLContext | None = None) -> None:
    """WebSocket pods/NAME/portforward (kubectl 1.31+). Refused before the upgrade (HTTP 403)
    when the tunnel subprotocol is not offered or the pod cannot be forwarded to: kubectl then
    falls back to a plain request, which `spdy_upgrade_refused` answers with the Status."""
    from .nodeproxy import node_address
    offered = list(websocket.scope.get("subprotocols") or []) + \
        [s.strip() for s in websocket.headers.get("sec-websocket-protocol", "").split(",") if s.strip()]
    try:
        if TUNNEL_SUBPROTOCOL not in offered:
            raise StatusError(400, f"port-forward needs the WebSocket subprotocol {TUNNEL_SUBPROTOCOL}")
        pod = await check_pod(namespace, name, get_object)
        addr = await node_address(pod, get_object)
    except StatusError as e:
        log.info("port-forward to %s/%s refused: %s", namespace, name, e.message)
        await websocket.close(code=1008)
        return
    await websocket.accept(subprotocol=TUNNEL_SUBPROTOCOL)
    scheme = "wss" if tls else "ws"
    session = Session(websocket, tls=tls, pod_name=f"{namespace}/{name}",
                      upstream_url=lambda port: f"{scheme}://{addr}/portForward/{namespace}/{name}?port={port}")
    await session.run()
    try:
        await websocket.close()
    except RuntimeError:
        pass
