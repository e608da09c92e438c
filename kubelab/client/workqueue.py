"""A de-duplicating work queue, as client-go's.

Invariants (the reason controllers can be simple):
- a key is in `_queue` at most once (adding a waiting key again is a no-op);
- a key being processed (`_processing`) is never handed out again until `done()`;
  adding it meanwhile marks it `_dirty`, and `done()` re-queues it, so no change is missed;
- `add_rate_limited` delays per key exponentially (base * 2^failures, capped), `forget` resets;
- time is the injected `clock` (client/clock.py) for both stamps and delays, so a test with a
  FakeClock steps through backoff without sleeping.

Accounting for client-go's workqueue metrics (`kubelab.client.metrics` exports them): `adds_total`
and `retries_total` only grow; a key is in `_enqueued_at` exactly while it is in `_queue`, and in
`_started_at` exactly while it is in `_processing`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable

from .clock import REAL_CLOCK, Cancellable, Clock


class ShutDown(Exception):
    pass


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 60.0, name: str = "",
                 clock: Clock = REAL_CLOCK) -> None:
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()        # waiting to be processed (queued or re-queue on done)
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._getters: deque[asyncio.Future] = deque()
        self._timers: set[Cancellable] = set()  # add_after timers not yet fired
        self._shutdown = False
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.name = name                          # the `name` label of the workqueue_* metrics
        self.clock = clock                        # now() for the metrics' stamps, call_later() for delays
        self.adds_total = 0                           # keys put into _queue by add() (not de-duplicated ones)
        self.retries_total = 0                        # add_rate_limited() calls
        self._enqueued_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}
        self.on_get: Callable[[float], None] | None = None   # seconds a key waited in the queue
        self.on_done: Callable[[float], None] | None = None  # seconds a key was processed

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: Hashable) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._enqueue(key)

    def _enqueue(self, key: Hashable) -> None:
        self.adds_total += 1
        self._enqueued_at[key] = self.clock.now()
        self._queue.append(key)
        self._notify()

    def _notify(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        handle: Cancellable

        def fire() -> None:
            self._timers.discard(handle)
            self.add(key)

        handle = self.clock.call_later(delay, fire)
        self._timers.add(handle)

    def add_rate_limited(self, key: Hashable) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.retries_total += 1
        self.add_after(key, min(self.base_delay * (2 ** n), self.max_delay))

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def retries(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> Hashable:
        """The next key to process; you must call `done(key)` after processing it."""
        while not self._queue:
            if self._shutdown:
                raise ShutDown()
            fut = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._notify()  # pass the wake-up on to another getter
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        now = self.clock.now()
        self._started_at[key] = now
        waited = now - self._enqueued_at.pop(key, now)
        if self.on_get is not None:
            self.on_get(waited)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None and self.on_done is not None:
            self.on_done(self.clock.now() - started)
        if key in self._dirty:
            self._enqueue(key)

    def unfinished_seconds(self) -> tuple[float, float]:
        """(total, longest) seconds of work in progress: client-go's unfinished-work gauges."""
        now = self.clock.now()
        ages = [now - t for t in self._started_at.values()]
        return sum(ages), max(ages, default=0.0)

    def shutdown(self) -> None:
        self._shutdown = True
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)


async def run_worker(queue: WorkQueue, handle, *, on_error) -> None:
    """The client-go worker loop: take a key, handle it, `forget` it on success, re-queue it
    rate-limited on failure (`on_error(key, exc)` reports it), always `done`. Returns at
    shutdown."""
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await handle(key)
            queue.forget(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            on_error(key, e)
            queue.add_rate_limited(key)
        finally:
            queue.done(key)
