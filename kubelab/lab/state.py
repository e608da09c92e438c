"""What `up` made, recorded under the lab dir so `down` removes exactly that and nothing else.

Layout of `<root-dir>/<lab>/`:
  lab.json                the plan + what was created (netns, links, which kubeconfig entries were
                          merged into whose file) + phase
  supervisor.json         the supervisor's PID (+ start time) and every component's PID
  events.jsonl            one JSON line per boot/supervision event (progress and `timeline`)
  kubeconfig              the admin kubeconfig (`kubelab get-kubeconfig` prints it)
  logs/<node>/<component>.log
  <node>/                 per-node state (etcd data, node agent root dir)

PIDs are stored with the process start time (field 22 of /proc/PID/stat) so a recycled PID is
never mistaken for ours.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass

from kubelab import procid

from .topology import LabPlan

LAB_FILE = "lab.json"
SUPERVISOR_FILE = "supervisor.json"
EVENTS_FILE = "events.jsonl"


# --- files ---------------------------------------------------------------------------------------

def write_json(path: str, data: dict) -> None:
    """Atomic replace: a reader never sees half a file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def new_record(plan: LabPlan, *, argv: list[str] | None = None) -> dict:
    return {"version": 1, "plan": plan.to_dict(), "phase": "creating", "created": {"netns": [], "links": []},
            "kubeconfig": None, "argv": argv or [], "started_at": time.time()}


def load_record(lab_dir: str) -> dict | None:
    return read_json(os.path.join(lab_dir, LAB_FILE))


def save_record(lab_dir: str, record: dict) -> None:
    os.makedirs(lab_dir, exist_ok=True)
    write_json(os.path.join(lab_dir, LAB_FILE), record)


def log_path(lab_dir: str, node: str, component: str) -> str:
    return os.path.join(lab_dir, "logs", node, f"{component}.log")


def append_event(lab_dir: str, event: dict) -> None:
    event = {"t": time.time(), **event}
    with open(os.path.join(lab_dir, EVENTS_FILE), "a") as f:
        f.write(json.dumps(event, sort_keys=True) + "\n")


def read_events(lab_dir: str, offset: int = 0) -> tuple[list[dict], int]:
    """Events appended since `offset` (bytes); returns them and the new offset."""
    path = os.path.join(lab_dir, EVENTS_FILE)
    try:
        with open(path) as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    complete, _, _rest = data.rpartition("\n")
    if not complete and not data.endswith("\n"):
        return [], offset
    events = []
    for line in complete.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, offset + len(complete) + 1 if complete else offset


# --- processes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcId:
    pid: int
    start: int  # clock ticks since boot, from /proc/PID/stat

    def to_dict(self) -> dict:
        return {"pid": self.pid, "start": self.start}


def proc_start(pid: int) -> int | None:
    """The start time even of a zombie (the supervisor still has to recognise its children)."""
    return procid.start_time(pid, zombie_ok=True)


def proc_id(pid: int) -> ProcId | None:
    start = proc_start(pid)
    return ProcId(pid, start) if start is not None else None


def alive(p: ProcId | dict | None) -> bool:
    """True if that exact process (same PID *and* start time) is still running (not a zombie)."""
    if not p:
        return False
    pid, start = (p.pid, p.start) if isinstance(p, ProcId) else (p.get("pid"), p.get("start"))
    if not pid or pid <= 1:
        return False
    return start is not None and procid.same_process(pid, start)


def signal_proc(p: ProcId | dict, sig: int) -> bool:
    """Signal one recorded process, only if it is still the same process. Never PID 1 or us."""
    pid, start = (p.pid, p.start) if isinstance(p, ProcId) else (p["pid"], p["start"])
    if pid <= 1 or pid == os.getpid() or proc_start(pid) != start:
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_proc(p: ProcId | dict, *, timeout: float = 5.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL."""
    if not signal_proc(p, signal.SIGTERM):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(p):
            return
        time.sleep(0.05)
    signal_proc(p, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while alive(p) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_many(procs: list[ProcId | dict], *, timeout: float = 5.0) -> None:
    """`stop_proc` for several at once: SIGTERM all, one shared wait, SIGKILL what is left."""
    sent = [p for p in procs if signal_proc(p, signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in sent):
        time.sleep(0.05)
    for p in sent:
        if alive(p):
            signal_proc(p, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(p) for p in sent):
        time.sleep(0.05)


def pids_in_netns(inodes: set[int]) -> list[int]:
    """Processes whose network namespace is one of `inodes`: everything running "on" a node.
    Nobody but the lab enters the lab's namespaces, so these are all ours."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid <= 1 or pid == me:
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                out.append(pid)
        except OSError:
            continue
    return sorted(out)


def pids_with_arg(match) -> list[int]:
    """Processes with an argument `match(arg)` accepts: a pod's `unshare --net=/run/netns/NAME`
    holder still names its netns after the name was deleted (the netns lives on in it)."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) <= 1 or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(match(a) for a in args):
            out.append(int(entry))
    return sorted(out)


def mounts_under(path: str, mountinfo: str | None = None) -> list[str]:
    """Mount points at or below `path`, deepest first (the order to unmount them)."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo") as f:
                mountinfo = f.read()
        except OSError:
            mountinfo = ""
    path = os.path.abspath(path).rstrip("/") + "/"
    found = []
    for line in mountinfo.splitlines():
        parts = line.split()
        if len(parts) < 5:
            continue
        mp = parts[4].replace("\\040", " ")
        if (mp.rstrip("/") + "/").startswith(path):
            found.append(mp)
    return sorted(set(found), key=lambda m: (-m.count("/"), m))


def container_pid(netns: str) -> int | None:
    """A process of a pod's container: in the pod's netns, in a mount namespace other than
    ours (the pause process shares the node's; every container has its own `/`), so
    `nsenter -t PID -m -n` sees what the container sees."""
    from .topology import netns_inode
    inode = netns_inode(netns)
    mine = os.stat("/proc/self/ns/mnt").st_ino
    for pid in pids_in_netns({inode} if inode else set()):
        try:
            if os.stat(f"/proc/{pid}/ns/mnt").st_ino != mine:
                return pid
        except OSError:
            continue
    return None
