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

from kubelab.client import KubeconfigError, add_connection_args, connect

from .base import Context, Controller, InformerFactory
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from .events import EventRecorder
from .garbagecollector import GarbageCollector
from .job import JobController
from .leaderelection import configure_logging, identity_from_env, run_until_signalled
from .namespace import NamespaceController
from .nodeipam import NodeIpamController
from .nodelifecycle import NodeLifecycleController
from .replicaset import ReplicaSetController
from .serviceaccount import ServiceAccountController
from .util import parse_duration

log = logging.getLogger("kubelab.controllers")

CONTROLLERS: dict[str, type[Controller]] = {
    "endpoints": EndpointsController,
    "endpointslice": EndpointSliceController,
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "daemonset": DaemonSetController,
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


def _bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def _duration(v: str) -> str:
    try:
        parse_duration(v)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubelab.controllers",
                                description="kubelab controller-manager: the control loops that turn intent "
                                            "(Deployments, Services, Namespaces, Nodes) into pods and endpoints.")
    add_connection_args(p)
    p.add_argument("--controllers", default="*",
                   help=f"loops to run: '*' (all), a list, '-name' to disable (known: {', '.join(CONTROLLERS)})")
    p.add_argument("--leader-elect", type=_bool, nargs="?", const=True, default=True,
                   help="hold the kube-system/kube-controller-manager Lease before acting (default true)")
    p.add_argument("--leader-elect-lease-duration", type=_duration, default="15s")
    p.add_argument("--leader-elect-renew-deadline", type=_duration, default="10s")
    p.add_argument("--leader-elect-retry-period", type=_duration, default="2s")
    p.add_argument("--leader-elect-resource-name", default="kube-controller-manager")
    p.add_argument("--node-monitor-grace-period", type=_duration, default="40s")
    p.add_argument("--node-monitor-period", type=_duration, default="5s")
    p.add_argument("--pod-eviction-timeout", type=_duration, default="5m")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--max-endpoints-per-slice", type=int, default=100)
    p.add_argument("-v", "--v", dest="verbosity", type=int, default=1, help="log verbosity (0-4)")
    return p


async def run_controllers(client, args, names: list[str], *, component: str = "kube-controller-manager",
                          identity: str | None = None) -> None:
    """Build the selected loops on shared informers, wait for the caches, run until cancelled."""
    factory = InformerFactory(client)
    recorder = EventRecorder(client, component)  # no source.host: kubectl would print the identity
    ctx = Context(client, factory, recorder, args)
    controllers = [CONTROLLERS[n](ctx) for n in names]
    factory.start()
    try:
        await factory.wait_synced(timeout=120)
        log.info("caches synced; starting %s", ", ".join(names))
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        await factory.stop()
        ctx.close()


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
    identity = identity_from_env()
    return await run_until_signalled(client, args, lambda: run_controllers(client, args, names, identity=identity),
                                     lease_name=args.leader_elect_resource_name, identity=identity)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbosity)
    return asyncio.run(amain(args))
