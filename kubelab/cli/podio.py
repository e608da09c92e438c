"""`kubelab exec POD -- CMD` and pod logs: what `kubectl exec` and `kubectl logs` do, through
the API server, which relays to the node agent of the pod's node (port 10250)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import termios
import tty as ttymod

from kubelab.client.podio import STDERR, exec_stream, exit_code_of, pod_log

from .context import CliError, Context


def register(sub) -> None:
    p = sub.add_parser("exec", help="run a command in a pod's container",
                       description="Run a command in a container: kubelab exec POD [-c C] [-it] -- CMD [ARG...]")
    p.add_argument("pod", metavar="POD", help="pod name (or pod/NAME)")
    p.add_argument("-c", "--container", default=None, help="container (default: the pod's only one)")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    p.set_defaults(func=run_exec)


def _pod_name(arg: str) -> str:
    kind, sep, name = arg.partition("/")
    if sep and kind not in ("pod", "pods", "po"):
        raise CliError(f"cannot exec into {kind}: only pods")
    return name if sep else arg


async def _stdin_chunks():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        data = await reader.read(4096)
        if not data:
            return
        yield data


async def run_exec(ctx: Context) -> int:
    a = ctx.args
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        raise CliError("you must specify at least one command for the container")
    use_tty = a.tty and sys.stdin.isatty()
    saved = termios.tcgetattr(sys.stdin.fileno()) if use_tty else None

    def show(channel: int, data: bytes) -> None:
        out = sys.stderr if channel == STDERR else sys.stdout
        out.buffer.write(data)
        out.flush()

    try:
        if saved is not None:
            ttymod.setraw(sys.stdin.fileno())
        status = await exec_stream(ctx.client, _pod_name(a.pod), command, namespace=ctx.namespace,
                                   container=a.container, stdin=_stdin_chunks() if a.stdin else None,
                                   tty=use_tty, on_output=show)
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    code = exit_code_of(status)
    if code and not use_tty:
        sys.stderr.write(f"command terminated with exit code {code}\n")
    return code


async def run_pod_logs(ctx: Context, pod: str, *, container: str | None, follow: bool, tail: int | None,
                       previous: bool) -> int:
    async for chunk in pod_log(ctx.client, _pod_name(pod), namespace=ctx.namespace, container=container,
                               follow=follow, tail_lines=tail, previous=previous):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    return 0



