"""What every control loop shares: one informer per resource per process, and the
queue-driven worker loop (key in → `sync(key)` → retry with backoff on error).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubelab.client import ApiClient, Conflict, Informer, WorkQueue, key_of
from kubelab.client.record import EventRecorder
from kubelab.client.workqueue import run_worker

log = logging.getLogger(__name__)


class InformerFactory:
    """Shared informers: a process holds one list+watch per (resource, namespace, selector),
    however many loops read it. Indexers are merged on request (Store.add_indexer)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._informers: dict[tuple, Informer] = {}
        self._tasks: list[asyncio.Task] = []

    def informer(self, resource: str, *, namespace: str | None = None, label_selector: str | None = None,
                 indexers: dict[str, Callable[[dict], list[str]]] | None = None) -> Informer:
        key = (resource, namespace, label_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, resource, namespace=namespace, label_selector=label_selector)
            self._informers[key] = inf
        for name, fn in (indexers or {}).items():
            inf.store.add_indexer(name, fn)
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            if not inf.started:
                self._tasks.append(inf.start())

    async def wait_synced(self, timeout: float = 60.0) -> None:
        await asyncio.gather(*(inf.wait_synced(timeout) for inf in self._informers.values()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class Context:
    """What a controller is built from."""

    def __init__(self, client: ApiClient, factory: InformerFactory, recorder: EventRecorder, options) -> None:
        self.client = client
        self.factory = factory
        self.recorder = recorder
        self.options = options
        self._recorders: dict[str, EventRecorder] = {}

    def recorder_for(self, component: str | None) -> EventRecorder:
        """Events carry the loop's own source.component (`deployment-controller`, ...) as upstream's."""
        if not component:
            return self.recorder
        if component not in self._recorders:
            self._recorders[component] = EventRecorder(self.client, component, host=self.recorder.host)
        return self._recorders[component]

    def close(self) -> None:
        self.recorder.close()
        for r in self._recorders.values():
            r.close()


class Controller:
    """A work-queue driven loop. Subclasses register informer handlers that `enqueue` keys
    and implement `sync(key)`; raising from sync retries the key with backoff."""

    name = "controller"
    component: str | None = None  # events' source.component
    workers = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder_for(self.component)
        self.queue = WorkQueue(name=self.name)
        self.log = logging.getLogger(f"kubelab.controllers.{self.name}")

    def enqueue(self, obj_or_key) -> None:
        self.queue.add(obj_or_key if isinstance(obj_or_key, str) else key_of(obj_or_key))

    async def sync(self, key: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def background(self) -> None:
        """Periodic work besides the queue (node monitor, ...); default none."""
        await asyncio.Event().wait()

    async def _worker(self) -> None:
        def report(key: str, e: Exception) -> None:
            retries = self.queue.retries(key)
            quiet = isinstance(e, Conflict) or retries >= 5  # a stale cache: routine, retried
            (self.log.debug if quiet else self.log.warning)("sync %s failed (retry %d): %s", key, retries, e)

        await run_worker(self.queue, self.sync, on_error=report)

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self.background()))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
