"""Pod status from runtime state: pure (pod + what the node knows → the `status` to write).

The agent writes status only when this function's output differs from what it last wrote,
so everything here is deterministic given its inputs (timestamps come in, never `now()`).
Phase and conditions follow the kubelet's rules (`getPhase`, `generateAPIPodStatus`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ContainerView:
    """What the runtime knows about one container (one entry of containerStatuses)."""
    name: str
    image: str
    image_id: str = ""
    container_id: str = ""
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        s: dict[str, Any] = {"name": self.name, "image": self.image, "imageID": self.image_id,
                             "ready": self.ready, "restartCount": self.restart_count,
                             "started": self.started, "state": self.state, "lastState": self.last_state}
        if self.container_id:
            s["containerID"] = self.container_id
        return s


@dataclass
class SandboxView:
    ready: bool = False
    pod_ip: str | None = None
    host_ip: str | None = None
    start_time: str | None = None


def phase(restart_policy: str, containers: list[ContainerView]) -> str:
    """The kubelet's getPhase for regular containers."""
    if not containers:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for c in containers:
        if "running" in c.state:
            running += 1
        elif "terminated" in c.state:
            stopped += 1
            succeeded += c.state["terminated"].get("exitCode", 1) == 0
        else:
            last = c.last_state.get("terminated")
            if last is not None:
                stopped += 1
                succeeded += last.get("exitCode", 1) == 0
            else:
                waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    if restart_policy == "Never":
        return "Failed"
    return "Running"


def qos_class(pod: dict) -> str:
    reqs, lims, any_set = [], [], False
    for c in (pod.get("spec") or {}).get("containers") or []:
        r = (c.get("resources") or {})
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        any_set = any_set or bool(req) or bool(lim)
        reqs.append({k: req.get(k, lim.get(k)) for k in ("cpu", "memory")})
        lims.append({k: lim.get(k) for k in ("cpu", "memory")})
    if not any_set:
        return "BestEffort"
    if all(all(l[k] is not None and l[k] == r[k] for k in ("cpu", "memory")) for r, l in zip(reqs, lims)):
        return "Guaranteed"
    return "Burstable"


def _condition(ctype: str, ok: bool, now: str, previous: dict[str, dict], *, reason: str = "",
               message: str = "") -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = previous.get(ctype)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    c: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None,
                         "lastTransitionTime": since or now}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def init_phase(restart_policy: str, inits: list[ContainerView]) -> str:
    """"done" (all exited 0), "failed" (one failed and will not restart), or "running"."""
    for c in inits:
        t = c.state.get("terminated")
        if t is None or t.get("exitCode") != 0:
            return "failed" if t is not None and restart_policy == "Never" else "running"
    return "done"


def compute(pod: dict, sandbox: SandboxView, containers: list[ContainerView], *, now: str,
            previous: dict | None = None, init_containers: list[ContainerView] | None = None) -> dict[str, Any]:
    """The full `status` for `pod`. `previous` (the status last written) keeps condition
    transition times stable, so an unchanged pod yields an identical dict."""
    previous = previous or {}
    prev_conds = {c.get("type"): c for c in previous.get("conditions") or []}
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy", "Always")
    init = init_phase(policy, init_containers or [])
    ph = {"running": "Pending", "failed": "Failed"}.get(init) or phase(policy, containers)
    unready = [c.name for c in containers if not c.ready]
    terminal = ph in ("Succeeded", "Failed")
    ready_reason = "PodCompleted" if terminal else ("ContainersNotReady" if unready else "")
    ready_msg = "" if terminal or not unready else f"containers with unready status: [{' '.join(unready)}]"
    conds = [
        _condition("PodReadyToStartContainers", sandbox.ready, now, prev_conds),
        _condition("Initialized", init == "done", now, prev_conds,
                   reason="PodCompleted" if terminal and init == "done" else
                   ("" if init == "done" else "ContainersNotInitialized"),
                   message="" if init == "done" else
                   f"containers with incomplete status: [{' '.join(c.name for c in init_containers or [] if 'terminated' not in c.state or c.state['terminated'].get('exitCode') != 0)}]"),
        _condition("Ready", not unready and not terminal, now, prev_conds, reason=ready_reason, message=ready_msg),
        _condition("ContainersReady", not unready and not terminal, now, prev_conds, reason=ready_reason,
                   message=ready_msg),
        _condition("PodScheduled", True, now, prev_conds),
    ]
    status: dict[str, Any] = {"phase": ph, "conditions": conds, "qosClass": qos_class(pod)}
    if sandbox.host_ip:
        status["hostIP"] = sandbox.host_ip
        status["hostIPs"] = [{"ip": sandbox.host_ip}]
    if sandbox.pod_ip:
        status["podIP"] = sandbox.pod_ip
        status["podIPs"] = [{"ip": sandbox.pod_ip}]
    if sandbox.start_time:
        status["startTime"] = sandbox.start_time
    if init_containers:
        status["initContainerStatuses"] = [c.to_status() for c in init_containers]
    status["containerStatuses"] = [c.to_status() for c in containers]
    return status


def changed(old: dict | None, new: dict) -> bool:
    """Whether `new` differs from the status last written (fields we do not own ignored)."""
    if not old:
        return True
    return any(old.get(k) != v for k, v in new.items())
