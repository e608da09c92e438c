"""The DaemonSet controller: one pod of the template on every eligible node.

A node is eligible when the template's nodeSelector and required node affinity accept it
and it has no NoSchedule/NoExecute taint the pod does not tolerate (the daemon tolerations
upstream adds — not-ready, unreachable, unschedulable, pressure — are part of every pod).
Pods are placed as upstream does: the pod requires its node through a node-affinity term on
`metadata.name`, and the scheduler binds it (so resources are still accounted).

Which pods are up to date: the `controller-revision-hash` label, a digest of the template.
Rolling update (`maxUnavailable`, surge refused by the API server) deletes old pods only
while the number of unavailable daemon pods stays within the budget; `OnDelete` replaces a
pod only when someone deletes it. The decisions are pure (`plan`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field

from kubelab.client import NotFound
from kubelab.nodematch import matches_node, untolerated_taint

from .base import Context, Controller
from .replicaset import OwnedPodHandlers, Expectations, controller_index
from .util import fnv32a, owner_ref_for, pod_is_available, pod_is_ready, safe_encode

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def template_hash(ds: dict) -> str:
    tmpl = (ds.get("spec") or {}).get("template") or {}
    return safe_encode(str(fnv32a(json.dumps(tmpl, sort_keys=True).encode())))


def daemon_pod_spec(ds: dict) -> dict:
    """The template's pod spec plus the daemon tolerations (what eligibility is judged on)."""
    spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    tolerations = list(spec.get("tolerations") or [])
    for t in DAEMON_TOLERATIONS:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tolerations):
            tolerations.append(dict(t))
    spec["tolerations"] = tolerations
    return spec


def eligible(ds: dict, node: dict) -> bool:
    spec = daemon_pod_spec(ds)
    return matches_node(spec, node) and untolerated_taint(spec, node) is None


def pod_node(pod: dict) -> str | None:
    """The node a daemon pod is bound to, or required to go to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
    for t in terms:
        for f in t.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def pod_for(ds: dict, node: str) -> dict:
    tmpl = (ds.get("spec") or {}).get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    spec = daemon_pod_spec(ds)
    affinity = copy.deepcopy(spec.get("affinity") or {})
    na = affinity.setdefault("nodeAffinity", {})
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    spec["affinity"] = affinity
    labels = {**(tmeta.get("labels") or {}), HASH_LABEL: template_hash(ds),
              GENERATION_LABEL: str(ds["metadata"].get("generation", 1))}
    meta = {"generateName": f"{ds['metadata']['name']}-", "namespace": ds["metadata"]["namespace"],
            "labels": labels, "ownerReferences": [owner_ref_for(ds)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _scaled(value, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


@dataclass
class Plan:
    create_on: list[str] = field(default_factory=list)
    delete: list[dict] = field(default_factory=list)
    status: dict = field(default_factory=dict)


def plan(ds: dict, nodes: list[dict], pods: list[dict], now: float) -> Plan:
    """Pods to create (by node) and delete, and the status (pure)."""
    spec = ds.get("spec") or {}
    mrs = int(spec.get("minReadySeconds") or 0)
    current = template_hash(ds)
    want = sorted(n["metadata"]["name"] for n in nodes if eligible(ds, n))
    by_node: dict[str, list[dict]] = {}
    out = Plan()
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue
        phase = (p.get("status") or {}).get("phase")
        if phase == "Failed":
            out.delete.append(p)  # replaced on the next sync
            continue
        by_node.setdefault(pod_node(p) or "", []).append(p)
    misscheduled = 0
    for node, ps in by_node.items():
        if node not in want:
            misscheduled += len(ps)
            out.delete += ps
        elif len(ps) > 1:  # keep the oldest-named up-to-date one
            ps.sort(key=lambda p: (p["metadata"]["labels"].get(HASH_LABEL) != current, p["metadata"]["name"]))
            out.delete += ps[1:]
            by_node[node] = ps[:1]
    placed = {n: by_node[n][0] for n in want if by_node.get(n) and by_node[n][0] not in out.delete}
    out.create_on = [n for n in want if n not in placed]
    strategy = spec.get("updateStrategy") or {}
    if (strategy.get("type") or "RollingUpdate") == "RollingUpdate":
        budget = _scaled((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(want)) or 1
        unavailable = len(out.create_on) + sum(1 for p in placed.values() if not pod_is_available(p, mrs, now))
        old = [p for p in placed.values() if p["metadata"].get("labels", {}).get(HASH_LABEL) != current]
        for p in sorted(old, key=lambda p: pod_is_available(p, mrs, now)):
            if not pod_is_available(p, mrs, now):
                out.delete.append(p)  # already unavailable: replacing it costs nothing
            elif unavailable < budget:
                out.delete.append(p)
                unavailable += 1
    ready = [p for p in placed.values() if pod_is_ready(p)]
    available = [p for p in placed.values() if pod_is_available(p, mrs, now)]
    updated = [p for p in placed.values() if p["metadata"].get("labels", {}).get(HASH_LABEL) == current]
    out.status = {"desiredNumberScheduled": len(want), "currentNumberScheduled": len(placed),
                  "numberMisscheduled": misscheduled, "numberReady": len(ready),
                  "updatedNumberScheduled": len(updated), "numberAvailable": len(available),
                  "numberUnavailable": len(want) - len(available),
                  "observedGeneration": ds["metadata"].get("generation", 1)}
    return out


class DaemonSetController(OwnedPodHandlers, Controller):
    name = "daemonset"
    component = "daemonset-controller"
    workers = 2

    owner_kind = "DaemonSet"  # OwnedPodHandlers: pods whose controller reference is a DaemonSet
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.dss = ctx.factory.informer("daemonsets")
        self.pods = ctx.factory.informer("pods", indexers={"controller": controller_index})
        self.nodes = ctx.factory.informer("nodes")
        self.dss.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_added, on_update=lambda o, n: self._pod_changed(n),
                              on_delete=lambda p: self._pod_changed(p, gone=True))
        self.nodes.add_handler(on_add=self._all, on_update=lambda o, n: self._all(n), on_delete=self._all)

    def _all(self, _node: dict) -> None:
        for ds in self.dss.store.list():
            self.enqueue(ds)

    async def sync(self, key: str) -> None:
        ds = self.dss.store.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        pods = list(self.pods.store.by_index("controller", ds["metadata"]["uid"]))
        now = time.time()
        p = plan(ds, self.nodes.store.list(), pods, now)
        if self.expectations.satisfied(key) and not ds["metadata"].get("deletionTimestamp"):
            if p.delete:
                self.expectations.expect_deletions(key, [f"{ns}/{x['metadata']['name']}" for x in p.delete])
                for victim in p.delete:
                    try:
                        await self.client.delete("pods", victim["metadata"]["name"], namespace=ns)
                        self.recorder.event(ds, "Normal", "SuccessfulDelete",
                                            f"Deleted pod: {victim['metadata']['name']}")
                    except NotFound:
                        self.expectations.deletion_observed(key, f"{ns}/{victim['metadata']['name']}")
            if p.create_on:
                self.expectations.expect_creations(key, len(p.create_on))
                for node in p.create_on:
                    try:
                        created = await self.client.create("pods", pod_for(ds, node), namespace=ns)
                    except Exception as e:
                        self.expectations.creation_observed(key)
                        self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {e}")
                        raise
                    self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        current = ds.get("status") or {}
        if any(current.get(k) != v for k, v in p.status.items()):
            try:
                await self.client.patch("daemonsets", name, {"status": p.status}, namespace=ns, subresource="status")
            except NotFound:
                return
        mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs and p.status["numberReady"] != p.status["numberAvailable"]:
            self.queue.add_after(key, mrs)
