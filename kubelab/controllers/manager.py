"""The controller-manager: flags, which loops run, shared informers, leader election.

Every loop's informers come from one factory (one watch per resource per process); the
workers start only after every cache has synced, so the first sync of each loop sees the
whole cluster (that is what makes a restart safe: nothing is created twice).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from prometheus_client import CollectorRegistry

from kubelab import flags, serving
from kubelab.client import KubeconfigError, add_connection_args, connect
from kubelab.client.metrics import WorkqueueMetrics

from .base import Context, Controller, InformerFactory
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from kubelab.client.record import EventRecorder
from .garbagecollector import GarbageCollector
from kubelab.client.leaderelection import configure_logging, identity_from_env, run_until_signalled
from .job import JobController
from .namespace import NamespaceController
from .nodeipam import NodeIpamController
from .nodelifecycle import NodeLifecycleController
from .replicaset import ReplicaSetController
from .serviceaccount import ServiceAccountController
from .statefulset import StatefulSetController

log = logging.getLogger("kubelab.controllers")

CONTROLLERS: dict[str, type[Controller]] = {
    "endpoints": EndpointsController,
    "endpointslice": EndpointSliceController,
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "daemonset": DaemonSetController,
    "statefulset": StatefulSetController,
    "disruption": DisruptionController,
    "job": JobController,
    "cronjob": CronJobController,
    "garbagecollector": GarbageCollector,
    "nodeipam": NodeIpamController,
    "nodelifecycle": NodeLifecycleController,
    "namespace": NamespaceController,
    "serviceaccount": ServiceAccountController,
}


def select_controllers(spec: str) -> list[str]:
    """`*`, `a,b`, `*,-c` as kube-controller-manager's --controllers (pure); a list of only
    `-c` items means `*,-c` (upstream would run nothing, which surprises everyone)."""
    names: list[str] = []
    items = [s.strip() for s in spec.split(",") if s.strip()] or ["*"]
    star = "*" in items or all(i.startswith("-") for i in items)
    for item in items:
        name = item.lstrip("-")
        if item != "*" and name not in CONTROLLERS:
            raise ValueError(f'unknown controller "{name}" (known: {", ".join(CONTROLLERS)})')
    disabled = {i[1:] for i in items if i.startswith("-")}
    for name in CONTROLLERS:
        if name in disabled:
            continue
        if star or name in items:
            names.append(name)
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubelab.controllers",
                                description="kubelab controller-manager: the control loops that turn intent "
                                            "(Deployments, Services, Namespaces, Nodes) into pods and endpoints.")
    add_connection_args(p)
    serving.add_serving_flags(p, port=10257, what="kube-controller-manager")
    p.add_argument("--controllers", default="*",
                   help=f"loops to run: '*' (all), a list, '-name' to disable (known: {', '.join(CONTROLLERS)})")
    p.add_argument("--leader-elect", type=flags.bool_flag, nargs="?", const=True, default=True,
                   help="hold the kube-system/kube-controller-manager Lease before acting (default true)")
    p.add_argument("--leader-elect-lease-duration", type=flags.duration_flag, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=flags.duration_flag, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=flags.duration_flag, default=2.0)
    p.add_argument("--leader-elect-resource-name", default="kube-controller-manager")
    p.add_argument("--node-monitor-grace-period", type=flags.duration_flag, default=40.0)
    p.add_argument("--node-monitor-period", type=flags.duration_flag, default=5.0)
    p.add_argument("--pod-eviction-timeout", type=flags.duration_flag, default=300.0)
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--max-endpoints-per-slice", type=int, default=100)
    flags.add_verbosity_flag(p)
    return p


async def run_controllers(client, args, names: list[str], *, component: str = "kube-controller-manager",
                          identity: str | None = None, status: "Status | None" = None) -> None:
    """Build the selected loops on shared informers, wait for the caches, run until cancelled."""
    factory = InformerFactory(client)
    recorder = EventRecorder(client, component)  # no source.host: kubectl would print the identity
    ctx = Context(client, factory, recorder, args)
    controllers = [CONTROLLERS[n](ctx) for n in names]
    if status is not None:
        for c in controllers:
            status.queues.track(c.queue)
    factory.start()
    try:
        await factory.wait_synced(timeout=120)
        if status is not None:
            status.synced = True
        log.info("caches synced; starting %s", ", ".join(names))
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        await factory.stop()
        ctx.close()


class Status:
    """What the status port shows: the Prometheus registry (client-go's workqueue metrics for
    every loop) and the health checks (`informer-sync` until every cache has synced)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.queues = WorkqueueMetrics(self.registry)
        self.synced = False
        self.checks = serving.HealthChecks()
        self.checks.add("informer-sync", lambda: None if self.synced else "caches not synced yet", to=("readyz",))

    def app(self):
        return serving.status_app(self.registry, self.checks)


async def amain(args) -> int:
    try:
        names = select_controllers(args.controllers)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        client = await connect(args, user_agent="kube-controller-manager")
    except (KubeconfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = Status()
    try:
        server = await serving.start_from_args(args, status.app())
    except (ValueError, OSError) as e:
        print(f"error: status port: {e}", file=sys.stderr)
        await client.aclose()
        return 1
    identity = identity_from_env()
    try:
        return await run_until_signalled(
            client, args, lambda: run_controllers(client, args, names, identity=identity, status=status),
            lease_name=args.leader_elect_resource_name, identity=identity)
    finally:
        if server is not None:
            await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = flags.parse_args(build_parser(), argv, "kube-controller-manager")
    configure_logging(args.v)
    return asyncio.run(amain(args))
