"""One upstream etcd watch per resource, fanned out to every client watch.

A hundred `kubectl get -w` or informers on pods cost one etcd watch, not a hundred. The
cache keeps a window of recent events so a watch from a list's resourceVersion replays
exactly what happened after the list (list-then-watch loses nothing); a watch from
further back than the window gets its own etcd watch, which answers 410 when etcd has
compacted that far.

Invariants: `window_start` < every buffered revision, and every event with
window_start < revision <= `revision` is in `buffer`, in revision order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from .storage import CompactedError, Storage, WatchEvent

log = logging.getLogger(__name__)

_CLOSED = object()


class Subscriber:
    """One client watch: a queue the cache pushes into, never blocking the fan-out."""

    MAX_BACKLOG = 20000

    def __init__(self, cache: "WatchCache", after: int) -> None:
        self.cache = cache
        self.after = after
        self.queue: asyncio.Queue = asyncio.Queue()
        self.error: Exception | None = None

    def push(self, ev: WatchEvent) -> None:
        if ev.revision <= self.after:
            return
        if self.queue.qsize() > self.MAX_BACKLOG:
            # A client this far behind is dropped; it reconnects from its last revision.
            self.close(ConnectionResetError("watch client too slow"))
            return
        self.queue.put_nowait(ev)

    def close(self, error: Exception | None = None) -> None:
        self.error = error
        self.cache.subscribers.discard(self)
        self.queue.put_nowait(_CLOSED)

    async def next(self, timeout: float | None) -> WatchEvent | None:
        """The next event; None on timeout. Raises the close reason when closed."""
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if item is _CLOSED:
            raise self.error or EOFError()
        return item


class WatchCache:
    def __init__(self, storage: Storage, prefix: str, *, capacity: int = 10000) -> None:
        self.storage = storage
        self.prefix = prefix
        self.buffer: deque[WatchEvent] = deque()
        self.capacity = capacity
        self.window_start = 0
        self.revision = 0
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()
        self.listeners: list = []  # called with every event, in order (the server's own caches)

    def start(self, revision: int) -> None:
        """Begin watching after `revision` (everything up to it was already readable)."""
        self.window_start = self.revision = revision
        self._task = asyncio.create_task(self._run(), name=f"watchcache {self.prefix}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for s in list(self.subscribers):
            s.close(EOFError())

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                self.ready.set()
                async for ev in self.storage.watch(self.prefix, start_revision=self.revision + 1):
                    self._append(ev)
                    backoff = 0.1
            except asyncio.CancelledError:
                raise
            except CompactedError:
                # We lost history while disconnected: nobody can be served from the
                # window any more; clients get 410 and relist, as from kube-apiserver.
                rev = await self.storage.revision()
                log.warning("watch cache %s compacted; resetting to %d", self.prefix, rev)
                self.buffer.clear()
                self.window_start = self.revision = rev
                for s in list(self.subscribers):
                    s.close(CompactedError("the watch cache was reset after compaction"))
            except Exception as e:  # etcd restarted or unreachable: re-watch from where we were
                log.warning("watch on %s interrupted (%s); re-watching from %d", self.prefix, e, self.revision + 1)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _append(self, ev: WatchEvent) -> None:
        self.buffer.append(ev)
        self.revision = ev.revision
        while len(self.buffer) > self.capacity:
            self.window_start = self.buffer.popleft().revision
        for fn in self.listeners:
            fn(ev)
        for s in list(self.subscribers):
            s.push(ev)

    async def subscribe(self, after: int) -> Subscriber | None:
        """A subscriber receiving every event with revision > `after`, or None when `after`
        is older than the window (the caller then watches etcd directly)."""
        if after < self.window_start:
            return None
        if after < self.revision:
            # Buffered events may be served only if etcd still has that history:
            # kube-apiserver answers 410 for compacted revisions, so do we.
            await self.storage.check_revision(self.prefix, after + 1)
        sub = Subscriber(self, after)
        for ev in self.buffer:
            sub.push(ev)
        self.subscribers.add(sub)
        return sub

    async def events(self, after: int, *, timeout: Callable[[], float]) -> AsyncIterator[WatchEvent | None]:
        """Events after `after`; yields None after `timeout()` seconds of quiet, so the
        caller can send a bookmark or end the watch."""
        sub = await self.subscribe(after)
        if sub is None:
            async for ev in self._direct(after, timeout):
                yield ev
            return
        try:
            while True:
                yield await sub.next(timeout())
        finally:
            sub.close()

    async def _direct(self, after: int, timeout: Callable[[], float]) -> AsyncIterator[WatchEvent | None]:
        """A dedicated etcd watch for a client further back than the window."""
        queue: asyncio.Queue = asyncio.Queue()

        async def pump() -> None:
            try:
                async for ev in self.storage.watch(self.prefix, start_revision=after + 1):
                    queue.put_nowait(ev)
            except Exception as e:
                queue.put_nowait(e)

        task = asyncio.create_task(pump())
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout())
                except asyncio.TimeoutError:
                    yield None
                    continue
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            task.cancel()
