"""A rate-limited "sync now" runner, shared by the node components that program the kernel
(the service proxy, the NetworkPolicy agent).

Both turn a stream of informer events into whole-state syncs; syncing per event would rewrite
the rules hundreds of times during a rollout. Upstream's answer (and ours) is the
BoundedFrequencyRunner: at most one run per `min_interval`, at least one per `max_interval`.
Lives in kubelab.client because no component package may import another.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

class BoundedFrequencyRunner:
    """Run `fn` when asked, but never more often than `min_interval`, and at least every `max_interval`.

    Requests arriving while a run is pending (or during the min-interval wait) are folded into
    that run: 100 endpoint changes in 50 ms cause one sync, not 100. Upstream:
    k8s.io/kubernetes/pkg/util/async/bounded_frequency_runner.go.
    `fn(periodic)` is told whether the run came from the timer rather than a request.
    """

    def __init__(self, fn: Callable[[bool], Awaitable[None]], *, min_interval: float, max_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fn = fn
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.clock = clock
        self._requested = asyncio.Event()
        self._last_run = -math.inf
        self._retry_at = math.inf
        self.runs = 0

    def run(self) -> None:
        """Ask for a run soon (cheap; call it from every event handler)."""
        self._requested.set()

    def retry_after(self, delay: float) -> None:
        """Schedule a run after a failure even if nothing else changes."""
        self._retry_at = min(self._retry_at, self.clock() + delay)

    async def loop(self) -> None:
        while True:
            now = self.clock()
            deadline = min(self._last_run + self.max_interval, self._retry_at)
            periodic = False
            if not self._requested.is_set():
                try:
                    await asyncio.wait_for(self._requested.wait(), max(0.0, deadline - now))
                except asyncio.TimeoutError:
                    periodic = True
            # rate limit: wait out the rest of min_interval; requests meanwhile coalesce into this run
            wait = self._last_run + self.min_interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._requested.clear()
            self._retry_at = math.inf
            self._last_run = self.clock()
            self.runs += 1
            try:
                await self.fn(periodic)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync failed")
