"""`python -m kubelab.scheduler`: flags, leader election, run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from kubelab.client import KubeconfigError, add_connection_args, connect
from kubelab.controllers.leaderelection import configure_logging, identity_from_env, run_until_signalled
from kubelab.controllers.manager import _bool, _duration

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
    sched = Scheduler(client, scheduler_name=args.scheduler_name)
    return await run_until_signalled(client, args, sched.run, lease_name="kube-scheduler",
                                     identity=identity_from_env())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbosity)
    return asyncio.run(amain(args))
