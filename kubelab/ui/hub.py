"""One watch per resource for the whole web server, fanned out to any number of browsers.

Why: every open browser tab wants the live map. If each tab opened its own watches, a class
of 30 students pointing at one lab would put 150 watches on the API server. Like the API
server's watch cache (kubelab/apiserver/watchcache.py), the hub holds one informer per
resource and every browser reads the hub: a tab costs a Server-Sent-Events stream and, on a
change, one fetch of the map SVG, which is itself rendered once per change for all tabs.

Invariants:
- `informers` has exactly one Informer per resource in WATCHED, created once, never per client.
- `map_version` only grows; it moves when a node, pod, Service or EndpointSlice changes.
- The hub only reads: it is handed a `ReadOnlyApi`, which has no verb that writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

from kubelab.client import ApiClient, Informer

MAP_RESOURCES = ("nodes", "pods", "services", "endpointslices")
WATCHED = MAP_RESOURCES + ("events",)


class ReadOnlyApi:
    """The web view's only way to the API server: get, list and watch, nothing that writes.
    It also counts watches (opened in total and open now) so tests can prove the fan-out."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self.watches_opened: Counter[str] = Counter()   # resource plural -> watches ever started
        self.watches_open: Counter[str] = Counter()     # resource plural -> watches streaming now

    async def get(self, resource, name: str, *, namespace: str | None = None) -> dict:
        return await self._client.get(resource, name, namespace=namespace)

    async def list(self, resource, **kw) -> dict:
        return await self._client.list(resource, **kw)

    async def watch(self, resource, **kw) -> AsyncIterator[dict]:
        plural = getattr(resource, "plural", resource)
        self.watches_opened[plural] += 1
        self.watches_open[plural] += 1
        try:
            async for ev in self._client.watch(resource, **kw):
                yield ev
        finally:
            self.watches_open[plural] -= 1

    async def aclose(self) -> None:
        await self._client.aclose()


class Hub:
    def __init__(self, api: ReadOnlyApi, resources: tuple[str, ...] = WATCHED) -> None:
        self.api = api
        self.informers: dict[str, Informer] = {r: Informer(api, r) for r in resources}  # type: ignore[arg-type]
        self.map_version = 0
        self.subscribers = 0            # SSE streams open now
        self.closing = False            # set once, at shutdown: every SSE stream ends
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task] = []
        for r, inf in self.informers.items():
            if r in MAP_RESOURCES:
                inf.add_handler(on_add=lambda _o: self._bump(), on_update=lambda _o, _n: self._bump(),
                                on_delete=lambda _o: self._bump())

    def _bump(self) -> None:
        self.map_version += 1
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(inf.run(), name=f"ui-informer-{r}") for r, inf in self.informers.items()]

    async def wait_synced(self, timeout: float = 30.0) -> None:
        await asyncio.gather(*(inf.wait_synced(timeout) for inf in self.informers.values()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    def objects(self, resource: str) -> list[dict]:
        inf = self.informers.get(resource)
        return inf.store.list() if inf else []

    def get(self, resource: str, key: str) -> dict | None:
        inf = self.informers.get(resource)
        return inf.store.get(key) if inf else None

    async def wait_change(self, seen: int, timeout: float) -> int:
        """The map version once it is newer than `seen`, or the current one after `timeout`
        (or at once when the server is closing)."""
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.map_version > seen or self.closing), timeout)
        return self.map_version

    async def close_streams(self) -> None:
        """End every SSE stream (server shutdown: browsers reconnect to the next server)."""
        self.closing = True
        await self._notify()

    def stats(self) -> dict:
        return {"informers": sorted(self.informers), "subscribers": self.subscribers,
                "watches_open": dict(self.api.watches_open), "watches_opened": dict(self.api.watches_opened),
                "map_version": self.map_version}
