"""Pod masquerading with nftables: kubelab-bridge's only firewall state.

kubelab-cni owns one table, `ip kubelab-cni`, with one NAT base chain `postrouting`
(srcnat, priority 100) holding one rule per (network, pod subnet):

    ip saddr 10.244.1.0/24 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade
        comment "kubelab-cni: network kubelab: masquerade 10.244.1.0/24 leaving 10.244.0.0/16"

i.e. traffic from pods that leaves the pod network gets the node's address.  The rule's
comment names the network (to find it again) and states everything the rule does (so a
config change is noticed and the rule replaced).  Changes are one `nft -f -` transaction;
other tables are never read or written.  Rendering is pure; `apply`/`list` run nft.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from kubelab.cni import spec
from kubelab.cni.spec import CniError

TABLE = "kubelab-cni"
CHAIN = "postrouting"
MULTICAST = "224.0.0.0/4"
LOCK_DIR = "/run/kubelab-cni"
_MAX_COMMENT = 127


@dataclass(frozen=True)
class MasqRule:
    """What one masquerade rule does: traffic from `subnet` not going to `keep` is NATed."""

    network: str
    subnet: str
    keep: str        # the pod network (cluster CIDR, or the subnet itself)

    @property
    def comment(self) -> str:
        text = f"kubelab-cni: network {self.network}: masquerade {self.subnet} leaving {self.keep}"
        if len(text) <= _MAX_COMMENT:
            return text
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return f"{network_prefix(self.network)} {digest}"[:_MAX_COMMENT]


def network_prefix(network: str) -> str:
    """Comment prefix shared by all rules of one network."""
    p = f"kubelab-cni: network {network}:"
    if len(p) > 60:
        p = f"kubelab-cni: network #{hashlib.sha256(network.encode()).hexdigest()[:16]}:"
    return p


def desired_rules(*, network: str, subnets: Iterable[str], cluster_cidr: str = "") -> list[MasqRule]:
    """One rule per IPv4 pod subnet (IPv6 masquerade is not done)."""
    out = []
    for s in sorted(set(subnets)):
        net = ipaddress.ip_network(s, strict=False)
        if net.version != 4:
            continue
        keep = cluster_cidr or str(net)
        out.append(MasqRule(network=network, subnet=str(net), keep=keep))
    return out


def render_rule(rule: MasqRule) -> str:
    return (f"add rule ip {TABLE} {CHAIN} ip saddr {rule.subnet} "
            f"ip daddr != {{ {rule.keep}, {MULTICAST} }} masquerade comment \"{rule.comment}\"")


def render_sync(*, network: str, want: list[MasqRule], have: dict[int, str]) -> str:
    """The transaction that turns `have` (handle -> comment, this network's rules only)
    into `want`; '' when nothing is to do."""
    want_comments = {r.comment for r in want}
    stale = [h for h, c in sorted(have.items()) if c not in want_comments]
    present = set(have.values())
    missing = [r for r in want if r.comment not in present]
    dupes = []                               # the same rule twice: keep the first
    seen: set[str] = set()
    for h, c in sorted(have.items()):
        if c in want_comments:
            if c in seen:
                dupes.append(h)
            seen.add(c)
    if not stale and not missing and not dupes:
        return ""
    lines = [f"add table ip {TABLE}",
             f"add chain ip {TABLE} {CHAIN} {{ type nat hook postrouting priority 100 ; }}"]
    lines += [f"delete rule ip {TABLE} {CHAIN} handle {h}" for h in stale + dupes]
    lines += [render_rule(r) for r in missing]
    return "\n".join(lines) + "\n"


def rules_of_network(ruleset: dict, network: str) -> dict[int, str]:
    """From `nft -j list table ip kubelab-cni` output: handle -> comment of the network's rules."""
    prefix = network_prefix(network)
    out = {}
    for item in ruleset.get("nftables", []):
        rule = item.get("rule")
        if not rule or rule.get("chain") != CHAIN:
            continue
        comment = rule.get("comment", "")
        if comment.startswith(prefix):
            out[int(rule["handle"])] = comment
    return out


# ---------------------------------------------------------------------------------------
# Running nft (in the current netns)
# ---------------------------------------------------------------------------------------

def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CniError(spec.ERR_INTERNAL, "cannot run nft", str(e)) from None


def list_table() -> dict:
    """Our table as nft JSON; {} when it does not exist."""
    proc = _nft(["-j", "list", "table", "ip", TABLE])
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr:
            return {}
        raise CniError(spec.ERR_INTERNAL, "nft list failed", proc.stderr.strip())
    try:
        return json.loads(proc.stdout)
    except ValueError as e:
        raise CniError(spec.ERR_INTERNAL, "nft printed invalid JSON", str(e)) from None


def apply(transaction: str) -> None:
    if not transaction:
        return
    proc = _nft(["-f", "-"], stdin=transaction)
    if proc.returncode != 0:
        raise CniError(spec.ERR_INTERNAL, "nft transaction failed",
                       f"{proc.stderr.strip()}\n--- transaction ---\n{transaction}")


@contextmanager
def locked() -> Iterator[None]:
    """Serialise list-then-change so concurrent ADDs never add the same rule twice."""
    try:
        os.makedirs(LOCK_DIR, exist_ok=True)
        fd = os.open(os.path.join(LOCK_DIR, "nft.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise CniError(spec.ERR_IO, f"cannot open lock in {LOCK_DIR}", str(e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sync_masquerade(*, network: str, want: list[MasqRule],
                    only_if: Callable[[], bool] | None = None) -> str:
    """Make the network's rules exactly `want` (empty: remove them).  Returns what was
    applied ('' for nothing), and drops the table once it holds no rule at all.
    `only_if` is evaluated under the lock (DEL: "no pod left on the bridge"), so it cannot
    race with an ADD that attaches a pod and then syncs."""
    with locked():
        if only_if is not None and not only_if():
            return ""
        table = list_table()
        if not table and not want:
            return ""
        tx = render_sync(network=network, want=want, have=rules_of_network(table, network))
        if not want:
            others = [i for i in table.get("nftables", []) if "rule" in i
                      and int(i["rule"]["handle"]) not in rules_of_network(table, network)]
            if not others:
                tx = f"delete table ip {TABLE}\n"
        apply(tx)
        return tx
