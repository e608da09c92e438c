"""`python -m kubelab.scheduler`: flags, leader election, run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubelab.client import KubeconfigError, add_connection_args, connect
from kubelab.controllers.leaderelection import LeaderElector, LeadershipLost, identity_from_env
from kubelab.controllers.manager import _bool, _duration
from kubelab.controllers.util import parse_duration

from .scheduler import DEFAULT_SCHEDULER, Scheduler

log = logging.getLogger("kubelab.scheduler")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubelab.scheduler",
                                description="kubelab scheduler: binds pending pods to nodes that fit them.")
    add_connection_args(p)
    p.add_argument("--leader-elect", type=_bool, nargs="?", const=True, default=False,
                   help="hold the kube-system/kube-scheduler Lease before scheduling")
    p.add_argument("--leader-elect-lease-duration", type=_duration, default="15s")
    p.add_argument("--leader-elect-renew-deadline", type=_duration, default="10s")
    p.add_argument("--leader-elect-retry-period", type=_duration, default="2s")
    p.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER, help="schedule pods with this spec.schedulerName")
    p.add_argument("-v", "--v", dest="verbosity", type=int, default=1)
    return p


async def amain(args) -> int:
    try:
        client = await connect(args, user_agent="kube-scheduler")
    except (KubeconfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        sched = Scheduler(client, scheduler_name=args.scheduler_name)
        if args.leader_elect:
            elector = LeaderElector(client, name="kube-scheduler", identity=identity_from_env(),
                                    lease_duration=parse_duration(args.leader_elect_lease_duration),
                                    renew_deadline=parse_duration(args.leader_elect_renew_deadline),
                                    retry_period=parse_duration(args.leader_elect_retry_period))
            await elector.run(sched.run)
        else:
            await sched.run()
    except LeadershipLost as e:
        log.error("%s", e)
        return 1
    except asyncio.CancelledError:
        return 0
    finally:
        await client.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(amain(args))
