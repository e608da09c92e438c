"""`kubectl create job`, `apply -f` of a Job, `get jobs`, `wait --for=condition=complete`
and `delete job`, with the real kubectl against the API server and the job controller; the
test plays the node agent by writing the pods' phase."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile

import pytest

from kubelab.client import NotFound
from kubelab.testing import eventually

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

JOB_YAML = """\
apiVersion: batch/v1
kind: Job
metadata: {name: sum}
spec:
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: OnFailure
      containers:
      - {name: sum, image: busybox, command: [sh, -c, "exit 0"]}
"""


@pytest.fixture
def kubectl(apiserver, namespace, spawn):
    spawn("kubelab.controllers", "--leader-elect=false", "--controllers", "job,cronjob,garbagecollector")
    home = tempfile.mkdtemp(prefix="kubelab-kubectl-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": apiserver.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}

    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        cmd = [KUBECTL, "-n", namespace, *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, input=input, timeout=90)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}")
        return p
    yield run
    shutil.rmtree(home, ignore_errors=True)


async def succeed_all(api, ns: str, job: str, n: int) -> None:
    """Mark the Job's pods Succeeded as a node agent would, until n have been."""
    async def step():
        pods = (await api.list("pods", namespace=ns, label_selector=f"batch.kubernetes.io/job-name={job}"))["items"]
        for p in pods:
            if (p.get("status") or {}).get("phase") != "Succeeded":
                await api.patch("pods", p["metadata"]["name"], {"status": {"phase": "Succeeded"}},
                                namespace=ns, subresource="status")
        return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded") >= n
    await eventually(step, timeout=60, interval=0.5, what=f"{n} pods of {job} succeeded")


async def test_kubectl_create_job_get_wait_delete(api, namespace, kubectl):
    ns = namespace
    out = await asyncio.to_thread(kubectl, "create", "job", "pi", "--image=busybox", "--", "sh", "-c", "exit 0")
    assert out.stdout.strip() == "job.batch/pi created"
    job = await api.get("jobs", "pi", namespace=ns)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["sh", "-c", "exit 0"]
    header = (await asyncio.to_thread(kubectl, "get", "jobs")).stdout.splitlines()[0].split()
    assert header == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    await succeed_all(api, ns, "pi", 1)
    wait = await asyncio.to_thread(kubectl, "wait", "--for=condition=complete", "job/pi", "--timeout=60s")
    assert "condition met" in wait.stdout
    row = (await asyncio.to_thread(kubectl, "get", "job", "pi", "--no-headers")).stdout.split()
    assert row[:3] == ["pi", "Complete", "1/1"]
    await asyncio.to_thread(kubectl, "delete", "job", "pi")

    async def pods_gone():
        try:
            await api.get("jobs", "pi", namespace=ns)
            return False
        except NotFound:
            return not (await api.list("pods", namespace=ns))["items"]
    await eventually(pods_gone, timeout=60, what="job and its pods deleted")


async def test_kubectl_apply_job_and_refusals(api, namespace, kubectl):
    ns = namespace
    out = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=JOB_YAML)
    assert out.stdout.strip() == "job.batch/sum created", out.stderr
    await succeed_all(api, ns, "sum", 2)
    await asyncio.to_thread(kubectl, "wait", "--for=condition=complete", "job/sum", "--timeout=60s")
    bad = JOB_YAML.replace("sum", "bad").replace("OnFailure", "Always")
    err = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=bad, check=False)
    assert err.returncode == 1
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in err.stderr
    unknown = JOB_YAML.replace("name: sum}", "name: other}").replace("parallelism: 2", "parallelism: 2\n  bogus: 1")
    err = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=unknown, check=False)
    assert err.returncode == 1 and "bogus" in err.stderr
    assert [j["metadata"]["name"] for j in (await api.list("jobs", namespace=ns))["items"]] == ["sum"]


async def test_kubectl_cronjob_fires_and_create_job_from_it(api, namespace, kubectl):
    ns = namespace
    out = await asyncio.to_thread(kubectl, "create", "cronjob", "tick", "--image=busybox", "--schedule=*/1 * * * *",
                                  "--", "sh", "-c", "date")
    assert out.stdout.strip() == "cronjob.batch/tick created"
    header = (await asyncio.to_thread(kubectl, "get", "cronjobs")).stdout.splitlines()[0].split()
    assert header == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    manual = await asyncio.to_thread(kubectl, "create", "job", "tick-now", "--from=cronjob/tick")
    assert manual.stdout.strip() == "job.batch/tick-now created"
    j = await api.get("jobs", "tick-now", namespace=ns)
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert j["spec"]["template"]["spec"]["containers"][0]["command"] == ["sh", "-c", "date"]

    async def scheduled():
        jobs = (await api.list("jobs", namespace=ns))["items"]
        return [x for x in jobs if x["metadata"]["name"].startswith("tick-") and x["metadata"]["name"] != "tick-now"
                and "batch.kubernetes.io/cronjob-scheduled-timestamp" in (x["metadata"].get("annotations") or {})]
    fired = await eventually(scheduled, timeout=90, interval=1, what="the CronJob's first scheduled Job")
    assert len(fired) == 1 and fired[0]["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    cj = await eventually(lambda: _with_last_schedule(api, ns), timeout=30, what="lastScheduleTime")
    # the manual tick-now (owned by the CronJob too) may be listed as active beside it
    assert fired[0]["metadata"]["name"] in [a["name"] for a in cj["status"]["active"]]
    bad = await asyncio.to_thread(kubectl, "create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *",
                                  check=False)
    assert bad.returncode == 1 and "spec.schedule: Invalid value" in bad.stderr


async def _with_last_schedule(api, ns):
    cj = await api.get("cronjobs", "tick", namespace=ns)
    return cj if (cj.get("status") or {}).get("lastScheduleTime") and cj["status"].get("active") else None
