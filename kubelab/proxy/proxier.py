"""The proxy's control loop: informers → dirty services → coalesced, rate-limited sync → apply.

As the seed's kube-proxy section walks through:
1. Informers on Services, EndpointSlices and Nodes keep a local cache (no polling).
2. Each event updates the cache and marks the affected Service *dirty*; nothing is written yet.
3. A BoundedFrequencyRunner runs `sync` at most once per min-sync-period (a burst of pod churn
   becomes one sync) and at least once per sync-period (periodic resync).
4. `sync` re-derives only dirty services' ports/endpoints (pure functions in model.py), builds
   the desired ProxyState, and the backend renders and applies the difference as one atomic
   transaction — or nothing at all when the state is unchanged.
5. Afterwards stale UDP conntrack entries are deleted and metrics recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from kubelab.client.syncrunner import BoundedFrequencyRunner
from kubelab.proxy import conntrack
from kubelab.proxy.dataplane import ApplyError, Backend
from kubelab.proxy.metrics import Metrics, healthz_body
from kubelab.proxy.model import (
    SERVICE_NAME_LABEL,
    Endpoint,
    ProxyConfig,
    ProxyState,
    ServicePort,
    ServicePortName,
    load_balancer_ips,
    merge_endpoints,
    node_internal_ips,
    service_ports,
)

log = logging.getLogger(__name__)


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


def _service_of_slice(es: dict) -> str | None:
    meta = es.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace') or 'default'}/{svc}" if svc else None


class Proxier:
    """Holds the informer-fed caches and turns them into kernel rules via a Backend."""

    def __init__(
        self,
        *,
        backend: Backend,
        node_name: str,
        cluster_cidr: str = "",
        service_cidr: str = "",
        min_sync_period: float = 1.0,
        sync_period: float = 30.0,
        clear_conntrack: Callable[[list[conntrack.FlowFilter]], object] | None = None,
    ) -> None:
        self.backend = backend
        self.node_name = node_name
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.sync_period = sync_period
        self.clear_conntrack = clear_conntrack
        self.metrics = Metrics()
        self.runner = BoundedFrequencyRunner(self._run_sync, min_interval=min_sync_period, max_interval=sync_period)
        # informer-fed caches
        self._services: dict[str, dict] = {}
        self._slices: dict[str, dict] = {}
        self._slices_by_service: dict[str, set[str]] = {}
        self._node: dict | None = None
        # derived, per service (recomputed only when dirty)
        self._ports: dict[str, list[ServicePort]] = {}
        self._endpoints: dict[str, dict[ServicePortName, tuple[Endpoint, ...]]] = {}
        self._dirty: set[str] = set()
        self._change_seen: dict[str, float] = {}  # service → when its endpoints change was first seen
        self._initialized = False
        self._queued_at = 0.0  # oldest change not yet synced (0: none)
        self.last_sync_ok = 0.0
        self.lock = asyncio.Lock()

    # ------------------------------------------------------------ informer handlers

    def _queue(self, svc_key: str | None) -> None:
        if svc_key:
            self._dirty.add(svc_key)
        now = time.time()
        if not self._queued_at:
            self._queued_at = now
        self.metrics.last_queued_timestamp.set(now)
        if self._initialized:
            self.runner.run()

    def on_service_add(self, svc: dict) -> None:
        self._services[_key(svc)] = svc
        self._queue(_key(svc))

    def on_service_update(self, old: dict, svc: dict) -> None:
        if (old.get("spec"), old.get("metadata", {}).get("name"), load_balancer_ips(old)) == \
                (svc.get("spec"), svc.get("metadata", {}).get("name"), load_balancer_ips(svc)):
            self._services[_key(svc)] = svc  # status change that is not an LB address: nothing to program
            return
        self.on_service_add(svc)

    def on_service_delete(self, svc: dict) -> None:
        self._services.pop(_key(svc), None)
        self._queue(_key(svc))

    def on_slice_add(self, es: dict) -> None:
        key = _key(es)
        old = self._slices.get(key)
        self._slices[key] = es
        new_svc = _service_of_slice(es)
        old_svc = _service_of_slice(old) if old else None
        if old_svc and old_svc != new_svc:  # relabelled to another service
            self._slices_by_service.get(old_svc, set()).discard(key)
            self._change_seen.setdefault(old_svc, time.time())
            self._queue(old_svc)
        if new_svc:
            self._slices_by_service.setdefault(new_svc, set()).add(key)
            self._change_seen.setdefault(new_svc, time.time())
            self._queue(new_svc)

    def on_slice_update(self, old: dict, es: dict) -> None:
        self.on_slice_add(es)

    def on_slice_delete(self, es: dict) -> None:
        key = _key(es)
        old = self._slices.pop(key, None) or es
        s = _service_of_slice(old)
        if s:
            self._slices_by_service.get(s, set()).discard(key)
            self._change_seen.setdefault(s, time.time())
            self._queue(s)

    def on_node_add(self, node: dict) -> None:
        if (node.get("metadata") or {}).get("name") != self.node_name:
            return
        changed = node_internal_ips(node) != node_internal_ips(self._node)
        self._node = node
        if changed:
            self._queue(None)

    def on_node_update(self, old: dict, node: dict) -> None:
        self.on_node_add(node)

    def on_node_delete(self, node: dict) -> None:
        if (node.get("metadata") or {}).get("name") == self.node_name:
            self._node = None
            self._queue(None)

    # ------------------------------------------------------------ state

    def config(self) -> ProxyConfig:
        return ProxyConfig(
            node_name=self.node_name,
            node_ips=node_internal_ips(self._node),
            cluster_cidr=self.cluster_cidr,
            service_cidr=self.service_cidr,
        )

    def desired_state(self) -> ProxyState:
        """Re-derive dirty services, then assemble the full desired state (cheap: no re-parsing)."""
        for svc_key in self._dirty:
            svc = self._services.get(svc_key)
            if svc is None:
                self._ports.pop(svc_key, None)
                self._endpoints.pop(svc_key, None)
                continue
            self._ports[svc_key] = service_ports(svc)
            slices = [self._slices[k] for k in sorted(self._slices_by_service.get(svc_key, ())) if k in self._slices]
            self._endpoints[svc_key] = merge_endpoints(slices)
        self._dirty.clear()
        services: dict[ServicePortName, ServicePort] = {}
        endpoints: dict[ServicePortName, tuple[Endpoint, ...]] = {}
        for svc_key in sorted(self._ports):
            eps = self._endpoints.get(svc_key, {})
            for sp in self._ports[svc_key]:
                services[sp.key] = sp
                if sp.key in eps:
                    endpoints[sp.key] = eps[sp.key]
        return ProxyState(config=self.config(), services=services, endpoints=endpoints)

    # ------------------------------------------------------------ sync

    def set_initialized(self) -> None:
        """Called once every informer has synced: syncing earlier would program a partial view."""
        self._initialized = True
        self.runner.run()

    async def _run_sync(self, periodic: bool) -> None:
        if periodic and self.backend.applied is not None:
            present = await asyncio.to_thread(self.backend.present)
            if not present:
                log.warning("%s rules missing from the kernel; rewriting them", self.backend.mode)
                self.backend.forget()
        await self.sync()

    async def sync(self) -> bool:
        """One sync; returns True if a transaction was applied. Safe to call directly (tests)."""
        if not self._initialized:
            return False
        async with self.lock:
            start = time.monotonic()
            queued_at = self._queued_at
            self._queued_at = 0.0
            prev = self.backend.applied
            state = self.desired_state()
            seen, self._change_seen = self._change_seen, {}
            try:
                applied = await asyncio.to_thread(self.backend.sync, state)
            except ApplyError as e:
                log.error("%s", e)
                self.metrics.sync_failures.inc()
                self._queued_at = queued_at or time.time()
                self._change_seen = {**seen, **self._change_seen}
                self.runner.retry_after(self.sync_period)
                return False
            now = time.time()
            self.metrics.sync_duration.observe(time.monotonic() - start)
            self.metrics.last_sync_timestamp.set(now)
            self.last_sync_ok = now
            if applied:
                self.metrics.syncs_applied.inc()
                self.metrics.rules_bytes.set(len(self.backend.last_text))
                if self.clear_conntrack is not None:
                    flows = conntrack.stale_flows(prev, state)
                    if flows:
                        await asyncio.to_thread(self.clear_conntrack, flows)
            for t in seen.values():
                self.metrics.network_programming.observe(max(0.0, now - t))
            return applied

    # ------------------------------------------------------------ health

    def healthz(self) -> tuple[int, str, str]:
        """Healthy once a sync succeeded and no queued change has waited longer than 2 × sync period."""
        now = time.time()
        stale = bool(self._queued_at) and now - self._queued_at > 2 * self.sync_period
        healthy = self.last_sync_ok > 0 and not stale
        return healthz_body(healthy=healthy, last_updated=self.last_sync_ok, now=now)
