"""`python -m kubelab.loadbalancer controller|speaker`: MetalLB-style LoadBalancer addresses.

    python -m kubelab.loadbalancer controller --kubeconfig PATH --pool 192.168.56.200-192.168.56.250
    python -m kubelab.loadbalancer speaker --kubeconfig PATH --node-name worker-1 [--interface eth0]
    python -m kubelab.loadbalancer speaker --cleanup [--interface eth0]   # remove our addresses, exit

Both serve /metrics and /healthz, /readyz, /livez (kubelab/serving.py): the controller on
--secure-port 7472 (MetalLB's metrics port), the speaker on 7473.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubelab import flags, serving

from . import pool as lbpool

log = logging.getLogger("kubelab.loadbalancer")

CONTROLLER_PORT, SPEAKER_PORT = 7472, 7473


def build_parser() -> argparse.ArgumentParser:
    from kubelab.client import add_connection_args

    p = argparse.ArgumentParser(prog="python -m kubelab.loadbalancer",
                                description="LoadBalancer Services, MetalLB layer-2 style.")
    sub = p.add_subparsers(dest="role", required=True)
    c = sub.add_parser("controller", help="assign pool addresses to type: LoadBalancer Services")
    s = sub.add_parser("speaker", help="answer ARP for the addresses this node owns")
    for sp, port, what in ((c, CONTROLLER_PORT, "the controller"), (s, SPEAKER_PORT, "the speaker")):
        add_connection_args(sp)
        sp.add_argument("--lb-class", default=lbpool.DEFAULT_CLASS,
                        help=f"the loadBalancerClass handled, besides none (default {lbpool.DEFAULT_CLASS})")
        serving.add_serving_flags(sp, port=port, what=what)
        flags.add_verbosity_flag(sp, extra=("--verbose",))
    c.add_argument("--pool", required=True, metavar="FIRST-LAST[,CIDR...]",
                   help="addresses to hand out, e.g. 192.168.56.200-192.168.56.250")
    s.add_argument("--node-name", help="this node's name (required unless --cleanup)")
    s.add_argument("--pool", default="", metavar="FIRST-LAST[,CIDR...]",
                   help="announce only addresses in this pool (the controller's): a Service status naming any "
                        "other address is ignored (default: any address)")
    s.add_argument("--interface", default="eth0", help="the node-network interface (default eth0)")
    s.add_argument("--min-sync-period", type=flags.duration_flag, default=0.1, metavar="DURATION",
                   help="minimum time between syncs (default 100ms)")
    s.add_argument("--sync-period", type=flags.duration_flag, default=30.0, metavar="DURATION",
                   help="periodic resync (default 30s)")
    s.add_argument("--cleanup", action="store_true", help="remove this speaker's addresses, then exit")
    return p


async def _serve(args, registry, checks) -> serving.StatusServer | None:
    return await serving.start_from_args(args, serving.status_app(registry, checks))


async def run_controller(args) -> int:
    from kubelab.client import Informer, KubeconfigError, connect
    from kubelab.client.record import EventRecorder

    from .controller import LBController
    try:
        pool = lbpool.parse_pool(args.pool)
    except lbpool.PoolError as e:
        log.error("--pool: %s", e)
        return 2
    try:
        client = await connect(args, user_agent="kubelab-lb-controller")
    except (KubeconfigError, OSError) as e:
        log.error("cannot load the API server connection: %s", e)
        return 2
    informer = Informer(client, "services")
    recorder = EventRecorder(client, "kubelab-lb-controller")
    ctl = LBController(client=client, pool=pool, our_class=args.lb_class, recorder=recorder,
                       get_service=informer.store.get)
    informer.add_handler(on_add=ctl.on_service, on_update=ctl.on_service_update, on_delete=ctl.on_service)
    checks = serving.HealthChecks()
    checks.add("informer-sync", lambda: None if ctl.synced else "caches not synced")
    return await _run(args, client, [informer], ctl.metrics.registry, checks,
                      lambda: ctl.start(informer.store.list()), [ctl.run_worker], ctl.queue.shutdown, recorder)


async def run_speaker(args) -> int:
    from kubelab.client import Informer, KubeconfigError, connect
    from kubelab.client.record import EventRecorder

    from .speaker import Dataplane, Speaker
    try:
        client = await connect(args, user_agent="kubelab-lb-speaker")
    except (KubeconfigError, OSError) as e:
        log.error("cannot load the API server connection: %s", e)
        return 2
    try:
        pool = lbpool.parse_pool(args.pool) if args.pool else None
    except lbpool.PoolError as e:
        log.error("--pool: %s", e)
        await client.aclose()
        return 2
    recorder = EventRecorder(client, "kubelab-lb-speaker", host=args.node_name)
    speaker = Speaker(node_name=args.node_name, dataplane=Dataplane(args.interface), recorder=recorder, pool=pool,
                      min_sync_period=args.min_sync_period, sync_period=args.sync_period)
    informers = {"services": Informer(client, "services"), "nodes": Informer(client, "nodes"),
                 "endpointslices": Informer(client, "endpointslices")}
    informers["services"].add_handler(on_add=speaker.on_service, on_update=speaker.on_service,
                                      on_delete=speaker.on_service_delete)
    informers["nodes"].add_handler(on_add=speaker.on_node, on_update=speaker.on_node, on_delete=speaker.on_node_delete)
    informers["endpointslices"].add_handler(on_add=speaker.on_slice, on_update=speaker.on_slice,
                                            on_delete=speaker.on_slice_delete)
    checks = serving.HealthChecks()
    checks.add("informer-sync", lambda: None if speaker.initialized else "caches not synced")
    try:
        return await _run(args, client, list(informers.values()), speaker.metrics.registry, checks,
                          speaker.set_initialized, [speaker.runner.loop], lambda: None, recorder)
    finally:
        speaker.cleanup()  # a stopped speaker answers for nothing


async def _run(args, client, informers, registry, checks, on_synced, loops, on_stop, recorder) -> int:
    try:
        server = await _serve(args, registry, checks)
    except (OSError, ValueError) as e:
        log.error("cannot serve the status port: %s", e)
        await client.aclose()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(inf.run()) for inf in informers]
    try:
        async def synced() -> None:
            for inf in informers:
                await inf.wait_synced()

        waiter, stopper = asyncio.create_task(synced()), asyncio.create_task(stop.wait())
        tasks += [waiter, stopper]
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            log.info("caches synced")
            on_synced()
            tasks += [asyncio.create_task(fn()) for fn in loops]
            await stop.wait()
        return 0
    finally:
        on_stop()
        try:
            await recorder.flush(2.0)
        except (asyncio.TimeoutError, Exception):  # best effort on the way out
            pass
        recorder.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.stop()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    component = "metallb-speaker" if raw[:1] == ["speaker"] else "metallb-controller"
    args = flags.parse_args(parser, raw, component)
    logging.basicConfig(level=flags.log_level(args.v), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.role == "speaker":
        if args.cleanup:
            from .speaker import Dataplane, DataplaneError, Speaker
            sp = Speaker(node_name="", dataplane=Dataplane(args.interface))
            try:
                sp.cleanup()
            except (DataplaneError, OSError) as e:
                print(f"cleanup: {e}", file=sys.stderr)
                return 1
            return 0
        if not args.node_name:
            parser.error("speaker: --node-name is required (unless --cleanup)")
        runner = run_speaker
    else:
        runner = run_controller
    try:
        return asyncio.run(runner(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
