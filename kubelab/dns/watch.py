"""Where the objects come from: informers on the API server, or a file (tests, demos).

Either way a change only marks the zone dirty; one debounced rebuild turns the latest
objects into a new snapshot and hands it to the server, so bursts of changes cost one
rebuild and queries never wait on the API server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from kubelab.dns import records

log = logging.getLogger("kubelab.dns")

DEBOUNCE = 0.05  # seconds: coalesce an EndpointSlice burst into one rebuild
RESOURCES = ("services", "endpointslices", "namespaces")


class Rebuilder:
    """Debounced snapshot builds: `mark()` from any callback, `run()` does the work."""

    def __init__(self, load: Callable[[], dict[str, list[Mapping]]], on_snapshot: Callable[[records.Snapshot], None],
                 *, zone: str, pod_records: bool, debounce: float = DEBOUNCE) -> None:
        self.load = load
        self.on_snapshot = on_snapshot
        self.zone = zone
        self.pod_records = pod_records
        self.debounce = debounce
        self.serial = 0
        self._dirty = asyncio.Event()

    def mark(self, *_: Any) -> None:
        self._dirty.set()

    async def build_once(self) -> records.Snapshot:
        objs = self.load()  # read the stores on the loop thread; build off it
        self.serial = max(self.serial + 1, int(time.time()))
        snap = await asyncio.to_thread(
            records.build_snapshot, services=objs.get("services", []),
            endpointslices=objs.get("endpointslices", []), namespaces=objs.get("namespaces", []),
            zone=self.zone, serial=self.serial, pod_records=self.pod_records)
        self.on_snapshot(snap)
        return snap

    async def run(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.debounce)  # a debounce window, not synchronisation
            self._dirty.clear()
            try:
                await self.build_once()
            except Exception:  # noqa: BLE001 - keep serving the previous zone
                log.exception("rebuilding the zone failed; still serving the previous one")


def load_objects_file(path: str) -> dict[str, list[Mapping]]:
    """A JSON/YAML file of objects (a List, a YAML stream, or a plain list) split by kind."""
    with open(path) as f:
        text = f.read()
    if path.endswith(".json"):
        docs: list[Any] = [json.loads(text)]
    else:
        docs = list(yaml.safe_load_all(text))
    flat: list[Any] = []
    for doc in docs:
        if isinstance(doc, list):
            flat.extend(doc)
        elif doc is not None:
            flat.append(doc)
    return records.objects_by_kind(flat)


async def run_from_file(path: str, on_snapshot: Callable[[records.Snapshot], None], *, zone: str,
                        pod_records: bool, on_synced: Callable[[], None], poll: float = 0.2) -> None:
    """Serve the objects of a file; reload when it changes (mtime/inode/size) or on SIGHUP."""
    current: dict[str, list[Mapping]] = {}

    def load() -> dict[str, list[Mapping]]:
        return current

    def stamp() -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ino, st.st_size

    rebuild = Rebuilder(load, on_snapshot, zone=zone, pod_records=pod_records, debounce=0)
    last = stamp()
    current.update(load_objects_file(path))
    await rebuild.build_once()
    on_synced()
    loop = asyncio.get_running_loop()
    hup = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGHUP, hup.set)
    except (NotImplementedError, RuntimeError):
        pass
    while True:
        try:
            await asyncio.wait_for(hup.wait(), poll)
        except asyncio.TimeoutError:
            pass
        now = stamp()
        if now == last and not hup.is_set():
            continue
        hup.clear()
        last = now
        try:
            fresh = load_objects_file(path)
        except (OSError, yaml.YAMLError, ValueError) as e:
            log.warning("cannot reload %s: %s", path, e)
            continue
        current.clear()
        current.update(fresh)
        await rebuild.build_once()


async def run_from_cluster(client: Any, on_snapshot: Callable[[records.Snapshot], None], *, zone: str,
                           pod_records: bool, on_synced: Callable[[], None], sync_timeout: float = 60) -> None:
    """Informers on Services, EndpointSlices and Namespaces; a rebuild per (debounced) change."""
    from kubelab.client import Informer

    informers = {res: Informer(client, res) for res in RESOURCES}

    def load() -> dict[str, list[Mapping]]:
        return {res: list(inf.store.list()) for res, inf in informers.items()}

    rebuild = Rebuilder(load, on_snapshot, zone=zone, pod_records=pod_records)
    for inf in informers.values():
        inf.add_handler(on_add=rebuild.mark, on_update=rebuild.mark, on_delete=rebuild.mark)
    tasks = [asyncio.create_task(inf.run(), name=f"informer-{res}") for res, inf in informers.items()]
    try:
        for inf in informers.values():
            await inf.wait_synced(timeout=sync_timeout)
        await rebuild.build_once()
        on_synced()
        runner = asyncio.create_task(rebuild.run(), name="dns-rebuild")
        tasks.append(runner)
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            t.result()  # an informer that died takes the process down: the probe restarts us
    finally:
        for t in tasks:
            t.cancel()
