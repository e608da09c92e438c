"""Job controller on a real etcd + API server: the test plays the node agent, writing the
pod phases upstream's kubelet would (Succeeded/Failed), and checks the Job's pods, counts,
conditions, finalizer tracking, backoffLimit, and ttlSecondsAfterFinished."""

from __future__ import annotations

import pytest

from kubelab.client import ApiError, NotFound
from kubelab.controllers.job import TRACKING_FINALIZER
from kubelab.testing import eventually


@pytest.fixture
def controllers(spawn):
    return spawn("kubelab.controllers", "--leader-elect=false", "--controllers", "job,garbagecollector")


def job(name: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox"}]}}, **spec}}


async def pods_of(api, ns: str, name: str) -> list[dict]:
    return (await api.list("pods", namespace=ns, label_selector=f"batch.kubernetes.io/job-name={name}"))["items"]


async def finish(api, pod: dict, phase: str) -> None:
    await api.patch("pods", pod["metadata"]["name"], {"status": {"phase": phase}},
                    namespace=pod["metadata"]["namespace"], subresource="status")


def has(job: dict, ctype: str) -> dict | None:
    return next((c for c in (job.get("status") or {}).get("conditions") or []
                 if c["type"] == ctype and c["status"] == "True"), None)


async def test_job_runs_to_completion_with_parallelism(api, namespace, controllers):
    ns = namespace
    await api.create("jobs", job("calc", completions=3, parallelism=2), namespace=ns)
    running = await eventually(lambda: _n_pods(api, ns, "calc", 2), timeout=60, what="2 pods")
    assert all(TRACKING_FINALIZER in p["metadata"]["finalizers"] for p in running)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "Job" for p in running)
    await finish(api, running[0], "Succeeded")
    # one success: one more pod for the last completion (2 active), counted and released
    await eventually(lambda: _status_is(api, ns, "calc", succeeded=1, active=2), timeout=60, what="1 succeeded")
    await eventually(lambda: _released(api, ns, running[0]["metadata"]["name"]), timeout=30, what="finalizer gone")
    # deleting a counted pod does not lose the count
    await api.delete("pods", running[0]["metadata"]["name"], namespace=ns)
    for p in await pods_of(api, ns, "calc"):
        if (p.get("status") or {}).get("phase") != "Succeeded":
            await finish(api, p, "Succeeded")
    done = await eventually(lambda: _complete(api, ns, "calc"), timeout=60, what="Complete")
    assert done["status"]["succeeded"] == 3 and done["status"].get("completionTime")

    async def all_released():
        return not any(TRACKING_FINALIZER in (p["metadata"].get("finalizers") or [])
                       for p in await pods_of(api, ns, "calc"))
    await eventually(all_released, timeout=30, what="every finalizer removed")


async def test_backoff_limit_fails_the_job(api, namespace, controllers):
    ns = namespace
    await api.create("jobs", job("flaky", backoffLimit=1), namespace=ns)
    for i in range(2):
        p = await eventually(lambda: _active_pod(api, ns, "flaky"), timeout=60, what=f"pod {i}")
        await finish(api, p, "Failed")
    failed = await eventually(lambda: _has(api, ns, "flaky", "Failed"), timeout=60, what="Failed")
    assert has(failed, "Failed")["reason"] == "BackoffLimitExceeded" and failed["status"]["failed"] == 2
    assert len(await pods_of(api, ns, "flaky")) == 2  # no third attempt


async def test_ttl_after_finished_deletes_job_and_pods(api, namespace, controllers):
    ns = namespace
    await api.create("jobs", job("short", ttlSecondsAfterFinished=1), namespace=ns)
    p = await eventually(lambda: _active_pod(api, ns, "short"), timeout=60, what="pod")
    await finish(api, p, "Succeeded")

    async def gone():
        try:
            await api.get("jobs", "short", namespace=ns)
            return False
        except NotFound:
            return not await pods_of(api, ns, "short")
    await eventually(gone, timeout=60, what="job and pods deleted")


async def test_invalid_job_refused_with_field(api, namespace):
    bad = job("bad")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiError) as e:
        await api.create("jobs", bad, namespace=namespace)
    assert e.value.code == 422 and "spec.template.spec.restartPolicy" in {c["field"] for c in e.value.causes}
    assert not (await api.list("jobs", namespace=namespace))["items"]


async def _n_pods(api, ns, name, n):
    pods = await pods_of(api, ns, name)
    return pods if len(pods) == n else None


async def _active_pod(api, ns, name):
    for p in await pods_of(api, ns, name):
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            return p
    return None


async def _status_is(api, ns, name, **want):
    j = await api.get("jobs", name, namespace=ns)
    return all((j.get("status") or {}).get(k) == v for k, v in want.items()) and j


async def _released(api, ns, pod_name):
    p = await api.get("pods", pod_name, namespace=ns)
    return TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or [])


async def _complete(api, ns, name):
    j = await api.get("jobs", name, namespace=ns)
    return j if has(j, "Complete") else None


async def _has(api, ns, name, ctype):
    j = await api.get("jobs", name, namespace=ns)
    return j if has(j, ctype) else None
