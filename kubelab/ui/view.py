"""Pure view-models for the web view: API objects in, frozen models and DOT/SVG text out.

Why pure: the map is what students look at while the cluster changes under them; keeping
"objects -> model -> DOT" free of I/O makes every drawing rule testable on plain dicts
(tests/unit/test_ui_view.py) and lets the benchmark time exactly the drawing (bench/bench_ui.py).
Layout is Graphviz's job (`kubelab.ui.graphviz`); this module only says *what* is drawn:

    Services (top row) ──ready endpoint──> pods, inside their node's box
    node box: name, netns, node IP, pod CIDR, bridge, routes to the other nodes' pod CIDRs

Every drawn object carries an SVG id `kind:key` ("pod:demo/nginx-1", "svc:demo/nginx",
"node:worker-1") so the page can show its YAML and events when clicked.
"""

from __future__ import annotations

import html
import ipaddress
import re
from dataclasses import dataclass, field

POD_COLUMNS = 4            # pods per row inside a node box (keeps a 3-node lab within 1366 px)
DEFAULT_BRIDGE = "cni0"    # the CNI bridge in every node (kubelab.cni's default)
MAX_QUERY = 253            # longest DNS name: the longest value a trace parameter may have


# --- the map model -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PodBox:
    key: str                  # namespace/name
    name: str
    namespace: str
    ip: str                   # "" until the node agent reports it
    phase: str                # Pending | Running | Succeeded | Failed | Unknown | Terminating
    ready: bool
    node: str                 # "" while unscheduled


@dataclass(frozen=True)
class NodeBox:
    name: str
    role: str                 # control-plane | worker
    ip: str
    netns: str
    pod_cidr: str
    bridge: str
    routes: tuple[str, ...]   # "10.244.1.0/24 via 192.168.56.12" (what `ip -n NETNS route` shows)
    ready: bool
    pods: tuple[PodBox, ...]
    registered: bool = True   # False: in the lab plan but no Node object (a control plane without a node agent)


@dataclass(frozen=True)
class ServiceBox:
    key: str
    name: str
    namespace: str
    type: str
    cluster_ip: str
    ports: tuple[str, ...]    # "80/TCP", "80:30080/TCP" as kubectl prints them
    node_ports: tuple[int, ...]
    external_ip: str          # kubectl's EXTERNAL-IP column: an address, <pending> or <none>


@dataclass(frozen=True)
class EndpointLine:
    service: str              # ServiceBox.key
    target: str               # "pod:ns/name" or "node:name" (the apiserver's endpoint is a node IP)
    ready: bool


@dataclass(frozen=True)
class MapModel:
    nodes: tuple[NodeBox, ...]
    unscheduled: tuple[PodBox, ...]
    services: tuple[ServiceBox, ...]
    lines: tuple[EndpointLine, ...]

    @property
    def pod_count(self) -> int:
        return sum(len(n.pods) for n in self.nodes) + len(self.unscheduled)


@dataclass(frozen=True)
class NodeInfo:
    """What the API does not say about a node but the lab plan does."""
    netns: str = ""
    ip: str = ""
    role: str = "worker"


def _ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def pod_box(p: dict) -> PodBox:
    m = p.get("metadata") or {}
    st = p.get("status") or {}
    phase = "Terminating" if m.get("deletionTimestamp") else (st.get("phase") or "Pending")
    return PodBox(key=f"{m.get('namespace', '')}/{m.get('name', '')}", name=m.get("name", ""),
                  namespace=m.get("namespace", ""), ip=st.get("podIP") or "", phase=phase, ready=_ready(p),
                  node=(p.get("spec") or {}).get("nodeName") or "")


def node_internal_ip(n: dict) -> str:
    for a in (n.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address") or ""
    return ""


def derived_routes(nodes: list[dict], name: str, info: dict[str, NodeInfo]) -> tuple[str, ...]:
    """The routes the lab installs in node `name`: every other node's pod CIDR via its IP."""
    out = []
    for n in sorted(nodes, key=lambda x: x["metadata"]["name"]):
        other = n["metadata"]["name"]
        cidr = (n.get("spec") or {}).get("podCIDR")
        ip = (info.get(other) or NodeInfo()).ip or node_internal_ip(n)
        if other != name and cidr and ip:
            out.append(f"{cidr} via {ip}")
    return tuple(out)


def external_ip(s: dict) -> str:
    spec = s.get("spec") or {}
    ingress = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ips = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    ips += list(spec.get("externalIPs") or [])
    if ips:
        return ",".join(ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def service_box(s: dict) -> ServiceBox:
    m = s.get("metadata") or {}
    spec = s.get("spec") or {}
    ports, node_ports = [], []
    for p in spec.get("ports") or []:
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            ports.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
            node_ports.append(int(p["nodePort"]))
        else:
            ports.append(f"{p.get('port')}/{proto}")
    return ServiceBox(key=f"{m.get('namespace', '')}/{m.get('name', '')}", name=m.get("name", ""),
                      namespace=m.get("namespace", ""), type=spec.get("type") or "ClusterIP",
                      cluster_ip=spec.get("clusterIP") or "None", ports=tuple(ports),
                      node_ports=tuple(node_ports), external_ip=external_ip(s))


def endpoint_lines(slices: list[dict], pods_by_ip: dict[str, str], nodes_by_ip: dict[str, str],
                   services: set[str]) -> list[EndpointLine]:
    """Service -> each endpoint of its EndpointSlices: the pod (by targetRef, else by IP), or the
    node whose IP it is (the `kubernetes` Service's endpoint is the API server's node)."""
    seen: dict[tuple[str, str], bool] = {}
    for es in slices:
        m = es.get("metadata") or {}
        svc = (m.get("labels") or {}).get("kubernetes.io/service-name")
        key = f"{m.get('namespace', '')}/{svc}"
        if not svc or key not in services:
            continue
        for ep in es.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready") is not False
            ref = ep.get("targetRef") or {}
            targets = []
            if ref.get("kind") == "Pod":
                targets.append(f"pod:{ref.get('namespace') or m.get('namespace')}/{ref.get('name')}")
            else:
                for a in ep.get("addresses") or []:
                    if a in pods_by_ip:
                        targets.append(f"pod:{pods_by_ip[a]}")
                    elif a in nodes_by_ip:
                        targets.append(f"node:{nodes_by_ip[a]}")
            for t in targets:
                seen[(key, t)] = seen.get((key, t), False) or ready
    return [EndpointLine(s, t, r) for (s, t), r in sorted(seen.items())]


def build_map(*, nodes: list[dict], pods: list[dict], services: list[dict], slices: list[dict],
              info: dict[str, NodeInfo] | None = None, routes: dict[str, tuple[str, ...]] | None = None,
              bridge: str = DEFAULT_BRIDGE) -> MapModel:
    """API objects (as the informers hold them) -> the map model. `routes` are live routes by node
    (read from the node namespaces); nodes without them get the routes the lab installs."""
    info = info or {}
    routes = routes or {}
    boxes = sorted((pod_box(p) for p in pods), key=lambda b: b.key)
    by_node: dict[str, list[PodBox]] = {}
    for b in boxes:
        by_node.setdefault(b.node, []).append(b)
    node_names = [n["metadata"]["name"] for n in nodes]
    order = sorted(nodes, key=lambda n: ((info.get(n["metadata"]["name"]) or NodeInfo()).role != "control-plane",
                                         n["metadata"]["name"]))
    node_boxes = []
    for n in order:
        name = n["metadata"]["name"]
        ni = info.get(name) or NodeInfo()
        node_boxes.append(NodeBox(
            name=name, role=ni.role, ip=ni.ip or node_internal_ip(n), netns=ni.netns,
            pod_cidr=(n.get("spec") or {}).get("podCIDR") or "", bridge=bridge,
            routes=tuple(routes[name]) if name in routes else derived_routes(nodes, name, info),
            ready=_ready(n), pods=tuple(by_node.get(name, ()))))
    for name, ni in info.items():  # lab nodes the API does not know: no node agent runs there
        if name not in node_names:
            node_boxes.append(NodeBox(name=name, role=ni.role, ip=ni.ip, netns=ni.netns, pod_cidr="", bridge=bridge,
                                      routes=tuple(routes[name]) if name in routes else derived_routes(nodes, name, info),
                                      ready=False, pods=(), registered=False))
            node_names.append(name)
    node_boxes.sort(key=lambda b: (b.role != "control-plane", b.name))
    unscheduled = tuple(b for b in boxes if b.node not in node_names)
    svc_boxes = tuple(sorted((service_box(s) for s in services), key=lambda b: b.key))
    pods_by_ip = {b.ip: b.key for b in boxes if b.ip and b.phase != "Terminating"}
    nodes_by_ip = {nb.ip: nb.name for nb in node_boxes if nb.ip}
    lines = endpoint_lines(slices, pods_by_ip, nodes_by_ip, {s.key for s in svc_boxes})
    present = {f"pod:{b.key}" for b in boxes} | {f"node:{nb.name}" for nb in node_boxes}
    return MapModel(nodes=tuple(node_boxes), unscheduled=unscheduled, services=svc_boxes,
                    lines=tuple(line for line in lines if line.target in present))


# --- the map as DOT ------------------------------------------------------------------------------

PHASE_FILL = {"Running": "#d9f2d9", "Pending": "#fff3c4", "Succeeded": "#e0e0e0", "Failed": "#f8d0d0",
              "Unknown": "#f0f0f0", "Terminating": "#e6e6e6"}
READY_EDGE = "#2e7d32"
NOT_READY_EDGE = "#9e9e9e"
TRACE_COLOR = "#d32f2f"


@dataclass(frozen=True)
class TracePath:
    """What a trace highlights on the map: numbered edges between drawn objects ("pod:ns/x",
    "svc:ns/y") and the objects on the path."""
    edges: tuple[tuple[str, str, str], ...] = ()   # (from id, to id, label)
    objects: frozenset[str] = field(default_factory=frozenset)


def q(text: str) -> str:
    """A DOT double-quoted string: backslash and quote escaped, newlines as DOT's \\n.
    Backslashes are doubled first so Graphviz's own escapes (\\N, \\G, \\l) cannot be injected."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n") + '"'


def _node_label(n: NodeBox) -> str:
    state = "" if n.ready else (", NotReady" if n.registered else ", no Node object")
    lines = [f"{n.name}  ({n.role}{state})",
             f"netns {n.netns or '?'}", f"node IP {n.ip or '?'}",
             f"pod CIDR {n.pod_cidr or '(none yet)'}  bridge {n.bridge}" if n.registered
             else "no node agent: no pods, no pod CIDR"]
    lines += [f"route {r}" for r in n.routes] or ["(no routes to other nodes yet)"]
    return "\n".join(lines)


def _pod_label(p: PodBox) -> str:
    state = p.phase + (", Ready" if p.ready else "") if p.phase == "Running" else p.phase
    return f"{p.name}\n{p.namespace}\n{p.ip or 'no IP yet'}\n{state}"


def _svc_label(s: ServiceBox) -> str:
    lines = [f"svc {s.name}", s.namespace, f"ClusterIP {s.cluster_ip}"]
    if s.node_ports:
        lines.append(f"{s.type} " + ",".join(str(p) for p in s.node_ports))
    if s.external_ip != "<none>":
        lines.append(f"EXTERNAL-IP {s.external_ip}")
    lines.append(" ".join(s.ports))
    return "\n".join(lines)


def map_dot(model: MapModel, trace: TracePath | None = None) -> str:
    """The map as a DOT graph: services on top, one box (cluster) per node, pods inside in rows
    of POD_COLUMNS, an edge per endpoint (green: ready, dashed grey: not ready)."""
    trace = trace or TracePath()
    hi = trace.objects

    def mark(obj_id: str) -> str:
        return f", color={q(TRACE_COLOR)}, penwidth=3" if obj_id in hi else ""

    out = ["digraph map {",
           '  graph [rankdir=TB, newrank=true, nodesep=0.25, ranksep=0.45, nslimit=2, nslimit1=2, fontname="Helvetica", fontsize=11, '
           'bgcolor="transparent"];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.08,0.04"];',
           '  edge [arrowsize=0.6, fontname="Helvetica"];']
    svc_ids = []
    for s in model.services:
        sid = f"svc:{s.key}"
        svc_ids.append(sid)
        out.append(f"  {q(sid)} [id={q(sid)}, class={q('svc')}, label={q(_svc_label(s))}, shape=box, "
                   f'fillcolor="#dde8fb"{mark(sid)}];')
    if svc_ids:
        out.append("  { rank=min; " + " ".join(q(i) for i in svc_ids) + " }")
    header_ids = []
    for n in model.nodes:
        nid = f"node:{n.name}"
        hid = f"nodeinfo:{n.name}"
        header_ids.append(hid)
        out.append(f"  subgraph {q('cluster_' + n.name)} {{")
        out.append(f"    id={q(nid)}; class={q('labnode')}; label=\"\"; style=\"rounded,filled\"; "
                   f"fillcolor={q('#f7f7f7' if n.ready or not n.registered else '#fbeaea')}; color={q('#607d8b')};"
                   + (f" penwidth=3; color={q(TRACE_COLOR)};" if nid in hi else ""))
        out.append(f"    {q(hid)} [id={q(hid)}, class={q('nodeinfo')}, label={q(_node_label(n))}, shape=box, "
                   f'style="filled", fillcolor="#cfd8dc", fontsize=9];')
        for p in n.pods:
            pid = f"pod:{p.key}"
            out.append(f"    {q(pid)} [id={q(pid)}, class={q('pod ' + p.phase.lower())}, label={q(_pod_label(p))}, "
                       f"fillcolor={q(PHASE_FILL.get(p.phase, '#f0f0f0'))}{mark(pid)}];")
        for i, p in enumerate(n.pods):  # rows of POD_COLUMNS under the node's header
            above = hid if i < POD_COLUMNS else f"pod:{n.pods[i - POD_COLUMNS].key}"
            out.append(f"    {q(above)} -> {q('pod:' + p.key)} [style=invis, weight=10];")
        out.append("  }")
    if header_ids:
        out.append("  { rank=same; " + " ".join(q(i) for i in header_ids) + " }")
        # nodes left to right in the model's order (control plane, worker-1, worker-2, ...)
        out += [f"  {q(a)} -> {q(b)} [style=invis, weight=0];" for a, b in zip(header_ids, header_ids[1:])]
        if svc_ids:  # node boxes below the row of Services
            out += [f"  {q(svc_ids[len(svc_ids) // 2])} -> {q(h)} [style=invis];" for h in header_ids]
    if model.unscheduled:
        out.append(f"  subgraph {q('cluster__unscheduled')} {{")
        out.append('    label="not scheduled (no node yet)"; style="dashed"; color="#9e9e9e";')
        for p in model.unscheduled:
            pid = f"pod:{p.key}"
            out.append(f"    {q(pid)} [id={q(pid)}, class={q('pod ' + p.phase.lower())}, label={q(_pod_label(p))}, "
                       f"fillcolor={q(PHASE_FILL.get(p.phase, '#f0f0f0'))}{mark(pid)}];")
        out.append("  }")
    for line in model.lines:
        target = line.target if line.target.startswith("pod:") else f"nodeinfo:{line.target[5:]}"
        style = f"color={q(READY_EDGE)}" if line.ready else f"color={q(NOT_READY_EDGE)}, style=dashed"
        eid = f"ep:{line.service}>{line.target}"
        out.append(f"  {q('svc:' + line.service)} -> {q(target)} [id={q(eid)}, class={q('ep')}, {style}];")
    for a, b, label in trace.edges:
        a = a if not a.startswith("node:") else f"nodeinfo:{a[5:]}"
        b = b if not b.startswith("node:") else f"nodeinfo:{b[5:]}"
        out.append(f"  {q(a)} -> {q(b)} [class={q('trace')}, color={q(TRACE_COLOR)}, fontcolor={q(TRACE_COLOR)}, "
                   f"penwidth=2.5, constraint=false, label={q(label)}, fontsize=11];")
    out.append("}")
    return "\n".join(out) + "\n"


# --- trace: hops -> what the map highlights -----------------------------------------------------

def trace_path(model: MapModel, source_key: str, hops: list) -> TracePath:
    """The hops of `kubelab.lab.trace.trace_hops` -> numbered edges on the map: source pod ->
    the DNS Service (query), source pod -> the Service (ClusterIP), Service -> chosen pod (DNAT),
    or source pod -> destination pod when the target was a pod IP."""
    svc_by_ip = {s.cluster_ip: s.key for s in model.services}
    pods = {p.key: p for n in model.nodes for p in n.pods} | {p.key: p for p in model.unscheduled}
    pod_by_ip = {p.ip: k for k, p in pods.items() if p.ip}
    src = f"pod:{source_key}"
    edges: list[tuple[str, str, str]] = []
    objects = {src}
    svc_id = None
    step = 0
    for h in hops:
        if h.kind == "dns" and h.fact("server") in svc_by_ip:
            step += 1
            dns_id = f"svc:{svc_by_ip[h.fact('server')]}"
            edges.append((src, dns_id, f"{step}. DNS {h.fact('name')}?"))
            objects.add(dns_id)
        elif h.kind == "service" and h.fact("service"):
            step += 1
            svc_id = f"svc:{h.fact('service')}"
            edges.append((src, svc_id, f"{step}. to {h.fact('clusterIP')}:{h.fact('port')}"))
            objects.add(svc_id)
        elif h.kind == "destination":
            dst = pod_by_ip.get(h.fact("ip") or "")
            if dst:
                step += 1
                dst_id = f"pod:{dst}"
                edges.append((svc_id or src, dst_id, f"{step}. {'DNAT to ' if svc_id else ''}{h.fact('ip')}"))
                objects.add(dst_id)
    return TracePath(tuple(edges), frozenset(objects))


# --- query validation ----------------------------------------------------------------------------

class QueryError(ValueError):
    """A bad query parameter: shown to the user as one line naming the parameter (HTTP 400)."""


_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_POD_RE = re.compile(rf"^(?:({_DNS_LABEL})/)?([a-z0-9](?:[-.a-z0-9]{{0,251}}[a-z0-9])?)$")
_HOST_RE = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*\.?$")
_NODE_RE = re.compile(rf"^{_DNS_LABEL}$")


def parse_source(value: str | None, default_namespace: str = "default") -> tuple[str, str]:
    """`from=` : POD or NAMESPACE/POD (DNS names) -> (namespace, pod)."""
    if not value:
        raise QueryError("from: required (a pod, as NAME or NAMESPACE/NAME)")
    if len(value) > MAX_QUERY or not _POD_RE.fullmatch(value):
        raise QueryError(f"from: {value[:60]!r} is not a pod name (NAME or NAMESPACE/NAME, lowercase DNS names)")
    m = _POD_RE.fullmatch(value)
    return m.group(1) or default_namespace, m.group(2)


def parse_destination(value: str | None) -> tuple[str, int | None]:
    """`to=` : a Service name (optionally NAME.NAMESPACE...), an IPv4 address, with :PORT."""
    if not value:
        raise QueryError("to: required (a Service name or an IP, with an optional :PORT)")
    if len(value) > MAX_QUERY + 6:
        raise QueryError("to: too long")
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, ""
    elif not port.isdigit() or not 0 < int(port) < 65536:
        raise QueryError(f"to: bad port {port[:10]!r} (1-65535)")
    try:
        ip = ipaddress.ip_address(host)
        if ip.version != 4:
            raise QueryError("to: only IPv4 addresses (the lab is IPv4)")
    except ValueError:
        if not _HOST_RE.fullmatch(host) or len(host) > MAX_QUERY:
            raise QueryError(f"to: {host[:60]!r} is neither a Service name nor an IPv4 address") from None
    return host, int(port) if port else None


def parse_node(value: str | None, known: list[str]) -> str:
    if not value:
        raise QueryError(f"node: required, one of {', '.join(known)}")
    if not _NODE_RE.fullmatch(value) or value not in known:
        raise QueryError(f"node: {value[:60]!r} is not a node of this lab (one of {', '.join(known)})")
    return value


# --- rules: a node's proxy table, each line tagged with its Services -----------------------------

@dataclass(frozen=True)
class RuleLine:
    text: str
    services: tuple[str, ...]   # ServiceBox keys this line belongs to


def rule_lines(table: str, services: list[ServiceBox]) -> list[RuleLine]:
    """Tag each line of `nft list table ip kube-proxy` / `iptables-save -t nat` with the Services
    it belongs to: it names the Service's ClusterIP or one of its NodePorts, or one of its chains
    (nftables: `service-HASH-ns/name/tcp/port`, `endpoint-...`; iptables: the rule's comment
    `ns/name:port`)."""
    pats = []
    for s in services:
        words = []
        if s.cluster_ip and s.cluster_ip != "None":
            words.append(rf"(?<![\d.]){re.escape(s.cluster_ip)}(?![\d])")
        ns_name = f"{re.escape(s.namespace)}/{re.escape(s.name)}"
        words.append(rf"-[A-Z2-7]{{8}}-{ns_name}/")                 # nftables chain: HASH-ns/name/proto/port
        words.append(rf"(?<![-\w.]){ns_name}(?=[/:\s\"])")        # iptables comment: "ns/name:port ..."
        words += [rf"(?:dport|\.) {p}\b" for p in s.node_ports]
        pats.append((s.key, re.compile("|".join(words))))
    out = []
    chain_keys: tuple[str, ...] = ()   # the lines of a Service's chain belong to it (the dnat rule...)
    for line in table.splitlines():
        keys = tuple(k for k, pat in pats if pat.search(line))
        if _CHAIN_START.match(line):
            chain_keys = keys
        elif chain_keys and not keys:
            keys = chain_keys
        if _CHAIN_END.match(line):
            chain_keys = ()
        out.append(RuleLine(line, keys))
    return out


_CHAIN_START = re.compile(r"^\s*chain \S+ \{\s*$")
_CHAIN_END = re.compile(r"^\s*\}\s*$")


# --- timeline chart ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lane:
    name: str
    bars: tuple[tuple[float, float], ...]        # (start, end) seconds after t0: started -> healthy
    markers: tuple[tuple[int, float, str], ...]  # (row index, seconds, text)


_COMPONENT_LANE = re.compile(r"^[a-z0-9-]+/(etcd|apiserver|controllers|scheduler|nodeagent|proxy|dns)$")


def lane_of(who: str, source: str) -> str:
    """Component rows (`worker-1/proxy`) get their own lane; objects are grouped by kind; the
    cluster's Events share one lane; `up`/`supervisor` are the lab's lane."""
    if _COMPONENT_LANE.match(who):
        return who
    if source == "event":
        return "Events"
    kind = who.split("/", 1)[0]
    if source == "api" and kind in ("node", "pod", "service", "endpointslice", "lease"):
        return {"node": "API: nodes", "pod": "API: pods", "service": "API: services",
                "endpointslice": "API: endpointslices", "lease": "API: leases"}[kind]
    return "lab"


def timeline_lanes(rows: list, t0: float | None) -> tuple[list[Lane], float]:
    """Rows of `kubelab.lab.timeline.build_timeline` -> lanes (components first, in the order they
    started, then the lab, the API object kinds and the Events) and the span in seconds: the boot
    (up to "kubelab up done" and a margin) when it is recorded, so what came later (a node's
    heartbeat flapping an hour after) does not squash the boot into a few pixels."""
    if not rows:
        return [], 0.0
    t0 = rows[0].t if t0 is None else t0
    order: list[str] = []
    bars: dict[str, list[tuple[float, float]]] = {}
    open_: dict[str, float] = {}
    markers: dict[str, list[tuple[int, float, str]]] = {}
    for i, r in enumerate(rows):
        lane = lane_of(r.who, r.source)
        if lane not in order:
            order.append(lane)
        t = r.t - t0
        if r.source == "supervisor" and r.what.startswith(("process started", "restarted")):
            open_[lane] = t
        elif r.source == "supervisor" and r.what.startswith(("healthy", "not healthy")) and lane in open_:
            bars.setdefault(lane, []).append((open_.pop(lane), t))
        markers.setdefault(lane, []).append((i, t, r.what))
    end = max(r.t for r in rows) - t0
    for lane, start in open_.items():  # started, never reported healthy (yet)
        bars.setdefault(lane, []).append((start, end))
    done = [r.t - t0 for r in rows if r.source == "supervisor" and r.what.startswith("kubelab up done")]
    if done and done[-1] > 0:
        end = min(end, done[-1] * 1.1 + 1)
    comp = [x for x in order if _COMPONENT_LANE.match(x)]
    rest = [x for x in ("lab", "API: nodes", "API: pods", "API: services", "API: endpointslices", "API: leases",
                        "Events") if x in order]
    lanes = [Lane(n, tuple(bars.get(n, ())), tuple(markers.get(n, ()))) for n in comp + rest]
    return lanes, max(end, 0.001)


def timeline_svg(lanes: list[Lane], span: float, *, width: int = 1280, lane_h: int = 22, label_w: int = 190) -> str:
    """The chart: one lane per component, bars from start to healthy, a marker per event; every
    marker has `data-i` = its row index so the page can replay the boot step by step."""
    later_w = 60  # a column for what happened after the span (after the boot)
    plot_w = width - label_w - 20 - later_w
    height = 30 + lane_h * len(lanes)

    def x(t: float) -> float:
        if t > span * 1.0001:
            return label_w + plot_w + later_w / 2
        return label_w + max(0.0, t) / span * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline-chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica" font-size="11">']
    step = _tick_step(span)
    t = 0.0
    while t <= span + 1e-9:
        out.append(f'<line x1="{x(t):.1f}" y1="14" x2="{x(t):.1f}" y2="{height}" stroke="#e0e0e0"/>'
                   f'<text x="{x(t):.1f}" y="11" text-anchor="middle" fill="#555">{t:g}s</text>')
        t += step
    out.append(f'<text x="{label_w + plot_w + later_w / 2:.1f}" y="11" text-anchor="middle" fill="#555">later</text>')
    for li, lane in enumerate(lanes):
        y = 20 + li * lane_h
        fill = "#f5f5f5" if li % 2 else "#ffffff"
        out.append(f'<rect x="0" y="{y}" width="{width}" height="{lane_h}" fill="{fill}"/>')
        out.append(f'<text class="lane" x="4" y="{y + 15}">{html.escape(lane.name)}</text>')
        for a, b in lane.bars:
            out.append(f'<rect class="bar" data-ts="{a:.3f}" data-te="{b:.3f}" data-w="{max(2.0, x(b) - x(a)):.1f}" '
                       f'x="{x(a):.1f}" y="{y + 5}" width="{max(2.0, x(b) - x(a)):.1f}" '
                       f'height="{lane_h - 10}" rx="3" fill="#90caf9"/>')
        for i, t, what in lane.markers:
            out.append(f'<circle class="marker" data-i="{i}" cx="{x(t):.1f}" cy="{y + lane_h / 2}" r="3.5" '
                       f'fill="#ef6c00"><title>{t:.2f}s {html.escape(lane.name)}: {html.escape(what)}</title></circle>')
    out.append("</svg>")
    return "\n".join(out)


def _tick_step(span: float) -> float:
    for s in (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600):
        if span / s <= 16:
            return float(s)
    return span / 10
