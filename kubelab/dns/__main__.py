"""`python -m kubelab.dns`: the cluster DNS server (the kube-dns add-on's process).

Examples:
  python -m kubelab.dns --kubeconfig ~/.kube/config --listen 0.0.0.0:53
  python -m kubelab.dns --objects demo.yaml --listen 127.0.0.1:5353 --upstream none
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubelab.dns import records
from kubelab.dns.forward import Forwarder, parse_upstream, resolv_conf_upstream
from kubelab.dns.server import DnsCore, DnsServer
from kubelab import flags, serving
from kubelab.dns.status import Metrics, status_app
from kubelab.dns.watch import run_from_cluster, run_from_file

log = logging.getLogger("kubelab.dns")


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    try:
        from kubelab.client.kubeconfig import add_connection_args
    except ImportError:  # the client library not installed: keep the flags it would add
        parser.add_argument("--kubeconfig", help="kubeconfig file of the API server")
        parser.add_argument("--server", help="API server URL, e.g. http://127.0.0.1:6443")
        return
    add_connection_args(parser)


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or default_port)
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kubelab.dns",
        description="Cluster DNS: serves the Kubernetes DNS schema 1.1.0 for Services and "
                    "EndpointSlices from informer caches; forwards other names upstream.")
    _add_connection_args(p)
    p.add_argument("--objects", metavar="FILE",
                   help="serve the Services/EndpointSlices/Namespaces of a YAML/JSON file instead of an "
                        "API server (reloaded when it changes or on SIGHUP): for tests and demos")
    p.add_argument("--listen", default="0.0.0.0:53", help="UDP+TCP address (default 0.0.0.0:53; port 0 = any)")
    p.add_argument("--zone", "--domain", dest="zone", default=records.DEFAULT_ZONE,
                   help="cluster domain (default cluster.local; --domain is kube-dns's name)")
    p.add_argument("--upstream", default=None,
                   help="IP[:PORT] for names outside the zone, or 'none' to answer REFUSED "
                        "(default: first nameserver of /etc/resolv.conf)")
    p.add_argument("--pod-records", action="store_true",
                   help="answer a-b-c-d.<ns>.pod.<zone> (CoreDNS 'pods insecure')")
    p.add_argument("--health-port", type=int, default=8080, help="/health and /ready (default 8080)")
    p.add_argument("--metrics-port", type=int, default=9153, help="/metrics (default 9153, CoreDNS's)")
    p.add_argument("--no-fast-path", action="store_true", help="parse every query (for comparison)")
    flags.add_verbosity_flag(p, extra=("--verbose",))
    return p


async def _main(args: argparse.Namespace) -> int:
    host, port = _host_port(args.listen, 53)
    if args.upstream is None:
        upstream = resolv_conf_upstream()
    else:
        upstream = parse_upstream(args.upstream)
    forwarder = Forwarder(upstream) if upstream else None
    metrics = Metrics()
    if forwarder is not None:
        metrics.extra = lambda: {
            'kubelab_dns_cache_hits_total{cache="forward"}': forwarder.cache.hits,
            'kubelab_dns_cache_misses_total{cache="forward"}': forwarder.cache.misses,
            "kubelab_dns_forward_requests_total": forwarder.requests,
            "kubelab_dns_forward_failures_total": forwarder.failures,
        }
    core = DnsCore(forwarder=forwarder, metrics=metrics, fast_path=not args.no_fast_path,
                   zone=args.zone)
    ready = False

    def synced() -> None:
        nonlocal ready
        ready = True
        log.info("zone %s ready: %d names", args.zone, metrics.snapshot_names)

    server = DnsServer(core, host, port)
    await server.start()
    http_host = host if host not in ("", "::") else "0.0.0.0"
    bound: dict[str, int] = {}
    app = status_app(metrics, lambda: ready)
    http_servers: list[serving.StatusServer] = []
    for name, hport in (("health", args.health_port), ("metrics", args.metrics_port)):
        if hport in bound.values() and hport != 0:
            continue
        srv = serving.StatusServer(app, http_host, hport)
        bound[name] = await srv.start()
        http_servers.append(srv)
    bound.setdefault("metrics", bound["health"])
    # One parseable line: tests and the lab read the bound ports from it.
    print(f"kubelab-dns listening dns={host}:{server.port} health={http_host}:{bound['health']} "
          f"metrics={http_host}:{bound['metrics']} zone={args.zone} "
          f"upstream={'%s:%d' % upstream if upstream else 'none'}", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.objects:
        source = run_from_file(args.objects, core.set_snapshot, zone=args.zone,
                               pod_records=args.pod_records, on_synced=synced)
    else:
        try:
            from kubelab.client import connect

            client = await connect(args)
        except Exception as e:  # noqa: BLE001 - a clear message, not a traceback
            print(f"error: cannot connect to the API server: {e} "
                  "(give --kubeconfig/--server, or --objects FILE)", file=sys.stderr)
            for srv in http_servers:
                await srv.stop()
            await server.close()
            return 2
        source = run_from_cluster(client, core.set_snapshot, zone=args.zone,
                                  pod_records=args.pod_records, on_synced=synced)
    source_task = asyncio.create_task(source)
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait({source_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if source_task.done() and not source_task.cancelled() and source_task.exception() is not None:
        log.error("object source failed: %s", source_task.exception())
        code = 1
    source_task.cancel()
    stop_task.cancel()
    for srv in http_servers:
        await srv.stop()
    await server.close()
    return code


def main(argv: list[str] | None = None) -> int:
    args = flags.parse_args(build_parser(), argv, "kube-dns")
    logging.basicConfig(level=flags.log_level(args.v),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop  # a faster event loop when installed (uvicorn[standard] brings it)
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(_main(args))
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
