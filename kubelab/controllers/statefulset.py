"""The StatefulSet controller: pods with stable names `<set>-<ordinal>`, created and removed in order.

Why a separate shape from the ReplicaSet: a StatefulSet pod has an identity. Its name (and so
its hostname, and through `spec.subdomain` = `serviceName` its DNS name in the headless
Service, `web-0.web.<ns>.svc`) comes back unchanged when the pod is replaced, and ordinals
are handled as upstream's `OrderedReady` policy wants: ordinal n is created only once 0..n-1
are Running and Ready, and scale-down removes the highest ordinal first, one at a time.
`Parallel` creates and deletes without waiting.

Revisions: as the DaemonSet controller here, the revision is a digest of the template, carried
by each pod in `controller-revision-hash` (`<set>-<hash>`, upstream's label value); kubelab
keeps no ControllerRevision objects. A rolling update replaces, from the highest ordinal down
to `partition`, one pod at a time, each only after the pods above it are Running and Ready;
pods below the partition keep their revision. Without stored revisions a pod below the
partition that is deleted comes back at the update revision (upstream would restore the
current one). `OnDelete` replaces nothing by itself.

The decisions are pure (`plan`): pods in, actions and status out.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field

from kubelab.client import AlreadyExists, NotFound

from .base import Context, Controller
from .replicaset import OwnedPodHandlers, BURST_REPLICAS, Expectations, controller_index
from .util import (fnv32a, owner_ref_for, pod_is_available, pod_is_ready, pod_is_terminal,
                   pod_is_terminating, safe_encode)

HASH_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def revision(sts: dict) -> str:
    """`<set>-<digest of the template>`: the update revision pods are compared with."""
    tmpl = (sts.get("spec") or {}).get("template") or {}
    digest = safe_encode(str(fnv32a(json.dumps(tmpl, sort_keys=True).encode())))
    return f"{sts['metadata']['name']}-{digest}"


def ordinal(sts_name: str, pod: dict) -> int | None:
    """The ordinal in `<set>-<n>`, or None for a pod whose name does not have that form."""
    name = pod["metadata"]["name"]
    prefix, _, tail = name.rpartition("-")
    if prefix != sts_name or not tail.isdigit() or (tail != "0" and tail.startswith("0")):
        return None
    return int(tail)


def pod_for(sts: dict, n: int) -> dict:
    """Pod `n` of the set: the template, the stable name as hostname, `serviceName` as subdomain."""
    sts_spec = sts.get("spec") or {}
    tmpl = sts_spec.get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    name = f"{sts['metadata']['name']}-{n}"
    spec = copy.deepcopy(tmpl.get("spec") or {})
    spec["hostname"] = name
    if sts_spec.get("serviceName"):
        spec["subdomain"] = sts_spec["serviceName"]
    labels = {**(tmeta.get("labels") or {}), HASH_LABEL: revision(sts), POD_NAME_LABEL: name,
              POD_INDEX_LABEL: str(n)}
    meta = {"name": name, "namespace": sts["metadata"]["namespace"], "labels": labels,
            "ownerReferences": [owner_ref_for(sts)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _healthy(pod: dict) -> bool:
    return (not pod_is_terminating(pod) and (pod.get("status") or {}).get("phase") == "Running"
            and pod_is_ready(pod))


@dataclass
class Plan:
    create: list[int] = field(default_factory=list)  # ordinals
    delete: list[dict] = field(default_factory=list)
    status: dict = field(default_factory=dict)


def plan(sts: dict, pods: list[dict], now: float) -> Plan:
    """What to create and delete now, and the status (pure; upstream's StatefulSet semantics)."""
    spec = sts.get("spec") or {}
    name = sts["metadata"]["name"]
    replicas = int(spec.get("replicas", 1) or 0)
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    ordered = (spec.get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
    strategy = spec.get("updateStrategy") or {}
    mrs = int(spec.get("minReadySeconds") or 0)
    update_rev = revision(sts)
    status = sts.get("status") or {}
    current_rev = status.get("currentRevision") or update_rev

    by_ord: dict[int, dict] = {}
    for p in pods:
        n = ordinal(name, p)
        if n is not None and (n not in by_ord or pod_is_terminating(by_ord[n])):
            by_ord[n] = p
    wanted = range(start, start + replicas)
    out = Plan()
    stop = False
    for n in wanted:  # create, replace failed, wait in order
        if stop or len(out.create) >= BURST_REPLICAS:
            break  # bounded work per sync, whatever `replicas` says (int32 allows 2^31 - 1)
        p = by_ord.get(n)
        if p is None:
            out.create.append(n)
            stop = ordered
        elif pod_is_terminal(p) and not pod_is_terminating(p):
            out.delete.append(p)  # comes back under the same name on a later sync
            stop = ordered
        elif not _healthy(p):
            stop = ordered
    condemned = sorted((p for n, p in by_ord.items() if n not in wanted), key=lambda p: -ordinal(name, p))
    for p in condemned:  # scale down from the top; OrderedReady one at a time, all others healthy
        if pod_is_terminating(p):
            if ordered:
                stop = True
            continue
        if ordered and (stop or any(not _healthy(q) for q in by_ord.values() if q is not p)):
            stop = True
            continue
        out.delete.append(p)
        if ordered:
            stop = True
    if not stop and (strategy.get("type") or "RollingUpdate") == "RollingUpdate" and not out.create \
            and not out.delete:
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for n in reversed(wanted):
            if n - start < partition:
                break
            p = by_ord.get(n)
            if p is None or not _healthy(p):
                break  # wait for it before touching a lower ordinal
            if p["metadata"].get("labels", {}).get(HASH_LABEL) != update_rev:
                out.delete.append(p)
                break

    live = [p for p in by_ord.values() if not pod_is_terminating(p) and not pod_is_terminal(p)]
    updated = sum(1 for p in live if p["metadata"].get("labels", {}).get(HASH_LABEL) == update_rev)
    ready = sum(1 for p in live if pod_is_ready(p))
    if updated == replicas == ready and len(live) == replicas:
        current_rev = update_rev  # the rollout is complete
    current = sum(1 for p in live if p["metadata"].get("labels", {}).get(HASH_LABEL) == current_rev)
    out.status = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(live),
                  "readyReplicas": ready,
                  "availableReplicas": sum(1 for p in live if pod_is_available(p, mrs, now)),
                  "currentReplicas": current, "updatedReplicas": updated,
                  "currentRevision": current_rev, "updateRevision": update_rev, "collisionCount": 0}
    return out


class StatefulSetController(OwnedPodHandlers, Controller):
    name = "statefulset"
    component = "statefulset-controller"
    workers = 2

    owner_kind = "StatefulSet"  # OwnedPodHandlers: pods whose controller reference is a StatefulSet
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.sets = ctx.factory.informer("statefulsets")
        self.pods = ctx.factory.informer("pods", indexers={"controller": controller_index})
        self.sets.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_added, on_update=lambda o, n: self._pod_changed(n),
                              on_delete=lambda p: self._pod_changed(p, gone=True))

    async def sync(self, key: str) -> None:
        sts = self.sets.store.get(key)
        if sts is None:
            self.expectations.delete(key)
            return
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        pods = list(self.pods.store.by_index("controller", sts["metadata"]["uid"]))
        p = plan(sts, pods, time.time())
        if self.expectations.satisfied(key) and not sts["metadata"].get("deletionTimestamp"):
            if p.delete:
                self.expectations.expect_deletions(key, [f"{ns}/{x['metadata']['name']}" for x in p.delete])
                for victim in p.delete:
                    vname = victim["metadata"]["name"]
                    try:
                        await self.client.delete("pods", vname, namespace=ns)
                        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                                            f"delete Pod {vname} in StatefulSet {name} successful")
                    except NotFound:
                        self.expectations.deletion_observed(key, f"{ns}/{vname}")
            if p.create:
                self.expectations.expect_creations(key, len(p.create))
                for n in p.create:
                    pod = pod_for(sts, n)
                    try:
                        await self.client.create("pods", pod, namespace=ns)
                    except AlreadyExists:  # the old pod of that name is still going away
                        self.expectations.creation_observed(key)
                        continue
                    except Exception as e:
                        self.expectations.creation_observed(key)
                        self.recorder.event(sts, "Warning", "FailedCreate",
                                            f"create Pod {pod['metadata']['name']} in StatefulSet {name} failed "
                                            f"error: {e}")
                        raise
                    self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                        f"create Pod {pod['metadata']['name']} in StatefulSet {name} successful")
        current = sts.get("status") or {}
        if any(current.get(k) != v for k, v in p.status.items()):
            try:
                await self.client.patch("statefulsets", name, {"status": p.status}, namespace=ns,
                                        subresource="status")
            except NotFound:
                return
        mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs and p.status["readyReplicas"] != p.status["availableReplicas"]:
            self.queue.add_after(key, mrs)
