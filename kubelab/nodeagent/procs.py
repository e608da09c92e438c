"""Processes the agent started, found again by (pid, start time) so a recycled pid is never
signalled, and never PID 1 of the host (or the agent itself)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

from kubelab import procid
from kubelab.procid import start_time

MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def alive(pid: int | None, started: int | None = None) -> bool:
    return procid.same_process(pid, started)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def kill(pid: int | None, sig: int = signal.SIGTERM, started: int | None = None) -> bool:
    """Signal `pid` if it is still the process we started. Refuses PID ≤ 1 and ourselves."""
    if not pid or pid <= 1 or pid == os.getpid():
        return False
    if started is not None and start_time(pid) != started:
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def umount(path: str) -> None:
    """Lazy unmount (umount2 MNT_DETACH); a path that is not a mount point is fine."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, os.strerror(err), path)


def is_nsfs(path: str) -> bool:
    """Whether `path` is a namespace bind mount (what `ip netns add` leaves)."""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path and " nsfs " in line for line in f)
    except OSError:
        return False
