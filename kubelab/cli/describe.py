"""`kubelab describe`: one readable page per object, with its Events, like kubectl's.

The page is built by pure functions (`describe_object`) from the object, its events and, for
Services, its Endpoints; only `run` talks to the server.
"""

from __future__ import annotations

from datetime import datetime, timezone

from kubelab.client import ApiError, NotFound

from . import printers
from .context import CliError, Context, api_error_line
from .targets import parse_targets


def register(sub) -> None:
    p = sub.add_parser("describe", help="show details of resources, with their events",
                       description="Show details of a resource or group of resources: TYPE [NAME...] or TYPE/NAME.")
    p.add_argument("args", nargs="+", metavar="TYPE[/NAME]")
    p.add_argument("-l", "--selector", help="label selector")
    p.set_defaults(func=run)


class Page:
    """Lines of `Key:  value`, keys aligned per indentation level (kubectl's tabwriter look)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, str | None]] = []

    def kv(self, key: str, value, level: int = 0) -> None:
        self.items.append((level, key + ":", "<none>" if value is None or value == "" else str(value)))

    def head(self, key: str, level: int = 0) -> None:
        self.items.append((level, key + ":", None))

    def text(self, line: str, level: int = 0) -> None:
        self.items.append((level, line, None))

    def multi(self, key: str, values: list[str], level: int = 0) -> None:
        if not values:
            self.kv(key, "<none>", level)
            return
        self.kv(key, values[0], level)
        for v in values[1:]:
            self.items.append((level, "", v))

    def table(self, headers: list[str], rows: list[list[str]], level: int = 1) -> None:
        under = ["-" * len(h) for h in headers]
        for line in printers.format_columns([headers, under] + rows):
            self.text(line.rstrip(), level)

    def render(self) -> str:
        width: dict[int, int] = {}
        for level, key, value in self.items:
            if value is not None:
                width[level] = max(width.get(level, 0), len(key))
        out = []
        for level, key, value in self.items:
            pad = "  " * level
            if value is None:
                out.append(pad + key)
            else:
                out.append(f"{pad}{key.ljust(width[level])}  {value}".rstrip())
        return "\n".join(out) + "\n"


def _kv_list(d: dict | None) -> list[str]:
    return [f"{k}={v}" for k, v in sorted((d or {}).items())]


def _annotations(d: dict | None) -> list[str]:
    return [f"{k}: {v}" for k, v in sorted((d or {}).items())
            if k != "kubectl.kubernetes.io/last-applied-configuration"]


def _selector(sel: dict | None) -> str:
    if not sel:
        return "<none>"
    parts = _kv_list(sel.get("matchLabels"))
    for e in sel.get("matchExpressions") or []:
        op, vals = e.get("operator"), ",".join(e.get("values") or [])
        parts.append({"In": f"{e['key']} in ({vals})", "NotIn": f"{e['key']} notin ({vals})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}.get(op, f"{e['key']} {op}"))
    return ",".join(parts) or "<none>"


def _metadata(page: Page, obj: dict, *, namespaced: bool) -> None:
    meta = obj.get("metadata") or {}
    page.kv("Name", meta.get("name"))
    if namespaced:
        page.kv("Namespace", meta.get("namespace"))
    page.multi("Labels", _kv_list(meta.get("labels")))
    page.multi("Annotations", _annotations(meta.get("annotations")))
    if meta.get("creationTimestamp"):
        page.kv("CreationTimestamp", meta["creationTimestamp"])
    owners = meta.get("ownerReferences") or []
    ctrl = next((o for o in owners if o.get("controller")), None)
    if ctrl:
        page.kv("Controlled By", f"{ctrl.get('kind')}/{ctrl.get('name')}")
    if meta.get("deletionTimestamp"):
        page.kv("Terminating since", meta["deletionTimestamp"])
    if meta.get("finalizers"):
        page.kv("Finalizers", "[" + " ".join(meta["finalizers"]) + "]")


def _conditions(page: Page, conds: list[dict] | None) -> None:
    if not conds:
        return
    page.head("Conditions")
    page.table(["Type", "Status", "Reason"], [[c.get("type", ""), c.get("status", ""), c.get("reason") or ""]
                                              for c in conds])


def _ports(c: dict) -> str:
    ports = [f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in c.get("ports") or []]
    return ", ".join(ports) or "<none>"


def _containers(page: Page, containers: list[dict], statuses: list[dict] | None, level: int = 0,
                title: str = "Containers") -> None:
    page.head(title, level)
    by_name = {s.get("name"): s for s in statuses or []}
    for c in containers:
        page.head(c.get("name", ""), level + 1)
        lv = level + 2
        page.kv("Image", c.get("image"), lv)
        page.kv("Port", _ports(c), lv)
        if c.get("command"):
            page.kv("Command", " ".join(c["command"]), lv)
        if c.get("args"):
            page.kv("Args", " ".join(c["args"]), lv)
        st = by_name.get(c.get("name"))
        if st is not None:
            state = st.get("state") or {}
            kind = next(iter(state), None)
            page.kv("State", (kind or "Unknown").capitalize(), lv)
            detail = state.get(kind) or {} if kind else {}
            if detail.get("reason"):
                page.kv("  Reason", detail["reason"], lv)
            if detail.get("startedAt"):
                page.kv("  Started", detail["startedAt"], lv)
            page.kv("Ready", str(bool(st.get("ready"))), lv)
            page.kv("Restart Count", st.get("restartCount", 0), lv)
        env = c.get("env") or []
        if env:
            page.multi("Environment", [f"{e.get('name')}: {e.get('value', '<set from source>')}" for e in env], lv)
        else:
            page.kv("Environment", "<none>", lv)


def _events(page: Page, events: list[dict], now: datetime) -> None:
    if not events:
        page.kv("Events", "<none>")
        return
    page.head("Events")
    rows = []
    for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or
                    (e.get("metadata") or {}).get("creationTimestamp") or ""):
        ts = e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
        count = e.get("count") or 1
        when = printers.age(ts, now)
        if count > 1 and e.get("firstTimestamp"):
            when = f"{when} (x{count} over {printers.age(e['firstTimestamp'], now)})"
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        rows.append([e.get("type", ""), e.get("reason", ""), when, source,
                     (e.get("message") or "").strip()])
    page.table(["Type", "Reason", "Age", "From", "Message"], rows)


def _pod(page: Page, pod: dict) -> None:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    page.kv("Priority", spec.get("priority", 0))
    page.kv("Service Account", spec.get("serviceAccountName"))
    node = spec.get("nodeName")
    host = status.get("hostIP")
    page.kv("Node", f"{node}/{host}" if node and host else node)
    page.kv("Start Time", status.get("startTime"))
    page.kv("Status", "Terminating" if (pod.get("metadata") or {}).get("deletionTimestamp")
            else status.get("phase"))
    page.kv("IP", status.get("podIP"))
    page.multi("IPs", [f"IP:  {i.get('ip')}" for i in status.get("podIPs") or []])
    if spec.get("initContainers"):
        _containers(page, spec["initContainers"], status.get("initContainerStatuses"), title="Init Containers")
    _containers(page, spec.get("containers") or [], status.get("containerStatuses"))
    _conditions(page, status.get("conditions"))
    vols = spec.get("volumes") or []
    if vols:
        page.head("Volumes")
        for v in vols:
            kind = next((k for k in v if k != "name"), "unknown")
            page.head(v.get("name", ""), 1)
            page.kv("Type", kind, 2)
    page.kv("QoS Class", status.get("qosClass"))
    page.multi("Node-Selectors", _kv_list(spec.get("nodeSelector")))
    page.multi("Tolerations", [f"{t.get('key', '')}:{t.get('effect', '')}" for t in spec.get("tolerations") or []])


def _rs_line(rs: dict) -> str:
    st = rs.get("status") or {}
    return f"{rs['metadata']['name']} ({st.get('replicas', 0)}/{(rs.get('spec') or {}).get('replicas', 0)} replicas created)"


def _revision(rs: dict) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
    except ValueError:
        return 0


def _deployment(page: Page, d: dict, replicasets: list[dict] | None = None) -> None:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    page.kv("Selector", _selector(spec.get("selector")))
    want = spec.get("replicas", 1)
    unavailable = status.get("unavailableReplicas", 0)
    page.kv("Replicas", f"{want} desired | {status.get('updatedReplicas', 0)} updated | "
                        f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                        f"{unavailable} unavailable")
    strategy = spec.get("strategy") or {}
    page.kv("StrategyType", strategy.get("type", "RollingUpdate"))
    page.kv("MinReadySeconds", spec.get("minReadySeconds", 0))
    ru = strategy.get("rollingUpdate")
    if ru:
        page.kv("RollingUpdateStrategy", f"{ru.get('maxUnavailable', '25%')} max unavailable, "
                                         f"{ru.get('maxSurge', '25%')} max surge")
    tpl = spec.get("template") or {}
    page.head("Pod Template")
    page.multi("Labels", _kv_list((tpl.get("metadata") or {}).get("labels")), 1)
    _containers(page, (tpl.get("spec") or {}).get("containers") or [], None, level=1)
    _conditions(page, status.get("conditions"))
    if replicasets is not None:
        uid = (d.get("metadata") or {}).get("uid")
        owned = sorted((rs for rs in replicasets
                        if any(o.get("uid") == uid for o in (rs.get("metadata") or {}).get("ownerReferences") or [])),
                       key=_revision)
        new = owned[-1] if owned else None
        old = [rs for rs in owned[:-1] if (rs.get("spec") or {}).get("replicas") or (rs.get("status") or {}).get("replicas")]
        page.kv("OldReplicaSets", ", ".join(_rs_line(rs) for rs in old) or "<none>")
        page.kv("NewReplicaSet", _rs_line(new) if new else "<none>")


def _replicaset(page: Page, rs: dict) -> None:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    page.kv("Selector", _selector(spec.get("selector")))
    page.kv("Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    page.kv("Pods Status", f"{status.get('readyReplicas', 0)} Running")
    tpl = spec.get("template") or {}
    page.head("Pod Template")
    page.multi("Labels", _kv_list((tpl.get("metadata") or {}).get("labels")), 1)
    _containers(page, (tpl.get("spec") or {}).get("containers") or [], None, level=1)
    _conditions(page, status.get("conditions"))


def _endpoint_addrs(endpoints: dict | None, port: dict) -> str:
    if not endpoints:
        return "<none>"
    out = []
    for subset in endpoints.get("subsets") or []:
        ports = subset.get("ports") or []
        match = [p for p in ports if p.get("name", "") == port.get("name", "")] or ports[:1]
        for a in subset.get("addresses") or []:
            for p in match:
                out.append(f"{a.get('ip')}:{p.get('port')}")
    return ",".join(out) or "<none>"


def _service(page: Page, svc: dict, endpoints: dict | None) -> None:
    spec = svc.get("spec") or {}
    page.kv("Selector", ",".join(_kv_list(spec.get("selector"))) or "<none>")
    page.kv("Type", spec.get("type", "ClusterIP"))
    page.kv("IP Family Policy", spec.get("ipFamilyPolicy", "SingleStack"))
    page.kv("IP Families", ",".join(spec.get("ipFamilies") or ["IPv4"]))
    page.kv("IP", spec.get("clusterIP"))
    page.kv("IPs", ",".join(spec.get("clusterIPs") or [spec.get("clusterIP") or ""]) or "<none>")
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        page.kv("Port", f"{name}  {p.get('port')}/{p.get('protocol', 'TCP')}")
        page.kv("TargetPort", f"{p.get('targetPort', p.get('port'))}/{p.get('protocol', 'TCP')}")
        if p.get("nodePort"):
            page.kv("NodePort", f"{name}  {p['nodePort']}/{p.get('protocol', 'TCP')}")
        page.kv("Endpoints", _endpoint_addrs(endpoints, p))
    page.kv("Session Affinity", spec.get("sessionAffinity", "None"))


def _node(page: Page, node: dict) -> None:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    page.kv("Roles", ",".join(roles) or "<none>")
    page.multi("Taints", [f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" for t in spec.get("taints") or []])
    page.kv("Unschedulable", str(bool(spec.get("unschedulable"))).lower())
    _conditions(page, status.get("conditions"))
    addrs = status.get("addresses") or []
    if addrs:
        page.head("Addresses")
        for a in addrs:
            page.kv(a.get("type", ""), a.get("address"), 1)
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        if status.get(key):
            page.head(title)
            for k, v in sorted(status[key].items()):
                page.kv(k, v, 1)
    page.kv("PodCIDR", spec.get("podCIDR"))
    page.kv("PodCIDRs", ",".join(spec.get("podCIDRs") or []) or "<none>")


def _data(page: Page, obj: dict, *, secret: bool = False) -> None:
    data = obj.get("data") or {}
    page.head("Data")
    if not secret:
        page.text("====")
    for k in sorted(data):
        if secret:
            page.kv(k, f"{len(data[k]) * 3 // 4} bytes", 0)
        else:
            page.text(f"{k}:")
            page.text("----")
            page.text(str(data[k]))
            page.text("")


def _netpol_peers(page: Page, peers: list[dict], key: str, anyone: str) -> None:
    """kubectl's printNetworkPolicySpec{Ingress,Egress}: one `From:`/`To:` block per peer."""
    if not peers:
        page.text(f"{key}: {anyone}", 2)
        return
    for peer in peers:
        page.text(f"{key}:", 2)
        pod, ns, ipb = peer.get("podSelector"), peer.get("namespaceSelector"), peer.get("ipBlock")
        if ns is not None:
            page.text(f"NamespaceSelector: {_selector(ns)}", 3)
        if pod is not None:
            page.text(f"PodSelector: {_selector(pod)}", 3)
        if pod is None and ns is None and ipb is not None:
            page.text("IPBlock:", 3)
            page.text(f"CIDR: {ipb.get('cidr', '')}", 4)
            page.text(f"Except: {', '.join(ipb.get('except') or [])}", 4)


def _networkpolicy(page: Page, np: dict) -> None:
    """The Spec block of `kubectl describe networkpolicy`, in its words."""
    spec = np.get("spec") or {}
    page.head("Spec")
    sel = spec.get("podSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        page.text("PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)", 1)
    else:
        page.text("PodSelector:     " + _selector(sel), 1)
    types = spec.get("policyTypes") or []
    for direction, peers_key, word, title, isolated, anyone in (
            ("ingress", "from", "From", "Ingress", "ingress", "<any> (traffic not restricted by source)"),
            ("egress", "to", "To", "Egress", "egress", "<any> (traffic not restricted by destination)")):
        if title not in types:
            page.text(f"Not affecting {direction} traffic", 1)
            continue
        page.text(f"Allowing {direction} traffic:", 1)
        rules = spec.get(direction) or []
        if not rules:
            page.text(f"<none> (Selected pods are isolated for {isolated} connectivity)", 2)
        for i, rule in enumerate(rules):
            ports = rule.get("ports") or []
            if not ports:
                page.text("To Port: <any> (traffic allowed to all ports)", 2)
            for p in ports:
                port = "<nil>" if p.get("port") is None else p["port"]
                page.text(f"To Port: {port}/{p.get('protocol') or 'TCP'}", 2)
            _netpol_peers(page, rule.get(peers_key) or [], word, anyone)
            if i != len(rules) - 1:
                page.text("----------", 2)
    page.text(f"Policy Types: {', '.join(types)}", 1)


def _generic(page: Page, obj: dict) -> None:
    for section in ("spec", "status"):
        body = obj.get(section)
        if body:
            page.head(section.capitalize())
            for line in printers.to_yaml(body).rstrip("\n").splitlines():
                page.text(line, 1)


def describe_object(obj: dict, *, namespaced: bool, events: list[dict], endpoints: dict | None = None,
                    replicasets: list[dict] | None = None, now: datetime | None = None) -> str:
    """The whole describe page of one object."""
    now = now or datetime.now(timezone.utc)
    page = Page()
    _metadata(page, obj, namespaced=namespaced)
    kind = obj.get("kind")
    if kind == "Pod":
        _pod(page, obj)
    elif kind == "Deployment":
        _deployment(page, obj, replicasets)
    elif kind == "ReplicaSet":
        _replicaset(page, obj)
    elif kind == "Service":
        _service(page, obj, endpoints)
    elif kind == "Node":
        _node(page, obj)
    elif kind == "ConfigMap":
        _data(page, obj)
    elif kind == "Secret":
        page.kv("Type", obj.get("type", "Opaque"))
        _data(page, obj, secret=True)
    elif kind == "Namespace":
        page.kv("Status", (obj.get("status") or {}).get("phase"))
    elif kind == "NetworkPolicy":
        _networkpolicy(page, obj)
    else:
        _generic(page, obj)
    _events(page, events, now)
    return page.render()


async def _events_for(ctx: Context, obj: dict) -> list[dict]:
    meta = obj.get("metadata") or {}
    try:
        listed = await ctx.client.list("events", namespace=meta.get("namespace") or None,
                                       field_selector=f"involvedObject.uid={meta.get('uid')}")
    except Exception:
        return []
    return listed.get("items") or []


async def _replicasets_for(ctx: Context, d: dict) -> list[dict]:
    labels = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    try:
        listed = await ctx.client.list("replicasets", namespace=d["metadata"].get("namespace"),
                                       label_selector=",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None)
    except ApiError:
        return []
    return listed.get("items") or []


async def run(ctx: Context) -> int:
    args = ctx.args
    targets = parse_targets(args.args, verb="describe")
    pages: list[str] = []
    for t in targets:
        ns = ctx.ns_for(t.rt)
        if t.names:
            objs = []
            for name in t.names:
                try:
                    objs.append(await ctx.client.get(t.rt, name, namespace=ns))
                except NotFound as e:
                    ctx.error(api_error_line(e))
        else:
            objs = (await ctx.client.list(t.rt, namespace=ns, label_selector=args.selector))["items"]
        for obj in objs:
            obj.setdefault("kind", t.rt.kind)
            endpoints = replicasets = None
            if t.rt.plural == "deployments":
                replicasets = await _replicasets_for(ctx, obj)
            if t.rt.plural == "services":
                try:
                    endpoints = await ctx.client.get("endpoints", obj["metadata"]["name"],
                                                     namespace=obj["metadata"].get("namespace"))
                except NotFound:
                    endpoints = None
            pages.append(describe_object(obj, namespaced=t.rt.namespaced, events=await _events_for(ctx, obj),
                                         endpoints=endpoints, replicasets=replicasets))
    if not pages and not any(t.names for t in targets):
        where = f" in {ctx.namespace} namespace" if targets[0].rt.namespaced and not ctx.all_namespaces else ""
        raise CliError(f"No resources found{where}.", code=0, raw=True)
    ctx.out("\n".join(pages))
    return 0
