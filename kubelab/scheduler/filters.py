"""Scheduler filters: can this pod run on this node? Pure functions of (pod, NodeInfo).

Each filter returns None (fits) or the reason upstream prints in
`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {...}.`
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelab import quantity
from kubelab.nodematch import node_selector_term_matches, tolerates

def parse_quantity(q) -> float:
    """A quantity (`100m`, `1.5`, `128Mi`, `1e3`; absent = 0) as a number, by kubelab.quantity's
    grammar, the one the API server validated it with."""
    return 0.0 if q is None else float(quantity.parse_quantity(q))


@dataclass(frozen=True)
class Resources:
    milli_cpu: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, o: "Resources") -> "Resources":
        return Resources(self.milli_cpu + o.milli_cpu, self.memory + o.memory, self.pods + o.pods)

    def __sub__(self, o: "Resources") -> "Resources":
        return Resources(self.milli_cpu - o.milli_cpu, self.memory - o.memory, self.pods - o.pods)


def _milli(q) -> int:
    return 0 if q is None else quantity.milli_value(q)


def _whole(q) -> int:
    return 0 if q is None else quantity.value(q)


def _container_requests(c: dict) -> tuple[int, int]:
    req = ((c.get("resources") or {}).get("requests")) or {}
    return _milli(req.get("cpu")), _whole(req.get("memory"))


def pod_requests(pod: dict) -> Resources:
    """Sum of containers' requests; init containers count by their max (they run one by one)."""
    spec = pod.get("spec") or {}
    cpu = mem = 0
    for c in spec.get("containers") or []:
        a, b = _container_requests(c)
        cpu, mem = cpu + a, mem + b
    for c in spec.get("initContainers") or []:
        a, b = _container_requests(c)
        cpu, mem = max(cpu, a), max(mem, b)
    return Resources(cpu, mem, 1)


def node_allocatable(node: dict) -> Resources:
    """Allocatable (else capacity); absent resources mean unlimited."""
    st = node.get("status") or {}
    alloc = st.get("allocatable") or st.get("capacity") or {}
    big = 1 << 62
    cpu = _milli(alloc["cpu"]) if "cpu" in alloc else big
    mem = _whole(alloc["memory"]) if "memory" in alloc else big
    pods = _whole(alloc["pods"]) if "pods" in alloc else 110
    return Resources(cpu, mem, pods)


@dataclass
class NodeInfo:
    """A node plus what is already placed on it (bound and assumed pods)."""

    node: dict
    requested: Resources = Resources()
    pods: dict[str, dict] = field(default_factory=dict)  # pod key -> pod
    known: bool = True  # False: only pods told us of this node; the Node itself not seen yet
    owners: dict[str, int] = field(default_factory=dict)  # controller uid -> pods here (for spreading)
    _alloc: tuple = (None, None)

    @property
    def name(self) -> str:
        return self.node["metadata"]["name"]

    @property
    def allocatable(self) -> Resources:
        """Parsed once per Node object (decisions run per pod per node: parsing shows in profiles)."""
        if self._alloc[0] is not self.node:
            self._alloc = (self.node, node_allocatable(self.node))
        return self._alloc[1]


# ---- filters ---------------------------------------------------------------------------

def node_ready(pod: dict, ni: NodeInfo) -> str | None:
    for c in (ni.node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return None if c.get("status") == "True" else "node(s) were not ready"
    return "node(s) were not ready"


def node_unschedulable(pod: dict, ni: NodeInfo) -> str | None:
    if not (ni.node.get("spec") or {}).get("unschedulable"):
        return None
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("key") == "node.kubernetes.io/unschedulable" and t.get("effect") in (None, "", "NoSchedule"):
            return None
    return "node(s) were unschedulable"


def taint_toleration(pod: dict, ni: NodeInfo) -> str | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (ni.node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
    return None


def node_selector(pod: dict, ni: NodeInfo) -> str | None:
    spec = pod.get("spec") or {}
    labels = ni.node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return "node(s) didn't match Pod's node affinity/selector"
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(node_selector_term_matches(t, labels, {"metadata.name": ni.name}) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def node_name(pod: dict, ni: NodeInfo) -> str | None:
    want = (pod.get("spec") or {}).get("nodeName")
    return None if not want or want == ni.name else "node(s) didn't match the requested node name"


def fit_resources(pod: dict, ni: NodeInfo) -> list[str]:
    """Every resource that does not fit (upstream reports each)."""
    req = pod_requests(pod)
    alloc = ni.allocatable
    used = ni.requested
    out = []
    if used.pods + 1 > alloc.pods:
        out.append("Too many pods")
    if req.milli_cpu and used.milli_cpu + req.milli_cpu > alloc.milli_cpu:
        out.append("Insufficient cpu")
    if req.memory and used.memory + req.memory > alloc.memory:
        out.append("Insufficient memory")
    return out


FILTERS = (node_name, node_unschedulable, node_ready, node_selector, taint_toleration)


def filter_node(pod: dict, ni: NodeInfo) -> list[str]:
    """Reasons `pod` does not fit `ni` ([] when it fits); the first failing filter wins,
    except resources, which report every shortage, as upstream."""
    for f in FILTERS:
        reason = f(pod, ni)
        if reason:
            return [reason]
    return fit_resources(pod, ni)


def fit_error_message(num_nodes: int, reasons: dict[str, int]) -> str:
    """`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable. preemption: ...`"""
    if num_nodes == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{n} {r}" for r, n in reasons.items())
    return (f"0/{num_nodes} nodes are available: {', '.join(parts)}. preemption: 0/{num_nodes} nodes are "
            f"available: {num_nodes} Preemption is not helpful for scheduling.")
