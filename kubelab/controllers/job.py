"""The Job controller: run pods until `completions` of them succeed, or give up.

Counting finished pods must survive their deletion (a user's `kubectl delete pod`, the
garbage collector), so, as upstream's job tracking, every pod a Job creates carries the
finalizer `batch.kubernetes.io/job-tracking`. A finished pod is counted in two steps:

1. one status write adds it to `status.succeeded`/`failed` *and* lists its uid in
   `status.uncountedTerminatedPods` (written under the Job's resourceVersion, so a lost
   race recounts nothing);
2. the finalizer is removed from the pod; once no pod with a listed uid still carries the
   finalizer, the uid leaves the list.

So a pod is counted exactly once: "terminal and finalizer present and uid not listed" is
the only state that counts. A pod being deleted before it finished counts as failed and is
replaced at once (podReplacementPolicy TerminatingOrFailed, the default).

The decisions are pure (`plan`), the controller only applies them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from kubelab.client import Conflict, NotFound
from kubelab.timestamps import format_time, parse_epoch

from .base import Context, Controller
from .replicaset import Expectations, controller_index, deletion_order
from .util import condition, controller_ref, owner_ref_for, pod_is_ready

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
BURST = 500
TERMINAL_CONDITIONS = ("Complete", "Failed")


def _spec(job: dict) -> dict:
    return job.get("spec") or {}


def _status(job: dict) -> dict:
    return job.get("status") or {}


def is_finished(job: dict) -> bool:
    return any((c.get("status") == "True" and c.get("type") in TERMINAL_CONDITIONS)
               for c in _status(job).get("conditions") or [])


def finished_at(job: dict) -> float | None:
    """When the Job finished: completionTime for Complete, the condition's time for Failed."""
    for c in _status(job).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in TERMINAL_CONDITIONS:
            return parse_epoch(_status(job).get("completionTime") or c.get("lastTransitionTime"))
    return None


def _has_finalizer(pod: dict) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def _restarts(pod: dict) -> int:
    return sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _cond(ctype: str, reason: str, message: str, now: str, status: str = "True") -> dict:
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastProbeTime": now, "lastTransitionTime": now}


@dataclass
class Plan:
    """What one sync does to a Job and its pods (computed by `plan`, applied by the controller)."""
    status: dict                                            # the Job's new status
    create: int = 0                                         # pods to create
    delete: list[dict] = field(default_factory=list)        # active pods to delete
    release: list[dict] = field(default_factory=list)       # pods whose finalizer to remove (after status)
    requeue_after: float | None = None                      # activeDeadlineSeconds still running
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def plan(job: dict, pods: list[dict], now: float) -> Plan:
    """The Job's next step given all the pods it owns (pure)."""
    spec, old = _spec(job), _status(job)
    now_s = format_time(now)
    status: dict = {k: v for k, v in old.items()}
    uncounted = old.get("uncountedTerminatedPods") or {}
    listed = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
    new_succ, new_fail, release = [], [], []
    for p in pods:
        uid = p["metadata"].get("uid")
        if not _has_finalizer(p):
            continue
        if uid in listed:
            release.append(p)  # counted already; the finalizer removal did not land yet
        elif _phase(p) == "Succeeded":
            new_succ.append(uid)
        elif _phase(p) == "Failed" or p["metadata"].get("deletionTimestamp"):
            new_fail.append(uid)
    succeeded = int(old.get("succeeded") or 0) + len(new_succ)
    failed = int(old.get("failed") or 0) + len(new_fail)
    still_held = {p["metadata"].get("uid") for p in pods if _has_finalizer(p)}
    status["uncountedTerminatedPods"] = {
        "succeeded": sorted((set(uncounted.get("succeeded") or []) & still_held) | set(new_succ)),
        "failed": sorted((set(uncounted.get("failed") or []) & still_held) | set(new_fail))}
    newly = {*new_succ, *new_fail}
    release += [p for p in pods if p["metadata"].get("uid") in newly]
    status["succeeded"], status["failed"] = succeeded, failed
    active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")]
    conditions = [dict(c) for c in old.get("conditions") or []]
    out = Plan(status=status, release=release)

    def set_condition(c: dict) -> None:
        for i, existing in enumerate(conditions):
            if existing.get("type") == c["type"]:
                if existing.get("status") == c["status"]:
                    return
                conditions[i] = c
                return
        conditions.append(c)

    finished = is_finished(job)
    suspended = bool(spec.get("suspend"))
    if not finished:
        if suspended:
            if not condition(job, "Suspended") or condition(job, "Suspended").get("status") != "True":
                set_condition(_cond("Suspended", "JobSuspended", "Job suspended", now_s))
                out.events.append(("Normal", "Suspended", "Job suspended"))
            status.pop("startTime", None)
            out.delete = list(active)
        else:
            if condition(job, "Suspended") and condition(job, "Suspended").get("status") == "True":
                set_condition(_cond("Suspended", "JobResumed", "Job resumed", now_s, "False"))
                out.events.append(("Normal", "Resumed", "Job resumed"))
            status.setdefault("startTime", now_s)
            failure = _failure(job, spec, status, active, failed, now)
            completions = spec.get("completions")
            done = (succeeded >= completions) if completions is not None else (succeeded > 0 and not active)
            if failure:
                reason, message = failure
                set_condition(_cond("FailureTarget", reason, message, now_s))
                set_condition(_cond("Failed", reason, message, now_s))
                out.events.append(("Warning", reason, message))
                out.delete = list(active)
                finished = True
            elif done:
                set_condition(_cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now_s))
                set_condition(_cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now_s))
                status["completionTime"] = now_s
                out.events.append(("Normal", "Completed", "Job completed"))
                out.delete = list(active)
                finished = True
            else:
                parallelism = int(spec.get("parallelism") if spec.get("parallelism") is not None else 1)
                if completions is not None:
                    want = min(parallelism, max(completions - succeeded, 0))
                else:  # a work queue: after the first success, the others finish on their own
                    want = len(active) if succeeded > 0 else parallelism
                diff = want - len(active)
                if diff > 0:
                    out.create = min(diff, BURST)
                elif diff < 0:
                    out.delete = deletion_order(active)[:min(-diff, BURST)]
                ads = spec.get("activeDeadlineSeconds")
                start = parse_epoch(status.get("startTime"))
                if ads is not None and start is not None:
                    out.requeue_after = max(start + int(ads) - now, 0.0) + 0.5
    remaining = [p for p in active if p not in out.delete]
    status["active"] = len(remaining)
    status["ready"] = sum(1 for p in remaining if pod_is_ready(p))
    status["terminating"] = sum(1 for p in pods if p["metadata"].get("deletionTimestamp")
                                and _phase(p) not in ("Succeeded", "Failed")) + len(out.delete)
    if conditions:
        status["conditions"] = conditions
    return out


def _failure(job: dict, spec: dict, status: dict, active: list[dict], failed: int,
             now: float) -> tuple[str, str] | None:
    """(reason, message) when the Job has failed: too many failures, or past its deadline."""
    backoff = int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6)
    restarts = 0
    template_spec = (spec.get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") == "OnFailure":  # failures are in-place restarts there
        restarts = sum(_restarts(p) for p in active)
    if failed + restarts > backoff:
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    ads = spec.get("activeDeadlineSeconds")
    start = parse_epoch(status.get("startTime"))
    if ads is not None and start is not None and now - start >= int(ads):
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return None


def ttl_remaining(job: dict, now: float) -> float | None:
    """Seconds until a finished Job with ttlSecondsAfterFinished may be deleted (≤ 0: now)."""
    ttl = _spec(job).get("ttlSecondsAfterFinished")
    at = finished_at(job)
    if ttl is None or at is None or not is_finished(job):
        return None
    return at + int(ttl) - now


def pod_for(job: dict) -> dict:
    """A pod of the Job's template, owned by it and carrying the tracking finalizer."""
    tmpl = _spec(job).get("template") or {}
    tmeta = tmpl.get("metadata") or {}
    meta = {"generateName": f"{job['metadata']['name']}-", "namespace": job["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}), "ownerReferences": [owner_ref_for(job)],
            "finalizers": [TRACKING_FINALIZER]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": dict(tmpl.get("spec") or {})}


class JobController(Controller):
    name = "job"
    component = "job-controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.expectations = Expectations()
        self.jobs = ctx.factory.informer("jobs")
        self.pods = ctx.factory.informer("pods", indexers={"controller": controller_index})
        self.jobs.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self.enqueue)
        self.pods.add_handler(on_add=self._pod_added, on_update=lambda o, n: self._pod_changed(n),
                              on_delete=self._pod_changed)

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "Job":
            return None
        return f"{pod['metadata']['namespace']}/{ref['name']}"

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_changed(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            if pod["metadata"].get("deletionTimestamp"):
                self.expectations.deletion_observed(key, f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        job = self.jobs.store.get(key)
        if job is None:
            self.expectations.delete(key)
            return
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        pods = list(self.pods.store.by_index("controller", job["metadata"]["uid"]))
        now = time.time()
        if is_finished(job):
            await self._release([p for p in pods if _has_finalizer(p)])
            left = ttl_remaining(job, now)
            if left is not None:
                if left <= 0:
                    try:
                        await self.client.delete("jobs", name, namespace=ns, propagation_policy="Foreground",
                                                 preconditions={"uid": job["metadata"]["uid"]})
                    except NotFound:
                        pass
                else:
                    self.queue.add_after(key, left + 0.5)
            return
        if job["metadata"].get("deletionTimestamp") or not self.expectations.satisfied(key):
            return
        p = plan(job, pods, now)
        if p.status != _status(job):
            try:
                job = await self.client.patch(
                    "jobs", name, {"metadata": {"resourceVersion": job["metadata"]["resourceVersion"]},
                                   "status": p.status}, namespace=ns, subresource="status")
            except NotFound:
                return
        for etype, reason, message in p.events:
            self.recorder.event(job, etype, reason, message)
        await self._release(p.release)
        if p.delete:
            await self._delete(key, job, p.delete)
        if p.create:
            await self._create(key, job, p.create)
        if p.requeue_after is not None:
            self.queue.add_after(key, p.requeue_after)

    async def _release(self, pods: list[dict]) -> None:
        """Remove the tracking finalizer (the pod has been counted, or the Job is over)."""
        async def one(p: dict) -> None:
            fins = [f for f in p["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER]
            try:
                await self.client.patch("pods", p["metadata"]["name"],
                                        {"metadata": {"finalizers": fins or None,
                                                      "resourceVersion": p["metadata"]["resourceVersion"]}},
                                        namespace=p["metadata"]["namespace"])
            except (NotFound, Conflict):
                pass  # gone, or changed: the next sync sees its new state
        await asyncio.gather(*(one(p) for p in pods))

    async def _create(self, key: str, job: dict, n: int) -> None:
        self.expectations.expect_creations(key, n)
        body = pod_for(job)
        results = await asyncio.gather(*(self.client.create("pods", body, namespace=job["metadata"]["namespace"])
                                         for _ in range(n)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        for r in results:
            if not isinstance(r, Exception):
                self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {r['metadata']['name']}")
        if errors:
            self.expectations.creation_observed(key, len(errors))
            self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {errors[0]}")
            raise errors[0]

    async def _delete(self, key: str, job: dict, victims: list[dict]) -> None:
        ns = job["metadata"]["namespace"]
        self.expectations.expect_deletions(key, [f"{ns}/{p['metadata']['name']}" for p in victims])

        async def one(p: dict) -> None:
            try:
                await self.client.delete("pods", p["metadata"]["name"], namespace=ns)
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except Exception:
                self.expectations.deletion_observed(key, f"{ns}/{p['metadata']['name']}")  # never coming
                raise
        errors = [r for r in await asyncio.gather(*(one(p) for p in victims), return_exceptions=True)
                  if isinstance(r, Exception) and not isinstance(r, NotFound)]
        if errors:
            raise errors[0]
