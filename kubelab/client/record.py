"""An event recorder: core/v1 Events for what a controller did, so `kubectl describe` shows it.

Recording never blocks a control loop: events go to a bounded queue drained by one task.
Repeats of the same (object, type, reason, message) bump `count`/`lastTimestamp` on the
existing Event instead of creating a new one, as client-go's correlator does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from kubelab.client import ApiClient, ApiError, NotFound
from kubelab.timestamps import format_time


log = logging.getLogger(__name__)


def involved_object(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"), "name": meta.get("name"),
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}


def make_event(obj: dict, *, type_: str, reason: str, message: str, component: str, host: str | None = None,
               timestamp: str | None = None) -> dict:
    """The Event object for one occurrence (pure)."""
    ts = timestamp or format_time()
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    source = {"component": component}
    if host:
        source["host"] = host
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{time.time_ns():x}", "namespace": ns},
            "involvedObject": involved_object(obj), "reason": reason, "message": message,
            "source": source, "type": type_, "count": 1, "firstTimestamp": ts, "lastTimestamp": ts,
            "reportingComponent": component, "reportingInstance": host or ""}


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, *, host: str | None = None, max_queue: int = 1000,
                 busy: Callable[[], bool] | None = None) -> None:
        self.client = client
        self.busy = busy  # while it says True, events wait: they must not slow the work they describe
        self.component = component
        self.host = host
        self._queue: asyncio.Queue = asyncio.Queue(max_queue)
        self._seen: dict[tuple, tuple[str, str, int]] = {}  # correlation key -> (namespace, name, count)
        self._task: asyncio.Task | None = None

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        """Record an event (non-blocking; dropped when the queue is full)."""
        try:
            self._queue.put_nowait((obj, type_, reason, message))
        except asyncio.QueueFull:  # a full queue is drained even while busy, so this is rare
            log.debug("event queue full, dropping %s %s", reason, message)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while not self._queue.empty():
            if self.busy is not None and self.busy() and not self._queue.full():
                await asyncio.sleep(0.05)
                continue
            obj, type_, reason, message = self._queue.get_nowait()
            try:
                await self._write(obj, type_, reason, message)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # events are best effort
                log.debug("could not record event %s: %s", reason, e)

    async def _write(self, obj: dict, type_: str, reason: str, message: str) -> None:
        uid = (obj.get("metadata") or {}).get("uid") or (obj.get("metadata") or {}).get("name")
        key = (uid, type_, reason, message)
        seen = self._seen.get(key)
        if seen:
            ns, name, count = seen
            try:
                await self.client.patch("events", name, {"count": count + 1, "lastTimestamp": format_time()},
                                        namespace=ns)
                self._seen[key] = (ns, name, count + 1)
                return
            except NotFound:
                pass
        ev = make_event(obj, type_=type_, reason=reason, message=message, component=self.component, host=self.host)
        try:
            created = await self.client.create("events", ev, namespace=ev["metadata"]["namespace"])
        except ApiError as e:
            log.debug("event rejected: %s", e)
            return
        if len(self._seen) > 4096:
            self._seen.clear()
        self._seen[key] = (created["metadata"]["namespace"], created["metadata"]["name"], 1)

    async def flush(self, timeout: float = 5.0) -> None:
        if self._task and not self._task.done():
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    def close(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
