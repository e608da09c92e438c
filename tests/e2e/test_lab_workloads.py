"""Workloads on a real lab with the kubectl a student types: a Job runs a busybox container
to completion on a node (phase Succeeded, the Job Complete, its log readable), and a Job
whose container keeps failing stops at its backoffLimit; a DaemonSet on every worker; a
StatefulSet with stable DNS names and `kubectl drain` within a PodDisruptionBudget."""

from __future__ import annotations

import json
import subprocess

import pytest

from kubelab.lab import state
from kubelab.lab.testing import Lab, pod_exec, pod_netns
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

FAILING = """\
apiVersion: batch/v1
kind: Job
metadata: {name: boom}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: boom, image: busybox, command: [sh, -c, "exit 3"]}
"""


XDIST_GROUP = "shared-lab"  # the shared lab (tests/e2e/conftest.py): the Jobs, CronJob and DaemonSet here have names of their own


def job(lab: Lab, name: str) -> dict:
    return json.loads(lab.kubectl("get", "job", name, "-o", "json").stdout)


def test_job_runs_to_completion(lab):
    out = lab.kubectl("create", "job", "pi", "--image=busybox", "--", "sh", "-c", "echo 3.14; exit 0").stdout
    assert out.strip() == "job.batch/pi created"
    lab.kubectl("wait", "--for=condition=complete", "job/pi", "--timeout=180s", timeout=200)
    pods = json.loads(lab.kubectl("get", "pods", "-l", "batch.kubernetes.io/job-name=pi", "-o", "json").stdout)["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    row = lab.kubectl("get", "job", "pi", "--no-headers").stdout.split()
    assert row[:3] == ["pi", "Complete", "1/1"]
    assert lab.kubectl("logs", "job/pi").stdout.strip() == "3.14"


def test_failing_job_stops_at_backoff_limit(lab, tmp_path):
    (tmp_path / "boom.yaml").write_text(FAILING)
    lab.kubectl("apply", "-f", str(tmp_path / "boom.yaml"))

    def failed():
        j = job(lab, "boom")
        return j if any(c["type"] == "Failed" and c["status"] == "True"
                        for c in j.get("status", {}).get("conditions") or []) else None
    j = wait_until(failed, timeout=240, interval=1, what="job boom Failed")
    assert j["status"]["failed"] == 2
    reason = [c["reason"] for c in j["status"]["conditions"] if c["type"] == "Failed"]
    assert reason == ["BackoffLimitExceeded"]
    assert lab.kubectl("get", "job", "boom", "--no-headers").stdout.split()[1] == "Failed"


def test_cronjob_fires_on_schedule(lab):
    out = lab.kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=*/1 * * * *",
                      "--", "sh", "-c", "echo tick").stdout
    assert out.strip() == "cronjob.batch/tick created"

    def completed_job():
        jobs = json.loads(lab.kubectl("get", "jobs", "-o", "json").stdout)["items"]
        return [j for j in jobs if j["metadata"]["name"].startswith("tick-")
                and any(c["type"] == "Complete" and c["status"] == "True"
                        for c in j.get("status", {}).get("conditions") or [])]
    done = wait_until(completed_job, timeout=180, interval=2, what="a Job of CronJob tick completed")
    assert lab.kubectl("logs", f"job/{done[0]['metadata']['name']}").stdout.strip() == "tick"

    def last_successful():
        cj = json.loads(lab.kubectl("get", "cronjob", "tick", "-o", "json").stdout)
        return cj.get("status", {}).get("lastSuccessfulTime")
    wait_until(last_successful, timeout=60, interval=1, what="lastSuccessfulTime")
    lab.kubectl("delete", "cronjob", "tick")


DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - {name: agent, image: busybox}
"""


def test_daemonset_on_every_worker_and_rolling_update(lab, tmp_path):
    (tmp_path / "ds.yaml").write_text(DAEMONSET)
    lab.kubectl("apply", "-f", str(tmp_path / "ds.yaml"))
    lab.kubectl("rollout", "status", "ds/agent", "--timeout=180s", timeout=200)
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    eligible = {n["metadata"]["name"] for n in nodes
                if not any(t.get("effect") in ("NoSchedule", "NoExecute") and
                           not t["key"].startswith("node.kubernetes.io/")
                           for t in n.get("spec", {}).get("taints") or [])}
    assert {"worker-1", "worker-2"} <= eligible

    def pods():
        items = json.loads(lab.kubectl("get", "pods", "-l", "app=agent", "-o", "json").stdout)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]
    placed = pods()
    assert sorted(p["spec"]["nodeName"] for p in placed) == sorted(eligible)
    assert all(p["status"]["phase"] == "Running" for p in placed)
    row = lab.kubectl("get", "ds", "agent", "--no-headers").stdout.split()
    n = str(len(eligible))
    assert row[:6] == ["agent", n, n, n, n, n]
    old = {p["metadata"]["name"] for p in placed}
    lab.kubectl("set", "image", "ds/agent", "agent=nginx")
    lab.kubectl("rollout", "status", "ds/agent", "--timeout=240s", timeout=260)
    now = wait_until(lambda: (lambda ps: ps if len(ps) == len(eligible) and not old & {p["metadata"]["name"] for p in ps}
                              else None)(pods()), timeout=60, interval=1, what="every agent pod replaced")
    assert {p["spec"]["containers"][0]["image"] for p in now} == {"nginx"}
    lab.kubectl("delete", "ds", "agent")
    wait_until(lambda: not pods(), timeout=120, interval=1, what="daemon pods deleted")


STATEFULSET = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1   # busybox's sleep ignores SIGTERM: do not wait 30 s per eviction
      containers:
      - {name: web, image: busybox}
"""


def test_statefulset_stable_dns_and_drain_with_a_budget(lab, tmp_path):
    """web-0, web-1 in order; `web-1.web` resolves from web-0 (search path) and the FQDN from
    anywhere; each pod's UTS hostname is its name; `kubectl drain` evicts within the budget."""
    (tmp_path / "sts.yaml").write_text(STATEFULSET)
    lab.kubectl("apply", "-f", str(tmp_path / "sts.yaml"))
    lab.kubectl("rollout", "status", "sts/web", "--timeout=180s", timeout=200)

    def web_pods():
        items = json.loads(lab.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")
                and p["status"].get("phase") == "Running" and p["status"].get("podIP")}
    pods = wait_until(lambda: (lambda ps: ps if set(ps) == {"web-0", "web-1"} else None)(web_pods()),
                      timeout=60, interval=1, what="web-0 and web-1 running")
    web0, ip1 = pods["web-0"], pods["web-1"]["status"]["podIP"]
    created = sorted(pods.values(), key=lambda p: p["metadata"]["creationTimestamp"])
    assert [p["metadata"]["name"] for p in created] == ["web-0", "web-1"]  # OrderedReady

    pid = state.container_pid(pod_netns(lab, web0))
    uts = subprocess.run(["nsenter", "-t", str(pid), "-u", "--", "hostname"], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert uts.stdout.strip() == "web-0", uts.stderr
    last = {}

    def resolves(name: str, *opts: str):
        def check():
            p = last["p"] = pod_exec(lab, web0, "dig", "+short", "+time=1", "+tries=2", *opts, name)
            return p.returncode == 0 and p.stdout.split() == [ip1]
        try:
            wait_until(check, timeout=60, interval=1, what=f"{name} resolves to web-1's address")
        except TimeoutError:
            raise AssertionError(f"dig {name}: {last['p'].stdout} {last['p'].stderr}") from None
    resolves("web-1.web", "+search")
    resolves("web-1.web.default.svc.cluster.local")

    lab.kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=1")
    node = pods["web-1"]["spec"]["nodeName"]
    try:
        wait_until(lambda: lab.kubectl("get", "pdb", "web", "--no-headers").stdout.split()[3] == "1",
                   timeout=60, interval=1, what="the budget allows one disruption")
        out = lab.kubectl("drain", node, "--ignore-daemonsets", "--pod-selector=app=web", "--timeout=180s",
                          timeout=200)
        assert f"node/{node} drained" in out.stdout
        assert "evicted" in out.stdout
        after = wait_until(lambda: (lambda ps: ps if len(ps) == 2 else None)(web_pods()), timeout=120, interval=1,
                           what="both web pods running again")
        assert all(p["spec"]["nodeName"] != node for p in after.values())
    finally:
        lab.kubectl("uncordon", node, check=False)
        lab.kubectl("delete", "pdb,sts,svc", "web", "--wait=false", check=False)
