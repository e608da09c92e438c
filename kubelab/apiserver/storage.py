"""etcd, and nothing else: the only module that imports the etcd client.

Objects are JSON under `/registry/<resource>/<namespace>/<name>` (readable with `etcdctl get
--prefix /registry/`). `metadata.resourceVersion` is never stored: it is the key's etcd
mod_revision, filled in on every read, so it cannot drift from the truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlparse

import aetcd
from aetcd import rpc
from aetcd.utils import prefix_range_end

# etcd refuses a request over its --max-request-bytes (default 1.5 MiB) with an opaque error;
# the API server checks objects against this one figure first and says why.
MAX_OBJECT_BYTES = 1536 * 1024


log = logging.getLogger(__name__)


class CompactedError(Exception):
    """The revision asked for is older than etcd's compacted history (→ 410 Gone)."""


class PreconditionFailed(Exception):
    """A compare-and-swap lost: the key exists already, or changed since it was read."""

    def __init__(self, current: "Entry | None") -> None:
        super().__init__("precondition failed")
        self.current = current


class ReservationTaken(Exception):
    """A reservation key (a ClusterIP, a NodePort) already belongs to someone else."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(slots=True)
class Entry:
    key: str
    obj: dict
    mod_revision: int


@dataclass(slots=True)
class WatchEvent:
    """One etcd change: `obj` is the new value (None on delete), `prev` the old one."""

    kind: str  # "PUT" | "DELETE"
    key: str
    revision: int
    created: bool
    obj: dict | None
    prev: dict | None


def decode(value: bytes, revision: int) -> dict:
    obj = json.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def encode(obj: dict) -> bytes:
    meta = obj.get("metadata", {})
    if "resourceVersion" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return json.dumps(obj, separators=(",", ":")).encode()


class _TLSClient(aetcd.Client):
    """aetcd opens only insecure gRPC channels; this one opens a mutual-TLS channel
    (etcd with --client-cert-auth). The rest of `connect` is aetcd's, minus user/password."""

    def __init__(self, *, credentials, **kw) -> None:
        super().__init__(**kw)
        self._credentials = credentials

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        if self._is_connecting:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        from aetcd import watcher
        try:
            self._is_connecting = True
            self.channel = rpc.secure_channel(f"{self._host}:{self._port}", self._credentials,
                                              options=self._options.items())
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout,
                                            metadata=self.metadata)
            self._connected.set()
        finally:
            self._is_connecting = False


class Storage:
    def __init__(self, url: str, *, timeout: float = 10.0, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None) -> None:
        first = url.split(",")[0].strip()
        u = urlparse(first if "://" in first else f"http://{first}")
        self.url = first
        host, port = u.hostname or "127.0.0.1", u.port or 2379
        if u.scheme == "https" or ca_file or cert_file:
            import grpc

            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            creds = grpc.ssl_channel_credentials(root_certificates=read(ca_file) if ca_file else None,
                                                 private_key=read(key_file) if key_file else None,
                                                 certificate_chain=read(cert_file) if cert_file else None)
            self._client = _TLSClient(credentials=creds, host=host, port=port, timeout=timeout)
        else:
            self._client = aetcd.Client(host=host, port=port, timeout=timeout)

    async def connect(self) -> None:
        await self._client.connect()

    async def close(self) -> None:
        await self._client.close()

    async def revision(self) -> int:
        """etcd's current revision (the header of a cheap range)."""
        resp = await self._range(b"/registry/", prefix_range_end(b"/registry/"), count_only=True)
        return resp.header.revision

    async def healthy(self) -> bool:
        try:
            await asyncio.wait_for(self.revision(), 2)
            return True
        except Exception:
            return False

    async def _range(self, key: bytes, end: bytes | None = None, *, revision: int = 0, limit: int = 0,
                     count_only: bool = False, serializable: bool = False):
        req = rpc.RangeRequest(key=key, range_end=end or b"", revision=revision, limit=limit,
                               count_only=count_only, serializable=serializable)
        try:
            return await self._client.kvstub.Range(req, timeout=self._client._timeout,
                                                   metadata=self._client.metadata)
        except rpc.AioRpcError as e:
            if e.code() == rpc.StatusCode.OUT_OF_RANGE:
                raise CompactedError(e.details()) from None
            raise

    async def get(self, key: str) -> Entry | None:
        resp = await self._range(key.encode())
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return Entry(key, decode(kv.value, kv.mod_revision), kv.mod_revision)

    async def list(self, prefix: str, *, revision: int = 0, start: str | None = None,
                   limit: int = 0) -> tuple[list[Entry], int, bool]:
        """Entries under `prefix` at `revision` (0 = now), from key `start` on.

        Returns (entries, the revision read at, whether more remain).
        """
        begin = (start or prefix).encode()
        resp = await self._range(begin, prefix_range_end(prefix.encode()), revision=revision, limit=limit)
        entries = [Entry(kv.key.decode(), decode(kv.value, kv.mod_revision), kv.mod_revision)
                   for kv in resp.kvs]
        # The header holds the current revision even when an older one was read.
        return entries, revision or resp.header.revision, bool(resp.more)

    async def check_revision(self, prefix: str, revision: int) -> None:
        """Raise CompactedError when `revision` is no longer readable."""
        await self._range(prefix.encode(), prefix_range_end(prefix.encode()), revision=revision,
                          limit=1, count_only=True)

    async def _cas(self, key: str, compare_main, op_main, *, expected: int | None, reserve: dict[str, str],
                   release: tuple[str, ...]):
        """One transaction: the main compare-and-swap plus reservation keys that must be
        absent (created with their owner as value) and released keys (deleted). All or
        nothing, so allocations can neither leak nor be handed out twice. `expected` is the
        main key's mod_revision the compare wants (0: absent), to tell which compare lost."""
        t = self._client.transactions
        compare = [compare_main] + [t.create(k.encode()) == 0 for k in reserve]
        success = [op_main] + [t.put(k.encode(), v.encode()) for k, v in reserve.items()]
        success += [t.delete(k.encode()) for k in release]
        failure = [t.get(key.encode())] + [t.get(k.encode()) for k in reserve]
        ok, responses = await self._client.transaction(compare=compare, success=success, failure=failure)
        if ok:
            return responses[0]
        current = self._entry_from_txn_get(key, responses)
        if expected is not None and (current.mod_revision if current else 0) == expected:
            for k, r in zip(reserve, responses[1:]):
                if r:
                    raise ReservationTaken(k)
        raise PreconditionFailed(current)

    async def create(self, key: str, obj: dict, *, reserve: dict[str, str] | None = None) -> int:
        """Put `key` only if absent; the new revision. PreconditionFailed if it exists."""
        t = self._client.transactions
        r = await self._cas(key, t.create(key.encode()) == 0, t.put(key.encode(), encode(obj)), expected=0,
                            reserve=reserve or {}, release=())
        return r.response_put.header.revision

    async def update(self, key: str, obj: dict, *, expected_revision: int,
                     reserve: dict[str, str] | None = None, release: tuple[str, ...] = ()) -> int:
        """Compare-and-swap on mod_revision: the basis of optimistic concurrency (409)."""
        t = self._client.transactions
        r = await self._cas(key, t.mod(key.encode()) == expected_revision, t.put(key.encode(), encode(obj)),
                            expected=expected_revision, reserve=reserve or {}, release=release)
        return r.response_put.header.revision

    async def delete(self, key: str, *, expected_revision: int, release: tuple[str, ...] = ()) -> int:
        t = self._client.transactions
        r = await self._cas(key, t.mod(key.encode()) == expected_revision, t.delete(key.encode()),
                            expected=expected_revision, reserve={}, release=release)
        return r.response_delete_range.header.revision

    async def keys(self, prefix: str) -> list[str]:
        req = rpc.RangeRequest(key=prefix.encode(), range_end=prefix_range_end(prefix.encode()), keys_only=True)
        resp = await self._client.kvstub.Range(req, timeout=self._client._timeout, metadata=self._client.metadata)
        return [kv.key.decode() for kv in resp.kvs]

    async def put_raw(self, key: str, value: bytes) -> int:
        """Unconditional put, for allocator bitmaps and bench baselines."""
        resp = await self._client.put(key.encode(), value)
        return resp.header.revision

    async def compact(self, revision: int) -> None:
        await self._client.compact(revision)

    @staticmethod
    def _entry_from_txn_get(key: str, responses) -> Entry | None:
        if not responses or not responses[0]:
            return None
        value, meta = responses[0][0]
        return Entry(key, decode(value, meta.mod_revision), meta.mod_revision)

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Events under `prefix` from `start_revision` on (inclusive), with previous values.

        Raises CompactedError when the start is compacted; other errors (etcd restarted)
        propagate so the caller can re-watch from its last revision + 1.
        """
        try:
            w = await self._client.watch_prefix(prefix.encode(), start_revision=start_revision, prev_kv=True)
        except aetcd.RevisionCompactedError as e:
            raise CompactedError(str(e)) from None
        try:
            async for ev in w:
                kv = ev.kv
                rev = kv.mod_revision
                # aetcd hands an empty KeyValue (not None) when there was no previous value.
                prev = decode(ev.prev_kv.value, ev.prev_kv.mod_revision) if ev.prev_kv and ev.prev_kv.key else None
                if ev.kind == "PUT":
                    yield WatchEvent("PUT", kv.key.decode(), rev, kv.version == 1, decode(kv.value, rev), prev)
                else:
                    if prev is not None:
                        prev["metadata"]["resourceVersion"] = str(rev)
                    yield WatchEvent("DELETE", kv.key.decode(), rev, False, None, prev)
        except aetcd.RevisionCompactedError as e:
            raise CompactedError(str(e)) from None
        finally:
            try:
                await w.cancel()
            except Exception:  # the stream may already be gone with etcd
                pass
