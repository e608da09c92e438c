"""The web app: four pages over the hub, each naming the shell command that shows the same.

    /                       cluster map (live: SSE /api/stream, then GET /api/map.svg)
    /trace?from=&to=        packet path: `kubelab trace`'s hops drawn on the map
    /timeline               boot timeline, replayable step by step
    /rules?node=            a node's proxy table, each Service's lines highlighted, and its routes
    /api/object?id=         one object's YAML and events (what a click on the map shows)
    /api/stats              the hub's informers, watches and subscribers

Security (tests/integration/test_ui_server.py attacks each point):
- read-only: every route is GET; any other method is refused (405) before routing, and the
  server's API client (`hub.ReadOnlyApi`) has no verb that writes.
- loopback by default; the Host header must be an IP literal or `localhost`, so a web page
  in the student's browser cannot reach this server through DNS rebinding.
- query parameters are validated (`view.parse_*`) and refused with a 400 naming the
  parameter; nothing from a query reaches a shell (commands are argv lists; DOT text escaped).
- bounded: at most TRACE_CONCURRENCY traces run at once (each runs `dig`, `ip`, `nft`), at
  most `max_streams` live pages.
- every asset is served from kubelab/ui/static (no CDN); a CSP of 'self' enforces it.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from . import graphviz, view
from .hub import Hub

STATIC = Path(__file__).with_name("static")
TRACE_CONCURRENCY = 2
SSE_HEARTBEAT = 15.0
SSE_COALESCE = 0.15   # seconds: one message per burst of changes (a rollout moves many objects)
OBJECT_KINDS = {"pod": "pods", "svc": "services", "node": "nodes"}
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@dataclass
class UiContext:
    """What the pages need from the lab. Functions are injected so the app runs on a plain API
    server in tests (no plan, no root) and on a real lab from `kubelab ui`."""
    hub: Hub
    lab_name: str = "lab"
    node_info: dict[str, view.NodeInfo] = field(default_factory=dict)
    # (namespace, pod, target) -> (captured dict, hops)       the packet path (root: reads the netns)
    trace: Callable[[str, str, str], Awaitable[tuple[dict, list]]] | None = None
    # node -> (mode, table text, routes text, commands)
    rules: Callable[[str], Awaitable[tuple[str, str, str, list[str]]]] | None = None
    # () -> (rows, t0, notes)
    timeline: Callable[[], Awaitable[tuple[list, float | None, list[str]]]] | None = None
    # node -> live routes, when readable
    routes: Callable[[], Awaitable[dict[str, tuple[str, ...]]]] | None = None
    why_no_netns: str = ""   # why trace/rules cannot run (not root), shown instead of them
    max_streams: int = 256   # SSE streams at once: a bound, so a runaway page cannot exhaust the server

    @property
    def name_flag(self) -> str:
        return "" if self.lab_name == "lab" else f" --name {self.lab_name}"


class MapCache:
    """The map SVG for the hub's current version, rendered once for every browser."""

    def __init__(self) -> None:
        self.version = -1
        self.svg = ""
        self.lock = asyncio.Lock()
        self.renders = 0


def allowed_host(host_header: str | None) -> bool:
    """An IP literal or localhost (any port): a DNS-rebinding page has a domain name here."""
    if not host_header:
        return False
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def create_app(ctx: UiContext) -> FastAPI:
    app = FastAPI(title="kubelab ui", docs_url=None, redoc_url=None, openapi_url=None)
    cache = MapCache()
    traces = asyncio.Semaphore(TRACE_CONCURRENCY)
    app.state.ctx = ctx
    app.state.cache = cache

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("kubelab ui is read-only: only GET\n", status_code=405,
                                     headers={"Allow": "GET, HEAD"})
        if not allowed_host(request.headers.get("host")):
            return PlainTextResponse("refused: the Host must be localhost or an IP address\n", status_code=403)
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def model() -> view.MapModel:
        routes = await ctx.routes() if ctx.routes else {}
        h = ctx.hub
        return view.build_map(nodes=h.objects("nodes"), pods=h.objects("pods"), services=h.objects("services"),
                              slices=h.objects("endpointslices"), info=ctx.node_info, routes=routes)

    async def map_svg() -> str:
        async with cache.lock:
            v = ctx.hub.map_version
            if v != cache.version:
                cache.svg = fit(await graphviz.render_svg_async(view.map_dot(await model())))
                cache.version = v
                cache.renders += 1
            return cache.svg

    # --- pages -----------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def map_page():
        try:
            svg = await map_svg()
        except graphviz.RenderError as e:
            svg = f'<p class="error">{html.escape(str(e))}</p>'
        body = (f'<div class="split"><div id="map" class="drawing" data-live="1">{svg}</div>'
                '<aside id="detail"><p class="hint">Click a node, pod or Service to see its YAML and events.</p>'
                '</aside></div>'
                '<p class="legend"><span class="sw ready"></span> ready endpoint '
                '<span class="sw notready"></span> not ready · pods: '
                '<span class="sw running"></span> Running <span class="sw pending"></span> Pending '
                '<span class="sw failed"></span> Failed</p>')
        return page("map", "Cluster map", body,
                    ["kubectl get nodes -o wide", "kubectl get pods -A -o wide", "kubectl get svc -A",
                     "kubectl get endpointslices -A", f"sudo ip -n kl-{ctx.lab_name}-worker-1 route"])

    @app.get("/trace", response_class=HTMLResponse)
    async def trace_page(request: Request):
        qp = request.query_params
        src, dst = qp.get("from"), qp.get("to")
        form = trace_form(ctx, src or "", dst or "")
        cmds = ["kubelab trace POD TARGET" + ctx.name_flag]
        if src is None and dst is None:
            return page("trace", "Packet path", form + '<p class="hint">Pick a source pod and a destination '
                        '(a Service name such as <code>nginx</code> or <code>kube-dns.kube-system:53</code>, a '
                        'ClusterIP or a pod IP).</p>', cmds)
        try:
            ns, pod = view.parse_source(src)
            host, port = view.parse_destination(dst)
        except view.QueryError as e:
            return page("trace", "Packet path", form + error_box(str(e)), cmds, status=400)
        cmds = [f"sudo kubelab trace -n {ns} {pod} {dst}{ctx.name_flag}"]
        if ctx.hub.get("pods", f"{ns}/{pod}") is None:
            return page("trace", "Packet path", form + error_box(f'from: pods "{pod}" not found in namespace {ns}'),
                        cmds, status=404)
        if not ctx.trace:
            return page("trace", "Packet path", form + error_box(ctx.why_no_netns or "tracing is not available"),
                        cmds, status=503)
        if traces.locked():
            return page("trace", "Packet path", form + error_box("busy: other traces are running; retry in a "
                        "moment"), cmds, status=429)
        async with traces:
            try:
                captured, hops = await ctx.trace(ns, pod, dst)
            except Exception as e:  # a lab that went away mid-trace: say so, no traceback
                return page("trace", "Packet path", form + error_box(f"trace failed: {e}"), cmds, status=502)
        m = await model()
        path = view.trace_path(m, f"{ns}/{pod}", hops)
        try:
            svg = fit(await graphviz.render_svg_async(view.map_dot(m, path)))
        except graphviz.RenderError as e:
            svg = error_box(str(e))
        from kubelab.lab.trace import trace_header
        body = (form + f'<h2 class="trace-head">{html.escape(trace_header(captured))}</h2>'
                f'<div id="trace-map" class="drawing">{svg}</div>'
                f'<div id="hops">{hops_html(hops)}</div>')
        return page("trace", "Packet path", body, cmds)

    @app.get("/timeline", response_class=HTMLResponse)
    async def timeline_page():
        cmds = ["kubelab timeline" + ctx.name_flag, "kubelab logs supervisor" + ctx.name_flag]
        if not ctx.timeline:
            return page("timeline", "Boot timeline", error_box("no lab: the timeline needs a lab's records"), cmds,
                        status=503)
        rows, t0, notes = await ctx.timeline()
        lanes, span = view.timeline_lanes(rows, t0)
        t0 = t0 if t0 is not None else (rows[0].t if rows else 0.0)
        note = "".join(f'<p class="hint">{html.escape(n)}</p>' for n in notes)
        table = ['<table id="timeline-rows"><thead><tr><th>+s</th><th>who</th><th>what</th><th>source</th></tr>'
                 '</thead><tbody>']
        for i, r in enumerate(rows):
            table.append(f'<tr data-i="{i}" data-t="{r.t - t0:.3f}"><td>{r.t - t0:.2f}</td><td>{html.escape(r.who)}</td>'
                         f'<td>{html.escape(r.what)}</td><td>{r.source}</td></tr>')
        table.append("</tbody></table>")
        controls = ('<div class="replay"><button id="tl-first" type="button">|&lt;</button>'
                    '<button id="tl-prev" type="button">&lt; step</button>'
                    '<button id="tl-play" type="button">play</button>'
                    '<button id="tl-next" type="button">step &gt;</button>'
                    '<button id="tl-last" type="button">&gt;|</button>'
                    f'<input id="tl-slider" type="range" min="0" max="{max(len(rows) - 1, 0)}" '
                    f'value="{max(len(rows) - 1, 0)}"><span id="tl-now"></span></div>')
        lane_names = ", ".join(html.escape(lane.name) for lane in lanes)
        body = (note + controls + f'<div class="drawing" id="timeline">{view.timeline_svg(lanes, span)}</div>'
                f'<p class="hint" id="lanes">lanes: {lane_names}</p><div class="rows">{"".join(table)}</div>')
        return page("timeline", "Boot timeline", body, cmds)

    @app.get("/rules", response_class=HTMLResponse)
    async def rules_page(request: Request):
        known = [n for n in ctx.node_info] or [n["metadata"]["name"] for n in ctx.hub.objects("nodes")]
        value = request.query_params.get("node")
        picker = node_picker(known, value or "")
        if value is None:
            return page("rules", "Proxy rules", picker, ["sudo ip netns exec NETNS nft list table ip kube-proxy"])
        try:
            node = view.parse_node(value, known)
        except view.QueryError as e:
            return page("rules", "Proxy rules", picker + error_box(str(e)), [], status=400)
        if not ctx.rules:
            return page("rules", "Proxy rules", picker + error_box(ctx.why_no_netns or "rules are not available"),
                        [], status=503)
        mode, table, routes, cmds = await ctx.rules(node)
        services = [view.service_box(s) for s in ctx.hub.objects("services")]
        lines = view.rule_lines(table, services)
        chips = "".join(f'<button type="button" class="chip" data-svc="{html.escape(s.key)}">'
                        f'{html.escape(s.key)} <small>{html.escape(s.cluster_ip)}</small></button>'
                        for s in sorted(services, key=lambda s: s.key))
        pre = "\n".join(f'<span class="rl{" svc" if ln.services else ""}" data-svc="{html.escape(" ".join(ln.services))}">'
                        f'{html.escape(ln.text)}</span>' for ln in lines)
        body = (picker + f'<p class="hint">{html.escape(mode)} mode. Click a Service to highlight its entries.</p>'
                f'<div class="chips">{chips}</div><div class="split"><pre id="rules-table">{pre}</pre>'
                f'<aside><h3>routes on {html.escape(node)}</h3><pre id="routes">{html.escape(routes)}</pre></aside></div>')
        return page("rules", f"Proxy rules on {node}", body, cmds)

    # --- data ------------------------------------------------------------------------------------

    @app.get("/api/map.svg")
    async def map_svg_route():
        try:
            svg = await map_svg()
        except graphviz.RenderError as e:
            return PlainTextResponse(str(e), status_code=500)
        return Response(svg, media_type="image/svg+xml", headers={"X-Map-Version": str(cache.version),
                                                                   "Cache-Control": "no-store"})

    @app.get("/api/stream")
    async def stream():
        if ctx.hub.subscribers >= ctx.max_streams:
            return PlainTextResponse(f"too many live pages ({ctx.max_streams}); close some\n", status_code=503,
                                     headers={"Retry-After": "10"})

        async def events():
            ctx.hub.subscribers += 1
            try:
                seen = ctx.hub.map_version
                yield f"event: map\ndata: {json.dumps({'version': seen})}\n\n"
                while not ctx.hub.closing:
                    v = await ctx.hub.wait_change(seen, SSE_HEARTBEAT)
                    if ctx.hub.closing:
                        break
                    if v == seen:
                        yield ": heartbeat\n\n"
                        continue
                    await asyncio.sleep(SSE_COALESCE)
                    seen = ctx.hub.map_version
                    yield f"event: map\ndata: {json.dumps({'version': seen})}\n\n"
            finally:
                ctx.hub.subscribers -= 1
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/object")
    async def obj(request: Request):
        oid = request.query_params.get("id") or ""
        kind, _, key = oid.partition(":")
        if kind == "nodeinfo":
            kind = "node"
        resource = OBJECT_KINDS.get(kind)
        if not resource or not key or len(key) > 2 * view.MAX_QUERY + 1:
            return JSONResponse({"error": "id: expected pod:NAMESPACE/NAME, svc:NAMESPACE/NAME or node:NAME"},
                                status_code=400)
        o = ctx.hub.get(resource, key)
        if o is None:
            if kind == "node" and key in ctx.node_info:
                ni = ctx.node_info[key]
                return {"id": oid, "yaml": f"# {key}: a lab node without a Node object (no node agent runs there)\n"
                        f"netns: {ni.netns}\nip: {ni.ip}\nrole: {ni.role}\n", "events": [],
                        "command": f"sudo ip -n {ni.netns} addr"}
            return JSONResponse({"error": f"{oid} not found"}, status_code=404)
        shown = json.loads(json.dumps(o))
        (shown.get("metadata") or {}).pop("managedFields", None)
        ns, _, name = key.rpartition("/")
        evs = []
        for e in ctx.hub.objects("events"):
            io = e.get("involvedObject") or e.get("regarding") or {}
            if io.get("name") == name and (io.get("namespace") or "") == ns and \
                    (io.get("kind") or "").lower() == {"pod": "pod", "svc": "service", "node": "node"}[kind]:
                evs.append({"type": e.get("type"), "reason": e.get("reason"),
                            "message": e.get("message") or e.get("note") or "",
                            "from": (e.get("source") or {}).get("component") or e.get("reportingComponent") or "",
                            "time": e.get("lastTimestamp") or e.get("eventTime") or
                            (e.get("metadata") or {}).get("creationTimestamp")})
        evs.sort(key=lambda x: x["time"] or "")
        short = {"pod": "pod", "svc": "svc", "node": "node"}[kind]
        cmd = f"kubectl get {short} {name} -o yaml" + (f" -n {ns}" if ns else "")
        return {"id": oid, "yaml": yaml.safe_dump(shown, sort_keys=False), "events": evs, "command": cmd,
                "describe": f"kubectl describe {short} {name}" + (f" -n {ns}" if ns else "")}

    @app.get("/api/stats")
    async def stats():
        return {**ctx.hub.stats(), "map_renders": cache.renders, "time": time.time()}

    return app


# --- HTML helpers --------------------------------------------------------------------------------

NAV = (("map", "/", "Cluster map"), ("trace", "/trace", "Packet path"), ("timeline", "/timeline", "Boot timeline"),
       ("rules", "/rules", "Proxy rules"))


def page(active: str, title: str, body: str, commands: list[str], *, status: int = 200) -> HTMLResponse:
    nav = "".join(f'<a href="{href}"{" class=active" if key == active else ""}>{label}</a>'
                  for key, href, label in NAV)
    shell = "".join(f"<code>$ {html.escape(c)}</code>" for c in commands)
    doc = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
           f"<title>kubelab · {html.escape(title)}</title>"
           '<meta name="viewport" content="width=device-width, initial-scale=1">'
           '<link rel="stylesheet" href="/static/ui.css"><script src="/static/ui.js" defer></script></head>'
           f'<body data-page="{active}"><header><b>kubelab</b><nav>{nav}</nav>'
           '<span id="live" title="live updates from the watches"></span></header>'
           f'<main><h1>{html.escape(title)}</h1>'
           f'<div class="shell" title="the shell command that shows the same">In a shell: {shell}</div>'
           f"{body}</main></body></html>")
    return HTMLResponse(doc, status_code=status)


def error_box(text: str) -> str:
    return f'<p class="error" role="alert">{html.escape(text)}</p>'


def fit(svg: str) -> str:
    """Let CSS size the drawing (Graphviz writes a fixed width/height in pt; the viewBox stays)."""
    head, sep, rest = svg.partition(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", head, count=2)
    return head + sep + rest


def trace_form(ctx: UiContext, src: str, dst: str) -> str:
    pods = sorted(f"{(p['metadata'].get('namespace'))}/{p['metadata']['name']}" for p in ctx.hub.objects("pods")
                  if (p.get("status") or {}).get("podIP"))
    svcs = sorted(f"{s['metadata']['name']}.{s['metadata'].get('namespace')}" for s in ctx.hub.objects("services"))
    opts = "".join(f'<option value="{html.escape(p)}"{" selected" if p == src else ""}>{html.escape(p)}</option>'
                   for p in pods)
    if src and src not in pods:
        opts = f'<option value="{html.escape(src)}" selected>{html.escape(src)}</option>' + opts
    dl = "".join(f'<option value="{html.escape(s)}">' for s in svcs)
    return ('<form class="pick" method="get" action="/trace">'
            f'<label>from pod <select name="from" id="trace-from">{opts}</select></label>'
            f'<label>to <input name="to" id="trace-to" list="trace-targets" value="{html.escape(dst)}" '
            f'placeholder="nginx, kube-dns.kube-system:53, 10.96.0.10" maxlength="260" required></label>'
            f'<datalist id="trace-targets">{dl}</datalist><button type="submit">trace</button></form>')


def node_picker(known: list[str], value: str) -> str:
    links = "".join(f'<a class="chip{" active" if n == value else ""}" href="/rules?node={html.escape(n)}">'
                    f'{html.escape(n)}</a>' for n in known)
    return f'<div class="chips">node: {links}</div>'


def hops_html(hops: list) -> str:
    out = ["<ol class=hops>"]
    for h in hops:
        facts = "".join(f'<span class="fact" data-fact="{html.escape(k)}">{html.escape(k)}: <b>{html.escape(v)}</b>'
                        "</span>" for k, v in h.facts if k != "cmd" and v)
        cmd = dict(h.facts).get("cmd")
        title = h.title.split("   $ ", 1)[0]
        out.append(f'<li class="hop hop-{html.escape(h.kind)}" data-kind="{html.escape(h.kind)}">'
                   f'<div class="hop-title">{html.escape(title)}</div><div class="facts">{facts}</div>'
                   + (f'<pre>{html.escape(chr(10).join(b.strip() for b in h.body))}</pre>' if h.body else "")
                   + (f'<code class="cmd">$ {html.escape(cmd)}</code>' if cmd else "") + "</li>")
    out.append("</ol>")
    return "".join(out)


def format_routes(route_json: list[dict]) -> tuple[str, ...]:
    """`ip -j route` entries with a gateway -> "DST via GW" (the routes to other nodes' pods)."""
    return tuple(f"{r.get('dst')} via {r.get('gateway')}" for r in route_json if r.get("gateway"))


def running_as_root() -> bool:
    return os.geteuid() == 0
