"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

Only the holder of the Lease acts. The holder renews every `retry_period`; if it cannot renew
for `renew_deadline` it stops acting (the process exits, as kube-controller-manager does). A
candidate takes the Lease over once `renewTime + leaseDurationSeconds` has passed. Every
write carries the resourceVersion it read, so two candidates racing for an expired Lease
cannot both win: the API server rejects the second with 409 Conflict.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from kubelab.client import AlreadyExists, ApiClient, ApiError, Conflict, NotFound
from kubelab.durations import parse_flag_duration as parse_duration
from kubelab.flags import log_level
from kubelab.timestamps import format_micro_time as micro_time
from kubelab.timestamps import parse_epoch


log = logging.getLogger(__name__)


class LeadershipLost(Exception):
    pass


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def lease_decision(lease: dict | None, *, identity: str, now: float) -> str:
    """What a candidate may do with the Lease as read (pure):
    `create` (none exists), `renew` (we hold it), `acquire` (free or expired), `wait`."""
    if lease is None:
        return "create"
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    if holder == identity:
        return "renew"
    if not holder:
        return "acquire"
    renewed = parse_epoch(spec.get("renewTime")) or parse_epoch(spec.get("acquireTime")) or 0.0
    duration = spec.get("leaseDurationSeconds") or 15
    return "acquire" if renewed + duration < now else "wait"


def lease_spec(lease: dict | None, *, identity: str, now: float, lease_duration: int, decision: str) -> dict:
    """The spec to write for `decision` (pure)."""
    old = (lease or {}).get("spec") or {}
    spec = {"holderIdentity": identity, "leaseDurationSeconds": lease_duration, "renewTime": micro_time(now),
            "acquireTime": old.get("acquireTime") if decision == "renew" else micro_time(now),
            "leaseTransitions": int(old.get("leaseTransitions") or 0)}
    if decision == "acquire" and old.get("holderIdentity"):
        spec["leaseTransitions"] += 1
    return spec


class LeaderElector:
    def __init__(self, client: ApiClient, *, name: str, namespace: str = "kube-system", identity: str | None = None,
                 lease_duration: float = 15, renew_deadline: float = 10, retry_period: float = 2) -> None:
        if not (lease_duration > renew_deadline > retry_period > 0):
            raise ValueError("need leaseDuration > renewDeadline > retryPeriod > 0")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False
        self._observed: dict | None = None

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the Lease afterwards."""
        try:
            lease = await self.client.get("leases", self.name, namespace=self.namespace)
        except NotFound:
            lease = None
        now = time.time()
        decision = lease_decision(lease, identity=self.identity, now=now)
        if decision == "wait":
            if self._observed is None or (self._observed.get("spec") or {}).get("holderIdentity") != \
                    (lease.get("spec") or {}).get("holderIdentity"):
                log.info("lease %s/%s is held by %s; waiting", self.namespace, self.name,
                         lease["spec"].get("holderIdentity"))
            self._observed = lease
            return False
        spec = lease_spec(lease, identity=self.identity, now=now, lease_duration=int(self.lease_duration),
                          decision=decision)
        try:
            if decision == "create":
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
                self._observed = await self.client.create("leases", body, namespace=self.namespace)
            else:
                body = {**lease, "spec": spec}
                self._observed = await self.client.replace("leases", self.name, body, namespace=self.namespace)
        except (Conflict, AlreadyExists):
            return False
        if decision != "renew":
            log.info("%s acquired lease %s/%s", self.identity, self.namespace, self.name)
        return True

    async def acquire(self) -> None:
        while True:
            try:
                if await self.try_acquire_or_renew():
                    self.is_leader = True
                    return
            except (ApiError, OSError) as e:
                log.warning("leader election: %s", e)
            except Exception as e:  # httpx errors: the API server may be restarting
                log.warning("leader election: %s", e)
            await asyncio.sleep(self.retry_period)

    async def renew_loop(self) -> None:
        """Returns (raising LeadershipLost) when the lease could not be renewed in time."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                ok = await asyncio.wait_for(self.try_acquire_or_renew(), self.renew_deadline)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("leader election: renew failed: %s", e)
                ok = False
            if ok:
                last = time.monotonic()
            elif time.monotonic() - last > self.renew_deadline or \
                    (self._observed and (self._observed.get("spec") or {}).get("holderIdentity") != self.identity):
                self.is_leader = False
                raise LeadershipLost(f"{self.identity} lost lease {self.namespace}/{self.name}")

    async def release(self) -> None:
        """Give the Lease up (on clean shutdown) so a successor need not wait out the duration."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self.client.get("leases", self.name, namespace=self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"].update({"holderIdentity": "", "leaseDurationSeconds": 1,
                                      "renewTime": micro_time(time.time())})
                await self.client.replace("leases", self.name, lease, namespace=self.namespace)
        except Exception as e:
            log.debug("releasing lease: %s", e)

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Wait for leadership, then run `work` while renewing; raise LeadershipLost if lost."""
        await self.acquire()
        work_task = asyncio.create_task(work())
        renew_task = asyncio.create_task(self.renew_loop())
        try:
            done, _ = await asyncio.wait({work_task, renew_task}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()
        finally:
            for t in (work_task, renew_task):
                t.cancel()
            await asyncio.gather(work_task, renew_task, return_exceptions=True)
            await self.release()


def identity_from_env() -> str:
    return os.environ.get("KUBELAB_IDENTITY") or default_identity()


async def run_until_signalled(client: ApiClient, args, work: Callable[[], Awaitable[None]], *,
                              lease_name: str, identity: str | None = None) -> int:
    """A component's main loop: `work()` until SIGTERM/SIGINT — behind the Lease when
    `args.leader_elect` — then close the client. Exit code 1 when leadership was lost (the
    process must stop acting at once; its supervisor restarts it as a candidate)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        if args.leader_elect:
            elector = LeaderElector(client, name=lease_name, namespace="kube-system", identity=identity,
                                    lease_duration=parse_duration(args.leader_elect_lease_duration),
                                    renew_deadline=parse_duration(args.leader_elect_renew_deadline),
                                    retry_period=parse_duration(args.leader_elect_retry_period))
            log.info("%s: waiting for lease kube-system/%s", elector.identity, lease_name)
            await elector.run(work)
        else:
            await work()
    except LeadershipLost as e:
        log.error("%s", e)
        return 1
    except asyncio.CancelledError:
        return 0
    finally:
        await client.aclose()
    return 0


def configure_logging(verbosity: int) -> None:
    """`--v=N` as the Kubernetes binaries (kubelab.flags.log_level: info up to 3, debug from 4);
    httpx's per-request lines only at debug."""
    level = log_level(verbosity)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
