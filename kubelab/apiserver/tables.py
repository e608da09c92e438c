"""Server-side printing: `meta.k8s.io/v1 Table`s, what `kubectl get` renders.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the cells
it gets; with a plain List it can only print NAME and AGE. So the columns, and how each cell
is derived (a pod's STATUS from its container states, a service's PORT(S)...), follow
kubernetes/pkg/printers/internalversion/printers.go. Columns with priority 1 show only with
`-o wide`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from kubelab.resources import ResourceType
from kubelab.timestamps import parse_datetime

NONE = "<none>"


# --- durations and times ----------------------------------------------------------------------

def human_age(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration: `5s`, `3m2s`, `4h`, `2d3h`, `3y`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _since(ts, now: datetime) -> str:
    t = parse_datetime(ts)
    if t is None:
        return "<unknown>"
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return human_age((now - t).total_seconds())


# --- helpers ------------------------------------------------------------------------------------

def _d(v) -> dict:
    return v if isinstance(v, dict) else {}


def _l(v) -> list:
    return v if isinstance(v, list) else []


def _meta(o: dict) -> dict:
    return _d(o.get("metadata"))


def _age(o: dict, now: datetime) -> str:
    return _since(_meta(o).get("creationTimestamp"), now)


def label_selector_string(selector: dict | None) -> str:
    """metav1.FormatLabelSelector: `app=x,tier in (a,b),!gone`, or `<none>`."""
    selector = _d(selector)
    parts = [f"{k}={v}" for k, v in sorted(_d(selector.get("matchLabels")).items())]
    for r in _l(selector.get("matchExpressions")):
        r = _d(r)
        key, op, values = r.get("key", ""), r.get("operator"), ",".join(sorted(_l(r.get("values"))))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) if parts else NONE


def _map_selector(selector: dict | None) -> str:
    """labels.FormatLabels for a plain map (Service selectors)."""
    sel = _d(selector)
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) if sel else NONE


def _containers_images(spec: dict) -> tuple[str, str]:
    cs = [c for c in _l(spec.get("containers")) if isinstance(c, dict)]
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


# --- columns -----------------------------------------------------------------------------------

_NAME = ("Name", "string", "name", "Name must be unique within a namespace.", 0)
_AGE = ("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when "
        "this object was created.", 0)


def _col(name: str, type_: str = "string", description: str = "", priority: int = 0) -> tuple:
    return (name, type_, "", description, priority)


def _wide(name: str, type_: str = "string", description: str = "") -> tuple:
    return _col(name, type_, description, 1)


# Each printer: (columns, row function(obj, now) -> cells)
_Printer = tuple[tuple[tuple, ...], Callable[[dict, datetime], list]]


def _pod_status(pod: dict) -> tuple[str, int, int, str | None]:
    """(STATUS, ready containers, restarts, last restart time) exactly as printPod derives them."""
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    reason = status.get("reason") or status.get("phase") or ""
    for cond in _l(status.get("conditions")):
        cond = _d(cond)
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    restarts, ready, last_restart = 0, 0, None

    def note_restart(cs: dict) -> None:
        nonlocal last_restart
        fin = _d(_d(_d(cs.get("lastState")).get("terminated"))).get("finishedAt")
        if fin and (last_restart is None or fin > last_restart):
            last_restart = fin

    init_specs = _l(spec.get("initContainers"))
    initializing = False
    for i, cs in enumerate(_l(status.get("initContainerStatuses"))):
        cs = _d(cs)
        restarts += int(cs.get("restartCount") or 0)
        note_restart(cs)
        state = _d(cs.get("state"))
        term, wait = state.get("terminated"), state.get("waiting")
        if isinstance(term, dict) and term.get("exitCode") == 0:
            continue
        if _d(init_specs[i] if i < len(init_specs) else {}).get("restartPolicy") == "Always" \
                and state.get("running") is not None and cs.get("started"):
            continue  # a running sidecar does not block initialisation
        if isinstance(term, dict):
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif isinstance(wait, dict) and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing:
        restarts, last_restart, has_running = 0, None, False
        for cs in reversed(_l(status.get("containerStatuses"))):
            cs = _d(cs)
            restarts += int(cs.get("restartCount") or 0)
            note_restart(cs)
            state = _d(cs.get("state"))
            term, wait = state.get("terminated"), state.get("waiting")
            if isinstance(wait, dict) and wait.get("reason"):
                reason = wait["reason"]
            elif isinstance(term, dict) and term.get("reason"):
                reason = term["reason"]
            elif isinstance(term, dict):
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            ready_cond = any(_d(c).get("type") == "Ready" and _d(c).get("status") == "True"
                             for c in _l(status.get("conditions")))
            reason = "Running" if ready_cond else "NotReady"

    if _meta(pod).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts, last_restart


def _pod_row(pod: dict, now: datetime) -> list:
    spec, status = _d(pod.get("spec")), _d(pod.get("status"))
    reason, ready, restarts, last = _pod_status(pod)
    restarts_cell = str(restarts) if not (restarts and last) else f"{restarts} ({_since(last, now)} ago)"
    gates = _l(spec.get("readinessGates"))
    if gates:
        conds = {(_d(c).get("type")): _d(c).get("status") for c in _l(status.get("conditions"))}
        true = sum(1 for g in gates if conds.get(_d(g).get("conditionType")) == "True")
        gates_cell = f"{true}/{len(gates)}"
    else:
        gates_cell = NONE
    return [_meta(pod).get("name", ""), f"{ready}/{len(_l(spec.get('containers')))}", reason,
            restarts_cell, _age(pod, now), status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE, gates_cell]


_POD: _Printer = ((
    _NAME, _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col("Restarts", description="The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    _AGE, _wide("IP", description="IP address allocated to the pod. Routable at least within the cluster."),
    _wide("Node", description="Name of the node this pod is scheduled on."),
    _wide("Nominated Node", description="Name of the node where this pod is nominated to run."),
    _wide("Readiness Gates", description="Pod readiness gates."),
), _pod_row)


def service_ports(spec: dict) -> str:
    """`80/TCP`, `80:30080/TCP`, comma-separated; `<none>` without ports."""
    out = []
    for p in _l(spec.get("ports")):
        p = _d(p)
        proto = p.get("protocol") or "TCP"
        out.append(f"{p.get('port')}:{p['nodePort']}/{proto}" if p.get("nodePort") else f"{p.get('port')}/{proto}")
    return ",".join(out) if out else NONE


def _external_ip(spec: dict, status: dict) -> str:
    stype = spec.get("type") or "ClusterIP"
    external = list(_l(spec.get("externalIPs")))
    if stype == "ExternalName":
        return spec.get("externalName") or NONE
    if stype == "LoadBalancer":
        ingress = [_d(i).get("ip") or _d(i).get("hostname") for i in _l(_d(status.get("loadBalancer")).get("ingress"))]
        ips = [i for i in ingress if i] + external
        return ",".join(ips) if ips else "<pending>"
    return ",".join(external) if external else NONE


def _service_row(svc: dict, now: datetime) -> list:
    spec, status = _d(svc.get("spec")), _d(svc.get("status"))
    stype = spec.get("type") or "ClusterIP"
    cluster_ip = NONE if stype == "ExternalName" else (spec.get("clusterIP") or NONE)
    return [_meta(svc).get("name", ""), stype, cluster_ip, _external_ip(spec, status), service_ports(spec),
            _age(svc, now), _map_selector(spec.get("selector"))]


_SERVICE: _Printer = ((
    _NAME, _col("Type", description="The type of the service: ClusterIP, NodePort, LoadBalancer or ExternalName."),
    _col("Cluster-IP", description="The IP address of the service, allocated by the API server."),
    _col("External-IP", description="External addresses of the service."),
    _col("Port(s)", description="The ports the service exposes, with their node ports."),
    _AGE, _wide("Selector", description="Route service traffic to pods with label keys and values matching this selector."),
), _service_row)


def _deployment_row(dep: dict, now: datetime) -> list:
    spec, status = _d(dep.get("spec")), _d(dep.get("status"))
    desired = spec.get("replicas", 1)
    names, images = _containers_images(_d(_d(spec.get("template")).get("spec")))
    return [_meta(dep).get("name", ""), f"{status.get('readyReplicas', 0)}/{desired}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), _age(dep, now),
            names, images, label_selector_string(spec.get("selector"))]


_WORKLOAD_WIDE = (
    _wide("Containers", description="Names of each container in the template."),
    _wide("Images", description="Images referenced by each container in the template."),
    _wide("Selector", description="Label selector for pods."),
)
_DEPLOYMENT: _Printer = ((
    _NAME, _col("Ready", description="Number of the pod with ready state"),
    _col("Up-to-date", "integer", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    _col("Available", "integer", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    _AGE, *_WORKLOAD_WIDE,
), _deployment_row)


def _replicaset_row(rs: dict, now: datetime) -> list:
    spec, status = _d(rs.get("spec")), _d(rs.get("status"))
    names, images = _containers_images(_d(_d(spec.get("template")).get("spec")))
    return [_meta(rs).get("name", ""), spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), _age(rs, now), names, images,
            label_selector_string(spec.get("selector"))]


_REPLICASET: _Printer = ((
    _NAME, _col("Desired", "integer", "Number of desired pods."),
    _col("Current", "integer", "Number of actual running pods."),
    _col("Ready", "integer", "Number of ready pods."),
    _AGE, *_WORKLOAD_WIDE,
), _replicaset_row)


def node_status(node: dict) -> str:
    conds = {(_d(c).get("type")): _d(c).get("status") for c in _l(_d(node.get("status")).get("conditions"))}
    status = "Unknown" if "Ready" not in conds else ("Ready" if conds["Ready"] == "True" else "NotReady")
    if _d(node.get("spec")).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def node_roles(node: dict) -> str:
    roles = set()
    for k, v in _d(_meta(node).get("labels")).items():
        if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]:
            roles.add(k.split("/", 1)[1])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) if roles else NONE


def _node_row(node: dict, now: datetime) -> list:
    status = _d(node.get("status"))
    info = _d(status.get("nodeInfo"))
    addrs = [_d(a) for a in _l(status.get("addresses"))]

    def addr(t: str) -> str:
        return next((a.get("address") for a in addrs if a.get("type") == t and a.get("address")), NONE)

    return [_meta(node).get("name", ""), node_status(node), node_roles(node), _age(node, now),
            info.get("kubeletVersion", ""), addr("InternalIP"), addr("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


_NODE: _Printer = ((
    _NAME, _col("Status", description="The status of the node"),
    _col("Roles", description="The roles of the node"), _AGE,
    _col("Version", description="Kubelet Version reported by the node."),
    _wide("Internal-IP", description="List of addresses reachable to the node."),
    _wide("External-IP", description="List of addresses reachable to the node."),
    _wide("OS-Image", description="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    _wide("Kernel-Version", description="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    _wide("Container-Runtime", description="Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
), _node_row)


def _first_three(items: list[str], empty: str) -> str:
    if not items:
        return empty
    shown = ",".join(items[:3])
    return shown + (f" + {len(items) - 3} more..." if len(items) > 3 else "")


def endpoints_string(ep: dict) -> str:
    """formatEndpoints: `10.244.1.2:80,10.244.2.3:80 + 2 more...`."""
    out = []
    for s in _l(ep.get("subsets")):
        s = _d(s)
        ports = _l(s.get("ports")) or [{}]
        for p in ports:
            for a in _l(s.get("addresses")):
                ip = _d(a).get("ip", "")
                out.append(f"{ip}:{_d(p)['port']}" if _d(p).get("port") else ip)
    return _first_three(out, NONE)


def _endpoints_row(ep: dict, now: datetime) -> list:
    return [_meta(ep).get("name", ""), endpoints_string(ep), _age(ep, now)]


_ENDPOINTS: _Printer = ((
    _NAME, _col("Endpoints", description="Endpoints of the service"), _AGE,
), _endpoints_row)


def _endpointslice_row(es: dict, now: datetime) -> list:
    ports = _l(es.get("ports"))
    if ports:
        port_cell = _first_three([str(_d(p).get("port")) if _d(p).get("port") is not None else "<unset>"
                                  for p in ports], "<unset>")
    else:
        port_cell = "<unset>"
    addrs = [a for e in _l(es.get("endpoints")) for a in _l(_d(e).get("addresses"))]
    return [_meta(es).get("name", ""), es.get("addressType", ""), port_cell,
            _first_three(addrs, "<unset>"), _age(es, now)]


_ENDPOINTSLICE: _Printer = ((
    _NAME, _col("AddressType", description="The IP protocol for this slice"),
    _col("Ports", description="The ports exposed by this slice"),
    _col("Endpoints", description="The endpoints in this slice"), _AGE,
), _endpointslice_row)


def _event_row(ev: dict, now: datetime) -> list:
    first = ev.get("firstTimestamp") or ev.get("eventTime") or _meta(ev).get("creationTimestamp")
    last = ev.get("lastTimestamp") or _d(ev.get("series")).get("lastObservedTime") or ev.get("eventTime") or first
    count = ev.get("count") or _d(ev.get("series")).get("count") or 1
    last_seen = _since(last, now)
    if count > 1:
        last_seen = f"{last_seen} (x{count} over {_since(first, now)})"
    involved = _d(ev.get("involvedObject"))
    obj = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"
    source = _d(ev.get("source"))
    src = source.get("component") or ev.get("reportingComponent") or ""
    if source.get("host"):
        src = f"{src}, {source['host']}"
    return [last_seen, ev.get("type", ""), ev.get("reason", ""), obj, involved.get("fieldPath", ""),
            src, ev.get("message", ""), _since(first, now), count, _meta(ev).get("name", "")]


_EVENT: _Printer = ((
    _col("Last Seen", description="Time when last event occurred."),
    _col("Type", description="Type of this event (Normal, Warning), new types could be added in the future."),
    _col("Reason", description="Reason why the action was taken."),
    _col("Object", description="The object this Event is about."),
    _wide("Subobject", description="The subobject (e.g. container) of the object this Event is about."),
    _wide("Source", description="The component reporting this event."),
    _col("Message", description="A human-readable description of the status of this operation."),
    _wide("First Seen", description="Time when this event was first observed."),
    _wide("Count", "integer", "The number of times this event has occurred."),
    ("Name", "string", "name", "Name must be unique within a namespace.", 1),
), _event_row)


def _simple(*cols: tuple, cells: Callable[[dict], list]) -> _Printer:
    def row(o: dict, now: datetime) -> list:
        return [_meta(o).get("name", ""), *cells(o), _age(o, now)]
    return ((_NAME, *cols, _AGE), row)


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def job_status(job: dict) -> str:
    """The STATUS cell, by precedence: Complete, Failed, Terminating, Suspended,
    FailureTarget, SuccessCriteriaMet, else Running."""
    true = {c.get("type") for c in _l(_d(job.get("status")).get("conditions"))
            if isinstance(c, dict) and c.get("status") == "True"}
    for ctype in ("Complete", "Failed"):
        if ctype in true:
            return ctype
    if _meta(job).get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if ctype in true:
            return ctype
    return "Running"


def _job_row(job: dict, now: datetime) -> list:
    spec, status = _d(job.get("spec")), _d(job.get("status"))
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = (_aware(parse_datetime(status.get(k))) for k in ("startTime", "completionTime"))
    if start is None:
        duration = ""
    else:
        duration = human_age(((end or now) - start).total_seconds())
    names, images = _containers_images(_d(_d(spec.get("template")).get("spec")))
    return [_meta(job).get("name", ""), job_status(job), completions, duration, _age(job, now), names, images,
            label_selector_string(spec.get("selector"))]


_JOB: _Printer = ((
    _NAME, _col("Status", description="Status of the job."),
    _col("Completions", description="The completion status of the job, as succeeded pods of desired completions."),
    _col("Duration", description="Time the job took (or has taken so far) to run."),
    _AGE, *_WORKLOAD_WIDE,
), _job_row)


def _cronjob_row(cj: dict, now: datetime) -> list:
    spec, status = _d(cj.get("spec")), _d(cj.get("status"))
    last = status.get("lastScheduleTime")
    jspec = _d(_d(spec.get("jobTemplate")).get("spec"))
    names, images = _containers_images(_d(_d(jspec.get("template")).get("spec")))
    return [_meta(cj).get("name", ""), spec.get("schedule", ""), spec.get("timeZone") or NONE,
            str(bool(spec.get("suspend"))), len(_l(status.get("active"))), _since(last, now) if last else NONE,
            _age(cj, now), names, images, label_selector_string(jspec.get("selector"))]


_CRONJOB: _Printer = ((
    _NAME, _col("Schedule", description="The schedule for running the job, in Cron format."),
    _col("Timezone", description="The time zone name for the given schedule."),
    _col("Suspend", "boolean", "Whether subsequent executions are suspended."),
    _col("Active", "integer", "The number of currently running jobs."),
    _col("Last Schedule", description="When the job was last successfully scheduled."),
    _AGE, *_WORKLOAD_WIDE,
), _cronjob_row)


def _daemonset_row(ds: dict, now: datetime) -> list:
    spec, status = _d(ds.get("spec")), _d(ds.get("status"))
    pod_spec = _d(_d(spec.get("template")).get("spec"))
    names, images = _containers_images(pod_spec)
    node_selector = ",".join(f"{k}={v}" for k, v in sorted(_d(pod_spec.get("nodeSelector")).items())) or NONE
    return [_meta(ds).get("name", ""), status.get("desiredNumberScheduled", 0),
            status.get("currentNumberScheduled", 0), status.get("numberReady", 0),
            status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0), node_selector,
            _age(ds, now), names, images, label_selector_string(spec.get("selector"))]


_DAEMONSET: _Printer = ((
    _NAME, _col("Desired", "integer", "The desired number of nodes that should be running the daemon pod."),
    _col("Current", "integer", "The number of nodes running at least one daemon pod and that are supposed to."),
    _col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
    _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod."),
    _col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."),
    _col("Node Selector", description="NodeSelector is a selector which must be true for the pod to fit on a node."),
    _AGE, *_WORKLOAD_WIDE,
), _daemonset_row)


def _statefulset_row(sts: dict, now: datetime) -> list:
    spec, status = _d(sts.get("spec")), _d(sts.get("status"))
    names, images = _containers_images(_d(_d(spec.get("template")).get("spec")))
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
    return [_meta(sts).get("name", ""), ready, _age(sts, now), names, images]


_STATEFULSET: _Printer = ((
    _NAME, _col("Ready", description="Number of the pod with ready state"), _AGE, *_WORKLOAD_WIDE[:2],
), _statefulset_row)

_PDB = _simple(
    _col("Min Available", description="The minimum number of pods that must be available."),
    _col("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    _col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    cells=lambda o: [str(_d(o.get("spec")).get("minAvailable", "N/A")),
                     str(_d(o.get("spec")).get("maxUnavailable", "N/A")),
                     _d(o.get("status")).get("disruptionsAllowed", 0)])


_NAMESPACE = _simple(_col("Status", description="The status of the namespace"),
                     cells=lambda o: [_d(o.get("status")).get("phase", "")])
_CONFIGMAP = _simple(_col("Data", "integer", "Number of data entries"),
                     cells=lambda o: [len(_d(o.get("data"))) + len(_d(o.get("binaryData")))])
_SECRET = _simple(_col("Type", description="The type of the secret"),
                  _col("Data", "integer", "The number of entries in the secret"),
                  cells=lambda o: [o.get("type", ""), len(_d(o.get("data")))])
_SERVICEACCOUNT = _simple(_col("Secrets", "integer", "The number of secrets associated with the service account"),
                          cells=lambda o: [len(_l(o.get("secrets")))])
_LEASE = _simple(_col("Holder", description="The holder of the lease"),
                 cells=lambda o: [_d(o.get("spec")).get("holderIdentity") or ""])
_NETWORKPOLICY = _simple(_col("Pod-Selector", description="Pod selector"),
                         cells=lambda o: [label_selector_string(_d(_d(o.get("spec")).get("podSelector")))])


def _ingress_cells(ing: dict) -> list:
    """kubectl's printIngress: CLASS, HOSTS (3 then `+ N more...`), ADDRESS, PORTS (443 with TLS)."""
    spec = _d(ing.get("spec"))
    hosts = [h for h in (_d(r).get("host") for r in _l(spec.get("rules"))) if h]
    shown = ",".join(hosts[:3]) + (f" + {len(hosts) - 3} more..." if len(hosts) > 3 else "") if hosts else "*"
    lb = _l(_d(_d(ing.get("status")).get("loadBalancer")).get("ingress"))
    address = ",".join(x for x in (_d(i).get("ip") or _d(i).get("hostname") for i in lb) if x)
    return [spec.get("ingressClassName") or NONE, shown, address, "80, 443" if _l(spec.get("tls")) else "80"]


def _ingressclass_cells(ic: dict) -> list:
    spec = _d(ic.get("spec"))
    p = spec.get("parameters")
    params = NONE
    if isinstance(p, dict):
        params = p.get("kind", "") + (f".{p['apiGroup']}" if p.get("apiGroup") else "") + "/" + p.get("name", "")
    return [spec.get("controller", ""), params]


_INGRESS = _simple(_col("Class", description="The name of the IngressClass resource that should be used"),
                   _col("Hosts", description="Hosts that incoming requests are matched against"),
                   _col("Address", description="Address is a list containing ingress points for the load-balancer"),
                   _col("Ports", description="Ports of TLS configurations that open"),
                   cells=_ingress_cells)
_INGRESSCLASS = _simple(_col("Controller", description="Controller that is responsible for handling this class"),
                        _col("Parameters", description="A reference to a resource with additional parameters"),
                        cells=_ingressclass_cells)


def _condition(o: dict, ctype: str) -> str:
    """A CRD printer column `.status.conditions[?(@.type=="X")].status` ("" when absent)."""
    for c in _l(_d(o.get("status")).get("conditions")):
        if _d(c).get("type") == ctype:
            return str(_d(c).get("status", ""))
    return ""


# The Gateway API CRDs' additionalPrinterColumns (kubectl prints these for upstream's CRDs).
_GATEWAYCLASS = ((_NAME, _col("Controller", description="spec.controllerName"),
                  _col("Accepted", description="The Accepted condition"), _AGE,
                  _col("Description", description="spec.description", priority=1)),
                 lambda o, now: [_meta(o).get("name", ""), _d(o.get("spec")).get("controllerName", ""),
                                 _condition(o, "Accepted"), _age(o, now), _d(o.get("spec")).get("description", "")])
_GATEWAY = _simple(_col("Class", description="spec.gatewayClassName"),
                   _col("Address", description="status.addresses[*].value"),
                   _col("Programmed", description="The Programmed condition"),
                   cells=lambda o: [_d(o.get("spec")).get("gatewayClassName", ""),
                                    ",".join(str(_d(a).get("value", "")) for a in
                                             _l(_d(o.get("status")).get("addresses"))),
                                    _condition(o, "Programmed")])
_HTTPROUTE = _simple(_col("Hostnames", description="spec.hostnames"),
                     cells=lambda o: [",".join(h for h in _l(_d(o.get("spec")).get("hostnames"))
                                               if isinstance(h, str))])
_DEFAULT = _simple(cells=lambda o: [])

PRINTERS: dict[str, _Printer] = {
    "Pod": _POD, "Service": _SERVICE, "Deployment": _DEPLOYMENT, "ReplicaSet": _REPLICASET,
    "Node": _NODE, "Endpoints": _ENDPOINTS, "EndpointSlice": _ENDPOINTSLICE, "Event": _EVENT,
    "Namespace": _NAMESPACE, "ConfigMap": _CONFIGMAP, "Secret": _SECRET,
    "ServiceAccount": _SERVICEACCOUNT, "Lease": _LEASE, "NetworkPolicy": _NETWORKPOLICY,
    "Job": _JOB, "CronJob": _CRONJOB, "DaemonSet": _DAEMONSET, "Ingress": _INGRESS, "IngressClass": _INGRESSCLASS,
    "StatefulSet": _STATEFULSET, "PodDisruptionBudget": _PDB,
    "GatewayClass": _GATEWAYCLASS, "Gateway": _GATEWAY, "HTTPRoute": _HTTPROUTE,
}


def column_definitions(rt: ResourceType) -> list[dict]:
    cols, _ = PRINTERS.get(rt.kind, _DEFAULT)
    return [{"name": n, "type": t, "format": f, "description": d, "priority": p} for n, t, f, d, p in cols]


def to_table(rt: ResourceType, objs: list[dict], *, resource_version: str,
             now: datetime | None = None, include_object: str = "Metadata",
             continue_token: str | None = None) -> dict:
    """A Table of `objs`. `include_object` is the request's includeObject: `Metadata`
    (default: rows carry PartialObjectMetadata, which `-A` and `--show-labels` need),
    `Object` (the whole object) or `None`."""
    now = now or datetime.now(timezone.utc)
    _, row = PRINTERS.get(rt.kind, _DEFAULT)
    rows = []
    for o in objs:
        r: dict = {"cells": row(o, now)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": dict(_meta(o))}
        rows.append(r)
    metadata: dict = {"resourceVersion": str(resource_version)}
    if continue_token:
        metadata["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": column_definitions(rt), "rows": rows}
