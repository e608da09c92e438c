"""Time, injectable, as k8s.io/utils/clock: what a loop reads (`now`) and waits on (`call_later`).

Why: code that backs off or delays (the work queue's rate limiter, `add_after`) is only
testable without sleeping if the test owns time. Production uses `RealClock` (monotonic time,
the running event loop's timers); tests use `FakeClock` and `step()` it, which fires every
timer that came due, in order, synchronously.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable: ...


class RealClock:
    """Monotonic seconds; timers on the running asyncio loop (so call_later needs one)."""

    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, fn)


REAL_CLOCK = RealClock()


class _FakeTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time that moves only when told. Invariant: `_timers` is a heap of (due, seq, timer, fn);
    `step()` pops and runs those due at or before the new time, earliest (then oldest) first,
    with `now()` reading each one's due time while it runs."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, fn: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer()
        heapq.heappush(self._timers, (self._now + max(delay, 0.0), next(self._seq), timer, fn))
        return timer

    def pending(self) -> list[float]:
        """Due times of the timers not yet fired nor cancelled, soonest first."""
        return sorted(due for due, _, t, _ in self._timers if not t.cancelled)

    def step(self, seconds: float) -> None:
        until = self._now + seconds
        while self._timers and self._timers[0][0] <= until:
            due, _, timer, fn = heapq.heappop(self._timers)
            self._now = due
            if not timer.cancelled:
                fn()
        self._now = until
