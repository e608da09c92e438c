"""Every component's status endpoints: `/metrics` (Prometheus, from `prometheus_client`) and
the `/healthz`, `/readyz`, `/livez` health checks, served as upstream components serve them.

Why one module: the API server, controller-manager, scheduler, proxy, DNS and node agent all
answer the same three questions (are you alive, are you ready, what are your numbers), and a
scraper or `kubelab status` must get the same answer shape from each. Upstream's shape:

- `/healthz`, `/livez`, `/readyz` answer `ok` (200) or list the failed checks (500); with
  `?verbose` every check gets a line: `[+]ping ok`, `[-]informer-sync failed: reason withheld`,
  then `healthz check passed` / `readyz check failed`. `/readyz/<check>` asks for one check.
- `/metrics` is the Prometheus text exposition of the component's own registry (a
  `CollectorRegistry` per component, so tests running several in one process never mix).

`StatusServer` runs these (plus any extra routes a component keeps, like kube-proxy's
`/proxyMode`) on uvicorn inside the component's own event loop, over HTTPS when given a
serving certificate (the controller-manager's 10257 and the scheduler's 10259 in a secured
lab), and never touches the component's signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CollectorRegistry, disable_created_metrics, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

disable_created_metrics()  # no `*_created` series: Kubernetes components do not export them

Check = Callable[[], "str | None"]  # None: passing; a string: why it fails

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


@dataclass
class HealthChecks:
    """Named checks per endpoint. `ping` passes always (upstream's first check): a process
    that answers at all is alive. Checks are plain callables so components register a lambda
    over state they already keep (caches synced, lease renewed, first sync done)."""

    livez: dict[str, Check] = field(default_factory=lambda: {"ping": lambda: None})
    readyz: dict[str, Check] = field(default_factory=lambda: {"ping": lambda: None})
    healthz: dict[str, Check] = field(default_factory=lambda: {"ping": lambda: None})

    def add(self, name: str, check: Check, *, to: tuple[str, ...] = ("readyz", "healthz")) -> None:
        for endpoint in to:
            getattr(self, endpoint)[name] = check

    def for_path(self, endpoint: str) -> dict[str, Check]:
        return getattr(self, endpoint)


def health_report(endpoint: str, checks: Mapping[str, Check], *, verbose: bool, only: str | None = None,
                  exclude: tuple[str, ...] = ()) -> tuple[int, str]:
    """Pure: (HTTP status, body) for one health endpoint, in upstream's wording."""
    if only is not None:
        check = checks.get(only)
        if check is None:
            return 404, "404 page not found\n"
        reason = _run(check)
        return (200, "ok") if reason is None else (500, f"internal server error: {only} failed: {reason}\n")
    lines, failed = [], []
    for name, check in checks.items():
        if name in exclude:
            lines.append(f"[+]{name} excluded: ok")
            continue
        reason = _run(check)
        if reason is None:
            lines.append(f"[+]{name} ok")
        else:
            failed.append(name)
            lines.append(f"[-]{name} failed: reason withheld")
    what = endpoint.strip("/")
    if failed:
        # upstream prints the per-check lines on failure even without ?verbose
        return 500, "\n".join(lines) + f"\n{what} check failed\n"
    if verbose:
        return 200, "\n".join(lines) + f"\n{what} check passed\n"
    return 200, "ok"


def _run(check: Check) -> str | None:
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - a broken check is a failing check, not a 500 traceback
        return f"{type(e).__name__}: {e}"


def status_app(registry: CollectorRegistry | None, checks: HealthChecks | None, *,
               extra: Mapping[str, Callable[[Request], Awaitable[Response]]] | None = None,
               health_paths: Mapping[str, str] | None = None) -> Starlette:
    """The ASGI app: /metrics from `registry`, health endpoints from `checks` (either may be
    None to leave it out), extra routes as given. `health_paths` maps other paths onto a
    health endpoint (CoreDNS's `/health` → livez, `/ready` → readyz)."""
    routes: list = []
    if checks is not None:
        paths = {p: p for p in HEALTH_PATHS}
        paths.update(health_paths or {})
        for path, endpoint in paths.items():
            routes.append(Route(path, _health_handler(endpoint, checks)))
            routes.append(Route(path + "/{check}", _health_handler(endpoint, checks)))
    for path, handler in (extra or {}).items():
        routes.append(Route(path, handler))
    if registry is not None:
        routes.append(metrics_route(registry))
    return Starlette(routes=routes)


def metrics_route(registry: CollectorRegistry, path: str = "/metrics") -> Route:
    """A Starlette route serving `registry` in the Prometheus text format."""
    return Route(path, _Asgi(make_asgi_app(registry)))


class _Asgi:
    """A raw ASGI app as a Starlette endpoint (Starlette treats plain functions as handlers)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


def _health_handler(endpoint: str, checks: HealthChecks):
    async def handler(request: Request) -> Response:
        q = request.query_params
        status, body = health_report(endpoint, checks.for_path(endpoint.strip("/")),
                                     verbose="verbose" in q, only=request.path_params.get("check"),
                                     exclude=tuple(q.getlist("exclude")))
        return PlainTextResponse(body, status_code=status)
    return handler


def parse_bind(addr: str, default_port: int) -> tuple[str, int]:
    """`0.0.0.0:10256`, `127.0.0.1`, `:10249`, `[::1]:9153` → (host, port)."""
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]")
        return host, int(port.lstrip(":") or default_port)
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr or "0.0.0.0", default_port
    return host or "0.0.0.0", int(port) if port else default_port


@dataclass(frozen=True)
class ServingTLS:
    """HTTPS for a status port: the serving certificate, and the CA whose client certificates
    are required (None: no client certificate asked for)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(self.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def tls_from_flags(cert_file: str | None, key_file: str | None, client_ca_file: str | None) -> ServingTLS | None:
    """ValueError with a one-line reason when the files do not go together or do not load."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("--tls-cert-file and --tls-private-key-file go together")
    if not cert_file:
        if client_ca_file:
            raise ValueError("--client-ca-file needs --tls-cert-file/--tls-private-key-file")
        return None
    tls = ServingTLS(cert_file, key_file, client_ca_file)
    try:
        tls.context()
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"cannot load the serving TLS files: {e}") from None
    return tls


class StatusServer:
    """uvicorn serving `app` on one (host, port) inside the running loop. `start()` binds
    (OSError when the port is taken, before anything else starts) and returns the bound port;
    `stop()` closes it."""

    def __init__(self, app, host: str, port: int, *, tls: ServingTLS | None = None) -> None:
        self.app, self.host, self.port, self.tls = app, host, port, tls
        self._server = None
        self._task = None

    async def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        kwargs: dict = {}
        if self.tls is not None:
            kwargs = {"ssl_certfile": self.tls.cert_file, "ssl_keyfile": self.tls.key_file}
            if self.tls.client_ca_file:
                kwargs.update(ssl_ca_certs=self.tls.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                http="h11", ws="none", timeout_graceful_shutdown=1, **kwargs)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"status-{self.port}")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()  # raise what stopped it
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


class _QuietServer(uvicorn.Server):
    """Leaves SIGTERM/SIGINT to the component (uvicorn would take them over)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


def add_serving_flags(parser, *, port: int, what: str) -> None:
    """Upstream's serving flags for a component's status port (controller-manager 10257,
    scheduler 10259): HTTPS when given a certificate, plain HTTP otherwise."""
    g = parser.add_argument_group(f"status endpoints (/metrics, /healthz, /readyz, /livez) as {what}'s")
    g.add_argument("--bind-address", default=None,
                   help="address of the status port (default 0.0.0.0 with a serving certificate, as upstream; "
                        "127.0.0.1 without one, so plain HTTP never leaves the machine unless asked)")
    g.add_argument("--secure-port", type=int, default=port,
                   help=f"status port (default {port}, upstream's; 0 turns it off)")
    g.add_argument("--tls-cert-file", default=None, help="serving certificate (PEM); without it plain HTTP")
    g.add_argument("--tls-private-key-file", default=None, help="its private key (PEM)")
    g.add_argument("--client-ca-file", default=None,
                   help="require client certificates signed by this CA on every path (a lab CA)")


async def start_from_args(args, app) -> StatusServer | None:
    """The status server the serving flags ask for (None when --secure-port=0); ValueError
    for TLS files that do not load, OSError when the port is taken."""
    if not args.secure_port:
        return None
    tls = tls_from_flags(args.tls_cert_file, args.tls_private_key_file, args.client_ca_file)
    host = args.bind_address or ("0.0.0.0" if tls else "127.0.0.1")
    server = StatusServer(app, host, args.secure_port, tls=tls)
    await server.start()
    log.info("serving /metrics, /healthz, /readyz, /livez on %s://%s:%d", "https" if tls else "http", host,
             server.port)
    return server
