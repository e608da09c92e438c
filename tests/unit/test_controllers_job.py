"""Job controller pure parts: counting through the tracking finalizer, completion, failure,
parallelism, deadline, suspend, TTL; and the API side (defaults, validation, table)."""

from datetime import datetime, timezone

from kubelab.apiserver import defaults, tables, validation
from kubelab.controllers.job import TRACKING_FINALIZER, plan, pod_for, ttl_remaining
from kubelab.resources import lookup
from kubelab.timestamps import format_time

NOW = 1_800_000_000.0
JOBS = lookup("jobs")


def job(status=None, **spec):
    s = {"completions": 1, "parallelism": 1, "backoffLimit": 6,
         "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
         "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u"}},
                      "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    s.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "ns", "uid": "u", "resourceVersion": "1"},
            "spec": s, "status": status or {}}


def pod(uid, phase="Running", *, tracked=True, deleting=False, ready=False, restarts=0):
    meta = {"name": f"pi-{uid}", "namespace": "ns", "uid": uid, "resourceVersion": "5"}
    if tracked:
        meta["finalizers"] = [TRACKING_FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = format_time(NOW)
    return {"metadata": meta, "spec": {"nodeName": "n1"}, "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}],
                                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def cond(p, ctype):
    return next((c for c in p.status.get("conditions", []) if c["type"] == ctype), None)


def test_new_job_starts_one_pod_and_records_start_time():
    p = plan(job(), [], NOW)
    assert p.create == 1 and p.status["startTime"] == format_time(NOW) and p.status["active"] == 0


def test_parallelism_bounded_by_remaining_completions():
    p = plan(job(completions=5, parallelism=3), [], NOW)
    assert p.create == 3
    p = plan(job({"succeeded": 4, "startTime": format_time(NOW)}, completions=5, parallelism=3), [], NOW)
    assert p.create == 1


def test_success_counted_once_then_released_then_unlisted():
    j = job(completions=2)
    first = plan(j, [pod("a", "Succeeded"), pod("b")], NOW)
    assert first.status["succeeded"] == 1 and first.status["uncountedTerminatedPods"]["succeeded"] == ["a"]
    assert [x["metadata"]["uid"] for x in first.release] == ["a"]
    assert first.create == 0 and first.status["active"] == 1
    # the finalizer removal did not land yet: not counted again, released again
    j2 = job(first.status, completions=2)
    again = plan(j2, [pod("a", "Succeeded"), pod("b")], NOW)
    assert again.status["succeeded"] == 1 and [x["metadata"]["uid"] for x in again.release] == ["a"]
    # released (finalizer gone) and even deleted: the count stays, the uid leaves the list
    gone = plan(j2, [pod("b")], NOW)
    assert gone.status["succeeded"] == 1 and gone.status["uncountedTerminatedPods"]["succeeded"] == []


def test_completion_sets_complete_and_completion_time():
    p = plan(job({"startTime": format_time(NOW - 5)}), [pod("a", "Succeeded")], NOW)
    assert cond(p, "Complete")["status"] == "True" and p.status["completionTime"] == format_time(NOW)
    assert p.create == 0


def test_failed_pods_replaced_until_backoff_limit():
    j = job({"startTime": format_time(NOW)}, backoffLimit=1)
    p = plan(j, [pod("a", "Failed")], NOW)
    assert p.status["failed"] == 1 and p.create == 1 and not cond(p, "Failed")
    p2 = plan(job(p.status, backoffLimit=1), [pod("a", "Failed", tracked=False), pod("b", "Failed")], NOW)
    assert p2.status["failed"] == 2 and cond(p2, "Failed")["reason"] == "BackoffLimitExceeded"
    assert p2.create == 0


def test_on_failure_restarts_count_toward_backoff():
    j = job({"startTime": format_time(NOW)}, backoffLimit=2)
    j["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    p = plan(j, [pod("a", restarts=3)], NOW)
    assert cond(p, "Failed")["reason"] == "BackoffLimitExceeded" and [x["metadata"]["uid"] for x in p.delete] == ["a"]


def test_deleted_running_pod_counts_failed_and_is_replaced():
    p = plan(job({"startTime": format_time(NOW)}), [pod("a", deleting=True)], NOW)
    assert p.status["failed"] == 1 and p.create == 1


def test_active_deadline():
    j = job({"startTime": format_time(NOW - 10)}, activeDeadlineSeconds=30)
    p = plan(j, [pod("a")], NOW)
    assert not cond(p, "Failed") and 20 <= p.requeue_after <= 21
    p = plan(j, [pod("a")], NOW + 30)
    assert cond(p, "Failed")["reason"] == "DeadlineExceeded" and len(p.delete) == 1 and p.status["active"] == 0


def test_suspend_deletes_pods_and_resume_restarts():
    p = plan(job({"startTime": format_time(NOW)}, suspend=True), [pod("a")], NOW)
    assert cond(p, "Suspended")["status"] == "True" and len(p.delete) == 1 and "startTime" not in p.status
    r = plan(job(p.status), [], NOW)
    assert cond(r, "Suspended")["status"] == "False" and r.create == 1


def test_no_completions_finishes_on_first_success_once_others_stop():
    j = job({"startTime": format_time(NOW)}, completions=None, parallelism=2)
    p = plan(j, [pod("a", "Succeeded"), pod("b")], NOW)
    assert not cond(p, "Complete") and p.create == 0
    p = plan(job(p.status, completions=None, parallelism=2), [pod("b", "Succeeded")], NOW)
    assert cond(p, "Complete")["status"] == "True"


def test_ttl_after_finished():
    j = job({"conditions": [{"type": "Complete", "status": "True"}], "completionTime": format_time(NOW)},
            ttlSecondsAfterFinished=60)
    assert ttl_remaining(j, NOW + 10) == 50
    assert ttl_remaining(job(), NOW) is None


def test_pod_for_carries_owner_and_finalizer():
    p = pod_for(job())
    assert p["metadata"]["finalizers"] == [TRACKING_FINALIZER] and p["metadata"]["generateName"] == "pi-"
    assert p["metadata"]["ownerReferences"][0]["kind"] == "Job" and p["metadata"]["labels"]


# --- the API side -----------------------------------------------------------------------------

def created(body):
    defaults.apply_defaults(JOBS, body)
    body["metadata"]["uid"] = "uid-1"
    defaults.after_uid(JOBS, body)
    return body


def kubectl_job(**spec):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "pi", "image": "busybox"}]}}, **spec}}


def test_defaults_and_generated_selector():
    j = created(kubectl_job())
    s = j["spec"]
    assert (s["completions"], s["parallelism"], s["backoffLimit"], s["completionMode"]) == (1, 1, 6, "NonIndexed")
    assert s["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-1"}}
    labels = s["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == "pi" and labels["controller-uid"] == "uid-1"
    assert validation.validate(JOBS, j) == []
    only_par = created(kubectl_job(parallelism=3))
    assert only_par["spec"].get("completions") is None and only_par["spec"]["parallelism"] == 3


def messages(body):
    return {(c["field"], c["message"]) for c in validation.validate(JOBS, body)}


def test_validation_messages():
    j = created(kubectl_job())
    j["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert ("spec.template.spec.restartPolicy",
            'Unsupported value: "Always": supported values: "Never", "OnFailure"') in messages(j)
    j = created(kubectl_job(backoffLimit=-1))
    assert ("spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0") in messages(j)
    j = created(kubectl_job(podFailurePolicy={"rules": []}))
    assert any(f == "spec.podFailurePolicy" for f, _ in messages(j))  # refused, never ignored
    j = created(kubectl_job(completionMode="Indexed", completions=3))
    assert any(f == "spec.completionMode" for f, _ in messages(j))
    j = created(kubectl_job(selector={"matchLabels": {"a": "b"}}))
    assert any(f == "spec.template.metadata.labels" for f, _ in messages(j))


def test_template_immutable():
    old = created(kubectl_job())
    new = created(kubectl_job())
    new["spec"] = dict(old["spec"], template={**old["spec"]["template"], "spec": {
        "restartPolicy": "Never", "containers": [{"name": "pi", "image": "nginx"}]}})
    causes = validation.validate(JOBS, new, old=old)
    assert any(c["field"] == "spec.template" and "immutable" in c["message"] for c in causes)


def test_table_row():
    now = datetime.fromtimestamp(NOW, timezone.utc)
    j = created(kubectl_job(completions=3))
    j["metadata"]["creationTimestamp"] = format_time(NOW - 70)
    j["status"] = {"succeeded": 1, "startTime": format_time(NOW - 65)}
    t = tables.to_table(JOBS, [j], resource_version="1", now=now)
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Status", "Completions", "Duration", "Age"]
    assert t["rows"][0]["cells"][:5] == ["pi", "Running", "1/3", "65s", "70s"]
    j["status"].update(completionTime=format_time(NOW - 5), conditions=[{"type": "Complete", "status": "True"}])
    assert tables.to_table(JOBS, [j], resource_version="1", now=now)["rows"][0]["cells"][1:4] == \
        ["Complete", "1/3", "60s"]
