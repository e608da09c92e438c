"""The ReplicaSet controller: keep `spec.replicas` pods matching the template.

Expectations (as client-go's ControllerExpectations): after asking for N creations or
deletions, a ReplicaSet is not managed again until the informer has shown them (or a TTL
passes). Without them, the burst of watch events a creation causes would make every sync
see too few pods and create more. A restarted process starts with none and relies on the
informer's initial list, which already shows everything the previous process created.
"""

from __future__ import annotations

import asyncio
import time

from kubelab.client import Conflict, NotFound
from kubelab.timestamps import parse_epoch

from .base import Context, Controller
from .util import (condition, controller_ref, owner_ref_for, pod_is_active, pod_is_available, pod_is_ready,
                   selector_matches)

EXPECTATIONS_TTL = 300.0
BURST_REPLICAS = 500
CREATE_CONCURRENCY = 16  # requests in flight per ReplicaSet: more only queues in the HTTP pool


class Expectations:
    """Pending creations (a count) and deletions (pod keys) per controller key."""

    def __init__(self, *, ttl: float = EXPECTATIONS_TTL, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._stamp: dict[str, float] = {}

    def satisfied(self, key: str) -> bool:
        if key not in self._stamp:
            return True
        if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
            return True
        return self.clock() - self._stamp[key] > self.ttl

    def expect_creations(self, key: str, n: int) -> None:
        self._adds[key] = n
        self._dels.setdefault(key, set())
        self._stamp[key] = self.clock()

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._dels[key] = set(pod_keys)
        self._adds.setdefault(key, 0)
        self._stamp[key] = self.clock()

    def creation_observed(self, key: str, n: int = 1) -> None:
        if key in self._adds:
            self._adds[key] -= n

    def deletion_observed(self, key: str, pod_key: str) -> None:
        if key in self._dels:
            self._dels[key].discard(pod_key)

    def delete(self, key: str) -> None:
        for d in (self._adds, self._dels, self._stamp):
            d.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        return max(self._adds.get(key, 0), 0), len(self._dels.get(key, ()))


def replica_diff(rs: dict, active_pods: list[dict]) -> int:
    """Pods to create (> 0) or delete (< 0) (pure)."""
    want = (rs.get("spec") or {}).get("replicas")
    want = 1 if want is None else int(want)
    return want - len(active_pods)


def _phase_rank(pod: dict) -> int:
    return {"Pending": 0, "Unknown": 1, "Running": 2}.get((pod.get("status") or {}).get("phase") or "Pending", 0)


def deletion_order(pods: list[dict]) -> list[dict]:
    """Pods ordered most-deletable first, as upstream's ActivePods ranking: unscheduled,
    then pending, not ready, recently ready, restarted more, newer."""
    def rank(p: dict):
        ready_c = condition(p, "Ready")
        ready = pod_is_ready(p)
        ready_since = parse_epoch(ready_c.get("lastTransitionTime")) if ready and ready_c else 0.0
        restarts = sum(int(c.get("restartCount") or 0) for c in (p.get("status") or {}).get("containerStatuses") or [])
        created = parse_epoch(p["metadata"].get("creationTimestamp")) or 0.0
        return (bool(p["spec"].get("nodeName")), _phase_rank(p), ready, -(ready_since or 0.0), -restarts, -created,
                p["metadata"]["name"])
    return sorted(pods, key=rank)


def pod_from_template(rs: dict) -> dict:
    tmpl = (rs.get("spec") or {}).get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    meta = {"generateName": f"{rs['metadata']['name']}-", "namespace": rs["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}), "ownerReferences": [owner_ref_for(rs)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": dict(tmpl.get("spec") or {})}


def replicaset_status(rs: dict, pods: list[dict], now: float) -> dict:
    """The status counts for the pods a ReplicaSet owns (pure); `pods` are all its pods."""
    active = [p for p in pods if pod_is_active(p)]
    mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    tlabels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    status = {"replicas": len(active),
              "fullyLabeledReplicas": sum(1 for p in active
                                          if all((p["metadata"].get("labels") or {}).get(k) == v
                                                 for k, v in tlabels.items())),
              "readyReplicas": sum(1 for p in active if pod_is_ready(p)),
              "availableReplicas": sum(1 for p in active if pod_is_available(p, mrs, now)),
              "observedGeneration": rs["metadata"].get("generation", 1)}
    old_conds = [c for c in (rs.get("status") or {}).get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if old_conds:
        status["conditions"] = old_conds
    return status


def controller_index(obj: dict) -> list[str]:
    ref = controller_ref(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


class ReplicaSetController(Controller):
    name = "replicaset"
    component = "replicaset-controller"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.rss = ctx.factory.informer("replicasets")
        self.pods = ctx.factory.informer("pods", indexers={"controller": controller_index})
        self.rss.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self._rs_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    def _rs_deleted(self, rs: dict) -> None:
        self.enqueue(rs)

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return None
        return f"{pod['metadata']['namespace']}/{ref['name']}"

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            if pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            else:
                self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        key = self._owner_key(new)
        if new["metadata"].get("deletionTimestamp") and key:
            self.expectations.deletion_observed(key, f"{new['metadata']['namespace']}/{new['metadata']['name']}")
        old_key = self._owner_key(old)
        if old_key and old_key != key:
            self.queue.add(old_key)
        if key:
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.deletion_observed(key, f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        rs = self.rss.store.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        ns = rs["metadata"]["namespace"]
        pods = [p for p in self.pods.store.by_index("controller", rs["metadata"]["uid"])]
        pods += await self._adopt(rs)
        active = [p for p in pods if pod_is_active(p)]
        if self.expectations.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            diff = replica_diff(rs, active)
            if diff > 0:
                await self._create(key, rs, min(diff, BURST_REPLICAS))
            elif diff < 0:
                victims = deletion_order(active)[:min(-diff, BURST_REPLICAS)]
                await self._delete(key, rs, victims)
        now = time.time()
        status = replicaset_status(rs, pods, now)
        current = rs.get("status") or {}
        if any(current.get(k, 0) != v for k, v in status.items() if k != "conditions"):
            try:
                await self.client.patch("replicasets", rs["metadata"]["name"], {"status": status}, namespace=ns,
                                        subresource="status")
            except NotFound:
                return
        mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs and status["readyReplicas"] != status["availableReplicas"]:
            self.queue.add_after(key, mrs)

    async def _adopt(self, rs: dict) -> list[dict]:
        """Orphan pods matching the selector become this ReplicaSet's (as upstream's
        ControllerRefManager), so an orphan-deleted owner's pods are reused."""
        if rs["metadata"].get("deletionTimestamp"):
            return []
        sel = (rs.get("spec") or {}).get("selector") or {}
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            return []
        adopted = []
        for p in self.pods.store.by_index("namespace", rs["metadata"]["namespace"]):
            if controller_ref(p) or p["metadata"].get("deletionTimestamp") or \
                    not selector_matches(sel, p["metadata"].get("labels")):
                continue
            refs = list(p["metadata"].get("ownerReferences") or []) + [owner_ref_for(rs)]
            try:
                adopted.append(await self.client.patch(
                    "pods", p["metadata"]["name"],
                    {"metadata": {"ownerReferences": refs, "resourceVersion": p["metadata"]["resourceVersion"]}},
                    namespace=p["metadata"]["namespace"]))
            except (Conflict, NotFound):
                continue
        return adopted

    async def _create(self, key: str, rs: dict, n: int) -> None:
        self.expectations.expect_creations(key, n)
        ns = rs["metadata"]["namespace"]
        body = pod_from_template(rs)
        created, batch, remaining = 0, 1, n
        errors: list[Exception] = []
        slots = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def create_one():
            async with slots:
                return await self.client.create("pods", body, namespace=ns)
        while remaining > 0 and not errors:  # slow start: 1, 2, 4, ... (a bad template fails once, not n times)
            size = min(batch, remaining)
            results = await asyncio.gather(*(create_one() for _ in range(size)), return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):
                    errors.append(r)
                else:
                    created += 1
                    self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
            remaining -= size
            batch *= 2
        skipped = n - created
        if skipped:
            self.expectations.creation_observed(key, skipped)  # never coming: do not wait for them
        if errors:
            self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {errors[0]}")
            raise errors[0]

    async def _delete(self, key: str, rs: dict, victims: list[dict]) -> None:
        ns = rs["metadata"]["namespace"]
        pod_keys = [f"{ns}/{p['metadata']['name']}" for p in victims]
        self.expectations.expect_deletions(key, pod_keys)

        async def one(p: dict) -> None:
            try:
                await self.client.delete("pods", p["metadata"]["name"], namespace=ns)
                self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except NotFound:
                self.expectations.deletion_observed(key, f"{ns}/{p['metadata']['name']}")
            except Exception:
                self.expectations.deletion_observed(key, f"{ns}/{p['metadata']['name']}")
                raise
        await asyncio.gather(*(one(p) for p in victims))


class OwnedPodHandlers:
    """Pod informer handlers for a controller that waits on Expectations (DaemonSet, StatefulSet).

    A pod added counts as an expected creation; a pod deleted — with a deletionTimestamp, or gone
    at once as an unbound pod is (no timestamp ever) — counts as an expected deletion; either way
    its owner is queued. Subclasses set `owner_kind` and have `expectations` and `queue`."""

    owner_kind: str = ""

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if ref and ref.get("kind") == self.owner_kind:
            return f"{pod['metadata']['namespace']}/{ref['name']}"
        return None

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_changed(self, pod: dict, *, gone: bool = False) -> None:
        key = self._owner_key(pod)
        if key:
            if gone or pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            self.queue.add(key)
