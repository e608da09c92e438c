"""The NetworkPolicy agent's control loop: informers → snapshot → ruleset → one `nft -f` per sync.

1. Informers on NetworkPolicies, Pods and Namespaces keep local caches (no polling).
2. Every event that can change a verdict (a policy, a pod's labels/IP/node/ports/phase, a
   namespace's labels) asks the BoundedFrequencyRunner for a sync; other pod updates (status
   conditions, restarts) are ignored.
3. A sync builds an immutable `Cluster` snapshot (model.py), the node's `Ruleset`
   (nftables.py) and applies the difference as one atomic transaction: only the changed sets
   when the chains are unchanged, the whole table otherwise, nothing when nothing changed.
A failed apply forgets what is in the kernel (the next sync rewrites the whole table) and
retries after the sync period; a periodic sync re-creates the table if someone deleted it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from typing import Callable, Sequence

from kubelab.client import nftsession
from kubelab.client.nftsession import NftSession, NftSessionError
from kubelab.client.syncrunner import BoundedFrequencyRunner

from . import nftables as nft
from .model import Cluster, namespace_info, pod_info, policy_from_object

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], str | None], "subprocess.CompletedProcess[str]"]
COMMAND_TIMEOUT = 120.0


def subprocess_runner(argv: Sequence[str], stdin: str | None) -> "subprocess.CompletedProcess[str]":
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), -1, "", f"timed out after {COMMAND_TIMEOUT:g}s")


class ApplyError(RuntimeError):
    """nft refused a transaction (nothing of it was applied: transactions are atomic)."""


class Dataplane:
    """The I/O edge: `nft -f -` (inside `netns` when given), remembering what was applied.

    By default the text goes through one long-lived libnftables context (kubelab.client.nftsession:
    the same parser and atomic batch as the `nft` binary, without two process spawns per
    transaction, which were most of "policy created → enforced"); a `runner` (tests) or a host
    without libnftables spawns `nft` instead.
    """

    def __init__(self, *, netns: str | None = None, runner: Runner | None = None) -> None:
        self.netns = netns
        self.runner = runner or subprocess_runner
        # None: spawn `nft` through `runner`
        self.session: NftSession | None = NftSession(netns) if runner is None and nftsession.available() else None
        self.applied: nft.Ruleset | None = None
        self.last_text = ""
        self.transactions = 0
        self.last_apply_seconds = 0.0   # time in nft itself (library call or process), for the bench

    def _cmd(self, *argv: str) -> list[str]:
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(argv)

    def _exec(self, text: str, argv: Sequence[str]) -> tuple[int, str]:
        """(returncode, stderr) of `nft ARGV` or of `nft -f -` with `text`."""
        if self.session is not None:
            try:
                rc, _, err = self.session.run(text)
                return rc, err
            except NftSessionError as e:
                return 1, str(e)
        r = self.runner(self._cmd("nft", *argv), text if argv == ("-f", "-") else None)
        return r.returncode, r.stderr or ""

    def _nft(self, text: str) -> None:
        t = time.monotonic()
        rc, err = self._exec(text, ("-f", "-"))
        self.last_apply_seconds = time.monotonic() - t
        if rc != 0:
            raise ApplyError(f"nft -f failed: {err.strip()[:2000]}")

    def sync(self, rs: nft.Ruleset) -> bool:
        text = nft.render_update(self.applied, rs)
        if not text:
            self.applied = rs
            return False
        try:
            self._nft(text)
        except ApplyError:
            self.applied = None
            raise
        self.applied, self.last_text = rs, text
        self.transactions += 1
        return True

    def present(self) -> bool:
        argv = ("list", "chain", nft.FAMILY, nft.TABLE, nft.INGRESS_CHAIN)
        return self._exec(" ".join(argv), argv)[0] == 0

    def cleanup(self) -> None:
        self._nft(nft.render_cleanup())
        self.applied = None

    def close(self) -> None:
        """Release the libnftables context (its worker thread)."""
        if self.session is not None:
            self.session.close()
            self.session = None


class PolicyAgent:
    """Informer-fed caches and the sync that turns them into this node's table."""

    def __init__(self, *, dataplane: Dataplane, node_name: str, min_sync_period: float = 0.1,
                 sync_period: float = 30.0) -> None:
        self.dataplane = dataplane
        self.node_name = node_name
        self.sync_period = sync_period
        self.runner = BoundedFrequencyRunner(self._run_sync, min_interval=min_sync_period, max_interval=sync_period)
        # parsed once per event, not per sync (a sync at 1,000 pods must not re-read them all)
        self.pods: dict[str, object] = {}        # key → PodInfo | None (no IP yet, hostNetwork...)
        self.namespaces: dict[str, object] = {}  # name → NamespaceInfo
        self.policies: dict[str, object] = {}    # key → Policy
        # the snapshot's sorted pod and namespace tuples, kept until one changes (None: rebuild):
        # the same tuples let nft.build reuse every policy compiled against them (BuildCache)
        self._pods_view: tuple | None = None
        self._namespaces_view: tuple | None = None
        self.build_cache = nft.BuildCache()
        self._initialized = False
        self.last_sync_ok = 0.0
        self.syncs = 0
        self.last_sync_seconds = 0.0
        # seconds per stage of the last sync that applied something (build = snapshot + rules +
        # text, apply = nft itself): bench/bench_netpol.py prints them to show where time goes
        self.last_stages: dict[str, float] = {}
        self.last_sync_started = 0.0    # time.monotonic() when the last sync took the lock
        self.lock = asyncio.Lock()

    # ------------------------------------------------------------ informer handlers

    @staticmethod
    def _key(obj: dict) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    def _changed(self) -> None:
        if self._initialized:
            self.runner.run()

    def on_policy(self, obj: dict) -> None:
        self.policies[self._key(obj)] = policy_from_object(obj)
        self._changed()

    def on_policy_update(self, old: dict, obj: dict) -> None:
        self.on_policy(obj)

    def on_policy_delete(self, obj: dict) -> None:
        self.policies.pop(self._key(obj), None)
        self._changed()

    def on_pod(self, obj: dict) -> None:
        key, info = self._key(obj), pod_info(obj)
        changed = key not in self.pods or self.pods[key] != info  # status noise parses to the same info
        self.pods[key] = info
        if changed:
            self._pods_view = None
            self._changed()

    def on_pod_update(self, old: dict, obj: dict) -> None:
        self.on_pod(obj)

    def on_pod_delete(self, obj: dict) -> None:
        self.pods.pop(self._key(obj), None)
        self._pods_view = None
        self._changed()

    def on_namespace(self, obj: dict) -> None:
        key, info = self._key(obj), namespace_info(obj)
        changed = self.namespaces.get(key) != info
        self.namespaces[key] = info
        if changed:
            self._namespaces_view = None
            self._changed()

    def on_namespace_update(self, old: dict, obj: dict) -> None:
        self.on_namespace(obj)

    def on_namespace_delete(self, obj: dict) -> None:
        self.namespaces.pop(self._key(obj), None)
        self._namespaces_view = None
        self._changed()

    # ------------------------------------------------------------ sync

    def snapshot(self) -> Cluster:
        if self._pods_view is None:
            self._pods_view = tuple(sorted((p for p in self.pods.values() if p), key=lambda p: p.key))
        if self._namespaces_view is None:
            self._namespaces_view = tuple(sorted(self.namespaces.values(), key=lambda n: n.name))
        return Cluster(pods=self._pods_view, namespaces=self._namespaces_view,
                       policies=tuple(sorted(self.policies.values(), key=lambda p: p.key)))

    def set_initialized(self) -> None:
        """Called once every informer has synced: a partial view would program wrong denies."""
        self._initialized = True
        self.runner.run()

    async def _run_sync(self, periodic: bool) -> None:
        if periodic and self.dataplane.applied is not None:
            if not await asyncio.to_thread(self.dataplane.present):
                log.warning("table %s missing from the kernel; rewriting it", nft.T)
                self.dataplane.applied = None
        await self.sync()

    async def sync(self) -> bool:
        if not self._initialized:
            return False
        async with self.lock:
            start = self.last_sync_started = time.monotonic()
            rs = nft.build(self.snapshot(), self.node_name, self.build_cache)
            try:
                applied = await asyncio.to_thread(self.dataplane.sync, rs)
            except ApplyError as e:
                log.error("%s", e)
                self.runner.retry_after(min(self.sync_period, 5.0))
                return False
            self.last_sync_seconds = time.monotonic() - start
            if applied:
                apply_s = self.dataplane.last_apply_seconds
                self.last_stages = {"build": self.last_sync_seconds - apply_s, "apply": apply_s}
            self.last_sync_ok = time.time()
            self.syncs += 1
            if applied:
                log.info("programmed %s: %d sets (%d elements), %d chains in %.3fs", nft.T, len(rs.sets),
                         rs.element_count, len(rs.chains), self.last_sync_seconds)
            return applied
