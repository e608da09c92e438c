"""The disruption controller: the status of each PodDisruptionBudget, which eviction reads.

Why it exists: the eviction subresource (apiserver/eviction.py) must answer "may one more
pod go?" from a single object it can compare-and-swap. This loop keeps that object true:
`currentHealthy` (matching pods that are Ready, not terminating, and not just evicted),
`desiredHealthy` (from `minAvailable`, or from `maxUnavailable` against the expected count),
`expectedPods`, `disruptionsAllowed` = currentHealthy − desiredHealthy (never below 0) and
the `DisruptionAllowed` condition, as upstream's pkg/controller/disruption does.

The expected count (needed for `maxUnavailable` and percentages) is the sum of the scales
of the pods' controllers: a ReplicaSet (or the Deployment owning it) or a StatefulSet. A
matching pod with another kind of controller, or none, cannot be counted that way: the
budget then allows no disruption and says why (`SyncFailed`), as upstream.

`disruptedPods` holds the pods eviction has just taken (they no longer count as healthy while
they terminate); entries leave when the pod is gone or after DELETION_TIMEOUT.
The computation is pure (`compute`).
"""

from __future__ import annotations

import math
import time

from kubelab.client import NotFound
from kubelab.labels import selector_matches
from kubelab.timestamps import format_time, parse_epoch

from .base import Context, Controller
from .util import controller_ref, pod_is_ready, pod_is_terminating

DELETION_TIMEOUT = 120.0  # upstream: an eviction not followed by the pod's deletion in 2 min is dropped
SCALED_KINDS = ("ReplicaSet", "StatefulSet")


class ExpectedScaleError(Exception):
    """A matching pod whose controller's scale is not known."""


def _scaled(value, total: int) -> int:
    """An int-or-percent against `total`, rounded up (upstream's GetScaledValueFromIntOrPercent)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def matches(pdb: dict, pod: dict) -> bool:
    """policy/v1: an empty selector matches every pod of the namespace, a null one none."""
    sel = (pdb.get("spec") or {}).get("selector")
    return sel is not None and pod["metadata"].get("namespace") == pdb["metadata"].get("namespace") \
        and selector_matches(sel, pod["metadata"].get("labels"))


def expected_scale(pods: list[dict], scale_of) -> int:
    """Sum of the replicas of the distinct controllers of `pods`; `scale_of(kind, name)` → int or None."""
    seen: dict[tuple[str, str], int] = {}
    for p in pods:
        ref = controller_ref(p)
        if not ref or ref.get("kind") not in SCALED_KINDS:
            raise ExpectedScaleError(f"found no controllers for pod \"{p['metadata']['name']}\"")
        key = (ref["kind"], ref["name"])
        if key not in seen:
            n = scale_of(*key)
            if n is None:
                raise ExpectedScaleError(f"{ref['kind']} {ref['name']} of pod \"{p['metadata']['name']}\" not found")
            seen[key] = n
    return sum(seen.values())


def compute(pdb: dict, pods: list[dict], scale_of, now: float) -> dict:
    """The budget's new status (pure, but for `scale_of`, a lookup in the informers' caches)."""
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    pods = [p for p in pods if matches(pdb, p)]
    disrupted = {}
    present = {p["metadata"]["name"]: p for p in pods}
    for name, t in (old.get("disruptedPods") or {}).items():
        p = present.get(name)
        stamp = parse_epoch(t)
        if p is not None and not pod_is_terminating(p) and stamp is not None and stamp + DELETION_TIMEOUT > now:
            disrupted[name] = t
    healthy = sum(1 for p in pods if pod_is_ready(p) and not pod_is_terminating(p)
                  and p["metadata"]["name"] not in disrupted)
    error = None
    try:
        if spec.get("maxUnavailable") is not None:
            expected = expected_scale(pods, scale_of)
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
        elif isinstance(spec.get("minAvailable"), str):
            expected = expected_scale(pods, scale_of)
            desired = _scaled(spec["minAvailable"], expected)
        else:
            expected, desired = len(pods), int(spec.get("minAvailable") or 0)
    except ExpectedScaleError as e:
        error, expected, desired = str(e), 0, 0
    allowed = 0 if error or expected <= 0 else max(0, healthy - desired)
    gen = pdb["metadata"].get("generation", 1)
    if error:
        cond = ("False", "SyncFailed", error)
    elif allowed > 0:
        cond = ("True", "SufficientPods", "")
    else:
        cond = ("False", "InsufficientPods", "")
    prev = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    since = prev["lastTransitionTime"] if prev and prev.get("status") == cond[0] and prev.get("lastTransitionTime") \
        else format_time(now)
    return {"observedGeneration": gen, "disruptedPods": disrupted, "disruptionsAllowed": allowed,
            "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
            "conditions": [{"type": "DisruptionAllowed", "status": cond[0], "reason": cond[1], "message": cond[2],
                            "observedGeneration": gen, "lastTransitionTime": since}]}


def _namespace_index(pod: dict) -> list[str]:
    return [pod["metadata"].get("namespace") or ""]


class DisruptionController(Controller):
    name = "disruption"
    component = "controllermanager"
    workers = 1

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pdbs = ctx.factory.informer("poddisruptionbudgets")
        self.pods = ctx.factory.informer("pods", indexers={"namespace": _namespace_index})
        self.replicasets = ctx.factory.informer("replicasets")
        self.deployments = ctx.factory.informer("deployments")
        self.statefulsets = ctx.factory.informer("statefulsets")
        self.pdbs.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod, on_update=lambda o, n: (self._pod(o), self._pod(n)),
                              on_delete=self._pod)
        for inf in (self.replicasets, self.deployments, self.statefulsets):
            inf.add_handler(on_add=self._namespace_of, on_update=lambda o, n: self._namespace_of(n),
                            on_delete=self._namespace_of)

    def _pod(self, pod: dict) -> None:
        for pdb in self.pdbs.store.list():
            if matches(pdb, pod):
                self.enqueue(pdb)

    def _namespace_of(self, obj: dict) -> None:
        ns = obj["metadata"].get("namespace")
        for pdb in self.pdbs.store.list():
            if pdb["metadata"].get("namespace") == ns:
                self.enqueue(pdb)

    def _scale_of(self, namespace: str):
        def lookup(kind: str, name: str) -> int | None:
            store = self.replicasets.store if kind == "ReplicaSet" else self.statefulsets.store
            obj = store.get(f"{namespace}/{name}")
            if obj is None:
                return None
            ref = controller_ref(obj)
            if kind == "ReplicaSet" and ref and ref.get("kind") == "Deployment":
                dep = self.deployments.store.get(f"{namespace}/{ref['name']}")
                if dep is not None:
                    obj = dep
            return int((obj.get("spec") or {}).get("replicas", 1) or 0)
        return lookup

    async def sync(self, key: str) -> None:
        pdb = self.pdbs.store.get(key)
        if pdb is None:
            return
        ns, name = pdb["metadata"]["namespace"], pdb["metadata"]["name"]
        pods = list(self.pods.store.by_index("namespace", ns))
        now = time.time()
        status = compute(pdb, pods, self._scale_of(ns), now)
        if status != (pdb.get("status") or {}):
            new = {**pdb, "status": status}
            try:  # a compare-and-swap: an eviction that spent the budget meanwhile makes this a 409, retried
                await self.client.replace("poddisruptionbudgets", name, new, namespace=ns, subresource="status")
            except NotFound:
                return
        if status["disruptedPods"]:
            self.queue.add_after(key, DELETION_TIMEOUT / 4)
