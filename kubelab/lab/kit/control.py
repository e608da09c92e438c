"""`kubelab restart COMPONENT --node NODE`: what `systemctl restart kubelet` is on a VM.

The lab's supervisor restarts a component that exits, so a restart is: resume the recorded
process if it is stopped (a stopped process cannot act on SIGTERM), SIGTERM it (SIGKILL after
5 s), then wait until the supervisor has started a new one and it is healthy. Only the PID the
supervisor recorded (with its start time) is ever signalled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx

from .. import components, state
from ..components import ComponentSpec
from ..lab import LabError, load_plan

RESTARTABLE = ("apiserver", "controllers", "scheduler", "nodeagent", "proxy", "etcd")


def _record(lab_dir: str, node: str, component: str) -> dict | None:
    s = state.read_json(os.path.join(lab_dir, state.SUPERVISOR_FILE)) or {}
    return next((c for c in s.get("components", []) if c["spec"]["node"] == node and c["spec"]["name"] == component),
                None)


async def restart(*, name: str, root_dir: str, component: str, node: str | None, timeout: float = 60.0) -> dict:
    plan, _ = load_plan(name, root_dir)
    if component not in RESTARTABLE:
        raise LabError(f"unknown component {component!r}: one of {', '.join(RESTARTABLE)}")
    if node is None:
        hosts = [c["spec"]["node"] for c in (state.read_json(os.path.join(plan.lab_dir, state.SUPERVISOR_FILE))
                                              or {}).get("components", []) if c["spec"]["name"] == component]
        if len(hosts) != 1:
            raise LabError(f"{component} runs on {', '.join(hosts) or 'no node'}: pick one with --node")
        node = hosts[0]
    rec = _record(plan.lab_dir, node, component)
    if rec is None:
        raise LabError(f"no {component} on node {node!r} in lab {plan.name!r} (`kubelab status`)")
    sup = (state.read_json(os.path.join(plan.lab_dir, state.SUPERVISOR_FILE)) or {}).get("supervisor")
    if not state.alive(sup):
        raise LabError("the lab's supervisor is not running: nothing would start the component again")
    old = rec.get("pid")
    restarts = rec.get("restarts", 0)
    was = "not running"
    if state.alive(old):
        was = f"pid {old['pid']}" + (" (stopped)" if _stopped(old["pid"]) else "")
        state.signal_proc(old, signal.SIGCONT)
        await asyncio.to_thread(state.stop_proc, old, timeout=5.0)
    spec = ComponentSpec.from_dict(rec["spec"])
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(trust_env=False, verify=components.health_verify(plan)) as http:
        while True:
            now = _record(plan.lab_dir, node, component) or {}
            pid = now.get("pid")
            if pid and state.alive(pid) and (pid != old or now.get("restarts", 0) > restarts):
                if not spec.health or await _healthy(http, spec.health):
                    return {"node": node, "component": component, "was": was, "pid": pid["pid"]}
            if time.monotonic() > deadline:
                raise LabError(f"{node}/{component} did not come back healthy within {timeout:.0f}s; "
                               f"see `kubelab logs {component} --node {node}`")
            await asyncio.sleep(0.2)


async def _healthy(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.get(url, timeout=2.0)).status_code == 200
    except httpx.HTTPError:
        return False


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False
