"""The CronJob controller: create a Job at each time the schedule names.

Schedules are read by `croniter` (five fields or an `@hourly`-style macro; the API server
refuses anything else) in `spec.timeZone` (zoneinfo; the controller's UTC when unset). The
decisions are pure (`next_action`), as upstream's:

- the most recent scheduled time in (last schedule, now] is the one to run; older missed
  ones are skipped (more than 100 missed is reported, as upstream);
- past `startingDeadlineSeconds` after that time, it is missed, not started late;
- `concurrencyPolicy` Forbid skips while a Job is active, Replace deletes the active ones;
- `suspend` creates nothing;
- finished Jobs beyond `successfulJobsHistoryLimit`/`failedJobsHistoryLimit` are deleted,
  oldest first.

A Job's name is `<cronjob>-<minutes since the epoch of its scheduled time>`, so a retried
sync creates the same Job again and gets AlreadyExists instead of a duplicate.
"""

from __future__ import annotations

import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime

from croniter import CroniterError, croniter

from kubelab.client import AlreadyExists, NotFound
from kubelab.timestamps import format_time, parse_epoch

from .base import Context, Controller
from .job import is_finished
from .replicaset import controller_index
from .util import controller_ref, owner_ref_for

MAX_MISSED = 100
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _spec(cj: dict) -> dict:
    return cj.get("spec") or {}


def schedule_times(cj: dict, since: float, now: float, *, limit: int = MAX_MISSED + 1) -> list[float]:
    """Scheduled times t with since < t <= now, in order, at most `limit` of them (pure)."""
    tz = zoneinfo.ZoneInfo(_spec(cj).get("timeZone") or "UTC")
    it = croniter(_spec(cj)["schedule"], datetime.fromtimestamp(since, tz))
    out: list[float] = []
    while len(out) < limit:
        t = it.get_next(float)
        if t > now:
            break
        out.append(t)
    return out


def latest_time(cj: dict, now: float) -> float:
    """The most recent scheduled time at or before `now` (pure)."""
    tz = zoneinfo.ZoneInfo(_spec(cj).get("timeZone") or "UTC")
    it = croniter(_spec(cj)["schedule"], datetime.fromtimestamp(now + 1, tz))
    t = it.get_prev(float)
    while t > now:
        t = it.get_prev(float)
    return t


def next_time(cj: dict, now: float) -> float:
    tz = zoneinfo.ZoneInfo(_spec(cj).get("timeZone") or "UTC")
    return croniter(_spec(cj)["schedule"], datetime.fromtimestamp(now, tz)).get_next(float)


def job_failed(job: dict) -> bool:
    return any(c.get("type") == "Failed" and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


@dataclass
class Action:
    """What one sync does (computed by `next_action`)."""
    run_at: float | None = None                              # create the Job of this scheduled time
    delete_active: list[dict] = field(default_factory=list)  # Replace
    delete_finished: list[dict] = field(default_factory=list)  # history limits
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float = 60.0


def next_action(cj: dict, jobs: list[dict], now: float) -> Action:
    """The CronJob's next step given the Jobs it owns (pure)."""
    spec, status = _spec(cj), cj.get("status") or {}
    act = Action()
    active = [j for j in jobs if not is_finished(j)]
    finished = sorted((j for j in jobs if is_finished(j)),
                      key=lambda j: parse_epoch(j["metadata"].get("creationTimestamp")) or 0.0)
    ok = [j for j in finished if not job_failed(j)]
    bad = [j for j in finished if job_failed(j)]
    for kept, limit in ((ok, spec.get("successfulJobsHistoryLimit")), (bad, spec.get("failedJobsHistoryLimit"))):
        if limit is not None and len(kept) > int(limit):
            act.delete_finished += kept[:len(kept) - int(limit)]
    try:
        act.requeue_after = max(next_time(cj, now) - now, 0.0) + 0.5
        latest = latest_time(cj, now)
    except CroniterError:  # e.g. "0 0 30 2 *": valid syntax, but no such date
        act.events.append(("Warning", "UnparseableSchedule", "the schedule names no date that exists"))
        act.requeue_after = 3600.0
        return act
    if spec.get("suspend"):
        return act
    since = parse_epoch(status.get("lastScheduleTime")) or parse_epoch(cj["metadata"].get("creationTimestamp")) or now
    sds = spec.get("startingDeadlineSeconds")
    if sds is not None:
        since = max(since, now - int(sds))
    if latest <= since:
        return act
    if len(schedule_times(cj, since, now)) > MAX_MISSED:
        act.events.append(("Warning", "TooManyMissedTimes",
                           "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"))
    scheduled = latest
    policy = spec.get("concurrencyPolicy") or "Allow"
    if active and policy == "Forbid":
        act.events.append(("Normal", "JobAlreadyActive", "Not starting job because prior execution is running "
                                                         "and concurrency policy is Forbid"))
        return act
    if active and policy == "Replace":
        act.delete_active = active
    act.run_at = scheduled
    return act


def job_name(cj: dict, scheduled: float) -> str:
    return f"{cj['metadata']['name']}-{int(scheduled // 60)}"


def job_for(cj: dict, scheduled: float) -> dict:
    """The Job of one scheduled time: the jobTemplate, owned by the CronJob."""
    tmpl = _spec(cj).get("jobTemplate") or {}
    tmeta = tmpl.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_ANNOTATION] = format_time(scheduled)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(cj, scheduled), "namespace": cj["metadata"]["namespace"],
                         "labels": dict(tmeta.get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [owner_ref_for(cj)]},
            "spec": dict(tmpl.get("spec") or {})}


def _ref(job: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
            "namespace": job["metadata"]["namespace"], "uid": job["metadata"]["uid"],
            "resourceVersion": job["metadata"].get("resourceVersion", "")}


class CronJobController(Controller):
    name = "cronjob"
    component = "cronjob-controller"
    workers = 1

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cronjobs = ctx.factory.informer("cronjobs")
        self.jobs = ctx.factory.informer("jobs", indexers={"controller": controller_index})
        self.cronjobs.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self.enqueue)
        self.jobs.add_handler(on_add=self._job_changed, on_update=lambda o, n: self._job_changed(n),
                              on_delete=self._job_changed)

    def _job_changed(self, job: dict) -> None:
        ref = controller_ref(job)
        if ref and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref['name']}")

    async def sync(self, key: str) -> None:
        cj = self.cronjobs.store.get(key)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return
        ns, name = cj["metadata"]["namespace"], cj["metadata"]["name"]
        jobs = list(self.jobs.store.by_index("controller", cj["metadata"]["uid"]))
        now = time.time()
        act = next_action(cj, jobs, now)
        for etype, reason, message in act.events:
            self.recorder.event(cj, etype, reason, message)
        for j in act.delete_active + act.delete_finished:
            try:
                await self.client.delete("jobs", j["metadata"]["name"], namespace=ns, propagation_policy="Background")
                self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {j['metadata']['name']}")
            except NotFound:
                pass
        gone = {j["metadata"]["uid"] for j in act.delete_active + act.delete_finished}
        jobs = [j for j in jobs if j["metadata"]["uid"] not in gone]
        status = dict(cj.get("status") or {})
        if act.run_at is not None:
            try:
                created = await self.client.create("jobs", job_for(cj, act.run_at), namespace=ns)
                self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
                jobs.append(created)
            except AlreadyExists:
                pass
            status["lastScheduleTime"] = format_time(act.run_at)
        active = [_ref(j) for j in jobs if not is_finished(j)]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        done = [parse_epoch((j.get("status") or {}).get("completionTime")) for j in jobs
                if is_finished(j) and not job_failed(j)]
        done = [t for t in done if t]
        if done:
            last = max(done)
            if (parse_epoch(status.get("lastSuccessfulTime")) or 0) < last:
                status["lastSuccessfulTime"] = format_time(last)
        if status != (cj.get("status") or {}):
            patch = {"status": {**status, "active": status.get("active")}}
            try:
                await self.client.patch("cronjobs", name, patch, namespace=ns, subresource="status")
            except NotFound:
                return
        self.queue.add_after(key, act.requeue_after)
