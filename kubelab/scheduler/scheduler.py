"""The scheduler's I/O: informers in, bindings out.

One scheduling loop takes pending pods from a queue, runs the pure filters and scores against
an in-memory cache, *assumes* the pod on the chosen node (so the next decision already
counts it) and binds in the background (binding is the slow part: a round trip). When the
informer later shows the pod bound, the assumption is confirmed; if binding fails it is
forgotten and the pod retried. Pods that fit nowhere get PodScheduled=False and wait until
a node or pod changes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from kubelab.client import ApiClient, ApiError, Conflict, Informer, NotFound, WorkQueue, key_of
from kubelab.client.workqueue import run_worker
from kubelab.client.record import EventRecorder
from kubelab.timestamps import format_time

from .filters import NodeInfo, Resources, filter_node, fit_error_message, pod_requests
from .scores import DEFAULT_MEMORY, DEFAULT_MILLI_CPU, owner_uid, score_nodes

log = logging.getLogger("kubelab.scheduler")

DEFAULT_SCHEDULER = "default-scheduler"


def is_pending_for(pod: dict, scheduler_name: str) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == scheduler_name
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))


def _nonzero(r: Resources) -> Resources:
    return Resources(r.milli_cpu or DEFAULT_MILLI_CPU, r.memory or DEFAULT_MEMORY, r.pods)


class SchedulerCache:
    """Nodes and what is placed on them: bound pods (from the informer) and assumed pods."""

    def __init__(self) -> None:
        self.infos: dict[str, NodeInfo] = {}
        self.nonzero: dict[str, Resources] = {}
        self.pod_node: dict[str, str] = {}
        self.pod_req: dict[str, tuple[Resources, Resources]] = {}
        self.assumed: dict[str, float] = {}

    def set_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        ni = self.infos.get(name)
        if ni is None:
            self.infos[name] = NodeInfo(node)
            self.nonzero.setdefault(name, Resources())
        else:
            ni.node = node
            ni.known = True

    def remove_node(self, name: str) -> None:
        ni = self.infos.get(name)
        if ni is not None:
            if ni.pods:
                ni.known = False  # keep the accounting of its pods until they go
            else:
                del self.infos[name]

    def add_pod(self, pod: dict, node: str) -> None:
        key = key_of(pod)
        if self.pod_node.get(key) == node:
            if node in self.infos:
                self.infos[node].pods[key] = pod
            return
        self.remove_pod(key)
        req = pod_requests(pod)
        nz = _nonzero(req)
        self.pod_node[key] = node
        self.pod_req[key] = (req, nz)
        ni = self.infos.get(node)
        if ni is None:  # a pod on a node we have not seen yet
            ni = self.infos[node] = NodeInfo({"metadata": {"name": node}}, known=False)
            self.nonzero.setdefault(node, Resources())
        ni.requested = ni.requested + req
        ni.pods[key] = pod
        uid = owner_uid(pod)
        if uid:
            ni.owners[uid] = ni.owners.get(uid, 0) + 1
        self.nonzero[node] = self.nonzero.get(node, Resources()) + nz

    def remove_pod(self, key: str) -> None:
        node = self.pod_node.pop(key, None)
        self.assumed.pop(key, None)
        if node is None:
            return
        req, nz = self.pod_req.pop(key)
        ni = self.infos.get(node)
        if ni is not None:
            ni.requested = ni.requested - req
            pod = ni.pods.pop(key, None)
            uid = owner_uid(pod) if pod else None
            if uid and ni.owners.get(uid):
                ni.owners[uid] -= 1
                if not ni.owners[uid]:
                    del ni.owners[uid]
        self.nonzero[node] = self.nonzero.get(node, Resources()) - nz

    def assume(self, pod: dict, node: str) -> None:
        self.add_pod(pod, node)
        self.assumed[key_of(pod)] = time.monotonic()

    def confirm(self, pod: dict) -> None:
        self.assumed.pop(key_of(pod), None)
        self.add_pod(pod, pod["spec"]["nodeName"])


def choose_node(pod: dict, cache: SchedulerCache, rng: random.Random | None = None) -> tuple[str | None, str]:
    """(node name, "") or (None, the upstream-style FitError message) (pure over the cache)."""
    real = [ni for ni in cache.infos.values() if ni.known]
    reasons: dict[str, int] = {}
    feasible = []
    for ni in real:
        failed = filter_node(pod, ni)
        if failed:
            for r in failed:
                reasons[r] = reasons.get(r, 0) + 1
        else:
            feasible.append(ni)
    if not feasible:
        return None, fit_error_message(len(real), reasons)
    scores = score_nodes(pod, feasible, cache.nonzero)
    best = max(scores.values())
    top = [n for n, s in scores.items() if s >= best - 1e-9]
    return (rng or random).choice(sorted(top)), ""


class Scheduler:
    def __init__(self, client: ApiClient, *, scheduler_name: str = DEFAULT_SCHEDULER, bind_concurrency: int = 8,
                 retry_interval: float = 15.0) -> None:
        self.client = client
        self.name = scheduler_name
        self.cache = SchedulerCache()
        self.queue = WorkQueue(base_delay=0.1, max_delay=10.0)
        self.unschedulable: set[str] = set()
        self.recorder = EventRecorder(client, scheduler_name, max_queue=5000,
                                      busy=lambda: len(self.queue) > 0 or len(self._binds) > 0)
        self.pods = Informer(client, "pods")
        self.nodes = Informer(client, "nodes")
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._binds: set[asyncio.Task] = set()
        self.retry_interval = retry_interval
        self.bound = 0
        # scheduler_schedule_attempts_total by result, as upstream counts them
        self.attempts = {"scheduled": 0, "unschedulable": 0, "error": 0}
        self.nodes.add_handler(on_add=self._node_changed, on_update=lambda o, n: self._node_changed(n),
                               on_delete=lambda n: self.cache.remove_node(n["metadata"]["name"]))
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda o, n: self._pod_changed(n),
                              on_delete=self._pod_deleted)

    # ---- events -----------------------------------------------------------------------
    def _retry_unschedulable(self) -> None:
        for key in list(self.unschedulable):
            self.queue.add(key)
        self.unschedulable.clear()

    def _node_changed(self, node: dict) -> None:
        self.cache.set_node(node)
        self._retry_unschedulable()

    def _pod_changed(self, pod: dict) -> None:
        key = key_of(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            if pod["metadata"].get("deletionTimestamp") is None and \
                    (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                self.cache.confirm(pod)
            else:
                self.cache.remove_pod(key)
                self._retry_unschedulable()
            self.unschedulable.discard(key)
        elif is_pending_for(pod, self.name) and key not in self.cache.assumed:
            if key not in self.unschedulable:
                self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = key_of(pod)
        self.unschedulable.discard(key)
        if key in self.cache.pod_node:
            self.cache.remove_pod(key)
            self._retry_unschedulable()

    # ---- the loop ---------------------------------------------------------------------
    async def schedule_one(self, key: str) -> None:
        pod = self.pods.store.get(key)
        if pod is None or not is_pending_for(pod, self.name) or key in self.cache.assumed:
            return
        node, message = choose_node(pod, self.cache)
        if node is None:
            self.unschedulable.add(key)
            self.attempts["unschedulable"] += 1
            await self._mark_unschedulable(pod, message)
            return
        self.cache.assume(pod, node)
        await self._bind_slots.acquire()
        task = asyncio.create_task(self._bind(pod, node))
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    async def _bind(self, pod: dict, node: str) -> None:
        key = key_of(pod)
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        try:
            await self.client.bind(name, node, namespace=ns)
            self.bound += 1
            log.info("bound pod %s to %s", key, node)
            self.attempts["scheduled"] += 1
            self.queue.forget(key)
            self.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}")
        except Conflict as e:  # already bound (by us before a restart, or someone else) or terminating
            log.debug("binding %s: %s", key, e)
            if key in self.cache.assumed:
                self.cache.remove_pod(key)
        except NotFound:
            self.cache.remove_pod(key)
        except Exception as e:
            log.warning("binding %s to %s failed: %s", key, node, e)
            self.attempts["error"] += 1
            self.cache.remove_pod(key)
            self.queue.add_rate_limited(key)
        finally:
            self._bind_slots.release()

    async def _mark_unschedulable(self, pod: dict, message: str) -> None:
        current = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"),
                       None)
        if current and current.get("status") == "False" and current.get("message") == message:
            return
        self.recorder.event(pod, "Warning", "FailedScheduling", message)
        patch = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": message, "lastProbeTime": None,
                                            "lastTransitionTime": format_time()}]}}
        try:
            await self.client.patch("pods", pod["metadata"]["name"], patch, namespace=pod["metadata"]["namespace"],
                                    subresource="status", patch_type="strategic")
        except ApiError as e:
            log.debug("marking %s unschedulable: %s", key_of(pod), e)

    async def _loop(self) -> None:
        await run_worker(self.queue, self.schedule_one,
                         on_error=lambda key, e: log.warning("scheduling %s: %s", key, e))

    async def _periodic_retry(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            self._retry_unschedulable()

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.nodes.run()), asyncio.create_task(self.pods.run())]
        try:
            await self.nodes.wait_synced(120)
            await self.pods.wait_synced(120)
            log.info("scheduler %s: caches synced (%d nodes)", self.name, len(self.nodes.store))
            tasks += [asyncio.create_task(self._loop()), asyncio.create_task(self._periodic_retry())]
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in list(tasks) + list(self._binds):
                t.cancel()
            await asyncio.gather(*tasks, *self._binds, return_exceptions=True)
            self.recorder.close()
