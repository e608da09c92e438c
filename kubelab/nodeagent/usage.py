"""Resource usage of the node and of each container, for the metrics API (`kubectl top`).

Where it comes from: kubelab's containers are process trees without cgroups of their own, so a
container's usage is read from /proc for every process under its first process (the
recorder wrapper and its descendants): CPU time (utime+stime) and resident memory (VmRSS). The
node's is the machine's: /proc/stat and MemTotal − MemAvailable (simulated nodes share a host,
so they report the same figures). metrics-server reads the kubelet's cgroup counters instead;
docs/pods.md says what that changes.

CPU is a rate: `Sampler` keeps the previous cumulative reading per key and divides the
difference by the time between readings (metrics-server does the same between two scrapes);
a key seen for the first time is sampled twice, FIRST_WINDOW apart. Memory is instantaneous.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from . import procs

TICKS = os.sysconf("SC_CLK_TCK")
FIRST_WINDOW = 0.5
MAX_PROCS = 4096     # a fork bomb in a container does not make a scrape unbounded


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (at most MAX_PROCS)."""
    out, todo = [], [pid] if pid else []
    while todo and len(out) < MAX_PROCS:
        p = todo.pop()
        out.append(p)
        todo += procs.children(p)
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / TICKS


def memory_bytes(pids: list[int]) -> int:
    return sum(procs.rss_kib(p) for p in pids) * 1024


def node_cpu_seconds() -> float:
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


def node_memory_bytes() -> int:
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            info[k] = int(v.split()[0]) * 1024
    return info["MemTotal"] - info.get("MemAvailable", info.get("MemFree", 0))


class Sampler:
    """CPU rates from cumulative readings (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last: dict[str, tuple[float, float]] = {}   # key -> (time, cumulative cpu seconds)

    def rate(self, key: str, cpu: float) -> float | None:
        """Cores used since the previous reading of `key` (None: the first reading)."""
        now = self.clock()
        prev = self.last.get(key)
        self.last[key] = (now, cpu)
        if prev is None or now <= prev[0]:
            return None
        return max(0.0, (cpu - prev[1]) / (now - prev[0]))

    def forget_except(self, keys: set[str]) -> None:
        for k in set(self.last) - keys:
            del self.last[k]
