"""Port forwarding into a pod: one TCP connection to `localhost:PORT` inside the pod's network
namespace, relayed over one WebSocket (`WS /portForward/{ns}/{pod}?port=N`).

Why this shape: the API server terminates kubectl's SPDY session (kubelab.apiserver.portforward)
and opens one WebSocket here per forwarded connection, so the node agent needs no SPDY at all
and a closed connection frees exactly one socket and one WebSocket.

The connection is made like the kubelet's: to localhost in the pod's netns (127.0.0.1, then
::1), so a server listening only on the pod's loopback is reachable too. The socket is created
on a worker thread that has entered the netns with setns(2) (the netns is per-thread); a
socket stays in the namespace it was created in, so the event loop then drives it as usual.

Wire (agent → API server): first one text message, "" when connected or the error message;
then binary messages carry the pod's bytes; the WebSocket closes when the pod side closes.
(API server → agent): binary messages carry the client's bytes; an empty binary message means
the client will send no more (the pod socket is shut down for writing).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

from starlette.websockets import WebSocket, WebSocketDisconnect

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 5.0
CHUNK = 32 << 10
_libc = ctypes.CDLL(None, use_errno=True)


def _connect_here(port: int, timeout: float) -> socket.socket:
    errors = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError as e:
            s.close()
            errors.append(f"{host}: {e.strerror or e}")
            continue
        s.setblocking(False)
        return s
    raise OSError(f"failed to connect to localhost:{port} inside the pod's network namespace ({'; '.join(errors)})")


def connect_in_netns(netns: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connected socket to localhost:port in `netns` ("" = the node's own, hostNetwork pods).
    Blocking: call it from a thread (asyncio.to_thread); it starts its own thread for setns so
    the caller's namespace never changes."""
    if not netns:
        return _connect_here(port, timeout)
    out: dict = {}

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"cannot enter the pod's network namespace: {os.strerror(err)}")
            finally:
                os.close(fd)
            out["sock"] = _connect_here(port, timeout)
        except OSError as e:
            out["error"] = e
    # a fresh thread that ends right after: its namespace change dies with it
    t = threading.Thread(target=run, name=f"portforward {port}", daemon=True)
    t.start()
    t.join(timeout * 2 + 5)
    if "error" in out:
        raise out["error"]
    if "sock" not in out:
        raise OSError(f"timed out connecting to localhost:{port} inside the pod's network namespace")
    return out["sock"]


def parse_port(value: str | None) -> int:
    if not value or not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"invalid port {value!r}: must be an integer between 1 and 65535")
    return int(value)


async def relay(ws: WebSocket, sock: socket.socket) -> None:
    """Bytes both ways until either side is done; the socket is closed on return."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(sock=sock)

    async def down() -> None:  # pod → client
        while data := await reader.read(CHUNK):
            await ws.send_bytes(data)

    async def up() -> None:  # client → pod
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                raise WebSocketDisconnect()
            data = msg.get("bytes")
            if data is None:
                continue
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                await asyncio.Event().wait()  # half-closed: only down() can finish now
            writer.write(data)
            await writer.drain()

    tasks = [loop.create_task(down()), loop.create_task(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
