"""The node agent's HTTP API (port 10250), which the API server proxies for `pods/log` and
`pods/exec`, as it does to the kubelet:

  GET /healthz
  GET /metrics                                           kubelet_running_pods, ... (kubelab.nodeagent.metrics)
  GET /pods                                              the pods this node runs
  GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=&previous=&limitBytes=
  WS  /exec/{ns}/{pod}/{container}?command=..&command=..&stdin=&stdout=&stderr=&tty=
      subprotocol v5.channel.k8s.io: frames start with a channel byte (0 stdin, 1 stdout,
      2 stderr, 3 status, 4 resize, 255 close), exactly what kubectl speaks, so the API
      server relays frames unchanged.
  GET /stats/usage                                       node and container CPU/memory (kubelab.nodeagent.usage)
  WS  /attach/{ns}/{pod}/{container}?stdin=&stdout=&stderr=&tty=
      the same channels, bound to the container's own stdin/terminal (kubelab.nodeagent.stdio)
      or, without one, to its log from now on
  WS  /portForward/{ns}/{pod}?port=N                     one TCP connection to localhost:N in the
      pod's netns (kubelab.nodeagent.portforward); the API server terminates kubectl's SPDY
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pty
import struct
import termios
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from kubelab.serving import metrics_route

from . import containers as ctr
from . import portforward as pf
from . import usage
from .metrics import registry_for

if TYPE_CHECKING:
    from .agent import NodeAgent, PodWorker

log = logging.getLogger(__name__)

SUBPROTOCOL = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(code: int) -> dict:
    """The channel-3 Status kubectl turns into its own exit code."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_status(message: str, code: int = 500) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": code}


def tail_lines(data: bytes, n: int | None) -> bytes:
    """The last `n` lines of `data` (all when n is None)."""
    if n is None:
        return data
    if n <= 0:
        return b""
    return b"".join(data.splitlines(keepends=True)[-n:])


CHUNK = 65536


def tail_offset(f, n: int | None, *, chunk: int = CHUNK) -> int:
    """The offset where the last `n` lines of the open file `f` begin, found by reading
    backwards a chunk at a time: memory stays O(chunk) however large the file is."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    if n is None:
        return 0
    if n <= 0:
        return end
    pos, newlines = end, 0
    # a final newline ends the last line; it does not start another one
    if end:
        f.seek(end - 1)
        if f.read(1) == b"\n":
            pos = end - 1
    while pos > 0:
        step = min(chunk, pos)
        f.seek(pos - step)
        block = f.read(step)
        i = len(block)
        while True:
            i = block.rfind(b"\n", 0, i)
            if i < 0:
                break
            newlines += 1
            if newlines == n:
                return pos - step + i + 1
        pos -= step
    return 0


async def follow_file(path: str, *, tail: int | None, follow: bool, limit: int | None,
                      running: Callable[[], bool], poll: float = 0.1) -> AsyncIterator[bytes]:
    """A log file's last `tail` lines, then (follow) what gets appended until the container
    stops; read and sent a chunk at a time (never the whole file in memory). A file
    truncated under us (rotated by copy-and-truncate) is read again from its start."""
    sent = 0
    with open(path, "rb") as f:
        f.seek(tail_offset(f, tail))
        while limit is None or sent < limit:
            chunk = f.read(CHUNK if limit is None else min(CHUNK, limit - sent))
            if chunk:
                sent += len(chunk)
                yield chunk
                continue
            if not follow:
                return
            if os.fstat(f.fileno()).st_size < f.tell():
                f.seek(0)   # rotated: the writer goes on at the start of the emptied file
                continue
            if not running():
                rest = f.read(CHUNK if limit is None else limit - sent)
                while rest:
                    sent += len(rest)
                    yield rest
                    if limit is not None and sent >= limit:
                        return
                    rest = f.read(CHUNK if limit is None else limit - sent)
                return
            await asyncio.sleep(poll)


def _flag(v: str | None) -> bool:
    return (v or "").lower() in ("1", "true", "yes")


def create_app(agent: "NodeAgent") -> Starlette:
    def lookup(ns: str, pod: str, container: str) -> tuple["PodWorker", ctr.Container]:
        w = agent.find(ns, pod)
        if w is None:
            raise LookupError(f'pod "{pod}" not found on node {agent.cfg.node_name}')
        c = w.containers.get(container)
        if c is None or not w.container_spec(container):
            names = " ".join(cs["name"] for cs in w.spec_containers)
            raise LookupError(f'container {container} is not valid for pod {pod} (containers: {names})')
        return w, c

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def pods(request: Request) -> Response:
        items = [w.pod for w in agent.workers.values() if not w.done]
        return JSONResponse({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def logs(request: Request) -> Response:
        p = request.path_params
        q = request.query_params
        try:
            w, c = lookup(p["namespace"], p["pod"], p["container"])
        except LookupError as e:
            return PlainTextResponse(str(e), status_code=404)
        previous = _flag(q.get("previous"))
        tail = int(q["tailLines"]) if (q.get("tailLines") or "").lstrip("-").isdigit() else None
        limit = int(q["limitBytes"]) if (q.get("limitBytes") or "").isdigit() else None
        if previous:
            if c.restart_count == 0:
                return PlainTextResponse(f'previous terminated container "{c.name}" in pod "{p["pod"]}" not found',
                                         status_code=400)
            path = ctr.log_path(w.dir, c.name, c.restart_count - 1)
            follow = False
        else:
            path = ctr.log_path(w.dir, c.name, c.restart_count)
            follow = _flag(q.get("follow"))
        if not os.path.exists(path):
            if c.state == "waiting":
                return PlainTextResponse(f'container "{c.name}" in pod "{p["pod"]}" is waiting to start: {c.reason}',
                                         status_code=400)
            return PlainTextResponse(f'log of container "{c.name}" not found', status_code=404)
        attempt = c.restart_count
        running = lambda: c.running and c.restart_count == attempt and not w.done  # noqa: E731
        return StreamingResponse(follow_file(path, tail=tail, follow=follow, limit=limit, running=running),
                                 media_type="text/plain; charset=utf-8")

    async def exec_ws(ws: WebSocket) -> None:
        offered = [s.strip() for s in ws.headers.get("sec-websocket-protocol", "").split(",") if s.strip()]
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        p = ws.path_params
        q = ws.query_params
        command = q.getlist("command")
        try:
            if not command:
                raise LookupError("you must specify at least one command for the container")
            w, c = lookup(p["namespace"], p["pod"], p["container"])
            tty = _flag(q.get("tty"))
            # with a terminal, the session and its controlling tty must belong to the
            # container's PID namespace (a shell sets its foreground process group there)
            argv = ctr.exec_argv(c, ["setsid", "-w", "-c", *command] if tty else command)
        except (LookupError, RuntimeError) as e:
            await ws.send_bytes(bytes([STATUS]) + json.dumps(error_status(str(e))).encode())
            await ws.close()
            return
        await run_exec(ws, argv, env=c.env, tty=tty, want_stdin=_flag(q.get("stdin")))

    async def attach_ws(ws: WebSocket) -> None:
        offered = [s.strip() for s in ws.headers.get("sec-websocket-protocol", "").split(",") if s.strip()]
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        p, q = ws.path_params, ws.query_params
        try:
            w, c = lookup(p["namespace"], p["pod"], p["container"])
            if not c.running:
                raise LookupError(f"container {c.name} is not running")
        except LookupError as e:
            with contextlib.suppress(RuntimeError, OSError):
                await ws.send_bytes(bytes([STATUS]) + json.dumps(error_status(str(e), 400)).encode())
                await ws.close()
            return
        await run_attach(ws, w.stdio.get(c.name), log=ctr.log_path(w.dir, c.name, c.restart_count),
                         running=lambda a=c.restart_count: c.running and c.restart_count == a and not w.done,
                         want_stdin=_flag(q.get("stdin")))

    sampler = usage.Sampler()
    usage_lock = threading.Lock()   # one reading at a time: the sampler's previous values are shared

    def read_usage() -> dict:
        """CPU (cores) and memory (bytes) of the node and of each running container."""
        trees: dict[str, tuple[dict, str, list[int]]] = {}
        for w in list(agent.workers.values()):
            if w.done:
                continue
            for c in list(w.containers.values()):
                if c.running:
                    trees[f"{w.uid}/{c.name}"] = (w.pod, c.name, usage.tree(c.wrapper_pid))
        readings = {"node": usage.node_cpu_seconds()} | {k: usage.cpu_seconds(t[2]) for k, t in trees.items()}
        rates = {k: sampler.rate(k, v) for k, v in readings.items()}
        if any(r is None for r in rates.values()):
            time.sleep(usage.FIRST_WINDOW)   # a first reading: a second one makes the rate
            readings = {"node": usage.node_cpu_seconds()} | {k: usage.cpu_seconds(t[2]) for k, t in trees.items()}
            rates = {k: sampler.rate(k, v) or 0.0 for k, v in readings.items()}
        sampler.forget_except(set(readings))
        pods: dict[str, dict] = {}
        for k, (pod, name, pids) in trees.items():
            m = pod["metadata"]
            p = pods.setdefault(m["uid"], {"namespace": m.get("namespace", "default"), "name": m["name"],
                                           "containers": []})
            p["containers"].append({"name": name, "cpu": rates[k], "memory": usage.memory_bytes(pids)})
        return {"node": {"cpu": rates["node"], "memory": usage.node_memory_bytes()},
                "timestamp": time.time(), "pods": list(pods.values())}

    async def stats_usage(request: Request) -> Response:
        def locked() -> dict:
            with usage_lock:
                return read_usage()
        return JSONResponse(await asyncio.to_thread(locked))

    async def portforward_ws(ws: WebSocket) -> None:
        await ws.accept()
        p = ws.path_params
        try:
            port = pf.parse_port(ws.query_params.get("port"))
            w = agent.find(p["namespace"], p["pod"])
            if w is None:
                raise LookupError(f'pod "{p["pod"]}" not found on node {agent.cfg.node_name}')
            sb = w.sandbox
            if sb is None or not sb.alive():
                raise LookupError(f'pod "{p["pod"]}" has no running sandbox')
            sock = await asyncio.to_thread(pf.connect_in_netns, sb.netns, port)
        except (LookupError, ValueError, OSError) as e:
            with contextlib.suppress(RuntimeError, OSError):
                await ws.send_text(f"error forwarding port {ws.query_params.get('port')} to pod "
                                   f"{p['namespace']}/{p['pod']}: {e}")
                await ws.close()
            return
        try:
            await ws.send_text("")
            await pf.relay(ws, sock)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            sock.close()
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close()

    return Starlette(routes=[
        Route("/healthz", healthz), Route("/pods", pods), Route("/stats/usage", stats_usage), metrics_route(registry_for(agent)),
        Route("/containerLogs/{namespace}/{pod}/{container}", logs),
        WebSocketRoute("/exec/{namespace}/{pod}/{container}", exec_ws),
        WebSocketRoute("/portForward/{namespace}/{pod}", portforward_ws),
        WebSocketRoute("/attach/{namespace}/{pod}/{container}", attach_ws),
    ])


async def run_exec(ws: WebSocket, argv: list[str], *, env: dict[str, str], tty: bool, want_stdin: bool) -> None:
    """Run `argv` and bridge it to the v5 channel protocol until it exits."""
    loop = asyncio.get_running_loop()
    master = -1
    if tty:
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                                    start_new_session=True)
        os.close(slave)
    else:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    out_q: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def pump(stream, channel: int) -> None:
        while True:
            data = await stream.read(65536)
            if not data:
                return
            await ws.send_bytes(bytes([channel]) + data)

    async def pump_pty() -> None:
        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(master)
            out_q.put_nowait(data or None)
        loop.add_reader(master, readable)
        while True:
            data = await out_q.get()
            if data is None:
                return
            await ws.send_bytes(bytes([STDOUT]) + data)

    async def from_client() -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                data = msg.get("bytes") or (msg.get("text") or "").encode()
                if not data:
                    continue
                ch, payload = data[0], data[1:]
                if ch == STDIN and payload:
                    if tty:
                        os.write(master, payload)
                    elif proc.stdin is not None:
                        proc.stdin.write(payload)
                        await proc.stdin.drain()
                elif ch == RESIZE and tty:
                    try:
                        size = json.loads(payload)
                        fcntl.ioctl(master, termios.TIOCSWINSZ,
                                    struct.pack("HHHH", int(size.get("Height", 24)), int(size.get("Width", 80)), 0, 0))
                    except (ValueError, OSError):
                        pass
                elif ch == CLOSE and payload[:1] == bytes([STDIN]):
                    if tty:
                        os.write(master, b"\x04")
                    elif proc.stdin is not None:
                        proc.stdin.close()
        except (WebSocketDisconnect, RuntimeError, OSError, BrokenPipeError, ConnectionResetError):
            pass
        # the client went away: do not leave the command running
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass

    reader = asyncio.create_task(from_client())
    try:
        if tty:
            pumps = [asyncio.create_task(pump_pty())]
        else:
            pumps = [asyncio.create_task(pump(proc.stdout, STDOUT)), asyncio.create_task(pump(proc.stderr, STDERR))]
        code = await proc.wait()
        if tty:
            # drain what is left in the pty, without waiting for a reader that may never end
            await asyncio.wait(pumps, timeout=0.5)
        else:
            await asyncio.gather(*pumps, return_exceptions=True)
        try:
            await ws.send_bytes(bytes([STATUS]) + json.dumps(exit_status(code)).encode())
            await ws.close()
        except (RuntimeError, OSError):
            pass
    finally:
        reader.cancel()
        for t in pumps if 'pumps' in locals() else []:
            t.cancel()
        if master >= 0:
            try:
                loop.remove_reader(master)
            except Exception:
                pass
            os.close(master)


async def run_attach(ws: WebSocket, io, *, log: str, running: Callable[[], bool], want_stdin: bool) -> None:
    """Bridge an attach session (v5 channels) to a running container until it exits or the
    client leaves: its terminal output (or its log from now on), and stdin/resize to it."""
    queue = io.subscribe() if io is not None and io.tty else None

    async def output() -> None:
        if queue is not None:
            while (data := await queue.get()) is not None:
                await ws.send_bytes(bytes([STDOUT]) + data)
            return
        async for chunk in follow_file(log, tail=0, follow=True, limit=None, running=running):
            await ws.send_bytes(bytes([STDOUT]) + chunk)

    async def from_client() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                data = msg.get("bytes") or (msg.get("text") or "").encode()
                if not data or io is None:
                    continue
                ch, payload = data[0], data[1:]
                if ch == STDIN and payload and want_stdin:
                    io.write(payload)
                elif ch == RESIZE:
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        size = json.loads(payload)
                        io.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
                elif ch == CLOSE and payload[:1] == bytes([STDIN]) and io.stdin_once:
                    io.eof()
        # the client went away: the container goes on (stdinOnce: its stdin is closed for good)

    out = asyncio.create_task(output())
    client = asyncio.create_task(from_client())
    try:
        done, _ = await asyncio.wait([out, client], return_when=asyncio.FIRST_COMPLETED)
        if out in done:
            with contextlib.suppress(RuntimeError, OSError):
                await ws.send_bytes(bytes([STATUS]) + json.dumps(exit_status(0)).encode())
                await ws.close()
    finally:
        for t in (out, client):
            t.cancel()
        await asyncio.gather(out, client, return_exceptions=True)
        if queue is not None:
            io.unsubscribe(queue)
        if io is not None and io.stdin_once and want_stdin:
            io.eof()


async def serve(agent: "NodeAgent") -> None:
    import uvicorn
    app, extra = create_app(agent), {}
    serving_tls = getattr(agent.cfg, "tls", None)  # tls.ServingTLS: HTTPS, only the API server calls
    if serving_tls is not None:
        from . import tls
        app, extra = tls.RequireApiServer(app), tls.uvicorn_options(serving_tls)
    config = uvicorn.Config(app, host=agent.cfg.address, port=agent.cfg.port, log_level="warning",
                            lifespan="off", ws="websockets-sansio", **extra)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # the agent owns SIGTERM
    agent.server = server
    await server.serve()
