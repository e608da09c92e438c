"""The I/O edge: hand rendered rules to the kernel (`nft -f -`, `iptables-restore --noflush`).

Each backend remembers what it last applied and turns "previous state → new state" into at
most one atomic transaction; an unchanged state applies nothing. Commands go through an
injectable runner so tests can count and inspect them without root, and can be run inside a
named network namespace (`ip netns exec NAME ...`): the lab's nodes are namespaces, and tests
never touch the machine's own rules.
"""

from __future__ import annotations

import logging
import subprocess
from typing import Callable, Sequence

from kubelab.proxy import iptables as ipt
from kubelab.proxy import nftables as nft
from kubelab.proxy.model import ProxyState

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], str | None], "subprocess.CompletedProcess[str]"]


class ApplyError(RuntimeError):
    """The kernel refused a transaction (nothing of it was applied: transactions are atomic)."""


COMMAND_TIMEOUT = 600.0  # iptables-restore of ~150k rules (10k services) takes minutes with iptables-nft


def subprocess_runner(argv: Sequence[str], stdin: str | None) -> "subprocess.CompletedProcess[str]":
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), -1, "", f"timed out after {COMMAND_TIMEOUT:g}s")


class Backend:
    """Common part: command prefix, runner, last applied state."""

    mode = ""

    def __init__(self, *, netns: str | None = None, runner: Runner = subprocess_runner) -> None:
        self.netns = netns
        self.runner = runner
        self.applied: ProxyState | None = None
        self.last_text = ""  # what the last apply sent (for logs / bench figures)

    def _cmd(self, *argv: str) -> list[str]:
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(argv)

    def _run(self, argv: list[str], stdin: str | None = None, *, check: bool = True) -> "subprocess.CompletedProcess[str]":
        r = self.runner(argv, stdin)
        if check and r.returncode != 0:
            raise ApplyError(f"{' '.join(argv)} failed: {(r.stderr or '').strip()[:2000]}")
        return r

    def forget(self) -> None:
        """Next sync rewrites everything (after a failure, or when the kernel state drifted)."""
        self.applied = None

    def sync(self, state: ProxyState) -> bool:
        """Make the kernel match `state`; True if a transaction was applied."""
        raise NotImplementedError

    def present(self) -> bool:
        """Are our rules still in the kernel? (Someone may have flushed them.)"""
        raise NotImplementedError

    def cleanup(self) -> None:
        raise NotImplementedError


class NftablesBackend(Backend):
    mode = "nftables"

    def sync(self, state: ProxyState) -> bool:
        if self.applied is None:
            text = nft.render_full(state)
        else:
            text = nft.render_incremental(self.applied, state)
        if not text:
            self.applied = state
            return False
        try:
            self._run(self._cmd("nft", "-f", "-"), text)
        except ApplyError:
            self.applied = None  # unknown kernel state: rewrite the whole table next time
            raise
        self.applied = state
        self.last_text = text
        return True

    def present(self) -> bool:
        r = self._run(self._cmd("nft", "list", "chain", nft.FAMILY, nft.TABLE, nft.SERVICES_CHAIN), check=False)
        return r.returncode == 0

    def cleanup(self) -> None:
        self._run(self._cmd("nft", "-f", "-"), nft.render_cleanup())
        self.applied = None


class IptablesBackend(Backend):
    """Always restores all of our chains (upstream's iptables mode does the same, minus partial syncs)."""

    mode = "iptables"

    def __init__(self, *, netns: str | None = None, runner: Runner = subprocess_runner) -> None:
        super().__init__(netns=netns, runner=runner)
        self._chains: set[str] | None = None  # nat chains present after the last restore
        self._jumps_ok = False

    def _saved_chains(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for table in ("filter", "nat"):
            r = self._run(self._cmd("iptables-save", "-t", table), check=False)
            out[table] = ipt.chains_in(r.stdout or "", table) if r.returncode == 0 else set()
        return out

    def ensure_jumps(self) -> None:
        """Jumps from the built-in chains into ours: check (-C), insert (-I) only when missing."""
        for table, chain, spec in ipt.JUMP_RULES:
            if self._run(self._cmd("iptables", "-w", "-t", table, "-C", chain, *spec), check=False).returncode != 0:
                self._run(self._cmd("iptables", "-w", "-t", table, "-I", chain, "1", *spec))
        self._jumps_ok = True

    def sync(self, state: ProxyState) -> bool:
        if self.applied is not None and self.applied == state:
            return False
        if self._chains is None:
            self._chains = self._saved_chains().get("nat", set())
        text = ipt.render(state, previous_chains=self._chains)
        try:
            self._run(self._cmd("iptables-restore", "-w", "--noflush"), text)
            if not self._jumps_ok:
                self.ensure_jumps()
        except ApplyError:
            self.applied = None
            self._chains = None
            self._jumps_ok = False
            raise
        self._chains = ipt.chains_in(text, "nat") - {
            line[3:] for line in text.splitlines() if line.startswith("-X ")
        }
        self.applied = state
        self.last_text = text
        return True

    def present(self) -> bool:
        table, chain, spec = next(j for j in ipt.JUMP_RULES if j[:2] == ("nat", "PREROUTING"))
        r = self._run(self._cmd("iptables", "-w", "-t", table, "-C", chain, *spec), check=False)
        return r.returncode == 0

    def cleanup(self) -> None:
        for table, chain, spec in ipt.JUMP_RULES:
            while self._run(self._cmd("iptables", "-w", "-t", table, "-D", chain, *spec), check=False).returncode == 0:
                pass
        text = ipt.render_cleanup(self._saved_chains())
        if text:
            self._run(self._cmd("iptables-restore", "-w", "--noflush"), text)
        self.applied = None
        self._chains = None
        self._jumps_ok = False


def make_backend(mode: str, *, netns: str | None = None, runner: Runner = subprocess_runner) -> Backend:
    if mode == "nftables":
        return NftablesBackend(netns=netns, runner=runner)
    if mode == "iptables":
        return IptablesBackend(netns=netns, runner=runner)
    raise ValueError(f"unknown proxy mode {mode!r} (nftables or iptables)")


def cleanup_all(*, netns: str | None = None, runner: Runner = subprocess_runner) -> list[str]:
    """`--cleanup`: remove both modes' rules (as upstream does); returns errors, if any."""
    errors = []
    for mode in ("nftables", "iptables"):
        try:
            make_backend(mode, netns=netns, runner=runner).cleanup()
        except (ApplyError, OSError) as e:
            errors.append(f"{mode}: {e}")
    return errors
