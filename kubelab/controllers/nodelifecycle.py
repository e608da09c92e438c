"""Node lifecycle: notice dead nodes, take their pods out of service, evict them.

A node's heartbeat is its Lease in kube-node-lease (renewTime) or its Ready condition's
lastHeartbeatTime. The controller records *when it saw* the heartbeat change on its own
clock (as upstream does, so clock skew does not matter). If nothing changed for the grace
period: every node condition becomes Unknown, the node is tainted
`node.kubernetes.io/unreachable`, its pods get Ready=False (so they leave endpoints), and
after the eviction timeout they are deleted.
"""

from __future__ import annotations

import asyncio
import copy
import time

from kubelab.client import Conflict, NotFound
from kubelab.timestamps import format_time, parse_epoch

from .base import Context, Controller
from kubelab.durations import parse_flag_duration as parse_duration

from .util import condition

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def heartbeat_of(node: dict, lease: dict | None) -> tuple:
    """What changes when the node agent is alive."""
    ready = condition(node, "Ready") or {}
    renew = ((lease or {}).get("spec") or {}).get("renewTime")
    return (renew, ready.get("lastHeartbeatTime"))


def unknown_conditions(node: dict, now: str) -> list[dict]:
    """The node's conditions with every standard one set Unknown (pure)."""
    conds = copy.deepcopy((node.get("status") or {}).get("conditions") or [])
    by_type = {c.get("type"): c for c in conds}
    for ctype in NODE_CONDITIONS:
        c = by_type.get(ctype)
        if c is None:
            if ctype != "Ready":
                continue
            c = {"type": "Ready", "reason": "NodeStatusNeverUpdated", "message": "Kubelet never posted node status.",
                 "lastHeartbeatTime": now}
            conds.append(c)
        else:
            c["reason"] = "NodeStatusUnknown"
            c["message"] = "Kubelet stopped posting node status."
        if c.get("status") != "Unknown":
            c["lastTransitionTime"] = now
        c["status"] = "Unknown"
    return conds


def desired_taints(node: dict) -> list[dict]:
    """spec.taints with the unreachable/not-ready taints matching the Ready condition (pure)."""
    ready = (condition(node, "Ready") or {}).get("status")
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") not in (UNREACHABLE, NOT_READY)]
    old = {(t.get("key"), t.get("effect")): t for t in (node.get("spec") or {}).get("taints") or []}
    key = UNREACHABLE if ready == "Unknown" else NOT_READY if ready == "False" else None
    if key:
        for effect in ("NoSchedule", "NoExecute"):
            t = old.get((key, effect)) or {"key": key, "effect": effect, "timeAdded": format_time()}
            taints.append(t)
    return taints


def pod_not_ready_patch(pod: dict, now: str) -> dict | None:
    """A strategic-merge status patch setting Ready=False, or None if already so (pure)."""
    ready = condition(pod, "Ready")
    if ready is not None and ready.get("status") == "False":
        return None
    return {"status": {"conditions": [{"type": "Ready", "status": "False", "lastProbeTime": None,
                                       "lastTransitionTime": now, "reason": "NodeNotReady",
                                       "message": "the node this pod runs on stopped reporting"}]}}


def node_index(pod: dict) -> list[str]:
    n = (pod.get("spec") or {}).get("nodeName")
    return [n] if n else []


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    component = "node-controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.grace = parse_duration(getattr(opts, "node_monitor_grace_period", "40s"))
        self.period = parse_duration(getattr(opts, "node_monitor_period", "5s"))
        self.eviction = parse_duration(getattr(opts, "pod_eviction_timeout", "5m"))
        self.nodes = ctx.factory.informer("nodes")
        self.leases = ctx.factory.informer("leases", namespace=LEASE_NAMESPACE)
        self.pods = ctx.factory.informer("pods", indexers={"node": node_index})
        self.seen: dict[str, tuple[tuple, float]] = {}  # node -> (heartbeat, when we saw it change)
        self.nodes.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n), on_delete=self._node_deleted)
        self.leases.add_handler(on_add=self._lease, on_update=lambda o, n: self._lease(n))

    def _node_deleted(self, node: dict) -> None:
        self.seen.pop(node["metadata"]["name"], None)
        self.enqueue(node)

    def _lease(self, lease: dict) -> None:
        if self.nodes.store.get(lease["metadata"]["name"]) is not None:
            self.queue.add(lease["metadata"]["name"])

    async def background(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            for key in self.nodes.store.keys():
                self.queue.add(key)

    async def sync(self, key: str) -> None:
        node = self.nodes.store.get(key)
        if node is None:
            await self._orphaned_pods(key)
            return
        lease = self.leases.store.get(f"{LEASE_NAMESPACE}/{key}")
        beat = heartbeat_of(node, lease)
        mono = time.monotonic()
        prev = self.seen.get(key)
        if prev is None or prev[0] != beat:
            self.seen[key] = prev = (beat, mono)
        ready = condition(node, "Ready") or {}
        if mono - prev[1] > self.grace and ready.get("status") != "Unknown":
            node = await self._mark_unknown(node)
            if node is None:
                return
            ready = condition(node, "Ready") or {}
        taints = desired_taints(node)
        if taints != ((node.get("spec") or {}).get("taints") or []):
            try:
                node = await self.client.patch("nodes", key, {"spec": {"taints": taints},
                                                              "metadata": {"resourceVersion":
                                                                           node["metadata"]["resourceVersion"]}})
            except NotFound:
                return
        if ready.get("status") == "Unknown":
            await self._pods_not_ready(key)
            since = parse_epoch(ready.get("lastTransitionTime")) or time.time()
            if time.time() - since >= self.eviction:
                await self._evict(node)
            else:
                self.queue.add_after(key, max(self.eviction - (time.time() - since), 0.05))
        elif mono - prev[1] <= self.grace:
            self.queue.add_after(key, self.grace - (mono - prev[1]) + 0.05)

    async def _orphaned_pods(self, node_name: str) -> None:
        """Pods bound to a Node that no longer exists have no agent to confirm their deletion:
        force-delete them, as upstream's pod GC does."""
        for pod in self.pods.store.by_index("node", node_name):
            try:
                await self.client.delete("pods", pod["metadata"]["name"], namespace=pod["metadata"]["namespace"],
                                         grace_period_seconds=0, preconditions={"uid": pod["metadata"]["uid"]})
                self.log.info("deleted pod %s/%s: its node %s is gone", pod["metadata"]["namespace"],
                              pod["metadata"]["name"], node_name)
            except (NotFound, Conflict):
                pass

    async def _mark_unknown(self, node: dict) -> dict | None:
        body = copy.deepcopy(node)
        body.setdefault("status", {})["conditions"] = unknown_conditions(node, format_time())
        try:
            out = await self.client.replace("nodes", node["metadata"]["name"], body, subresource="status")
        except NotFound:
            return None
        except Conflict:
            raise
        self.recorder.event(node, "Normal", "NodeNotReady", f"Node {node['metadata']['name']} status is now: "
                                                            "NodeNotReady")
        self.log.info("node %s stopped posting status: Ready=Unknown", node["metadata"]["name"])
        return out

    async def _pods_not_ready(self, node_name: str) -> None:
        now = format_time()

        async def one(pod: dict) -> None:
            patch = pod_not_ready_patch(pod, now)
            if patch is None:
                return
            try:
                await self.client.patch("pods", pod["metadata"]["name"], patch, namespace=pod["metadata"]["namespace"],
                                        subresource="status", patch_type="strategic")
                self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
            except NotFound:
                pass
        await asyncio.gather(*(one(p) for p in self.pods.store.by_index("node", node_name)))

    async def _evict(self, node: dict) -> None:
        name = node["metadata"]["name"]
        for pod in self.pods.store.by_index("node", name):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            tolerated = any(t.get("key") == UNREACHABLE and t.get("effect") in ("NoExecute", None, "")
                            and t.get("tolerationSeconds") is None
                            for t in (pod.get("spec") or {}).get("tolerations") or [])
            if tolerated:
                continue
            try:
                await self.client.delete("pods", pod["metadata"]["name"], namespace=pod["metadata"]["namespace"])
                self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod "
                                                                            f"{pod['metadata']['namespace']}/"
                                                                            f"{pod['metadata']['name']}")
            except NotFound:
                pass
