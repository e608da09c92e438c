"""The Deployment controller: ReplicaSets per pod template, rolled by strategy.

The pure core: `resolve_fenceposts` (maxSurge/maxUnavailable → numbers), `new_rs_replicas`
and `old_rs_scale_down` (one RollingUpdate step, as upstream's rolling.go), `recreate_step`,
and `deployment_status` (what `kubectl rollout status` reads: observedGeneration,
updated/ready/available replicas, Available and Progressing conditions).
"""

from __future__ import annotations

import copy
import json
import math
import time

from kubelab.client import AlreadyExists, Conflict, NotFound
from kubelab.timestamps import format_time, parse_epoch

from .base import Context, Controller
from .replicaset import controller_index
from .util import controller_ref, fnv32a, owner_ref_for, pod_is_terminal, safe_encode

REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"


# ---- pure ------------------------------------------------------------------------------

def _int_or_percent(value, total: int, *, round_up: bool) -> int:
    if value is None:
        value = "25%"
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        v = int(s[:-1]) * total / 100
        return int(math.ceil(v)) if round_up else int(math.floor(v))
    return int(s)


def replicas_of(obj: dict) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def strategy_of(d: dict) -> dict:
    return (d.get("spec") or {}).get("strategy") or {"type": "RollingUpdate"}


def resolve_fenceposts(deployment: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers; both 0 becomes unavailable 1, as upstream."""
    strategy = strategy_of(deployment)
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    replicas = replicas_of(deployment)
    surge = _int_or_percent(ru.get("maxSurge"), replicas, round_up=True)
    unavailable = _int_or_percent(ru.get("maxUnavailable"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def semantic(value):
    """Drop nulls and empty maps/lists, recursively: apimachinery's Semantic.DeepEqual treats
    them as absent, and clients send them (kubectl rollout undo sends
    `creationTimestamp: null` and `resources: {}`)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = semantic(v)
            if v is None or v == {} or v == []:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def template_hash(template: dict, collision_count: int = 0) -> str:
    data = json.dumps(semantic(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def _strip_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def templates_equal(a: dict, b: dict) -> bool:
    """Pod templates equal ignoring the pod-template-hash label (upstream EqualIgnoreHash)."""
    return semantic(_strip_hash(a)) == semantic(_strip_hash(b))


def revision_of(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def new_rs_replicas(deployment: dict, new_rs: dict, all_rss: list[dict]) -> int:
    """How many replicas the new ReplicaSet should have after one step."""
    replicas = replicas_of(deployment)
    if strategy_of(deployment).get("type") == "Recreate":
        return replicas
    current_new = replicas_of(new_rs)
    if current_new >= replicas:
        return replicas
    surge, _ = resolve_fenceposts(deployment)
    total = sum(replicas_of(rs) for rs in all_rss)
    max_total = replicas + surge
    if total >= max_total:
        return current_new
    return current_new + min(max_total - total, replicas - current_new)


def old_rs_scale_down(deployment: dict, new_rs: dict, old_rss: list[dict]) -> dict[str, int]:
    """New spec.replicas for old ReplicaSets (only those that change): first drop their
    unhealthy replicas, then scale down while keeping replicas - maxUnavailable available."""
    replicas = replicas_of(deployment)
    _, unavailable = resolve_fenceposts(deployment)
    all_rss = [new_rs, *old_rss]
    all_pods = sum(replicas_of(rs) for rs in all_rss)
    min_available = replicas - unavailable
    new_unavailable = replicas_of(new_rs) - int((new_rs.get("status") or {}).get("availableReplicas") or 0)
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    ordered = sorted(old_rss, key=lambda rs: (rs["metadata"].get("creationTimestamp") or "", rs["metadata"]["name"]))
    target = {rs["metadata"]["name"]: replicas_of(rs) for rs in ordered}
    # 1. unhealthy replicas of old sets go first (they count for nothing)
    cleaned = 0
    for rs in ordered:
        if cleaned >= max_scaled_down:
            break
        name = rs["metadata"]["name"]
        if target[name] == 0:
            continue
        available = int((rs.get("status") or {}).get("availableReplicas") or 0)
        unhealthy = target[name] - available
        if unhealthy <= 0:
            continue
        down = min(unhealthy, max_scaled_down - cleaned)
        target[name] -= down
        cleaned += down
    # 2. then available ones, as long as min_available stays available
    available_total = sum(int((rs.get("status") or {}).get("availableReplicas") or 0) for rs in all_rss)
    room = available_total - min_available
    room = min(room, max_scaled_down - cleaned)
    for rs in ordered:
        if room <= 0:
            break
        name = rs["metadata"]["name"]
        down = min(target[name], room)
        target[name] -= down
        room -= down
    return {n: v for n, v in target.items() if v != replicas_of(next(r for r in ordered if r["metadata"]["name"] == n))}


def proportional_scale(deployment: dict, new_rs: dict, old_rss: list[dict]) -> dict[str, int]:
    """A Deployment scaled in the middle of a rollout: spread the change over the active
    ReplicaSets in proportion to their sizes (leftover to the largest), as upstream's
    `scale()`, instead of piling it all on one. {} when this is not such a moment."""
    active = [rs for rs in [new_rs, *old_rss] if replicas_of(rs) > 0]
    if len(active) <= 1:
        return {}
    replicas = replicas_of(deployment)
    if (new_rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS) == str(replicas):
        return {}  # not a scale event: the rollout itself moves the sets
    surge, _ = resolve_fenceposts(deployment)
    allowed = replicas + surge if replicas > 0 else 0
    total = sum(replicas_of(rs) for rs in active)
    to_add = allowed - total
    if to_add == 0:
        return {}
    ordered = sorted(active, key=lambda rs: (replicas_of(rs), rs["metadata"].get("creationTimestamp") or ""),
                     reverse=True)
    target = {}
    added = 0
    for rs in ordered:
        share = int(replicas_of(rs) * to_add / total)  # truncates toward zero, both directions
        target[rs["metadata"]["name"]] = replicas_of(rs) + share
        added += share
    first = ordered[0]["metadata"]["name"]
    target[first] += to_add - added
    target = {n: max(v, 0) for n, v in target.items()}
    return {n: v for n, v in target.items()
            if v != replicas_of(next(rs for rs in active if rs["metadata"]["name"] == n))}


def recreate_step(deployment: dict, new_rs: dict | None, old_rss: list[dict], old_pods_running: int) -> dict[str, int]:
    """Recreate: old sets to 0 first; the new set up only once no old pod runs."""
    changes = {rs["metadata"]["name"]: 0 for rs in old_rss if replicas_of(rs) > 0}
    if changes or old_pods_running > 0:
        return changes
    if new_rs is not None and replicas_of(new_rs) != replicas_of(deployment):
        return {new_rs["metadata"]["name"]: replicas_of(deployment)}
    return {}


def _condition(ctype: str, status: str, reason: str, message: str, old: dict | None, now: str) -> dict:
    c = {"type": ctype, "status": status, "reason": reason, "message": message,
         "lastUpdateTime": now, "lastTransitionTime": now}
    if old:
        if old.get("status") == status:
            c["lastTransitionTime"] = old.get("lastTransitionTime") or now
        if old.get("status") == status and old.get("reason") == reason and old.get("message") == message:
            c["lastUpdateTime"] = old.get("lastUpdateTime") or now
    return c


def progress_deadline(deployment: dict) -> int:
    pds = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return 600 if pds is None else int(pds)


def deployment_status(deployment: dict, new_rs: dict | None, all_rss: list[dict], *, now: str,
                      created_new: bool = False, now_ts: float | None = None) -> dict:
    """The status `kubectl rollout status` understands (pure). A rollout that has not moved
    (no replica count changed) for progressDeadlineSeconds gets Progressing=False,
    ProgressDeadlineExceeded, which makes `kubectl rollout status` fail, as upstream."""
    def s(rs, f):
        return int((rs.get("status") or {}).get(f) or 0)
    replicas = replicas_of(deployment)
    total = sum(s(rs, "replicas") for rs in all_rss)
    available = sum(s(rs, "availableReplicas") for rs in all_rss)
    status = {"observedGeneration": deployment["metadata"].get("generation", 1),
              "replicas": total,
              "updatedReplicas": s(new_rs, "replicas") if new_rs else 0,
              "readyReplicas": sum(s(rs, "readyReplicas") for rs in all_rss),
              "availableReplicas": available,
              "unavailableReplicas": max(replicas - available, 0)}
    old = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}
    _, unavailable = resolve_fenceposts(deployment)
    if available >= replicas - unavailable:
        avail = _condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                           old.get("Available"), now)
    else:
        avail = _condition("Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", old.get("Available"), now)
    rs_name = new_rs["metadata"]["name"] if new_rs else ""
    complete = new_rs is not None and status["updatedReplicas"] == replicas and total == replicas and \
        available == replicas
    if complete:
        prog = _condition("Progressing", "True", "NewReplicaSetAvailable",
                          f'ReplicaSet "{rs_name}" has successfully progressed.', old.get("Progressing"), now)
    elif created_new:
        prog = _condition("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"',
                          old.get("Progressing"), now)
    elif new_rs is not None:
        old_status = deployment.get("status") or {}
        moved = any(status[k] != old_status.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas",
                                                             "availableReplicas"))
        prev = old.get("Progressing")
        last = parse_epoch((prev or {}).get("lastUpdateTime"))
        if prev and prev.get("reason") == "ProgressDeadlineExceeded" and not moved:
            prog = prev
        elif not moved and last is not None and now_ts is not None and now_ts - last > progress_deadline(deployment):
            prog = _condition("Progressing", "False", "ProgressDeadlineExceeded",
                              f'ReplicaSet "{rs_name}" has timed out progressing.', prev, now)
        else:
            prog = _condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.',
                              prev, now)
            if moved:
                prog["lastUpdateTime"] = now
    else:
        prog = old.get("Progressing")
    status["conditions"] = [c for c in (avail, prog) if c]
    cc = (deployment.get("status") or {}).get("collisionCount")
    if cc:
        status["collisionCount"] = cc
    return status


def status_differs(current: dict, desired: dict) -> bool:
    def strip(st):
        return {**st, "conditions": [{k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
                                     for c in st.get("conditions") or []]}
    return strip(current or {}) != strip(desired)


def new_replicaset(deployment: dict, *, revision: int, replicas: int, collision_count: int = 0) -> dict:
    tmpl = copy.deepcopy((deployment.get("spec") or {}).get("template") or {})
    h = template_hash(tmpl, collision_count)
    tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
    sel = copy.deepcopy((deployment.get("spec") or {}).get("selector") or {})
    sel.setdefault("matchLabels", {})[HASH_LABEL] = h
    surge, _ = resolve_fenceposts(deployment)
    meta = deployment["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in (REVISION, "kubectl.kubernetes.io/last-applied-configuration")}
    annotations.update({REVISION: str(revision), DESIRED_REPLICAS: str(replicas_of(deployment)),
                        MAX_REPLICAS: str(replicas_of(deployment) + surge)})
    spec = {"replicas": replicas, "selector": sel, "template": tmpl}
    if (deployment.get("spec") or {}).get("minReadySeconds"):
        spec["minReadySeconds"] = deployment["spec"]["minReadySeconds"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                         "labels": dict(tmpl["metadata"]["labels"]), "annotations": annotations,
                         "ownerReferences": [owner_ref_for(deployment)]},
            "spec": spec}


# ---- the loop --------------------------------------------------------------------------

class DeploymentController(Controller):
    name = "deployment"
    component = "deployment-controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.deployments = ctx.factory.informer("deployments")
        self.rss = ctx.factory.informer("replicasets", indexers={"controller": controller_index})
        self.pods = ctx.factory.informer("pods", indexers={"controller": controller_index})
        self.deployments.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n),
                                     on_delete=self.enqueue)
        self.rss.add_handler(on_add=self._rs_changed, on_update=lambda o, n: self._rs_changed(n),
                             on_delete=self._rs_changed)
        self.pods.add_handler(on_delete=self._pod_deleted)
        self._deadlines: dict[str, float] = {}

    def _rs_changed(self, rs: dict) -> None:
        ref = controller_ref(rs)
        if ref and ref.get("kind") == "Deployment":
            self.queue.add(f"{rs['metadata']['namespace']}/{ref['name']}")

    def _pod_deleted(self, pod: dict) -> None:
        ref = controller_ref(pod)  # Recreate waits for old pods to be gone
        if ref and ref.get("kind") == "ReplicaSet":
            rs = self.rss.store.get(f"{pod['metadata']['namespace']}/{ref['name']}")
            if rs:
                self._rs_changed(rs)

    async def _scale(self, d: dict, rs: dict, replicas: int) -> dict:
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = replicas
        ann = body["metadata"].setdefault("annotations", {})
        surge, _ = resolve_fenceposts(d)
        ann[DESIRED_REPLICAS] = str(replicas_of(d))
        ann[MAX_REPLICAS] = str(replicas_of(d) + surge)
        out = await self.client.replace("replicasets", rs["metadata"]["name"], body, namespace=rs["metadata"]["namespace"])
        old = replicas_of(rs)
        verb = "up" if replicas > old else "down"
        self.recorder.event(d, "Normal", "ScalingReplicaSet",
                            f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {replicas}")
        return out

    async def sync(self, key: str) -> None:
        d = self.deployments.store.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        ns = d["metadata"]["namespace"]
        rss = [rs for rs in self.rss.store.by_index("controller", d["metadata"]["uid"])
               if not rs["metadata"].get("deletionTimestamp")]
        template = (d.get("spec") or {}).get("template") or {}
        new_rs = next((rs for rs in sorted(rss, key=lambda r: r["metadata"].get("creationTimestamp") or "")
                       if templates_equal(rs["spec"].get("template") or {}, template)), None)
        old_rss = [rs for rs in rss if rs is not new_rs]
        max_old_rev = max((revision_of(rs) for rs in old_rss), default=0)
        created_new = False
        if (d.get("spec") or {}).get("paused"):
            await self._write_status(d, new_rs, rss)
            return
        if new_rs is None:
            is_recreate = strategy_of(d).get("type") == "Recreate"
            if is_recreate:
                initial = 0 if any(replicas_of(rs) > 0 for rs in old_rss) else replicas_of(d)
            else:
                placeholder = {"metadata": {"name": ""}, "spec": {"replicas": 0}}
                initial = new_rs_replicas(d, placeholder, old_rss)
            new_rs, created_new = await self._create_rs(d, revision=max_old_rev + 1, replicas=initial)
            if new_rs is None:
                return
            rss.append(new_rs)
            if initial and created_new:
                self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                    f"Scaled up replica set {new_rs['metadata']['name']} from 0 to {initial}")
        elif revision_of(new_rs) <= max_old_rev:  # a rollback to an older template: it becomes newest
            body = copy.deepcopy(new_rs)
            body["metadata"].setdefault("annotations", {})[REVISION] = str(max_old_rev + 1)
            new_rs = await self.client.replace("replicasets", new_rs["metadata"]["name"], body, namespace=ns)
        rev = str(revision_of(new_rs))
        if (d["metadata"].get("annotations") or {}).get(REVISION) != rev:
            d = await self.client.patch("deployments", d["metadata"]["name"],
                                        {"metadata": {"annotations": {REVISION: rev}}}, namespace=ns)

        if strategy_of(d).get("type") == "Recreate":
            old_uids = {rs["metadata"]["uid"] for rs in old_rss}
            running = sum(1 for uid in old_uids for p in self.pods.store.by_index("controller", uid)
                          if not pod_is_terminal(p))
            for name, n in recreate_step(d, new_rs, old_rss, running).items():
                rs = next(r for r in rss if r["metadata"]["name"] == name)
                await self._scale(d, rs, n)
        elif changes := proportional_scale(d, new_rs, old_rss):
            for name, n in changes.items():
                rs = next(r for r in rss if r["metadata"]["name"] == name)
                await self._scale(d, rs, n)
        else:
            target = new_rs_replicas(d, new_rs, rss)
            if target != replicas_of(new_rs):
                await self._scale(d, new_rs, target)
            else:
                for name, n in old_rs_scale_down(d, new_rs, old_rss).items():
                    rs = next(r for r in old_rss if r["metadata"]["name"] == name)
                    await self._scale(d, rs, n)
        await self._cleanup(d, old_rss)
        await self._write_status(d, new_rs, rss, created_new=created_new)

    async def _create_rs(self, d: dict, *, revision: int, replicas: int) -> tuple[dict | None, bool]:
        """(the new ReplicaSet, whether this call created it); (None, False) on a hash collision."""
        ns = d["metadata"]["namespace"]
        cc = int((d.get("status") or {}).get("collisionCount") or 0)
        body = new_replicaset(d, revision=revision, replicas=replicas, collision_count=cc)
        try:
            rs = await self.client.create("replicasets", body, namespace=ns)
        except AlreadyExists:
            existing = await self.client.get("replicasets", body["metadata"]["name"], namespace=ns)
            ref = controller_ref(existing)
            if ref and ref.get("uid") == d["metadata"]["uid"] and \
                    templates_equal(existing["spec"].get("template") or {}, d["spec"]["template"]):
                return existing, False  # ours; the informer had not shown it yet
            await self.client.patch("deployments", d["metadata"]["name"], {"status": {"collisionCount": cc + 1}},
                                    namespace=ns, subresource="status")
            return None, False  # retry with the new hash when the update comes back
        if not replicas:
            self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Created new replica set {rs['metadata']['name']}")
        return rs, True

    async def _cleanup(self, d: dict, old_rss: list[dict]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        idle = [rs for rs in old_rss if replicas_of(rs) == 0 and not int((rs.get("status") or {}).get("replicas") or 0)]
        idle.sort(key=revision_of)
        for rs in idle[:max(len(idle) - limit, 0)]:
            try:
                await self.client.delete("replicasets", rs["metadata"]["name"], namespace=rs["metadata"]["namespace"])
            except NotFound:
                pass

    async def _write_status(self, d: dict, new_rs: dict | None, rss: list[dict], *, created_new: bool = False) -> None:
        now = time.time()
        status = deployment_status(d, new_rs, rss, now=format_time(now), created_new=created_new, now_ts=now)
        prog = next((c for c in status["conditions"] if c["type"] == "Progressing"), None)
        key = f"{d['metadata']['namespace']}/{d['metadata']['name']}"
        if prog and prog.get("reason") == "ReplicaSetUpdated" and self._deadlines.get(key, 0) < time.monotonic():
            self._deadlines[key] = time.monotonic() + progress_deadline(d) + 1.0  # look again then
            self.queue.add_after(key, progress_deadline(d) + 1.0)
        if not status_differs(d.get("status") or {}, status):
            return
        try:
            await self.client.patch("deployments", d["metadata"]["name"], {"status": status},
                                    namespace=d["metadata"]["namespace"], subresource="status")
        except (NotFound, Conflict):
            pass


