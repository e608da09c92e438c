"""Process identity: a PID plus the process's start time, so a recycled PID is never taken
for the process we started (and never signalled in its place).

The start time is field 22 of /proc/PID/stat, clock ticks since boot: it never changes for
a process and two processes with the same PID cannot share it. The lab's supervisor
(`lab/state.py`) and the node agent (`nodeagent/procs.py`) both record (pid, start) pairs
and compare them through `start_time` here.
"""

from __future__ import annotations


def start_time(pid: int, *, zombie_ok: bool = False) -> int | None:
    """The process's start time in clock ticks since boot; None when it is gone or (unless
    `zombie_ok`) a zombie: a zombie is as good as gone, it cannot be signalled into doing
    anything, but a supervisor reaping its own children still wants to recognise it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()  # the command name may hold spaces and ')'
    try:
        if rest[0] in (b"Z", b"X") and not zombie_ok:
            return None
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def same_process(pid: int | None, started: int | None) -> bool:
    """True if `pid` is alive and (when `started` is given) still the process started then.
    PID 0 and 1 are never ours."""
    if not pid or pid <= 1:
        return False
    st = start_time(pid)
    return st is not None and (started is None or st == started)
