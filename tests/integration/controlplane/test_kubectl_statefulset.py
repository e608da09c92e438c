"""StatefulSet, PodDisruptionBudget and eviction with the real kubectl against the API server,
the statefulset and disruption controllers; the test plays the node agent (pods become Running
and Ready, terminating pods are removed), so ordering and budgets are observable without a lab."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile

import httpx
import pytest

from kubelab.client import ApiError, NotFound
from kubelab.testing import eventually
from kubelab.timestamps import format_time

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

STS_YAML = """\
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
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      NODE
      containers:
      - {name: web, image: nginx}
"""


def sts_yaml(node: str | None = None) -> str:
    return STS_YAML.replace("NODE", f"nodeName: {node}" if node else "")


@pytest.fixture
def kubectl(apiserver, namespace, spawn):
    spawn("kubelab.controllers", "--leader-elect=false", "--controllers", "statefulset,disruption,garbagecollector")
    home = tempfile.mkdtemp(prefix="kubelab-kubectl-")
    env = {**os.environ, "HOME": home, "KUBECONFIG": apiserver.kubeconfig, "KUBECACHEDIR": f"{home}/cache"}

    def run(*args: str, check: bool = True, input: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        cmd = [KUBECTL, "-n", namespace, *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}")
        return p
    yield run
    shutil.rmtree(home, ignore_errors=True)


class FakeNode:
    """Plays the node agent: pods in `ready` become Running + Ready, terminating pods go away."""

    def __init__(self, api, ns: str) -> None:
        self.api, self.ns = api, ns
        self.ready: set[str] | None = set()  # None: every pod
        self.task: asyncio.Task | None = None

    async def step(self) -> None:
        for p in (await self.api.list("pods", namespace=self.ns))["items"]:
            name = p["metadata"]["name"]
            with contextlib.suppress(NotFound):
                if p["metadata"].get("deletionTimestamp"):
                    await self.api.delete("pods", name, namespace=self.ns, grace_period_seconds=0)
                elif (self.ready is None or name in self.ready) and (p.get("status") or {}).get("phase") != "Running":
                    await self.api.patch("pods", name, {"status": {"phase": "Running", "podIP": "10.244.9.9",
                                         "conditions": [{"type": "Ready", "status": "True",
                                                         "lastTransitionTime": format_time()}]}},
                                         namespace=self.ns, subresource="status")

    async def run(self) -> None:
        while True:
            with contextlib.suppress(ApiError, httpx.HTTPError):
                await self.step()
            await asyncio.sleep(0.2)

    def __enter__(self) -> FakeNode:
        self.task = asyncio.get_running_loop().create_task(self.run())
        return self

    def __exit__(self, *exc) -> None:
        self.task.cancel()


async def pod_names(api, ns: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in (await api.list("pods", namespace=ns))["items"]
                  if not p["metadata"].get("deletionTimestamp"))


async def synced(api, ns: str, **want) -> dict:
    async def check():
        sts = await api.get("statefulsets", "web", namespace=ns)
        st = sts.get("status") or {}
        ok = st.get("observedGeneration") == sts["metadata"]["generation"] and \
            all(st.get(k) == v for k, v in want.items())
        return sts if ok else None
    return await eventually(check, timeout=60, interval=0.2, what=f"statefulset status {want}")


async def test_statefulset_ordered_identity_scale_and_partitioned_update(api, namespace, kubectl):
    ns = namespace
    out = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=sts_yaml())
    assert "statefulset.apps/web created" in out.stdout
    with FakeNode(api, ns) as node:
        # OrderedReady: web-1 is not created while web-0 is not Ready
        await synced(api, ns, replicas=1)
        assert await pod_names(api, ns) == ["web-0"]
        pod = await api.get("pods", "web-0", namespace=ns)
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("web-0", "web")
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0"
        node.ready.add("web-0")
        await synced(api, ns, replicas=2)
        assert await pod_names(api, ns) == ["web-0", "web-1"]
        node.ready = None
        await asyncio.to_thread(kubectl, "rollout", "status", "statefulset/web", "--timeout=60s")
        table = (await asyncio.to_thread(kubectl, "get", "sts")).stdout.splitlines()
        assert table[0].split() == ["NAME", "READY", "AGE"] and table[1].split()[:2] == ["web", "3/3"]

        # a deleted pod comes back under its name
        uid = (await api.get("pods", "web-1", namespace=ns))["metadata"]["uid"]
        await asyncio.to_thread(kubectl, "delete", "pod", "web-1")

        async def replaced():
            with contextlib.suppress(NotFound):
                p = await api.get("pods", "web-1", namespace=ns)
                return p["metadata"]["uid"] != uid and (p.get("status") or {}).get("phase") == "Running"
        await eventually(replaced, timeout=60, interval=0.2, what="web-1 recreated")

        # partitioned rolling update: only ordinals >= partition move to the new template
        await asyncio.to_thread(kubectl, "patch", "sts", "web", "-p",
                                '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
        await asyncio.to_thread(kubectl, "set", "image", "sts/web", "web=nginx:2")
        sts = await synced(api, ns, updatedReplicas=1, readyReplicas=3)
        st = sts["status"]
        assert st["updateRevision"] != st["currentRevision"] and st["currentReplicas"] == 2
        images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
                  for p in (await api.list("pods", namespace=ns))["items"]}
        assert images == {"web-0": "nginx", "web-1": "nginx", "web-2": "nginx:2"}
        rollout = await asyncio.to_thread(kubectl, "rollout", "status", "sts/web", "--timeout=60s")
        assert "partitioned roll out complete: 1 new pods have been updated" in rollout.stdout
        await asyncio.to_thread(kubectl, "patch", "sts", "web", "-p",
                                '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
        sts = await synced(api, ns, updatedReplicas=3, readyReplicas=3, currentReplicas=3)
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]

        # scale down removes the highest ordinals; the scale subresource reports the selector
        await asyncio.to_thread(kubectl, "scale", "sts", "web", "--replicas=1")
        await synced(api, ns, replicas=1)
        assert await pod_names(api, ns) == ["web-0"]
        scale = await api.get("statefulsets", "web", namespace=ns, subresource="scale")
        assert scale["status"]["selector"] == "app=web" and scale["spec"]["replicas"] == 1


async def test_statefulset_refusals_name_the_field(api, namespace, kubectl):
    bad = sts_yaml().replace("serviceName: web", "serviceName: web\n  podManagementPolicy: Sometimes")
    err = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=bad, check=False)
    assert err.returncode == 1 and 'spec.podManagementPolicy: Unsupported value: "Sometimes"' in err.stderr
    claims = sts_yaml().replace("serviceName: web", "serviceName: web\n  volumeClaimTemplates:\n"
                                "  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce]}")
    err = await asyncio.to_thread(kubectl, "apply", "-f", "-", input=claims, check=False)
    assert err.returncode == 1 and "spec.volumeClaimTemplates: Forbidden: not supported by kubelab: storage" \
        in err.stderr
    assert not (await api.list("statefulsets", namespace=namespace))["items"]
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=sts_yaml())
    err = await asyncio.to_thread(kubectl, "patch", "sts", "web", "-p", '{"spec":{"serviceName":"other"}}',
                                  check=False)
    assert err.returncode == 1 and "updates to statefulset spec for fields other than" in err.stderr
    err = await asyncio.to_thread(kubectl, "create", "pdb", "both", "--selector=app=web", "--min-available=1",
                                  check=False)
    assert err.returncode == 0, err.stderr
    err = await asyncio.to_thread(kubectl, "patch", "pdb", "both", "-p", '{"spec":{"maxUnavailable":1}}', check=False)
    assert err.returncode == 1 and "minAvailable and maxUnavailable cannot be both set" in err.stderr


async def evict(api, ns: str, name: str, **extra) -> dict | ApiError:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}, **extra}
    try:
        return await api.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", json_body=body)
    except ApiError as e:
        return e


async def test_eviction_respects_the_budget_and_drain_honours_it(api, namespace, kubectl):
    ns = namespace
    node_name = f"drain-{ns}"[:60]
    await api.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name}})
    try:
        with FakeNode(api, ns) as node:
            node.ready = None
            await asyncio.to_thread(kubectl, "apply", "-f", "-", input=sts_yaml(node_name))
            await synced(api, ns, readyReplicas=3)
            out = await asyncio.to_thread(kubectl, "create", "pdb", "web", "--selector=app=web", "--min-available=2")
            assert "poddisruptionbudget.policy/web created" in out.stdout

            async def budget(allowed):
                pdb = await api.get("poddisruptionbudgets", "web", namespace=ns)
                st = pdb.get("status") or {}
                return pdb if st.get("disruptionsAllowed") == allowed and st.get("currentHealthy") == 3 else None
            pdb = await eventually(lambda: budget(1), timeout=60, interval=0.2, what="budget allows 1")
            assert (pdb["status"]["desiredHealthy"], pdb["status"]["expectedPods"]) == (2, 3)
            row = (await asyncio.to_thread(kubectl, "get", "pdb", "web")).stdout.splitlines()
            assert row[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS",
                                      "AGE"]
            assert row[1].split()[:4] == ["web", "2", "N/A", "1"]

            # a DaemonSet's pod on the node: drain refuses without --ignore-daemonsets
            ds = await api.create("daemonsets", {
                "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}, namespace=ns)
            await api.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "agent-x", "labels": {"app": "agent"}, "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": ds["metadata"]["uid"],
                     "controller": True}]},
                "spec": {"nodeName": node_name, "containers": [{"name": "a", "image": "busybox"}]}}, namespace=ns)
            refused = await asyncio.to_thread(kubectl, "drain", node_name, "--timeout=20s", check=False)
            assert refused.returncode == 1 and "cannot delete DaemonSet-managed Pods" in refused.stderr

            old = {p["metadata"]["name"]: p["metadata"]["uid"]
                   for p in (await api.list("pods", namespace=ns))["items"] if p["metadata"]["name"].startswith("web")}
            drained = await asyncio.to_thread(kubectl, "drain", node_name, "--ignore-daemonsets", "--timeout=120s",
                                              "--pod-selector=app=web", timeout=150)
            assert f"node/{node_name} drained" in drained.stdout, drained.stderr
            # one at a time: the budget refused (429) while a replacement was not Ready yet
            assert "Cannot evict pod as it would violate the pod's disruption budget." in drained.stderr
            n = await api.get("nodes", node_name)
            assert n["spec"]["unschedulable"] is True
            new = {p["metadata"]["name"]: p["metadata"]["uid"] for p in (await api.list("pods", namespace=ns))["items"]
                   if p["metadata"]["name"].startswith("web")}
            assert set(new) == set(old) and not set(new.values()) & set(old.values())
            assert (await api.get("pods", "agent-x", namespace=ns))["metadata"]["uid"]  # left alone

            # the API directly: no budget left → 429 with the cause; dry run changes nothing
            node.ready = set()
            await api.patch("pods", "web-0", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
                            namespace=ns, subresource="status")
            await eventually(lambda: budget_zero(api, ns), timeout=60, interval=0.2, what="budget spent")
            r = await evict(api, ns, "web-1")
            assert isinstance(r, ApiError) and r.code == 429
            assert r.causes == [{"reason": "DisruptionBudget",
                                 "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
            # an unready pod may go: the budget is met without it (IfHealthyBudget)
            ok = await evict(api, ns, "web-0", deleteOptions={"dryRun": ["All"]})
            assert not isinstance(ok, ApiError), ok
            assert not (await api.get("pods", "web-0", namespace=ns))["metadata"].get("deletionTimestamp")
            bad = await evict(api, ns, "web-1", metadata={"name": "web-2"})
            assert isinstance(bad, ApiError) and bad.code == 400
    finally:
        with contextlib.suppress(NotFound):
            await api.delete("nodes", node_name)


async def budget_zero(api, ns):
    pdb = await api.get("poddisruptionbudgets", "web", namespace=ns)
    return (pdb.get("status") or {}).get("disruptionsAllowed") == 0 and pdb["status"].get("currentHealthy") == 2
