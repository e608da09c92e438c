"""`python -m kubelab.netpol`: the NetworkPolicy agent for one node.

    python -m kubelab.netpol --kubeconfig PATH --node-name worker-1 [--netns NAME]
    python -m kubelab.netpol --cleanup [--netns NAME]     # remove table inet kubelab-netpol and exit

On SIGTERM it removes its table (a stopped agent enforces nothing, rather than enforcing a
stale view forever); `--keep-rules-on-exit` keeps it (a restart then never opens a gap).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubelab import flags
from kubelab.flags import duration_flag

from .agent import ApplyError, Dataplane, PolicyAgent

log = logging.getLogger("kubelab.netpol")


def build_parser() -> argparse.ArgumentParser:
    from kubelab.client import add_connection_args

    p = argparse.ArgumentParser(
        prog="python -m kubelab.netpol",
        description="NetworkPolicy agent: programs table inet kubelab-netpol (nftables) on one node.",
    )
    add_connection_args(p)
    p.add_argument("--node-name", help="this node's name: its pods are the ones this agent enforces for")
    p.add_argument("--cleanup", action="store_true", help="remove table inet kubelab-netpol, then exit")
    p.add_argument("--min-sync-period", type=duration_flag, default=0.1, metavar="DURATION",
                   help="minimum time between syncs; changes in between are coalesced (default 100ms)")
    p.add_argument("--sync-period", type=duration_flag, default=30.0, metavar="DURATION",
                   help="periodic resync interval (default 30s)")
    p.add_argument("--netns", default=None, metavar="NAME",
                   help="apply rules inside this named network namespace (lab nodes are namespaces)")
    p.add_argument("--keep-rules-on-exit", action="store_true",
                   help="leave the table in place on SIGTERM (default: remove it)")
    flags.add_verbosity_flag(p, extra=("--verbose",))
    return p


async def run(args: argparse.Namespace) -> int:
    from kubelab.client import Informer, KubeconfigError, connect

    try:
        client = await connect(args, user_agent="kubelab-netpol")
    except (KubeconfigError, OSError) as e:
        log.error("cannot load the API server connection: %s", e)
        return 2
    dataplane = Dataplane(netns=args.netns)
    agent = PolicyAgent(dataplane=dataplane, node_name=args.node_name, min_sync_period=args.min_sync_period,
                        sync_period=args.sync_period)
    informers = {
        "networkpolicies": Informer(client, "networkpolicies"),
        "pods": Informer(client, "pods"),
        "namespaces": Informer(client, "namespaces"),
    }
    informers["networkpolicies"].add_handler(on_add=agent.on_policy, on_update=agent.on_policy_update,
                                             on_delete=agent.on_policy_delete)
    informers["pods"].add_handler(on_add=agent.on_pod, on_update=agent.on_pod_update, on_delete=agent.on_pod_delete)
    informers["namespaces"].add_handler(on_add=agent.on_namespace, on_update=agent.on_namespace_update,
                                        on_delete=agent.on_namespace_delete)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(inf.run(), name=f"informer-{name}") for name, inf in informers.items()]
    try:
        async def synced() -> None:
            for inf in informers.values():
                await inf.wait_synced()

        waiter, stopper = asyncio.create_task(synced()), asyncio.create_task(stop.wait())
        tasks += [waiter, stopper]
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            log.info("caches synced; enforcing NetworkPolicies for the pods of node %s", args.node_name)
            agent.set_initialized()
            tasks.append(asyncio.create_task(agent.runner.loop(), name="sync-runner"))
            await stop.wait()
        return 0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
        if not args.keep_rules_on_exit:
            try:
                dataplane.cleanup()
            except ApplyError as e:
                log.error("could not remove the table: %s", e)
        dataplane.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = flags.parse_args(parser, argv, "kubelab-netpol")
    logging.basicConfig(level=flags.log_level(args.v),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cleanup:
        dataplane = Dataplane(netns=args.netns)
        try:
            dataplane.cleanup()
        except ApplyError as e:
            print(f"cleanup: {e}", file=sys.stderr)
            return 1
        finally:
            dataplane.close()
        return 0
    if not args.node_name:
        parser.error("--node-name is required (unless --cleanup)")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
