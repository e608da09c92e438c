"""`kubelab ui` on a real lab: the UiContext's functions bound to a lab plan, and the server.

Everything that touches the host is here: `ip`/`nft`/`iptables-save` inside the node
namespaces (argv lists; the namespace names come from the lab plan, never from a query), the
trace capture (kubelab.lab.trace), the timeline sources (kubelab.lab.timeline).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import sys
import time

from kubelab.lab import components, topology
from kubelab.lab.lab import LabError, load_plan
from kubelab.lab.topology import LabPlan

from . import graphviz, view
from .hub import Hub, ReadOnlyApi
from .server import UiContext, create_app, format_routes, running_as_root

ROUTES_TTL = 3.0
DEFAULT_PORT = 8001
DEFAULT_ADDRESS = "127.0.0.1"


def _run(cmd: list[str]) -> str:
    p = topology.run(cmd, check=False, timeout=15)
    return p.stdout if p.returncode == 0 else (p.stderr or "")


def lab_context(plan: LabPlan, hub: Hub) -> UiContext:
    info = {n.name: view.NodeInfo(netns=n.netns, ip=n.ip, role=n.role) for n in plan.nodes}
    ctx = UiContext(hub=hub, lab_name=plan.name, node_info=info)

    async def timeline():
        from kubelab.lab.timeline import collect
        return await collect(plan)
    ctx.timeline = timeline

    if not running_as_root():
        ctx.why_no_netns = ("the packet path and the rules read the nodes' network namespaces: run `sudo kubelab "
                            f"ui{ctx.name_flag}`")
        return ctx

    cache: dict = {"t": 0.0, "routes": {}}

    def read_routes() -> dict[str, tuple[str, ...]]:
        out = {}
        for n in plan.nodes:
            try:
                out[n.name] = format_routes(json.loads(_run(["ip", "-n", n.netns, "-j", "-4", "route", "show"]) or "[]"))
            except ValueError:
                continue
        return out

    async def routes():
        if time.monotonic() - cache["t"] > ROUTES_TTL:
            cache["routes"] = await asyncio.to_thread(read_routes)
            cache["t"] = time.monotonic()
        return cache["routes"]
    ctx.routes = routes

    def capture_in_thread(ns: str, pod: str, target: str):
        # the capture runs blocking subprocesses: its own thread, its own loop and API client, so
        # the server's loop (and every browser's live map) never waits on `dig`
        from kubelab.lab.trace import capture, trace_hops

        async def go():
            api = ReadOnlyApi(components.api_client(plan))
            try:
                c = await capture(api, plan, pod=pod, namespace=ns, target=target)  # type: ignore[arg-type]
            finally:
                await api.aclose()
            return c, trace_hops(c)
        return asyncio.run(go())

    async def trace(ns: str, pod: str, target: str):
        return await asyncio.to_thread(capture_in_thread, ns, pod, target)
    ctx.trace = trace

    def read_rules(node: str):
        n = plan.node(node)
        if plan.proxy_mode == "nftables":
            cmd = ["ip", "netns", "exec", n.netns, "nft", "list", "table", "ip", "kube-proxy"]
        else:
            cmd = ["ip", "netns", "exec", n.netns, "iptables-save", "-t", "nat"]
        rcmd = ["ip", "-n", n.netns, "route", "show"]
        return (plan.proxy_mode, _run(cmd), _run(rcmd), [f"sudo {topology.shell(cmd)}", f"sudo {topology.shell(rcmd)}"])

    async def rules(node: str):
        return await asyncio.to_thread(read_rules, node)
    ctx.rules = rules
    return ctx


def check_address(address: str | None) -> tuple[str, str | None]:
    """(address to bind, warning). Loopback unless --address names another one explicitly."""
    if address is None:
        return DEFAULT_ADDRESS, None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise LabError(f"--address {address!r}: give an IP address (e.g. 127.0.0.1)") from None
    if ip.is_loopback:
        return address, None
    return address, (f"warning: kubelab ui on {address} is reachable from other machines: anyone who can reach it "
                     "sees the whole cluster (read-only, with the lab's admin credentials)")


def bind(address: str, port: int) -> socket.socket:
    fam = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, port))
    except OSError as e:
        s.close()
        raise LabError(f"cannot listen on {address}:{port}: {e.strerror} (another `kubelab ui`? try --port)") from None
    s.listen(64)
    return s


def url_for(address: str, port: int) -> str:
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else (f"[{address}]" if ":" in address else address)
    return f"http://{host}:{port}/"


async def serve(*, name: str, root_dir: str, port: int = DEFAULT_PORT, address: str | None = None,
                open_browser: bool = False) -> int:
    import uvicorn
    if not 0 < port < 65536:
        raise LabError(f"--port {port}: must be 1-65535")
    bind_addr, warning = check_address(address)
    plan, _ = load_plan(name, root_dir)
    if not graphviz.available():
        raise LabError("Graphviz `dot` is missing (sudo apt-get install graphviz; `sudo make install` does it)")
    sock = bind(bind_addr, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    api = ReadOnlyApi(components.api_client(plan))
    hub = Hub(api)
    hub.start()
    ctx = lab_context(plan, hub)
    app = create_app(ctx)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3)
    loop = asyncio.get_running_loop()

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:  # Ctrl-C/SIGTERM: end the SSE streams, which never end alone
            loop.call_soon_threadsafe(lambda: loop.create_task(hub.close_streams()))
            super().handle_exit(sig, frame)
    server = Server(config)
    url = url_for(bind_addr, port)
    print(f"kubelab ui for lab {plan.name!r}: {url}  (read-only; Ctrl-C stops it)", flush=True)
    if ctx.why_no_netns:
        print(f"note: {ctx.why_no_netns}", flush=True)
    if open_browser:
        import webbrowser
        webbrowser.open(url)
    try:
        await server.serve(sockets=[sock])
    finally:
        await hub.stop()
        await api.aclose()
        sock.close()
    return 0
