"""`python -m kubelab.scheduler`: flags, leader election, run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kubelab import flags, serving
from kubelab.client import KubeconfigError, add_connection_args, connect
from kubelab.client.leaderelection import configure_logging, identity_from_env, run_until_signalled

from .scheduler import DEFAULT_SCHEDULER, Scheduler

log = logging.getLogger("kubelab.scheduler")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubelab.scheduler",
                                description="kubelab scheduler: binds pending pods to nodes that fit them.")
    add_connection_args(p)
    serving.add_serving_flags(p, port=10259, what="kube-scheduler")
    p.add_argument("--leader-elect", type=flags.bool_flag, nargs="?", const=True, default=False,
                   help="hold the kube-system/kube-scheduler Lease before scheduling")
    p.add_argument("--leader-elect-lease-duration", type=flags.duration_flag, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=flags.duration_flag, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=flags.duration_flag, default=2.0)
    p.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER, help="schedule pods with this spec.schedulerName")
    flags.add_verbosity_flag(p)
    return p


async def amain(args) -> int:
    try:
        client = await connect(args, user_agent="kube-scheduler")
    except (KubeconfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sched = Scheduler(client, scheduler_name=args.scheduler_name)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SchedulerCollector(sched))
    checks = serving.HealthChecks()
    checks.add("informer-sync", lambda: None if sched.pods.has_synced and sched.nodes.has_synced
               else "caches not synced yet", to=("readyz",))
    try:
        server = await serving.start_from_args(args, serving.status_app(registry, checks))
    except (ValueError, OSError) as e:
        print(f"error: status port: {e}", file=sys.stderr)
        await client.aclose()
        return 1
    try:
        return await run_until_signalled(client, args, sched.run, lease_name="kube-scheduler",
                                         identity=identity_from_env())
    finally:
        if server is not None:
            await server.stop()


class SchedulerCollector(Collector):
    """kube-scheduler's metric names, read from the scheduler's counters at scrape time."""

    def __init__(self, sched: Scheduler) -> None:
        self.sched = sched

    def describe(self):
        return []

    def collect(self):
        attempts = CounterMetricFamily("scheduler_schedule_attempts",
                                       "Number of attempts to schedule pods, by the result.",
                                       labels=["result", "profile"])
        for result, n in self.sched.attempts.items():
            attempts.add_metric([result, self.sched.name], n)
        pending = GaugeMetricFamily("scheduler_pending_pods", "Number of pending pods, by the queue type.",
                                    labels=["queue"])
        pending.add_metric(["active"], len(self.sched.queue))
        pending.add_metric(["unschedulable"], len(self.sched.unschedulable))
        yield from (attempts, pending)


def main(argv: list[str] | None = None) -> int:
    args = flags.parse_args(build_parser(), argv, "kube-scheduler")
    configure_logging(args.v)
    return asyncio.run(amain(args))
