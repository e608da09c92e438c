"""Issue 3 acceptance on a real etcd + API server, nodes simulated by Node objects + Leases:
a Deployment's pods are scheduled and spread, Endpoints/EndpointSlices follow readiness,
scale, rolling update within maxUnavailable, and cascading delete."""

from __future__ import annotations

import asyncio

import pytest

from kubelab.client import Informer
from kubelab.controllers.simulation import FakeNodeAgent, create_node
from kubelab.testing import eventually


@pytest.fixture
def components(spawn):
    return (spawn("kubelab.controllers", "--leader-elect=false", "--node-monitor-period", "1s"),
            spawn("kubelab.scheduler"))


def deployment(name: str, pool: str, *, replicas: int = 3, image: str = "nginx:1") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": {"pool": pool},
                                           "containers": [{"name": "web", "image": image,
                                                           "ports": [{"name": "http", "containerPort": 8080}]}]}}}}


async def set_ready(api, pod: dict, ready: bool, ip: str | None = None) -> None:
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status.update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]})
    await api.patch("pods", pod["metadata"]["name"], {"status": status}, namespace=pod["metadata"]["namespace"],
                    subresource="status", patch_type="strategic")


async def addresses(api, ns: str, name: str) -> tuple[set, set, set, set]:
    """(ready IPs, not-ready IPs) in Endpoints, (ready, not-ready) in the EndpointSlices."""
    ep = await api.get("endpoints", name, namespace=ns)
    ready = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
    not_ready = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []}
    slices = (await api.list("endpointslices", namespace=ns, label_selector=f"kubernetes.io/service-name={name}"))
    s_ready = {e["addresses"][0] for s in slices["items"] for e in s.get("endpoints") or [] if e["conditions"]["ready"]}
    s_not = {e["addresses"][0] for s in slices["items"] for e in s.get("endpoints") or [] if not e["conditions"]["ready"]}
    return ready, not_ready, s_ready, s_not


async def test_deployment_lifecycle(api, namespace, components):
    ns = namespace
    pool = ns
    nodes = [f"{ns}-n1", f"{ns}-n2"]
    for n in nodes:
        await create_node(api, n, labels={"pool": pool})
    agent = FakeNodeAgent(api, nodes, auto_ready=False, confirm_deletions=True, heartbeat=2.0)
    await agent.start()
    try:
        await api.create("deployments", deployment("web", pool), namespace=ns)
        await api.create("services", {"metadata": {"name": "web"},
                                      "spec": {"selector": {"app": "web"},
                                               "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
                         namespace=ns)

        async def bound_pods(n):
            pods = (await api.list("pods", namespace=ns))["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            return len(live) == n and all(p["spec"].get("nodeName") for p in live) and live

        pods = await eventually(lambda: bound_pods(3), timeout=30, what="3 scheduled pods")
        assert {p["spec"]["nodeName"] for p in pods} == set(nodes), "3 replicas spread over both nodes"
        for p in pods:
            ref = p["metadata"]["ownerReferences"][0]
            assert ref["kind"] == "ReplicaSet" and ref["controller"] is True
            assert p["metadata"]["labels"]["pod-template-hash"]

        # readiness → endpoints: two ready, one running but not ready
        ips = {p["metadata"]["name"]: f"10.244.9.{i + 10}" for i, p in enumerate(pods)}
        for i, p in enumerate(pods):
            await set_ready(api, p, ready=i < 2, ip=ips[p["metadata"]["name"]])
        want_ready = {ips[p["metadata"]["name"]] for p in pods[:2]}
        want_not = {ips[pods[2]["metadata"]["name"]]}

        async def endpoints_are(ready, not_ready):
            return await addresses(api, ns, "web") == (ready, not_ready, ready, not_ready)
        await eventually(lambda: endpoints_are(want_ready, want_not), timeout=10, what="endpoints = ready IPs")

        async def one_slice():  # the empty placeholder made before any pod was ready is gone
            items = (await api.list("endpointslices", namespace=ns,
                                    label_selector="kubernetes.io/service-name=web"))["items"]
            return len(items) == 1 and items
        (s,) = await eventually(one_slice, timeout=10, what="a single EndpointSlice")
        assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]  # named targetPort resolved
        assert {e["nodeName"] for e in s["endpoints"]} <= set(nodes)
        assert all(e["targetRef"]["kind"] == "Pod" for e in s["endpoints"])

        # NotReady → moved to not-ready
        await set_ready(api, pods[0], ready=False)
        ip0 = ips[pods[0]["metadata"]["name"]]
        await eventually(lambda: endpoints_are(want_ready - {ip0}, want_not | {ip0}), timeout=10,
                         what="pod moved to not-ready")
        for p in pods:
            await set_ready(api, p, ready=True)
        await eventually(lambda: endpoints_are(set(ips.values()), set()), timeout=10, what="all ready")

        async def dstatus(replicas, updated=None):
            d = await api.get("deployments", "web", namespace=ns)
            st = d.get("status") or {}
            ok = (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("replicas") == replicas
                  and st.get("availableReplicas") == replicas and st.get("updatedReplicas") == (updated or replicas))
            return ok and d
        d = await eventually(lambda: dstatus(3), timeout=15, what="deployment available 3/3")
        conds = {c["type"]: c for c in d["status"]["conditions"]}
        assert conds["Available"]["status"] == "True"
        assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

        # scale 3 → 1 through the scale subresource: 2 pods deleted
        await api.patch("deployments", "web", {"spec": {"replicas": 1}}, namespace=ns, subresource="scale")
        remaining = await eventually(lambda: bound_pods(1), timeout=15, what="scaled to 1 pod")
        assert remaining[0]["metadata"]["name"] in ips

        async def only_one_pod():  # the 2 others are gone once the "node agent" confirmed
            return [p["metadata"]["name"] for p in (await api.list("pods", namespace=ns))["items"]] == \
                [remaining[0]["metadata"]["name"]]
        await eventually(only_one_pod, timeout=10, what="2 pods deleted")
        await eventually(lambda: endpoints_are({ips[remaining[0]["metadata"]["name"]]}, set()), timeout=10,
                         what="endpoints follow scale down")
        await eventually(lambda: dstatus(1), timeout=15, what="deployment 1/1")

        # back to 3, now with a node agent that makes bound pods ready
        agent.auto_ready = True
        await api.patch("deployments", "web", {"spec": {"replicas": 3}}, namespace=ns, subresource="scale")
        await eventually(lambda: dstatus(3), timeout=30, what="deployment 3/3 again")

        # rolling update: never fewer than replicas - maxUnavailable = 2 ready pods
        inf = Informer(api, "pods", namespace=ns)
        counts: list[int] = []

        def count(*_):
            counts.append(sum(1 for p in inf.store.list() if not p["metadata"].get("deletionTimestamp")
                              and any(c.get("type") == "Ready" and c.get("status") == "True"
                                      for c in (p.get("status") or {}).get("conditions") or [])))
        inf.add_handler(on_add=count, on_update=count, on_delete=count)
        task = asyncio.create_task(inf.run())
        await inf.wait_synced(10)
        try:
            await api.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:2"}]}}}}, namespace=ns, patch_type="strategic")

            async def rolled():
                d = await dstatus(3)
                if not d:
                    return False
                pods = [p for p in (await api.list("pods", namespace=ns))["items"]]
                return len(pods) == 3 and all(p["spec"]["containers"][0]["image"] == "nginx:2" for p in pods) and d
            d = await eventually(rolled, timeout=60, what="rollout to nginx:2 complete")
        finally:
            task.cancel()
        assert counts and min(counts[counts.index(3):] if 3 in counts else counts) >= 2, counts
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        rss = (await api.list("replicasets", namespace=ns))["items"]
        assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 3]
        assert {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in rss} == {"1", "2"}

        want = {("Deployment", "ScalingReplicaSet"), ("ReplicaSet", "SuccessfulCreate"), ("Pod", "Scheduled")}

        async def events_recorded():  # events are best effort and asynchronous
            events = (await api.list("events", namespace=ns))["items"]
            return want <= {(e["involvedObject"]["kind"], e["reason"]) for e in events} and events
        events = await eventually(events_recorded, timeout=10, what="events for what the controllers did")
        sample = next(e for e in events if e["reason"] == "ScalingReplicaSet")
        assert sample["source"]["component"] == "deployment-controller"
        assert sample["count"] >= 1 and sample["firstTimestamp"] and sample["type"] == "Normal"
        assert next(e for e in events if e["reason"] == "Scheduled")["source"]["component"] == "default-scheduler"

        # delete the deployment: its ReplicaSets and pods go (the agent confirms pod deletions)
        await api.delete("deployments", "web", namespace=ns)

        async def all_gone():
            rs = (await api.list("replicasets", namespace=ns))["items"]
            pods = (await api.list("pods", namespace=ns))["items"]
            return not rs and not pods
        await eventually(all_gone, timeout=30, what="ReplicaSets and pods garbage collected")
    finally:
        await agent.stop()
        for n in nodes:
            try:
                await api.delete("nodes", n)
            except Exception:
                pass


async def test_recreate_never_runs_old_and_new_together(api, namespace, components):
    ns = namespace
    nodes = [f"{ns}-r1"]
    await create_node(api, nodes[0], labels={"pool": ns})
    agent = FakeNodeAgent(api, nodes, auto_ready=True, confirm_deletions=True, ready_delay=0.1)
    await agent.start()
    inf = Informer(api, "pods", namespace=ns)
    mixed: list[set] = []

    def check(*_):
        hashes = {p["metadata"]["labels"].get("pod-template-hash") for p in inf.store.list()}
        if len(hashes) > 1:
            mixed.append(hashes)
    inf.add_handler(on_add=check, on_update=check, on_delete=check)
    task = asyncio.create_task(inf.run())
    try:
        body = deployment("rc", ns, replicas=2)
        body["spec"]["strategy"] = {"type": "Recreate"}
        await api.create("deployments", body, namespace=ns)

        async def done(image):
            d = await api.get("deployments", "rc", namespace=ns)
            st = d.get("status") or {}
            pods = (await api.list("pods", namespace=ns))["items"]
            return (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("updatedReplicas") == 2
                    and st.get("availableReplicas") == 2 and st.get("replicas") == 2 and len(pods) == 2
                    and all(p["spec"]["containers"][0]["image"] == image for p in pods))
        await eventually(lambda: done("nginx:1"), timeout=30, what="Recreate deployment available")
        await api.patch("deployments", "rc", {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:3"}]}}}}, namespace=ns, patch_type="strategic")
        await eventually(lambda: done("nginx:3"), timeout=30, what="Recreate rollout done")
        assert mixed == [], f"old and new pods existed together: {mixed[:3]}"
    finally:
        task.cancel()
        await agent.stop()
        await api.delete("nodes", nodes[0])
