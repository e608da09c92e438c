"""Simulated nodes for tests and benchmarks: Node objects, their Leases, and a minimal
"node agent" that marks pods bound to them Running+Ready with an IP and confirms their
deletion, so the control loops can be exercised on a real API server without real nodes.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from kubelab.client import ApiClient, ApiError, Informer, NotFound

from kubelab.testing import Proc
from kubelab.timestamps import format_time

from kubelab.timestamps import format_micro_time as micro_time
from .nodelifecycle import LEASE_NAMESPACE


def node_body(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
              taints: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints} if taints else {}}


async def create_node(api: ApiClient, name: str, *, ready: bool = True, cpu: str = "4", memory: str = "8Gi",
                      pods: str = "110", labels: dict | None = None, taints: list | None = None) -> dict:
    await api.create("nodes", node_body(name, labels=labels, taints=taints))
    now = format_time()
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady",
                              "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                              "lastTransitionTime": now}],
              "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
              "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
              "addresses": [{"type": "Hostname", "address": name}]}
    out = await api.patch("nodes", name, {"status": status}, subresource="status")
    await renew_lease(api, name)
    return out


async def renew_lease(api: ApiClient, node: str) -> None:
    spec = {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": micro_time(time.time())}
    try:
        await api.patch("leases", node, {"spec": spec}, namespace=LEASE_NAMESPACE)
    except NotFound:
        try:
            await api.create("namespaces", {"metadata": {"name": LEASE_NAMESPACE}})
        except ApiError:
            pass
        try:
            await api.create("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                        "metadata": {"name": node, "namespace": LEASE_NAMESPACE}, "spec": spec},
                             namespace=LEASE_NAMESPACE)
        except ApiError:
            pass


@dataclass
class FakeNodeAgent:
    """Plays the node agent of `nodes`: heartbeats, pods Ready with IPs, deletion confirmed."""

    api: ApiClient
    nodes: list[str]
    heartbeat: float = 1.0
    auto_ready: bool = True
    confirm_deletions: bool = True
    ready_delay: float = 0.0
    stopped_heartbeats: set[str] = field(default_factory=set)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _ips: dict[str, str] = field(default_factory=dict)  # pod uid -> ip
    _next: dict[str, int] = field(default_factory=dict)
    _inflight: set[str] = field(default_factory=set)

    def _ip_for(self, pod: dict) -> str:
        uid = pod["metadata"]["uid"]
        if uid not in self._ips:
            node = pod["spec"]["nodeName"]
            idx = self.nodes.index(node)
            n = self._next.get(node, 0)
            self._next[node] = n + 1
            self._ips[uid] = f"10.{100 + idx % 150}.{n // 250}.{n % 250 + 2}"
        return self._ips[uid]

    async def start(self) -> None:
        self.informer = Informer(self.api, "pods")
        self.informer.add_handler(on_add=self._pod, on_update=lambda o, n: self._pod(n))
        self._tasks.append(asyncio.create_task(self.informer.run()))
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        await self.informer.wait_synced(30)

    def _pod(self, pod: dict) -> None:
        if pod["spec"].get("nodeName") not in self.nodes:
            return
        key = pod["metadata"]["uid"]
        if key in self._inflight:
            return
        if pod["metadata"].get("deletionTimestamp"):
            if self.confirm_deletions:
                self._spawn(key, self._confirm(pod))
            return
        if self.auto_ready and (pod.get("status") or {}).get("phase") != "Running" and \
                pod["spec"]["nodeName"] not in self.stopped_heartbeats:
            self._spawn(key, self._make_ready(pod))

    def _spawn(self, key: str, coro) -> None:
        self._inflight.add(key)
        t = asyncio.create_task(coro)
        t.add_done_callback(lambda _t: self._inflight.discard(key))
        self._tasks.append(t)
        if len(self._tasks) > 2000:
            self._tasks = [x for x in self._tasks if not x.done()]

    async def _make_ready(self, pod: dict) -> None:
        if self.ready_delay:
            await asyncio.sleep(self.ready_delay)
        now = format_time()
        ip = self._ip_for(pod)
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.56.11",
                  "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                                 {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
                  "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "ready": True, "started": True,
                                         "restartCount": 0, "state": {"running": {"startedAt": now}}}
                                        for c in pod["spec"].get("containers") or []]}
        try:
            await self.api.patch("pods", pod["metadata"]["name"], {"status": status},
                                 namespace=pod["metadata"]["namespace"], subresource="status", patch_type="strategic")
        except ApiError:
            pass

    async def _confirm(self, pod: dict) -> None:
        try:
            await self.api.delete("pods", pod["metadata"]["name"], namespace=pod["metadata"]["namespace"],
                                  grace_period_seconds=0, preconditions={"uid": pod["metadata"]["uid"]})
        except ApiError:
            pass

    async def _heartbeats(self) -> None:
        while True:
            for n in self.nodes:
                if n not in self.stopped_heartbeats:
                    try:
                        await renew_lease(self.api, n)
                    except Exception:
                        pass
            await asyncio.sleep(self.heartbeat)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


Component = Proc  # a component run as `python -m kubelab.<module> ...`, stopped by PID


def spawn_component(module: str, server: str, *args: str, env: dict | None = None) -> Component:
    fd, log_path = tempfile.mkstemp(prefix=f"kubelab-{module.rsplit('.', 1)[-1]}-", suffix=".log")
    out = os.fdopen(fd, "wb")
    if module in ("kubelab.controllers", "kubelab.scheduler") and not any(a.startswith("--secure-port") for a in args):
        args = (*args, "--secure-port=0")  # tests run many at once on the host: no fixed status port
    p = subprocess.Popen([sys.executable, "-m", module, "--server", server, *args], stdout=out,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                         start_new_session=True)
    out.close()
    return Proc(p, log_path)
