"""CronJob pure parts: schedule times (macros, time zones), missed runs and
startingDeadlineSeconds, concurrency policies, suspend, history limits; the API side."""

from datetime import datetime, timezone

from kubelab.apiserver import defaults, tables, validation
from kubelab.controllers.cronjob import job_for, job_name, next_action, schedule_times
from kubelab.resources import lookup
from kubelab.timestamps import format_time

CJS = lookup("cronjobs")
T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=timezone.utc).timestamp()  # 12:00:30 UTC


def cj(schedule="*/5 * * * *", status=None, created=T0 - 3600, **spec):
    s = {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False, "successfulJobsHistoryLimit": 3,
         "failedJobsHistoryLimit": 1,
         "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                       "containers": [{"name": "c", "image": "busybox"}]}}}}}
    s.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "ns", "uid": "cj-uid", "creationTimestamp": format_time(created)},
            "spec": s, "status": status or {}}


def job(name, *, created, cond=None):
    j = {"metadata": {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": format_time(created)},
         "status": {}}
    if cond:
        j["status"]["conditions"] = [{"type": cond, "status": "True"}]
    return j


def test_macro_and_time_zone():
    hourly = schedule_times(cj("@hourly"), T0 - 7200, T0)
    assert [datetime.fromtimestamp(t, timezone.utc).hour for t in hourly] == [11, 12]
    # 12:00 in Tokyo is 03:00 UTC
    t = schedule_times(cj("0 12 * * *", timeZone="Asia/Tokyo"), T0 - 86400, T0)
    assert [datetime.fromtimestamp(x, timezone.utc).hour for x in t] == [3]


def test_runs_most_recent_missed_time_once():
    a = next_action(cj(status={"lastScheduleTime": format_time(T0 - 900)}), [], T0)
    assert a.run_at == T0 - 30  # 12:00; 11:50 and 11:55 are skipped
    assert 0 < a.requeue_after <= 271
    assert next_action(cj(status={"lastScheduleTime": format_time(T0 - 30)}), [], T0).run_at is None


def test_starting_deadline_misses_late_start():
    a = next_action(cj(status={"lastScheduleTime": format_time(T0 - 900)}, startingDeadlineSeconds=10), [], T0)
    assert a.run_at is None
    a = next_action(cj(status={"lastScheduleTime": format_time(T0 - 900)}, startingDeadlineSeconds=60), [], T0)
    assert a.run_at == T0 - 30


def test_concurrency_policies_and_suspend():
    running = [job("tick-1", created=T0 - 300)]
    base = {"lastScheduleTime": format_time(T0 - 300)}
    assert next_action(cj(status=base), running, T0).run_at == T0 - 30
    forbid = next_action(cj(status=base, concurrencyPolicy="Forbid"), running, T0)
    assert forbid.run_at is None and forbid.events[0][1] == "JobAlreadyActive"
    replace = next_action(cj(status=base, concurrencyPolicy="Replace"), running, T0)
    assert replace.run_at == T0 - 30 and replace.delete_active == running
    assert next_action(cj(status=base, suspend=True), [], T0).run_at is None


def test_history_limits_delete_oldest():
    jobs = [job(f"ok{i}", created=T0 - 1000 + i, cond="Complete") for i in range(5)] + \
           [job(f"bad{i}", created=T0 - 1000 + i, cond="Failed") for i in range(3)]
    a = next_action(cj(status={"lastScheduleTime": format_time(T0 - 30)}), jobs, T0)
    assert [j["metadata"]["name"] for j in a.delete_finished] == ["ok0", "ok1", "bad0", "bad1"]


def test_job_for_is_deterministic_and_owned():
    c = cj()
    j = job_for(c, T0 - 30)
    assert j["metadata"]["name"] == job_name(c, T0 - 30) == f"tick-{int((T0 - 30) // 60)}"
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert j["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def kubectl_cronjob(**spec):
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": "default"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"metadata": {"name": "tick"}, "spec": {
                "template": {"spec": {"restartPolicy": "OnFailure",
                                      "containers": [{"name": "tick", "image": "busybox"}]}}}}, **spec}}


def fields(body):
    defaults.apply_defaults(CJS, body)
    return {c["field"]: c["message"] for c in validation.validate(CJS, body)}


def test_api_defaults_and_validation():
    body = kubectl_cronjob()
    assert fields(body) == {}
    assert (body["spec"]["concurrencyPolicy"], body["spec"]["successfulJobsHistoryLimit"]) == ("Allow", 3)
    assert fields(kubectl_cronjob(schedule="@hourly")) == {}
    assert "spec.schedule" in fields(kubectl_cronjob(schedule="* * *"))
    assert "spec.schedule" in fields(kubectl_cronjob(schedule="@every 5m"))
    assert "256" in fields(kubectl_cronjob(schedule="1," * 100000 + "2 * * * *"))["spec.schedule"]
    assert "TZ" in fields(kubectl_cronjob(schedule="CRON_TZ=UTC * * * * *"))["spec.schedule"]
    assert fields(kubectl_cronjob(timeZone="Europe/Paris")) == {}
    for tz in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime"):
        assert fields(kubectl_cronjob(timeZone=tz))["spec.timeZone"].endswith(f"unknown time zone {tz}")
    assert fields(kubectl_cronjob(concurrencyPolicy="Sometimes"))["spec.concurrencyPolicy"].startswith("Unsupported")
    bad = kubectl_cronjob()
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert "spec.jobTemplate.spec.template.spec.restartPolicy" in fields(bad)


def test_table_columns():
    body = kubectl_cronjob()
    defaults.apply_defaults(CJS, body)
    body["metadata"]["creationTimestamp"] = format_time(T0 - 120)
    t = tables.to_table(CJS, [body], resource_version="1", now=datetime.fromtimestamp(T0, timezone.utc))
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    assert t["rows"][0]["cells"][:7] == ["tick", "*/1 * * * *", "<none>", "False", 0, "<none>", "2m"]


def test_long_downtime_runs_latest_time_only_and_warns():
    a = next_action(cj("* * * * *", created=T0 - 86400 * 365 * 5), [], T0)
    assert a.run_at == T0 - 30 and a.events[0][1] == "TooManyMissedTimes"


def test_impossible_date_is_reported_not_crashing():
    a = next_action(cj("0 0 30 2 *"), [], T0)
    assert a.run_at is None and a.events[0][1] == "UnparseableSchedule"
