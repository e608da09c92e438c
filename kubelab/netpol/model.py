"""NetworkPolicy semantics as pure functions over frozen dataclasses.

The agent boils API objects down to `PodInfo`, `NamespaceInfo` and `Policy`, then asks two
questions of them:

- `verdict(cluster, src, dst, port, protocol)`: would a connection be allowed, and by which
  policy and rule (or refused by which default deny)? `kubelab netpol reach` predicts with it,
  `kubelab trace` explains with it, the unit tests pin the upstream semantics on it.
- `node_ruleset(cluster, node)`: what one node must program (nftables.py renders it). A node
  enforces egress for the pods it hosts (dropped at the source) and ingress for the pods it
  hosts (dropped at the destination), exactly the split upstream plugins make.

Upstream semantics (networking/v1 NetworkPolicy, the API reference and test/e2e/network/netpol):
- A pod is isolated for a direction only when a policy of its namespace selects it and lists
  that direction in policyTypes; an isolated pod gets only what the union of those policies'
  rules allows; a non-isolated pod gets everything.
- A connection needs both: egress allowed at the source and ingress allowed at the destination.
- A rule with no peers allows every peer; a rule with no ports allows every port; a policy
  with no rules for an isolated direction allows nothing.
- A peer with only podSelector means pods of the policy's own namespace; only
  namespaceSelector: every pod of the selected namespaces; both in ONE peer: pods matching the
  pod selector inside the selected namespaces (AND); two peers are OR.
- ipBlock matches by address (pod IPs included) minus its `except` CIDRs.
- A named port matches when the destination pod has a container port of that name and
  protocol whose number is the packet's destination port (resolved per destination pod).
- A pod reaching its own IP never leaves its network namespace (always allowed, upstream's
  "loopback").
- Replies of allowed connections pass (conntrack); traffic the node itself sends to its pods
  is not filtered (it leaves through the output hook, which this table does not hook).
- hostNetwork pods and pods without an IP take part in nothing (they have no pod IP).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable


INGRESS, EGRESS = "Ingress", "Egress"
PROTOCOLS = ("TCP", "UDP", "SCTP")


# ---------------------------------------------------------------- inputs

def _frozen_labels(labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items())) if isinstance(labels, dict) else ()


@dataclass(frozen=True)
class Selector:
    """A LabelSelector, frozen. `matchLabels` AND every `matchExpressions` entry; empty = all."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, operator, values)

    @classmethod
    def from_dict(cls, d) -> "Selector":
        d = d if isinstance(d, dict) else {}
        exprs = tuple((str(e.get("key", "")), str(e.get("operator", "")), tuple(e.get("values") or ()))
                      for e in (d.get("matchExpressions") or []) if isinstance(e, dict))
        return cls(_frozen_labels(d.get("matchLabels")), exprs)

    def to_dict(self) -> dict:
        out: dict = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.expressions:
            out["matchExpressions"] = [{"key": k, "operator": op, **({"values": list(v)} if v else {})}
                                       for k, op, v in self.expressions]
        return out

    def matches(self, labels: dict[str, str] | tuple) -> bool:
        """kubelab.labels.selector_matches on the frozen form (called per pod × peer: kept cheap)."""
        if type(labels) is not dict:
            labels = dict(labels)
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for k, op, vals in self.expressions:
            if op == "In" and labels.get(k) not in vals:
                return False
            if op == "NotIn" and k in labels and labels[k] in vals:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
        return True

    def __str__(self) -> str:
        """metav1.FormatLabelSelector (`app=a,env in (x,y)`; `<all>` for the empty selector)."""
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for k, op, vals in self.expressions:
            v = ",".join(sorted(vals))
            parts.append({"In": f"{k} in ({v})", "NotIn": f"{k} notin ({v})", "Exists": k,
                          "DoesNotExist": f"!{k}"}.get(op, f"{k} {op} ({v})"))
        return ",".join(parts) or "<all>"


@dataclass(frozen=True)
class NamedPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class PodInfo:
    """What policy needs of a pod. `ip` is "" until the pod has one (then it matches nothing)."""

    namespace: str
    name: str
    ip: str = ""
    node: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    ports: tuple[NamedPort, ...] = ()  # named container ports (for named policy ports)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @cached_property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...] = ()

    def contains(self, ip: str) -> bool:
        try:
            a = ipaddress.ip_address(ip)
            net = ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False
        if a.version != net.version or a not in net:
            return False
        for e in self.excepts:
            try:
                if a in ipaddress.ip_network(e, strict=False):
                    return False
            except ValueError:
                continue
        return True


@dataclass(frozen=True)
class Peer:
    """One `from`/`to` entry. Exactly one of (selectors) or ip_block is set (validation)."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        if self.ip_block:
            ex = f" except {', '.join(self.ip_block.excepts)}" if self.ip_block.excepts else ""
            return f"ipBlock {self.ip_block.cidr}{ex}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"pods {self.pod_selector}")
        return " AND ".join(parts)


@dataclass(frozen=True)
class PortSpec:
    """One `ports` entry: protocol, then a number (with optional endPort), a name, or any port."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def describe(self) -> str:
        if self.port is None:
            return f"any/{self.protocol}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    ports: tuple[PortSpec, ...] = ()  # () = every port
    peers: tuple[Peer, ...] = ()      # () = every peer


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Selector = Selector()
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    affects_ingress: bool = True
    affects_egress: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Cluster:
    """Everything policy depends on, as one immutable snapshot."""

    pods: tuple[PodInfo, ...] = ()
    namespaces: tuple[NamespaceInfo, ...] = ()
    policies: tuple[Policy, ...] = ()
    @cached_property
    def _ns_labels(self) -> dict[str, dict[str, str]]:
        return {n.name: dict(n.labels) for n in self.namespaces}

    @cached_property
    def _by_ip(self) -> dict[str, PodInfo]:
        return {p.ip: p for p in reversed(self.pods)}

    @cached_property
    def pods_by_namespace(self) -> dict[str, list[PodInfo]]:
        out: dict[str, list[PodInfo]] = {}
        for p in self.pods:
            out.setdefault(p.namespace, []).append(p)
        return out

    def namespace_labels(self, name: str) -> dict[str, str]:
        # a namespace the cache has not seen yet still has its name label (as the API server sets it)
        return self._ns_labels.get(name) or {"kubernetes.io/metadata.name": name}

    def pod_by_ip(self, ip: str) -> PodInfo | None:
        return self._by_ip.get(ip)


# ---------------------------------------------------------------- from API objects

def _d(v) -> dict:
    return v if isinstance(v, dict) else {}


def _l(v) -> list:
    return v if isinstance(v, list) else []


def pod_info(pod: dict) -> PodInfo | None:
    """A pod that takes part in policy, or None (no IP yet, hostNetwork, finished, deleting)."""
    meta, spec, status = _d(pod.get("metadata")), _d(pod.get("spec")), _d(pod.get("status"))
    ip = status.get("podIP") or ""
    if not ip or spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    try:  # a node writes status: never let a malformed address reach the nft text
        ip = str(ipaddress.IPv4Address(ip))
    except (ValueError, TypeError):
        return None
    ports = tuple(NamedPort(str(p["name"]), p["containerPort"], p.get("protocol") or "TCP")
                  for c in _l(spec.get("containers")) for p in _l(_d(c).get("ports"))
                  if isinstance(p, dict) and isinstance(p.get("name"), str) and p.get("name")
                  and isinstance(p.get("containerPort"), int) and 0 < p["containerPort"] < 65536
                  and (p.get("protocol") or "TCP") in PROTOCOLS)
    return PodInfo(namespace=meta.get("namespace") or "default", name=meta.get("name", ""), ip=ip,
                   node=spec.get("nodeName") or "", labels=_frozen_labels(meta.get("labels")), ports=ports)


def namespace_info(ns: dict) -> NamespaceInfo:
    meta = _d(ns.get("metadata"))
    labels = dict(_d(meta.get("labels")))
    labels.setdefault("kubernetes.io/metadata.name", meta.get("name", ""))
    return NamespaceInfo(meta.get("name", ""), _frozen_labels(labels))


def _peer(p: dict) -> Peer:
    ipb = p.get("ipBlock")
    return Peer(
        pod_selector=Selector.from_dict(p["podSelector"]) if p.get("podSelector") is not None else None,
        namespace_selector=Selector.from_dict(p["namespaceSelector"]) if p.get("namespaceSelector") is not None else None,
        ip_block=IPBlock(str(_d(ipb).get("cidr", "")), tuple(_l(_d(ipb).get("except")))) if ipb is not None else None)


def _port(p: dict) -> PortSpec:
    port = p.get("port")
    return PortSpec(protocol=str(p.get("protocol") or "TCP"), port=port, end_port=p.get("endPort"))


def policy_from_object(obj: dict) -> Policy:
    """A NetworkPolicy as the API server stores it (defaulted and validated)."""
    meta, spec = _d(obj.get("metadata")), _d(obj.get("spec"))
    egress_rules = _l(spec.get("egress"))
    types = _l(spec.get("policyTypes")) or [INGRESS] + ([EGRESS] if egress_rules else [])

    def rules(items: list, peers_key: str) -> tuple[Rule, ...]:
        return tuple(Rule(ports=tuple(_port(_d(p)) for p in _l(_d(r).get("ports"))),
                          peers=tuple(_peer(_d(p)) for p in _l(_d(r).get(peers_key)))) for r in items)

    return Policy(namespace=meta.get("namespace") or "default", name=meta.get("name", ""),
                  pod_selector=Selector.from_dict(spec.get("podSelector")),
                  ingress=rules(_l(spec.get("ingress")), "from"), egress=rules(egress_rules, "to"),
                  affects_ingress=INGRESS in types, affects_egress=EGRESS in types)


def cluster_from_objects(pods: Iterable[dict], namespaces: Iterable[dict], policies: Iterable[dict]) -> Cluster:
    infos = (pod_info(p) for p in pods)
    return Cluster(pods=tuple(sorted((i for i in infos if i), key=lambda i: i.key)),
                   namespaces=tuple(sorted((namespace_info(n) for n in namespaces), key=lambda n: n.name)),
                   policies=tuple(sorted((policy_from_object(p) for p in policies), key=lambda p: p.key)))


# ---------------------------------------------------------------- selection

def selects(policy: Policy, pod: PodInfo) -> bool:
    """Does `policy` apply to `pod`? (Same namespace, pod selector matches.)"""
    return pod.namespace == policy.namespace and policy.pod_selector.matches(pod.label_map)


def peer_pods(cluster: Cluster, policy: Policy, peer: Peer) -> list[PodInfo]:
    """The pods a selector peer names (AND when both selectors are in the one peer)."""
    if peer.ip_block is not None:
        return []
    if peer.namespace_selector is None:
        namespaces = [policy.namespace]
    else:
        namespaces = [ns for ns in cluster.pods_by_namespace
                      if peer.namespace_selector.matches(cluster.namespace_labels(ns))]
    out = []
    for ns in namespaces:
        for pod in cluster.pods_by_namespace.get(ns, ()):
            if peer.pod_selector is None or peer.pod_selector.matches(pod.label_map):
                out.append(pod)
    return out


def peer_matches(cluster: Cluster, policy: Policy, peer: Peer, ip: str) -> bool:
    if peer.ip_block is not None:
        return peer.ip_block.contains(ip)
    return any(p.ip == ip for p in peer_pods(cluster, policy, peer))


def port_matches(spec: PortSpec, port: int, protocol: str, dst: PodInfo | None) -> bool:
    if spec.protocol != protocol:
        return False
    if spec.port is None:
        return True
    if isinstance(spec.port, int):
        return spec.port <= port <= (spec.end_port or spec.port)
    # a named port resolves against the destination pod's container ports
    return dst is not None and any(np.name == spec.port and np.protocol == protocol and np.port == port
                                   for np in dst.ports)


def rule_allows(cluster: Cluster, policy: Policy, rule: Rule, peer_ip: str, port: int, protocol: str,
                dst: PodInfo | None) -> bool:
    if rule.ports and not any(port_matches(s, port, protocol, dst) for s in rule.ports):
        return False
    return not rule.peers or any(peer_matches(cluster, policy, p, peer_ip) for p in rule.peers)


# ---------------------------------------------------------------- the verdict

@dataclass(frozen=True)
class DirectionVerdict:
    """The answer for one direction: allowed, and why (policy key + rule index, or none)."""

    direction: str          # Ingress | Egress
    allowed: bool
    isolated: bool          # some policy selects the pod for this direction
    policy: str = ""        # "ns/name" of the first policy whose rule allowed it
    rule: int = -1          # index in that policy's ingress/egress list
    policies: tuple[str, ...] = ()  # every policy isolating the pod for this direction
    reason: str = ""                # set when no policy was consulted for a special reason

    def explain(self) -> str:
        if self.reason:
            return f"{self.direction.lower()}: {self.reason}"
        if not self.isolated:
            return f"{self.direction.lower()}: not isolated (no policy selects the pod for {self.direction})"
        if self.allowed:
            return f"{self.direction.lower()}: allowed by {self.policy} {self.direction.lower()}[{self.rule}]"
        return (f"{self.direction.lower()}: dropped by default deny (isolated by {', '.join(self.policies)}; "
                f"no rule matches)")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress: DirectionVerdict
    ingress: DirectionVerdict

    def explain(self) -> str:
        return f"{'ALLOWED' if self.allowed else 'DROPPED'}: {self.egress.explain()}; {self.ingress.explain()}"


def _direction(cluster: Cluster, pod: PodInfo | None, direction: str, peer_ip: str, port: int, protocol: str,
               dst: PodInfo | None) -> DirectionVerdict:
    if pod is None:  # not a pod (outside the cluster, a node): nothing isolates it
        return DirectionVerdict(direction, True, False, reason="not a pod: no policy applies")
    ingress = direction == INGRESS
    isolating = [p for p in cluster.policies
                 if (p.affects_ingress if ingress else p.affects_egress) and selects(p, pod)]
    if not isolating:
        return DirectionVerdict(direction, True, False)
    keys = tuple(p.key for p in isolating)
    for p in isolating:
        for i, rule in enumerate(p.ingress if ingress else p.egress):
            if rule_allows(cluster, p, rule, peer_ip, port, protocol, dst):
                return DirectionVerdict(direction, True, True, p.key, i, keys)
    return DirectionVerdict(direction, False, True, policies=keys)


def verdict(cluster: Cluster, src_ip: str, dst_ip: str, port: int, protocol: str = "TCP") -> Verdict:
    """Would a new connection src_ip → dst_ip:port/protocol be allowed (after DNAT: dst is a pod
    IP, not a ClusterIP)? Both ends are looked up among the cluster's pods by IP."""
    src, dst = cluster.pod_by_ip(src_ip), cluster.pod_by_ip(dst_ip)
    if src_ip == dst_ip:  # a pod reaching its own IP never leaves its network namespace
        loop = DirectionVerdict(EGRESS, True, False, reason="loopback: never leaves the pod")
        return Verdict(True, loop, DirectionVerdict(INGRESS, True, False, reason="loopback: never leaves the pod"))
    eg = _direction(cluster, src, EGRESS, dst_ip, port, protocol, dst)
    ing = _direction(cluster, dst, INGRESS, src_ip, port, protocol, dst)
    return Verdict(eg.allowed and ing.allowed, eg, ing)
