"""Pod logs and exec through the API server, as kubectl does them.

Logs are a plain-text stream (`pods/NAME/log`). Exec is a WebSocket with subprotocol
`v5.channel.k8s.io`: every frame starts with a channel byte (0 stdin, 1 stdout, 2 stderr,
3 status, 4 resize, 255 close); the status frame carries a Status whose `NonZeroExitCode`
cause holds the exit code.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from .errors import error_for
from .rest import ApiClient

SUBPROTOCOL = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


async def pod_log(client: ApiClient, name: str, *, namespace: str, container: str | None = None,
                  follow: bool = False, tail_lines: int | None = None, previous: bool = False) -> AsyncIterator[str]:
    """The container's log, chunk by chunk (until the container stops, with `follow`)."""
    params = {"container": container, "follow": "true" if follow else None,
              "tailLines": tail_lines, "previous": "true" if previous else None}
    params = {k: v for k, v in params.items() if v is not None}
    path = client.path("pods", name, namespace=namespace, subresource="log")
    async with client._http.stream("GET", path, params=params, headers={"Accept": "*/*"},
                                   timeout=httpx.Timeout(30.0, read=None)) as resp:
        if resp.status_code >= 400:
            body = await resp.aread()
            try:
                status = json.loads(body)
            except ValueError:
                status = {"message": body.decode(errors="replace")[:300]}
            raise error_for(status if isinstance(status, dict) else {}, resp.status_code)
        async for chunk in resp.aiter_text():
            yield chunk


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    status: dict


def exit_code_of(status: dict) -> int:
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1))
    return 1


def _ssl_context(client: ApiClient) -> ssl.SSLContext | None:
    conn = client.connection
    if not conn.server.startswith("https"):
        return None
    from .kubeconfig import ssl_context
    return ssl_context(conn)


async def exec_stream(client: ApiClient, name: str, command: list[str], *, namespace: str,
                      container: str | None = None, stdin: AsyncIterator[bytes] | None = None, tty: bool = False,
                      on_output: Callable[[int, bytes], None]) -> dict:
    """Run `command` in the pod; output frames go to `on_output(channel, data)`. Returns the
    final Status (use `exit_code_of`)."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    query = [("command", c) for c in command]
    if container:
        query.append(("container", container))
    query += [("stdout", "true"), ("stderr", "false" if tty else "true")]
    if stdin is not None:
        query.append(("stdin", "true"))
    if tty:
        query.append(("tty", "true"))
    base = client.connection.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    url = f"{base}{client.path('pods', name, namespace=namespace, subresource='exec')}?{urlencode(query)}"
    token = client.bearer_token()  # re-read when it comes from a rotated token file
    headers = {"Authorization": f"Bearer {token}"} if token else None
    status: dict = {"status": "Success"}
    try:
        async with connect(url, subprotocols=[SUBPROTOCOL], additional_headers=headers, ssl=_ssl_context(client),
                           max_size=None, ping_interval=None, open_timeout=15) as ws:
            async def pump_stdin() -> None:
                async for data in stdin:  # type: ignore[union-attr]
                    await ws.send(bytes([STDIN]) + data)
                await ws.send(bytes([CLOSE, STDIN]))

            feeder = asyncio.create_task(pump_stdin()) if stdin is not None else None
            try:
                async for msg in ws:
                    if isinstance(msg, str):
                        msg = msg.encode()
                    if not msg:
                        continue
                    channel, data = msg[0], msg[1:]
                    if channel == STATUS:
                        status = json.loads(data or b"{}")
                    elif channel in (STDOUT, STDERR):
                        on_output(channel, data)
            except ConnectionClosed:
                pass
            finally:
                if feeder:
                    feeder.cancel()
    except InvalidStatus as e:
        body = e.response.body or b"{}"
        try:
            st = json.loads(body)
        except ValueError:
            st = {"message": body.decode(errors="replace")}
        raise error_for(st, e.response.status_code) from None
    if status.get("status") == "Failure" and status.get("reason") != "NonZeroExitCode":
        raise error_for(status, int(status.get("code") or 500))
    return status


async def exec_command(client: ApiClient, name: str, command: list[str], *, namespace: str,
                       container: str | None = None, stdin: bytes | None = None) -> ExecResult:
    """Run `command` to completion and collect its output (tests, `kubelab trace`)."""
    out, err = bytearray(), bytearray()

    async def feed() -> AsyncIterator[bytes]:
        if stdin:
            yield stdin

    def collect(channel: int, data: bytes) -> None:
        (out if channel == STDOUT else err).extend(data)

    status = await exec_stream(client, name, command, namespace=namespace, container=container,
                               stdin=feed() if stdin is not None else None, on_output=collect)
    return ExecResult(exit_code_of(status), bytes(out), bytes(err), status)
