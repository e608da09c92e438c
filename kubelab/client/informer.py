"""Informers: a local, always-converging copy of one resource, as client-go's.

List, then watch from the list's resourceVersion (nothing is lost in between); keep the
cache current from the events; on a 410 relist and emit the differences; on a broken
stream reconnect from the last seen resourceVersion with capped backoff. Handlers are
called after the cache is updated, so a handler reading the store sees the new state.

No periodic resync: every loop here re-queues its own retries (workqueue.add_rate_limited)
and a relist emits whatever changed, so a resync timer would only repeat work.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import NamedTuple

import httpx

from kubelab.resources import ResourceType

from .errors import ApiError, Gone
from .rest import ApiClient, resource_type

log = logging.getLogger(__name__)

Indexer = Callable[[dict], list[str]]


def key_of(obj: dict) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


def namespace_index(obj: dict) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


class Store:
    """Objects by key, plus secondary indexes (index name → value → keys).

    Invariant: for every indexer name, `_indices[name][v]` holds exactly the keys of the
    items whose indexer returns `v` (empty value sets are dropped)."""

    def __init__(self, indexers: dict[str, Indexer] | None = None) -> None:
        self._items: dict[str, dict] = {}
        self._indexers: dict[str, Indexer] = {"namespace": namespace_index, **(indexers or {})}
        self._indices: dict[str, dict[str, set[str]]] = {n: {} for n in self._indexers}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> dict | None:
        return self._items.get(key)

    def list(self) -> list[dict]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def add_indexer(self, name: str, fn: Indexer) -> None:
        """A secondary index, built over the items already stored. A name is registered once:
        adding it again keeps the first indexer (shared informers are asked for the same
        index by every loop that reads it)."""
        if name in self._indexers:
            return
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for v in fn(obj):
                index.setdefault(v, set()).add(key)
        self._indices[name] = index

    def by_index(self, index: str, value: str) -> list[dict]:
        return [self._items[k] for k in self._indices[index].get(value, ())]

    def _unindex(self, key: str, obj: dict) -> None:
        for name, fn in self._indexers.items():
            for v in fn(obj):
                keys = self._indices[name].get(v)
                if keys:
                    keys.discard(key)
                    if not keys:
                        del self._indices[name][v]

    def put(self, obj: dict) -> dict | None:
        key = key_of(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, fn in self._indexers.items():
            for v in fn(obj):
                self._indices[name].setdefault(v, set()).add(key)
        return old

    def delete(self, key: str) -> dict | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old


class Handler(NamedTuple):
    """One registration's callbacks (client-go's ResourceEventHandlerFuncs); None: not interested."""

    on_add: Callable[[dict], None] | None
    on_update: Callable[[dict, dict], None] | None
    on_delete: Callable[[dict], None] | None


class Informer:
    def __init__(self, client: ApiClient, resource: str | ResourceType, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 indexers: dict[str, Indexer] | None = None) -> None:
        self.client = client
        self.rt = resource_type(resource)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.store = Store(indexers)
        self.resource_version: str | None = None
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self.relists = 0  # how many full lists it took (1 in a healthy life)
        self.started = False  # start() was called: one list+watch task per informer, ever

    def start(self) -> asyncio.Task:
        """`run()` in a task of the running loop; an informer is started once."""
        if self.started:
            raise RuntimeError(f"informer for {self.rt.plural} already started")
        self.started = True
        return asyncio.create_task(self.run(), name=f"informer-{self.rt.plural}")

    def add_handler(self, *, on_add: Callable[[dict], None] | None = None,
                    on_update: Callable[[dict, dict], None] | None = None,
                    on_delete: Callable[[dict], None] | None = None) -> None:
        self._handlers.append(Handler(on_add, on_update, on_delete))
        for obj in self.store.list():  # late handlers see the current state, as in client-go
            if on_add:
                on_add(obj)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    def _emit(self, event: str, *args) -> None:
        """Call each handler's `event` callback ("on_add", "on_update", "on_delete")."""
        for h in self._handlers:
            fn = getattr(h, event)
            if fn is not None:
                try:
                    fn(*args)
                except Exception:
                    log.exception("informer handler for %s failed", self.rt.plural)

    def _apply(self, ev_type: str, obj: dict) -> None:
        if ev_type in ("ADDED", "MODIFIED"):
            old = self.store.put(obj)
            if old is None:
                self._emit("on_add", obj)
            else:
                self._emit("on_update", old, obj)
        elif ev_type == "DELETED":
            old = self.store.delete(key_of(obj))
            self._emit("on_delete", old or obj)

    async def _relist(self) -> None:
        listed = await self.client.list(self.rt, namespace=self.namespace, label_selector=self.label_selector,
                                        field_selector=self.field_selector, limit=500)
        self.relists += 1
        fresh = {key_of(o): o for o in listed["items"]}
        for key in [k for k in self.store.keys() if k not in fresh]:
            self._emit("on_delete", self.store.delete(key))
        for obj in fresh.values():
            old = self.store.get(key_of(obj))
            if old is None:
                self._apply("ADDED", obj)
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._apply("MODIFIED", obj)
        self.resource_version = listed["metadata"].get("resourceVersion")
        self._synced.set()

    async def run(self) -> None:
        """List and watch forever (until cancelled)."""
        backoff = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                timeout = random.randint(300, 600)
                async for ev in self.client.watch(self.rt, namespace=self.namespace,
                                                  resource_version=self.resource_version,
                                                  label_selector=self.label_selector,
                                                  field_selector=self.field_selector,
                                                  timeout_seconds=timeout, allow_bookmarks=True):
                    obj = ev["object"]
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if ev["type"] != "BOOKMARK":
                        self._apply(ev["type"], obj)
                    if rv:
                        self.resource_version = rv
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("informer %s: resourceVersion %s expired, relisting", self.rt.plural, self.resource_version)
                need_list = True
            except (httpx.HTTPError, ApiError, OSError, ValueError) as e:
                log.warning("informer %s: %s; retrying in %.1fs", self.rt.plural, e or type(e).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
