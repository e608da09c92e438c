"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket) with the kubelet's
timings: initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold,
failureThreshold. The agent runs in the node's network namespace, so it reaches the pod IP
directly, as the kubelet does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
            "failureThreshold": 3}


@dataclass
class Timing:
    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, probe: dict) -> "Timing":
        g = {k: probe.get(k) or v for k, v in DEFAULTS.items()}
        return cls(float(g["initialDelaySeconds"]), float(g["periodSeconds"]), float(g["timeoutSeconds"]),
                   int(g["successThreshold"]), int(g["failureThreshold"]))


def resolve_port(port, container: dict) -> int:
    """An int port, or a named container port."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} is not a number nor a named port of container {container.get('name')}")


async def http_get(host: str, port: int, path: str, headers: list[dict], timeout: float) -> tuple[bool, str]:
    async def go() -> tuple[bool, str]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            hdrs = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*",
                    "Connection": "close"}
            for h in headers:
                hdrs[h.get("name", "")] = h.get("value", "")
            req = f"GET {path or '/'} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
            writer.write(req.encode())
            await writer.drain()
            line = await reader.readline()
            parts = line.decode(errors="replace").split()
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}" if not 200 <= code < 400 else ""
        finally:
            writer.close()
    try:
        return await asyncio.wait_for(go(), timeout)
    except asyncio.TimeoutError:
        return False, f'Get "http://{host}:{port}{path}": context deadline exceeded'
    except OSError as e:
        return False, f'Get "http://{host}:{port}{path}": {e.strerror or e}'


async def tcp_socket(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
        return True, ""
    except asyncio.TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as e:
        return False, f"dial tcp {host}:{port}: {e.strerror or e}"


async def run_exec(argv: list[str], env: dict[str, str], timeout: float) -> tuple[bool, str]:
    try:
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
    except OSError as e:
        return False, str(e)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return False, f"command timed out after {timeout:g}s"
    return proc.returncode == 0, out.decode(errors="replace")[-1000:]


async def probe_once(probe: dict, *, container: dict, pod_ip: str | None,
                     exec_argv: Callable[[list[str]], list[str]], env: dict[str, str]) -> tuple[bool, str]:
    """One probe attempt → (success, message)."""
    t = Timing.of(probe)
    try:
        if "exec" in probe:
            return await run_exec(exec_argv(list(probe["exec"].get("command") or [])), env, t.timeout)
        if "httpGet" in probe:
            h = probe["httpGet"]
            return await http_get(h.get("host") or pod_ip or "127.0.0.1", resolve_port(h.get("port"), container),
                                  h.get("path") or "/", h.get("httpHeaders") or [], t.timeout)
        if "tcpSocket" in probe:
            s = probe["tcpSocket"]
            return await tcp_socket(s.get("host") or pod_ip or "127.0.0.1", resolve_port(s.get("port"), container),
                                    t.timeout)
        if "grpc" in probe:
            return await tcp_socket(pod_ip or "127.0.0.1", int(probe["grpc"].get("port")), t.timeout)
    except (ValueError, RuntimeError) as e:
        return False, str(e)
    return False, "probe has no handler (exec, httpGet, tcpSocket)"


class ProbeWorker:
    """Runs one probe of one container attempt; calls `on_change(kind, ok, message)` when the
    thresholded result flips (and once for the first decisive result)."""

    def __init__(self, kind: str, probe: dict, *, attempt: Callable[[], Awaitable[tuple[bool, str]]],
                 on_change: Callable[[str, bool, str], None],
                 gate: Callable[[], bool] = lambda: True) -> None:
        self.kind = kind
        self.timing = Timing.of(probe)
        self.attempt = attempt
        self.on_change = on_change
        self.gate = gate
        self.result: bool | None = None
        self.successes = self.failures = 0

    def feed(self, ok: bool, message: str) -> None:
        """Threshold logic (pure apart from the callback)."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            threshold = 1 if self.kind in ("liveness", "startup") else self.timing.success_threshold
            if self.successes >= threshold and self.result is not True:
                self.result = True
                self.on_change(self.kind, True, message)
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= self.timing.failure_threshold and self.result is not False:
                self.result = False
                self.on_change(self.kind, False, message)
                if self.kind in ("liveness", "startup"):
                    self.failures = 0

    async def run(self) -> None:
        await asyncio.sleep(self.timing.initial_delay)
        while True:
            if self.gate():
                try:
                    ok, msg = await self.attempt()
                except Exception as e:  # a probe must never kill the agent
                    log.warning("%s probe crashed: %s", self.kind, e)
                    ok, msg = False, str(e)
                self.feed(ok, msg)
            await asyncio.sleep(self.timing.period)
