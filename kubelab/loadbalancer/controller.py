"""The address controller's loop: Service informer → one worker → `status.loadBalancer` + Events.

Why one worker: the allocator's guarantee (never one address twice) rests on every decision
seeing every earlier one. With a single worker draining a de-duplicating queue, decisions are
serial and each is folded into `self.table` before the next, so concurrent creates get
distinct addresses without any locking in the API. The status write may fail (conflict,
API down); the key is then retried with backoff and the table keeps the reservation, so no
other Service can take the address meanwhile.
"""

from __future__ import annotations

import logging
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from kubelab.client import ApiError, NotFound, WorkQueue
from kubelab.client.record import EventRecorder

from . import pool as lbpool

log = logging.getLogger(__name__)


class Metrics:
    """MetalLB's allocator metrics under kubelab's prefix."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.in_use = Gauge("kubelab_lb_addresses_in_use_total", "addresses assigned to Services",
                            registry=self.registry)
        self.total = Gauge("kubelab_lb_addresses_total", "addresses in the pool", registry=self.registry)
        self.decisions = Counter("kubelab_lb_allocations", "allocator decisions by action", ["action"],
                                 registry=self.registry)
        self.write_errors = Counter("kubelab_lb_status_write_errors", "failed status writes",
                                    registry=self.registry)


def _as_service(obj: dict) -> dict:
    """Informer objects may lack kind/apiVersion; Events need them in involvedObject."""
    return {"kind": "Service", "apiVersion": "v1", **obj}


class LBController:
    def __init__(self, *, client, pool: lbpool.Pool, our_class: str = lbpool.DEFAULT_CLASS,
                 recorder: EventRecorder | None = None, get_service: Callable[[str], dict | None] | None = None
                 ) -> None:
        self.client = client
        self.pool = pool
        self.our_class = our_class
        self.recorder = recorder
        self.get_service = get_service or (lambda key: None)
        self.table = lbpool.Assignments()
        self.queue = WorkQueue(name="loadbalancer")
        self.metrics = Metrics()
        self.metrics.total.set(pool.size)
        self.synced = False
        self.pending: set[str] = set()  # Services waiting for an address (pool exhausted, IP taken)

    # informer handlers: only enqueue (the worker reads the cache)
    def on_service(self, svc: dict) -> None:
        self.queue.add(self._key(svc))

    def on_service_update(self, old: dict, svc: dict) -> None:
        self.queue.add(self._key(svc))

    @staticmethod
    def _key(svc: dict) -> str:
        meta = svc.get("metadata") or {}
        return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"

    def start(self, services: list[dict]) -> None:
        """Caches synced: adopt what status already shows (oldest first), then check everything."""
        ordered = sorted(services, key=lambda s: ((s.get("metadata") or {}).get("creationTimestamp") or "",
                                                  self._key(s)))
        self.table = lbpool.adopt(self.pool, [lbpool.service_lb(s) for s in ordered], our_class=self.our_class)
        self.metrics.in_use.set(len(self.table.by_ip))
        for s in ordered:
            self.queue.add(self._key(s))
        self.synced = True
        log.info("pool %s: %d addresses, %d in use after adopting existing status", self.pool, self.pool.size,
                 len(self.table.by_ip))

    async def run_worker(self) -> None:
        from kubelab.client import ShutDown
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                ok = await self.sync(key)
            except Exception:  # never let one Service stop the loop
                log.exception("sync %s", key)
                ok = False
            finally:
                self.queue.done(key)
            if ok:
                self.queue.forget(key)
            else:
                self.queue.add_rate_limited(key)

    async def sync(self, key: str) -> bool:
        """Decide for one Service, fold the decision into the table, then write status/Events."""
        obj = self.get_service(key)
        svc = lbpool.service_lb(obj, key)
        d = lbpool.decide(self.pool, self.table, svc, our_class=self.our_class)
        self.table = lbpool.apply(self.table, d)
        self.metrics.in_use.set(len(self.table.by_ip))
        if d.action != lbpool.IGNORE:
            self.metrics.decisions.labels(d.action).inc()
        if d.action == lbpool.PENDING:
            self.pending.add(key)
        else:
            self.pending.discard(key)
        if d.action == lbpool.RELEASE:
            for waiting in sorted(self.pending):  # an address came free: retry the pending ones
                self.queue.add(waiting)
        if obj is None:
            if d.action == lbpool.RELEASE:
                log.info("%s deleted: address freed", key)
            return True
        changed = not lbpool.status_matches(svc, d)
        if changed:
            ns, name = key.split("/", 1)
            patch = {"status": {"loadBalancer": {"ingress": d.status_ingress or None}}}
            try:
                await self.client.patch("services", name, patch, namespace=ns, subresource="status")
            except NotFound:
                return True
            except (ApiError, OSError) as e:
                self.metrics.write_errors.inc()
                log.warning("could not write the status of %s: %s", key, e)
                return False
            log.info("%s: %s %s", key, d.action, d.ip or "(no address)")
        if d.reason and self.recorder is not None and (changed or d.action == lbpool.PENDING):
            etype = "Warning" if d.action == lbpool.PENDING else "Normal"
            self.recorder.event(_as_service(obj), etype, d.reason, d.message)
        return True
