"""`kubelab timeline`: the boot sequence as it happened, from three sources merged by time:
the supervisor's events (process started/healthy/exited), the API objects' own timestamps
(node registered, got its pod CIDR, became Ready; pod created, scheduled, running; Service
and EndpointSlice written) and the cluster's Events (who reported what).

`build_timeline` and `render_timeline` are pure (records in, rows/text out); `timeline` does
the reading.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from kubelab.client import ApiError
from kubelab.timestamps import parse_epoch

from . import state

OBJECT_TYPES = ("nodes", "pods", "services", "endpointslices", "events", "leases")


@dataclass(frozen=True)
class Row:
    """One line of the timeline. Rows are ordered by `t`, then `rank`, then the order they were
    made in (never by name): on a tie the cause comes before its effect."""
    t: float
    who: str           # the component or object that acted / was acted on
    what: str          # one line; says who caused it ("by ...") where the source tells
    source: str        # supervisor | api | event | log
    rank: int = 0      # causal order among rows with the same time (created < scheduled < Ready)
    exact: bool = True  # False: an API timestamp, whole seconds (metav1.Time)
    key: tuple = ()    # (object, action): a log row with the same key replaces a whole-second api row


# causal rank of what happens to one object, for rows that carry the same (whole-second) time
RANK = {"registered": 0, "podCIDR": 1, "created": 2, "scheduled": 3, "sandbox": 4, "Ready": 5, "written": 6}


def _supervisor_rows(events: list[dict]) -> list[Row]:
    rows = []
    for ev in events:
        kind = ev.get("event")
        who = f"{ev.get('node')}/{ev.get('component')}" if ev.get("component") else ev.get("source", "lab")
        text = {
            "up-started": "kubelab up started",
            "topology-ready": "node network ready (bridge, netns, veth)",
            "supervisor-started": f"supervisor started (pid {ev.get('pid')})",
            "started": f"process started (pid {ev.get('pid')}) in netns {ev.get('netns')}",
            "healthy": f"healthy after {ev.get('seconds')}s",
            "unhealthy": f"not healthy after {ev.get('seconds')}s",
            "exited": f"process exited (code {ev.get('code')})",
            "restarted": f"restarted by the supervisor (#{ev.get('restarts')}, pid {ev.get('pid')})",
            "stopped": "stopped",
            "ready": "all components healthy",
            "nodes-ready": f"nodes Ready: {', '.join(ev.get('nodes') or [])}",
            "dns-ready": "cluster DNS answering",
            "up-done": f"kubelab up done ({ev.get('seconds')}s)",
            "supervisor-stopped": "supervisor stopped",
        }.get(kind)
        if text and isinstance(ev.get("t"), (int, float)):
            rows.append(Row(float(ev["t"]), who, text, "supervisor"))
    return rows


def _api_row(t: float, who: str, what: str, action: str) -> Row:
    return Row(t, who, what, "api", rank=RANK.get(action, 0), exact=t != int(t), key=(who, action))


def _condition_rows(kind: str, name: str, obj: dict, wanted: dict[str, tuple[str, str]]) -> list[Row]:
    rows = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") in wanted and c.get("status") == "True":
            t = parse_epoch(c.get("lastTransitionTime"))
            if t:
                what, action = wanted[c["type"]]
                rows.append(_api_row(t, f"{kind}/{name}", what, action))
    return rows


def _manager(obj: dict) -> str | None:
    """Who last wrote an object, when the API server records it (managedFields)."""
    fields = (obj.get("metadata") or {}).get("managedFields") or []
    return fields[-1].get("manager") if fields and isinstance(fields[-1], dict) else None


def _object_rows(objects: dict[str, list[dict]]) -> list[Row]:
    rows = []
    for n in objects.get("nodes", []):
        name = n["metadata"]["name"]
        t = parse_epoch(n["metadata"].get("creationTimestamp"))
        if t:
            rows.append(_api_row(t, f"node/{name}", "registered by its node agent", "registered"))
        rows += _condition_rows("node", name, n, {"Ready": ("Ready (reported by its node agent)", "Ready")})
        if (n.get("spec") or {}).get("podCIDR"):
            rows.append(_api_row(t or 0, f"node/{name}", f"pod CIDR {n['spec']['podCIDR']} set by nodeipam "
                                 "(controllers)", "podCIDR"))
    for p in objects.get("pods", []):
        m = p["metadata"]
        spec = p.get("spec") or {}
        name = f"{m.get('namespace')}/{m['name']}"
        t = parse_epoch(m.get("creationTimestamp"))
        owner = (m.get("ownerReferences") or [{}])[0]
        by = f" by {owner.get('kind')}/{owner.get('name')}" if owner.get("kind") else ""
        if by and owner.get("kind") in ("ReplicaSet", "Deployment", "Job", "DaemonSet", "StatefulSet"):
            by += f" ({owner['kind'].lower()} controller)"
        if t:
            rows.append(_api_row(t, f"pod/{name}", f"created{by}", "created"))
        rows += _condition_rows("pod", name, p, {
            "PodScheduled": (f"scheduled to {spec.get('nodeName') or '?'} by "
                             f"{spec.get('schedulerName') or 'default-scheduler'}", "scheduled"),
            "Ready": (f"Ready, IP {(p.get('status') or {}).get('podIP') or '?'} (reported by the node agent of "
                      f"{spec.get('nodeName') or '?'})", "Ready")})
    for s in objects.get("services", []):
        m = s["metadata"]
        t = parse_epoch(m.get("creationTimestamp"))
        if t:
            who = f"service/{m.get('namespace')}/{m['name']}"
            by = f" by {_manager(s)}" if _manager(s) else ""
            rows.append(_api_row(t, who, f"created{by}, ClusterIP {(s.get('spec') or {}).get('clusterIP')}",
                                 "created"))
    for es in objects.get("endpointslices", []):
        m = es["metadata"]
        t = parse_epoch(m.get("creationTimestamp"))
        if t:
            n = sum(len(e.get("addresses") or []) for e in es.get("endpoints") or [])
            by = (m.get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") or _manager(es) or "?"
            rows.append(_api_row(t, f"endpointslice/{m.get('namespace')}/{m['name']}",
                                 f"created by {by} ({n} endpoint(s) now)", "created"))
    for lease in objects.get("leases", []):
        m = lease["metadata"]
        if m.get("namespace") == "kube-system":
            t = parse_epoch((lease.get("spec") or {}).get("acquireTime")) or parse_epoch(m.get("creationTimestamp"))
            if t:
                rows.append(Row(t, f"lease/{m['name']}",
                                f"leader: {(lease.get('spec') or {}).get('holderIdentity')}", "api",
                                exact=t != int(t)))
    for e in objects.get("events", []):
        t = parse_epoch(e.get("eventTime") or e.get("firstTimestamp") or (e.get("metadata") or {}).get("creationTimestamp"))
        if not t:
            continue
        src = ((e.get("source") or {}).get("component") or e.get("reportingController")
               or e.get("reportingComponent") or "?")
        io = e.get("involvedObject") or e.get("regarding") or {}
        rows.append(Row(t, src, f"{e.get('reason')}: {(io.get('kind') or '').lower()}/{io.get('name')} "
                                f"{e.get('message') or e.get('note') or ''}".rstrip(), "event",
                        rank=RANK["written"], exact=t != int(t)))
    return rows


_REQUEST = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*HTTP Request: GET (\S+)")
_LOGLINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (.*)$")

# What the components say they did (their INFO lines), as (pattern, object, action, text):
# millisecond times, and the component that did it. Only lines logged right after the one write
# they describe (the node agent's "registered" comes after the status update too, up to a second
# later on a busy machine: the Node's creationTimestamp is the better time for that). Any log format that puts Python logging's
# asctime first works (the message is searched, not the whole layout).
_ACTIONS = (
    (re.compile(r"pod (?P<key>\S+/\S+): sandbox \S+ ready in .*IP (?P<ip>\S+)"), "pod/{key}", "sandbox",
     "sandbox ready, IP {ip} ({who})"),
    (re.compile(r"bound pod (?P<key>\S+/\S+) to (?P<node>\S+)"), "pod/{key}", "scheduled",
     "scheduled to {node} by {who}"),
    (re.compile(r"node (?P<node>\S+): pod CIDR (?P<cidr>\S+) assigned"), "node/{node}", "podCIDR",
     "pod CIDR {cidr} set by {who} (nodeipam)"),
    (re.compile(r"endpointslice (?P<ns>[^/\s]+)/(?P<name>\S+) (?P<verb>created|updated|deleted)(?P<rest>.*)"),
     "endpointslice/{ns}/{name}", "written", "{verb} by {who}{rest}"),
    (re.compile(r"endpoints (?P<ns>[^/\s]+)/(?P<name>\S+) (?P<verb>created|updated|deleted)(?P<rest>.*)"),
     "endpoints/{ns}/{name}", "written", "{verb} by {who}{rest}"),
)


def _log_time(date: str, ms: str) -> float | None:
    try:
        return datetime.strptime(date, "%Y-%m-%d %H:%M:%S").timestamp() + int(ms) / 1000
    except ValueError:
        return None


def action_rows(who: str, text: str) -> list[Row]:
    """From a component's log: what it did (pod CIDR assigned, pod bound, sandbox ready,
    EndpointSlice/Endpoints written), with millisecond times and `who` as the cause."""
    rows: list[Row] = []
    for line in text.splitlines():
        m = _LOGLINE.match(line)
        if not m or "HTTP Request:" in line:
            continue
        for pattern, obj, action, what in _ACTIONS:
            a = pattern.search(m.group(3))
            if not a:
                continue
            t = _log_time(m.group(1), m.group(2))
            if t is None:
                break
            fields = {k: (v or "").rstrip() for k, v in a.groupdict().items()}
            # a slice's creation is the act the API's creationTimestamp row also shows
            key_action = "created" if fields.get("verb") == "created" else action
            rows.append(Row(t, obj.format(**fields), what.format(who=who, **fields), "log",
                            rank=RANK.get(action, RANK["written"]), key=(obj.format(**fields), key_action)))
            break
    return rows


def log_rows(who: str, text: str) -> list[Row]:
    """From a component's log (its HTTP client logs each request): every LIST, and the first
    WATCH per resource with the resourceVersion it starts from: who listens to what, and when.
    A LIST after the first one per resource is a relist (after an error or a 410 Gone)."""
    rows: list[Row] = []
    listed: set[str] = set()
    watching: set[str] = set()
    for line in text.splitlines():
        m = _REQUEST.match(line)
        if not m:
            continue
        try:
            t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + int(m.group(2)) / 1000
        except ValueError:
            continue
        url = urlsplit(m.group(3))
        path = url.path.rstrip("/").split("/")
        if len(path) < 3 or path[1] not in ("api", "apis"):
            continue
        q = parse_qs(url.query)
        namespaced = "namespaces" in path[:-1]
        resource = path[-1]
        if len(path) >= 2 and path[-2] == "namespaces" and not namespaced:
            continue  # GET one namespace
        if "watch" in q:
            if resource not in watching:
                watching.add(resource)
                rv = (q.get("resourceVersion") or ["?"])[0]
                rows.append(Row(t, who, f"WATCH {resource} from resourceVersion {rv}", "log"))
        elif not _is_single_get(path):
            rows.append(Row(t, who, f"{'relist' if resource in listed else 'LIST'} {resource}", "log"))
            listed.add(resource)
    return rows


def _is_single_get(path: list[str]) -> bool:
    """/api/v1/namespaces/ns/pods/name or /api/v1/nodes/name: one object, not a collection."""
    core = path[3:] if path[1] == "api" else path[4:]
    if core[:1] == ["namespaces"]:
        core = core[2:]
    return len(core) != 1


def sort_rows(rows: list[Row]) -> list[Row]:
    """By time, then causal rank; rows that tie on both keep the order they were made in."""
    return sorted(rows, key=lambda r: (r.t, r.rank))


def build_timeline(events: list[dict], objects: dict[str, list[dict]], *, since: float | None = None,
                   logs: dict[str, str] | None = None) -> list[Row]:
    rows = _supervisor_rows(events) + _object_rows(objects)
    logged: list[Row] = []
    for who, text in (logs or {}).items():
        logged += log_rows(who, text) + action_rows(who, text)
    # a component's own millisecond line replaces the API's whole-second timestamp of the same act
    precise = {r.key for r in logged if r.key}
    rows = [r for r in rows if r.exact or not r.key or r.key not in precise] + logged
    rows = sort_rows(rows)
    if since is not None:
        rows = [r for r in rows if r.t >= since - 1]
    return rows


def render_timeline(rows: list[Row], *, t0: float | None = None) -> str:
    """`+SECONDS` with milliseconds; a time the API kept in whole seconds is marked `~`."""
    if not rows:
        return "no events yet"
    t0 = rows[0].t if t0 is None else t0
    width = max(len(r.who) for r in rows)
    out = [f"{'+SECONDS':>10}  {'WHO':<{width}}  WHAT"]
    for r in rows:
        out.append(f"{r.t - t0:>9.3f}{' ' if r.exact else '~'}  {r.who:<{width}}  {r.what}")
    out.append("")
    out.append(f"t=0 is {time.strftime('%H:%M:%S', time.localtime(t0))}; sources: supervisor events "
               "(events.jsonl) and the components' logs (their LIST/WATCH requests and what they did), in "
               "milliseconds; object timestamps and Events from the API, kept in whole seconds (marked ~: "
               "it happened within that second)")
    return "\n".join(out)


async def collect(plan) -> tuple[list[Row], float | None, list[str]]:
    """Read the three sources for `plan`'s lab: (rows since the last `up`, t0 = that `up`, notes
    about sources that could not be read). Shared by `kubelab timeline` and the web view."""
    events, _ = state.read_events(plan.lab_dir)
    objects: dict[str, list[dict]] = {}
    notes: list[str] = []
    from .components import api_client
    api = api_client(plan)
    try:
        for kind in OBJECT_TYPES:
            try:
                objects[kind] = (await api.list(kind))["items"]
            except (ApiError, KeyError):
                objects[kind] = []
    except OSError as e:
        notes.append(f"API server not answering: {e}; showing the supervisor's events only")
    except Exception as e:  # httpx errors: the API may be down, the supervisor's view still helps
        notes.append(f"API server not answering: {type(e).__name__}; showing the supervisor's events only")
    finally:
        await api.aclose()
    logs = {}
    logs_dir = os.path.join(plan.lab_dir, "logs")
    for node in sorted(os.listdir(logs_dir)) if os.path.isdir(logs_dir) else []:
        for f in sorted(os.listdir(os.path.join(logs_dir, node))):
            if f.endswith(".log") and node != "lab":
                with open(os.path.join(logs_dir, node, f), errors="replace") as fh:
                    logs[f"{node}/{f[:-4]}"] = fh.read()
    up_started = next((e["t"] for e in events if e.get("event") == "up-started"), None)
    return build_timeline(events, objects, since=up_started, logs=logs), up_started, notes


async def timeline(*, name: str, root_dir: str) -> int:
    from .lab import load_plan
    plan, _record = load_plan(name, root_dir)
    rows, t0, notes = await collect(plan)
    for note in notes:
        print(f"({note})")
    print(render_timeline(rows, t0=t0))
    return 0
