"""Pure renderer: a cluster snapshot → the `inet kubelab-netpol` table of one node, as `nft -f` text.

The table is meant to be read next to the policies (`nft list table inet kubelab-netpol`):

    chain egress   (hook forward, priority -1)           chain ingress  (hook forward, priority 0)
      ct state established,related accept                 ct state established,related accept
      ip saddr != @egress-isolated accept                  ip daddr != @ingress-isolated accept
      ip saddr @pods-NS/POLICY jump egress-NS/POLICY        ip daddr @pods-NS/POLICY jump ingress-NS/POLICY
      counter drop  "default deny egress"                  counter drop  "default deny ingress"

    chain ingress-NS/POLICY: one `accept` line per (peer × port group) of each rule, e.g.
      ip saddr @peer-NS/POLICY/ingress0/from1 meta l4proto tcp th dport { 80, 81 } counter accept

- Sets hold pod IPs: `pods-*` the pods of THIS node a policy selects, `peer-*` the pods a
  selector peer names anywhere in the cluster, `*-isolated` the node's pods isolated per
  direction, `ports-*` (ip . protocol . port) triples for named ports resolved per pod.
- Two base chains on the forward hook: forward runs after kube-proxy's DNAT (prerouting), so
  Service traffic is judged by its pod destination. `egress` (priority -1) accepts what the
  source pod's policies allow, then `ingress` (priority 0) decides for the destination pod: an
  accept in one base chain does not skip the next, a drop anywhere is final. Only this node's
  pods are in the sets, so egress is dropped at the source node, ingress at the destination
  node. Bridged pod→pod packets reach the forward hook through br_netfilter
  (bridge-nf-call-iptables=1, set by the CNI plugin).
- Traffic the node itself sends (probes) leaves through output, which is not hooked: allowed.
- A pod reaching itself (through a Service: hairpin, DNATed back to its own IP) is never
  filtered, as the model's loopback rule says (upstream's e2e AllowLoopback).
- Replies and established connections pass first, so a policy change never cuts a connection
  that was already allowed (upstream plugins behave the same), and unrelated flows never notice.
- Pods are IPv4 only: IPv6 packets are not pod traffic and pass; IPv6 ipBlocks can never match
  a pod's traffic and are shown as comments.

`render_full` replaces the table in one transaction (`nft -f` is atomic); `render_update`
changes only what differs (one transaction too): a pod label or IP change rewrites the sets it
is in and nothing else, a new policy adds its sets and chains and re-writes the two base
chains' jump lines, without re-sending every other policy.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

from .model import EGRESS, INGRESS, Cluster, Peer, Policy, PortSpec, Rule, peer_pods, selects

FAMILY = "inet"
TABLE = "kubelab-netpol"
T = f"{FAMILY} {TABLE}"

# base chains
EGRESS_CHAIN = "egress"
INGRESS_CHAIN = "ingress"
EGRESS_PRIORITY = -1   # forward hook: after DNAT (prerouting), before the ingress chain
INGRESS_PRIORITY = 0
# sets of this node's pods isolated per direction
EGRESS_ISOLATED_SET = "egress-isolated"
INGRESS_ISOLATED_SET = "ingress-isolated"
# (ip . ip) of this node's isolated pods: a pod reaching itself through a Service (hairpin)
HAIRPIN_SET = "hairpin"
# per policy / per peer / per rule prefixes
POLICY_PODS_SET_PREFIX = "pods-"
PEER_SET_PREFIX = "peer-"
NAMED_PORTS_SET_PREFIX = "ports-"
EGRESS_POLICY_CHAIN_PREFIX = "egress-"
INGRESS_POLICY_CHAIN_PREFIX = "ingress-"

DEFAULT_DENY_COMMENT = {INGRESS: "default deny ingress", EGRESS: "default deny egress"}
NAME_MAX = 200       # the kernel allows 256; leave room for prefixes
COMMENT_MAX = 127    # NFT_USERDATA_MAXLEN-ish: nft refuses longer comments


def _short(name: str) -> str:
    """Names are `ns/name[/...]`; very long ones keep a readable head and a hash tail."""
    if len(name) <= NAME_MAX:
        return name
    return name[:NAME_MAX - 9] + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]


def pods_set(policy: Policy) -> str:
    return POLICY_PODS_SET_PREFIX + _short(policy.key)


def peer_set(policy: Policy, direction: str, rule: int, peer: int) -> str:
    word = "from" if direction == INGRESS else "to"
    return PEER_SET_PREFIX + _short(f"{policy.key}/{direction.lower()}{rule}/{word}{peer}")


def named_ports_set(policy: Policy, direction: str, rule: int) -> str:
    return NAMED_PORTS_SET_PREFIX + _short(f"{policy.key}/{direction.lower()}{rule}")


def policy_chain(policy: Policy, direction: str) -> str:
    prefix = INGRESS_POLICY_CHAIN_PREFIX if direction == INGRESS else EGRESS_POLICY_CHAIN_PREFIX
    return prefix + _short(policy.key)


_SAFE = re.compile(r"[^A-Za-z0-9 ._:/,=()!<>*\[\]-]")


def _safe(text: str) -> str:
    """Comments carry names and labels (validated by the API server, but never trusted here):
    anything that could end a string or a line in nft's grammar becomes `?`."""
    return _SAFE.sub("?", text)


def _comment(text: str) -> str:
    return f'comment "{_safe(text)[:COMMENT_MAX]}"'


# ---------------------------------------------------------------- the compiled ruleset


@dataclass(frozen=True)
class NftSet:
    name: str
    type: str                      # "ipv4_addr" or "ipv4_addr . inet_proto . inet_service"
    elements: tuple[str, ...]      # sorted, rendered element texts
    comment: str = ""


@dataclass(frozen=True)
class NftChain:
    name: str
    rules: tuple[str, ...]
    hook: str = ""                 # "" for a regular chain
    priority: int = 0


@dataclass(frozen=True)
class Ruleset:
    """Everything one node programs; equal rulesets mean nothing to apply."""

    node: str
    sets: tuple[NftSet, ...]
    chains: tuple[NftChain, ...]

    def shape(self) -> tuple:
        """What a set-only update cannot change: chains and set declarations (not elements)."""
        return (self.chains, tuple((s.name, s.type) for s in self.sets))

    @property
    def element_count(self) -> int:
        return sum(len(s.elements) for s in self.sets)


IP_SET = "ipv4_addr"
NAMED_PORT_SET = "ipv4_addr . inet_proto . inet_service"


def _is_v4(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).version == 4
    except ValueError:
        return False


def _port_groups(ports: tuple[PortSpec, ...]) -> tuple[list[tuple[str, str]], list[PortSpec]]:
    """Numeric/any ports as one (match, description) per protocol; the named ports apart."""
    by_proto: dict[str, list[PortSpec]] = {}
    named = []
    for p in ports:
        if isinstance(p.port, str):
            named.append(p)
        else:
            by_proto.setdefault(p.protocol, []).append(p)
    out = []
    for proto in sorted(by_proto):
        specs = by_proto[proto]
        desc = ", ".join(p.describe() for p in specs)
        if any(p.port is None for p in specs):
            out.append((f"meta l4proto {proto.lower()}", f"any/{proto}"))
            continue
        vals = [f"{p.port}-{p.end_port}" if p.end_port and p.end_port != p.port else str(p.port) for p in specs]
        val = vals[0] if len(vals) == 1 else "{ " + ", ".join(vals) + " }"
        out.append((f"meta l4proto {proto.lower()} th dport {val}", desc))
    return out, named


def _rule_lines(cluster: Cluster, policy: Policy, direction: str, index: int, rule: Rule, local: list,
                sets: dict[str, NftSet]) -> list[str]:
    side = "saddr" if direction == INGRESS else "daddr"
    where = f"{policy.key} {direction.lower()}[{index}]"
    peers: list[tuple[str, str]] = []  # (match text, comment)
    for j, peer in enumerate(rule.peers):
        peers.append(_peer_match(cluster, policy, direction, index, j, peer, side, sets))
    if not rule.peers:
        peers.append(("", "any peer"))
    port_matches, wanted = _port_groups(rule.ports)
    if wanted:
        name = named_ports_set(policy, direction, index)
        # ingress: the destination is one of this node's selected pods; egress: any pod
        targets = local if direction == INGRESS else cluster.pods
        elems = sorted({f"{pod.ip} . {np.protocol.lower()} . {np.port}" for pod in targets for np in pod.ports
                        for w in wanted if np.name == w.port and np.protocol == w.protocol})
        sets[name] = NftSet(name, NAMED_PORT_SET, tuple(elems), f"named ports of {where}")
        port_matches.append((f"ip daddr . meta l4proto . th dport @{name}", ", ".join(p.describe() for p in wanted)))
    if not rule.ports:
        port_matches = [("", "any port")]
    lines = []
    for match, pcomment in peers:
        if match is None:
            lines.append(_safe(f"# {where}: {pcomment}"))
            continue
        for pm, pdesc in port_matches:
            text = " ".join(x for x in (match, pm) if x)
            lines.append(f"{text + ' ' if text else ''}counter accept {_comment(f'{where}: {pcomment}, {pdesc}')}")
    return lines


def _peer_match(cluster: Cluster, policy: Policy, direction: str, i: int, j: int, peer: Peer, side: str,
                sets: dict[str, NftSet]) -> tuple[str | None, str]:
    if peer.ip_block is not None:
        b = peer.ip_block
        if not _is_v4(b.cidr):
            try:
                return None, f"ipBlock {ipaddress.ip_network(b.cidr, strict=False)} (IPv6: never matches pod traffic)"
            except ValueError:
                return None, "ipBlock with an invalid CIDR: matches nothing"
        text = f"ip {side} {ipaddress.ip_network(b.cidr, strict=False)}"  # canonical: 10.1.2.3/16 → 10.1.0.0/16
        ex = [str(ipaddress.ip_network(e, strict=False)) for e in b.excepts if _is_v4(e)]
        if ex:
            text += f" ip {side} != {{ {', '.join(ex)} }}"
        return text, peer.describe()
    name = peer_set(policy, direction, i, j)
    ips = sorted({p.ip for p in peer_pods(cluster, policy, peer)}, key=_ip_key)
    sets[name] = NftSet(name, IP_SET, tuple(ips), peer.describe())
    return f"ip {side} @{name}", peer.describe()


@functools.lru_cache(maxsize=1 << 16)
def _ip_key(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Numeric order of an address, parsed once per address, not once per set per sync."""
    return ipaddress.ip_address(ip)


@dataclass(frozen=True)
class _Compiled:
    """One policy's share of a node's ruleset (sets, chains, base-chain jumps, isolated pods)."""

    sets: tuple[NftSet, ...]
    chains: tuple[NftChain, ...]
    dispatch: tuple[tuple[str, str], ...]      # (direction, jump line)
    isolated: tuple[tuple[str, frozenset[str]], ...]


@dataclass
class BuildCache:
    """Compiled policies from the previous builds, so that a new policy compiles one policy, not all.

    A policy's share depends on the policy, the node, and every pod and namespace (peers name
    pods cluster-wide): entries are valid only while `pods` and `namespaces` are the very
    tuples they were compiled against (the agent keeps its snapshot tuples until a pod or a
    namespace changes), so any pod or namespace change recompiles everything, as before.
    """

    node: str = ""
    pods: tuple | None = None        # the Cluster.pods tuple the entries were compiled against
    namespaces: tuple | None = None  # likewise Cluster.namespaces
    compiled: dict[Policy, _Compiled | None] = field(default_factory=dict)  # None: selects none of node's pods
    hits: int = 0                    # policies reused by the last build (tests, logs)


def _compile(cluster: Cluster, policy: Policy, node: str, local_pods: list) -> _Compiled | None:
    local = [p for p in local_pods if selects(policy, p)]
    if not local:
        return None
    sets: dict[str, NftSet] = {}
    chains: list[NftChain] = []
    dispatch: list[tuple[str, str]] = []
    isolated: list[tuple[str, frozenset[str]]] = []
    pset = pods_set(policy)
    sets[pset] = NftSet(pset, IP_SET, tuple(sorted({p.ip for p in local}, key=_ip_key)),
                        f"pods on {node} selected by {policy.key}")
    for direction, affects, rules in ((INGRESS, policy.affects_ingress, policy.ingress),
                                      (EGRESS, policy.affects_egress, policy.egress)):
        if not affects:
            continue
        isolated.append((direction, frozenset(p.ip for p in local)))
        cname = policy_chain(policy, direction)
        lines: list[str] = []
        for i, rule in enumerate(rules):
            lines += _rule_lines(cluster, policy, direction, i, rule, local, sets)
        if not rules:
            lines.append(f"# {policy.key}: no {direction.lower()} rules: the selected pods only get the default deny")
        chains.append(NftChain(cname, tuple(lines)))
        side = "daddr" if direction == INGRESS else "saddr"
        dispatch.append((direction, f"ip {side} @{pset} jump {cname}"))
    return _Compiled(tuple(sets.values()), tuple(chains), tuple(dispatch), tuple(isolated))


def build(cluster: Cluster, node: str, cache: BuildCache | None = None) -> Ruleset:
    """The ruleset `node` programs: only policies selecting at least one of its pods appear.
    With a `cache`, policies compiled against the same pods and namespaces are reused."""
    local_pods = [p for p in cluster.pods if p.node == node]
    if cache is not None and (cache.node, cache.pods, cache.namespaces) != (node, cluster.pods, cluster.namespaces):
        cache.node, cache.pods, cache.namespaces, cache.compiled = node, cluster.pods, cluster.namespaces, {}
    sets: dict[str, NftSet] = {}
    chains: list[NftChain] = []
    dispatch: dict[str, list[str]] = {INGRESS: [], EGRESS: []}
    isolated: dict[str, set[str]] = {INGRESS: set(), EGRESS: set()}
    compiled: dict[Policy, _Compiled | None] = {}
    hits = 0
    for policy in cluster.policies:
        if cache is not None and policy in cache.compiled:
            part = compiled[policy] = cache.compiled[policy]
            hits += 1
        else:
            part = compiled[policy] = _compile(cluster, policy, node, local_pods)
        if part is None:
            continue
        sets.update((st.name, st) for st in part.sets)
        chains += part.chains
        for direction, line in part.dispatch:
            dispatch[direction].append(line)
        for direction, ips in part.isolated:
            isolated[direction] |= ips
    if cache is not None:
        cache.compiled, cache.hits = compiled, hits  # policies gone from the cluster drop out
    both = sorted(isolated[INGRESS] | isolated[EGRESS], key=_ip_key)
    sets[HAIRPIN_SET] = NftSet(HAIRPIN_SET, "ipv4_addr . ipv4_addr", tuple(f"{ip} . {ip}" for ip in both),
                               "a pod reaching itself through a Service: never filtered (loopback)")
    for direction, name in ((INGRESS, INGRESS_ISOLATED_SET), (EGRESS, EGRESS_ISOLATED_SET)):
        sets[name] = NftSet(name, IP_SET, tuple(sorted(isolated[direction], key=_ip_key)),
                            f"pods on {node} isolated for {direction.lower()}")
    base = []
    for direction, name, prio, side, iso in ((EGRESS, EGRESS_CHAIN, EGRESS_PRIORITY, "saddr", EGRESS_ISOLATED_SET),
                                             (INGRESS, INGRESS_CHAIN, INGRESS_PRIORITY, "daddr", INGRESS_ISOLATED_SET)):
        what = "source" if direction == EGRESS else "destination"
        rules = [
            f"ct state established,related accept {_comment('replies and connections already allowed')}",
            f"meta nfproto ipv6 accept {_comment('pods are IPv4 only')}",
            f"ip {side} != @{iso} accept {_comment(f'{what} not isolated for {direction.lower()}')}",
            f"ip saddr . ip daddr @{HAIRPIN_SET} accept {_comment('a pod reaching itself through a Service')}",
            *dispatch[direction],
            f"counter drop {_comment(DEFAULT_DENY_COMMENT[direction])}",
        ]
        base.append(NftChain(name, tuple(rules), hook="forward", priority=prio))
    first = (EGRESS_ISOLATED_SET, INGRESS_ISOLATED_SET, HAIRPIN_SET)
    ordered_sets = tuple(sorted(sets.values(), key=lambda s: (s.name not in first, s.name)))
    return Ruleset(node=node, sets=ordered_sets, chains=tuple(base) + tuple(chains))


# ---------------------------------------------------------------- text


def _set_text(s: NftSet, indent: str = "\t") -> list[str]:
    out = [f"{indent}set {s.name} {{", f"{indent}\ttype {s.type}"]
    if s.comment:
        out.append(f"{indent}\t{_comment(s.comment)}")
    if s.elements:
        out.append(f"{indent}\telements = {{ {', '.join(s.elements)} }}")
    out.append(f"{indent}}}")
    return out


def _chain_text(c: NftChain) -> list[str]:
    out = [f"\tchain {c.name} {{"]
    if c.hook:
        out.append(f"\t\ttype filter hook {c.hook} priority {c.priority}; policy accept;")
    out += [f"\t\t{r}" for r in c.rules]
    out.append("\t}")
    return out


def render_full(rs: Ruleset) -> str:
    """One transaction: (re)create the table with everything in it."""
    lines = [f"add table {T}", f"delete table {T}", f"table {T} {{"]
    for s in rs.sets:
        lines += _set_text(s)
    for c in rs.chains:
        lines += _chain_text(c)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_update(prev: Ruleset | None, new: Ruleset) -> str:
    """The smallest transaction from `prev` (what the kernel holds) to `new`; "" when nothing changed.

    A full rewrite re-sends every policy's chains and sets whenever one policy appears, so its
    cost grows with the cluster; an incremental one touches only what differs:
      1. flush the chains whose rules changed and the chains that go away (drops their jumps and
         set references first);
      2. flush + refill the sets whose elements changed (a pod label or IP change: nothing else);
      3. declare the new sets and the new or changed chains, with their rules, in a table block
         (block syntax, so `#` comment lines stay as they are in the full text);
      4. delete the chains, then the sets, that are gone.
    All of it is one `nft -f` transaction, so no packet sees a half-updated table. When a chain
    keeps its name but changes hook or priority, or a set keeps its name but changes type or
    comment, the whole table is re-created instead (those cannot be changed in place).
    """
    if prev is None:
        return render_full(new)
    old_sets = {s.name: s for s in prev.sets}
    old_chains = {c.name: c for c in prev.chains}
    new_sets = {s.name: s for s in new.sets}
    new_chains = {c.name: c for c in new.chains}
    for c in new.chains:
        o = old_chains.get(c.name)
        if o is not None and (o.hook, o.priority) != (c.hook, c.priority):
            return render_full(new)
    for s in new.sets:
        o = old_sets.get(s.name)
        if o is not None and (o.type, o.comment) != (s.type, s.comment):
            return render_full(new)
    gone_chains = [c for c in prev.chains if c.name not in new_chains]
    gone_sets = [s for s in prev.sets if s.name not in new_sets]
    changed_chains = [c for c in new.chains if old_chains.get(c.name) != c]
    head = [f"flush chain {T} {c.name}" for c in changed_chains if c.name in old_chains]
    head += [f"flush chain {T} {c.name}" for c in gone_chains]
    for s in new.sets:
        o = old_sets.get(s.name)
        if o is None or o.elements == s.elements:
            continue
        head.append(f"flush set {T} {s.name}")
        if s.elements:
            head.append(f"add element {T} {s.name} {{ {', '.join(s.elements)} }}")
    block = []
    for s in new.sets:
        if s.name not in old_sets:
            block += _set_text(s)
    for c in changed_chains:
        block += _chain_text(c)
    tail = [f"delete chain {T} {c.name}" for c in gone_chains]
    tail += [f"delete set {T} {s.name}" for s in gone_sets]
    lines = head + ([f"table {T} {{", *block, "}"] if block else []) + tail
    return "\n".join(lines) + "\n" if lines else ""


def render_cleanup() -> str:
    """Remove the table (works whether or not it exists)."""
    return f"add table {T}\ndelete table {T}\n"
