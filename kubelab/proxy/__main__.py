"""`python -m kubelab.proxy`: the service proxy for one node.

    python -m kubelab.proxy --kubeconfig PATH --node-name worker-1 [--mode nftables|iptables]
    python -m kubelab.proxy --cleanup            # remove our table/chains and exit
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubelab.client.syncrunner import parse_duration
from kubelab.proxy import conntrack
from kubelab.proxy.dataplane import cleanup_all, make_backend
from kubelab.proxy.metrics import parse_bind, serve
from kubelab.proxy.proxier import Proxier

log = logging.getLogger("kubelab.proxy")

BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def warn_bridge_netfilter(path: str = BRIDGE_NF) -> bool:
    """Say so (as kube-proxy does) when bridged packets skip netfilter: a Service reply from a
    pod on its client's own bridge would then never be un-DNATed. The CNI plugin turns it on
    at the first pod; until then it may well be off. True when it is on."""
    try:
        with open(path) as f:
            on = f.read().strip() == "1"
    except OSError:
        on = False
    if not on:
        log.warning("bridged packets do not pass netfilter here (br_netfilter not loaded or %s != 1): "
                    "Services may not answer clients on the same node until the CNI plugin sets it", path)
    return on


def build_parser() -> argparse.ArgumentParser:
    from kubelab.client import add_connection_args

    p = argparse.ArgumentParser(
        prog="python -m kubelab.proxy",
        description="Service proxy: programs ClusterIP/NodePort rules (nftables or iptables) on one node.",
    )
    add_connection_args(p)
    p.add_argument("--node-name", help="this node's name (its Node object gives the NodePort addresses)")
    p.add_argument("--mode", choices=("nftables", "iptables"), default="nftables", help="dataplane (default nftables)")
    p.add_argument("--cleanup", action="store_true", help="remove kube-proxy's nftables table and iptables chains, then exit")
    p.add_argument("--min-sync-period", type=parse_duration, default=1.0, metavar="DURATION",
                   help="minimum time between syncs; changes in between are coalesced (default 1s)")
    p.add_argument("--sync-period", type=parse_duration, default=30.0, metavar="DURATION",
                   help="periodic resync interval (default 30s)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16",
                   help="pod network; ClusterIP traffic from outside it is masqueraded (default 10.244.0.0/16)")
    p.add_argument("--service-cidr", default="10.96.0.0/12",
                   help="service network; unallocated ClusterIPs in it are dropped (default 10.96.0.0/12)")
    p.add_argument("--healthz-bind-address", default="0.0.0.0:10256", metavar="HOST:PORT",
                   help="serve /healthz here (default 0.0.0.0:10256; empty disables)")
    p.add_argument("--metrics-bind-address", default="127.0.0.1:10249", metavar="HOST:PORT",
                   help="serve /metrics here (default 127.0.0.1:10249; empty disables)")
    p.add_argument("--netns", default=None, metavar="NAME",
                   help="apply rules inside this named network namespace (lab nodes are namespaces)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


async def run(args: argparse.Namespace) -> int:
    from kubelab.client import Informer, KubeconfigError, connect

    try:
        client = await connect(args, user_agent="kubelab-proxy")
    except (KubeconfigError, OSError) as e:
        log.error("cannot load the API server connection: %s", e)
        return 2
    backend = make_backend(args.mode, netns=args.netns)
    proxier = Proxier(
        backend=backend,
        node_name=args.node_name,
        cluster_cidr=args.cluster_cidr,
        service_cidr=args.service_cidr,
        min_sync_period=args.min_sync_period,
        sync_period=args.sync_period,
        clear_conntrack=lambda flows: conntrack.clear(flows, netns=args.netns),
    )
    informers = {
        "services": Informer(client, "services"),
        "endpointslices": Informer(client, "endpointslices"),
        "nodes": Informer(client, "nodes"),
    }
    informers["services"].add_handler(on_add=proxier.on_service_add, on_update=proxier.on_service_update,
                                      on_delete=proxier.on_service_delete)
    informers["endpointslices"].add_handler(on_add=proxier.on_slice_add, on_update=proxier.on_slice_update,
                                            on_delete=proxier.on_slice_delete)
    informers["nodes"].add_handler(on_add=proxier.on_node_add, on_update=proxier.on_node_update,
                                   on_delete=proxier.on_node_delete)

    servers = []
    metrics_routes = {
        "/metrics": lambda: (200, "text/plain; version=0.0.4", proxier.metrics.render()),
        "/proxyMode": lambda: (200, "text/plain", args.mode),
        "/healthz": proxier.healthz,
    }
    for addr, port, routes in ((args.healthz_bind_address, 10256, {"/healthz": proxier.healthz, "/livez": proxier.healthz}),
                               (args.metrics_bind_address, 10249, metrics_routes)):
        if addr:
            host, p = parse_bind(addr, port)
            try:
                servers.append(await serve(host, p, routes))
            except OSError as e:
                log.error("cannot listen on %s:%s: %s", host, p, e)
                await client.aclose()
                return 1

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(inf.run(), name=f"informer-{name}") for name, inf in informers.items()]
    try:
        async def synced() -> None:
            for inf in informers.values():
                await inf.wait_synced()

        waiter = asyncio.create_task(synced())
        stopper = asyncio.create_task(stop.wait())
        tasks += [waiter, stopper]
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return 0
        log.info("caches synced; proxy mode %s on node %s", args.mode, args.node_name)
        warn_bridge_netfilter()
        proxier.set_initialized()
        tasks.append(asyncio.create_task(proxier.runner.loop(), name="sync-runner"))
        await stop.wait()
        return 0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in servers:
            s.close()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cleanup:
        errors = cleanup_all(netns=args.netns)
        for e in errors:
            print(f"cleanup: {e}", file=sys.stderr)
        return 1 if errors else 0
    if not args.node_name:
        parser.error("--node-name is required (unless --cleanup)")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
