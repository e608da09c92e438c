"""`kubelab get`: tables from the server's Table answers, or yaml/json/name/custom-columns/
jsonpath from the plain objects; `-w` lists then watches, printing each change as a row."""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from kubelab.client import Gone

from . import jsonpath, printers
from .context import CliError, Context
from .targets import TABLE_ACCEPT, Target, fetch_objects, fetch_table, multi_type, parse_targets


def register(sub) -> None:
    p = sub.add_parser("get", help="display one or many resources",
                       description="Display one or many resources: TYPE[,TYPE...] [NAME...], TYPE/NAME..., or all.")
    p.add_argument("args", nargs="*", metavar="TYPE[/NAME]", help="resource type(s) and optional names")
    p.add_argument("-o", "--output",
                   help="wide|yaml|json|name|custom-columns=SPEC|jsonpath=TEMPLATE|go-template=TEMPLATE "
                        "(a subset of Go templates: see kubelab/cli/gotemplate.py)")
    p.add_argument("-l", "--selector", help="label selector, e.g. app=web,tier!=db")
    p.add_argument("--field-selector", help="field selector, e.g. status.phase=Running")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--watch-only", action="store_true", help="watch for changes without listing first")
    p.add_argument("--show-labels", action="store_true", help="add a LABELS column")
    p.add_argument("-L", "--label-columns", action="append", default=[], metavar="KEY[,KEY...]",
                   help="one column per label key, e.g. -L app -L app.kubernetes.io/name")
    p.add_argument("--sort-by", metavar="JSONPATH",
                   help="sort by a field, e.g. '{.metadata.name}' or .status.startTime (as kubectl's)")
    p.add_argument("--no-headers", action="store_true", help="omit table headers")
    p.set_defaults(func=run)


def _output(args: argparse.Namespace) -> printers.Output:
    try:
        return printers.parse_output(args.output)
    except printers.OutputError as e:
        raise CliError(str(e)) from None


def _view(ctx: Context, t: Target, table: dict, out: printers.Output, *, prefix: bool) -> printers.TableView:
    return printers.table_view(table, wide=out.kind == "wide",
                               with_namespace=ctx.all_namespaces and t.rt.namespaced,
                               name_prefix=printers.kind_prefix(t.rt) if prefix else None,
                               show_labels=ctx.args.show_labels, no_headers=ctx.args.no_headers,
                               label_columns=label_columns(ctx.args))


def label_columns(args: argparse.Namespace) -> list[str]:
    return [k.strip() for v in (getattr(args, "label_columns", None) or []) for k in v.split(",") if k.strip()]


def sort_key_for(expr: str | None):
    """kubectl's --sort-by: a JSONPath (braces optional) → a key function over objects, or None.
    Missing values sort first, then numbers by value, then everything else as text."""
    if not expr:
        return None
    path = expr.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    try:
        jsonpath.parse_expr(path)
    except jsonpath.JSONPathError as e:
        raise CliError(f"couldn't parse --sort-by {expr}: {e}") from None

    def key(obj: dict):
        found = jsonpath.find(path, obj)
        if not found or found[0] is None:
            return (0, 0, "")
        v = found[0]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return (2, 0, v if isinstance(v, str) else json.dumps(v, sort_keys=True))
        return (1, v, "")
    return key


def _no_resources(ctx: Context, targets: list[Target]) -> None:
    namespaced = any(t.rt.namespaced for t in targets)
    where = f" in {ctx.namespace} namespace" if namespaced and not ctx.all_namespaces else ""
    sys.stderr.write(f"No resources found{where}.\n")  # a notice, not an error: exit 0 (kubectl's)


async def run(ctx: Context) -> int:
    args = ctx.args
    out = _output(args)
    targets = parse_targets(args.args)
    if args.watch or args.watch_only:
        if len(targets) != 1 or len(targets[0].names) > 1:
            raise CliError("watch is only supported on individual resources and resource collections, "
                           f"but {sum(max(1, len(t.names)) for t in targets)} resources were found")
        return await watch(ctx, targets[0], out)
    prefix = multi_type(args.args, targets)
    by_name = any(t.names for t in targets)
    sort_key = sort_key_for(args.sort_by)
    if out.is_table:
        printed = False
        for t in targets:
            table = await fetch_table(ctx, t, label_selector=args.selector, field_selector=args.field_selector,
                                      include_object=sort_key is not None)
            if sort_key is not None:
                table["rows"] = sorted(table.get("rows") or [], key=lambda r: sort_key(r.get("object") or {}))
            view = _view(ctx, t, table, out, prefix=prefix)
            if not view.rows:
                continue
            if printed:
                ctx.out("\n")
            ctx.out(printers.render_table(view))
            printed = True
        if not printed and not by_name:
            _no_resources(ctx, targets)
        return 0
    objs: list[dict] = []
    rts = []
    for t in targets:
        got, _ = await fetch_objects(ctx, t, label_selector=args.selector, field_selector=args.field_selector)
        objs.extend(got)
        rts.extend([t.rt] * len(got))
    if not objs and not by_name and out.kind in ("name", "custom-columns"):
        _no_resources(ctx, targets)
        return 0
    single = by_name and len(targets) == 1 and len(targets[0].names) == 1
    if single and not objs:
        return 1
    if sort_key is not None:
        pairs = sorted(zip(objs, rts), key=lambda p: sort_key(p[0]))
        objs, rts = [o for o, _ in pairs], [r for _, r in pairs]
    ctx.out(printers.render_objects(out, objs, rts, single=single, no_headers=args.no_headers))
    return 0


# --- watch -----------------------------------------------------------------------------------

async def watch(ctx: Context, t: Target, out: printers.Output) -> int:
    args = ctx.args
    api = ctx.client
    field_selector = args.field_selector
    if t.names:
        name_sel = f"metadata.name={t.names[0]}"
        field_selector = f"{field_selector},{name_sel}" if field_selector else name_sel
    list_target = Target(t.rt, [])
    widths: list[int] | None = None
    header_done = False

    def emit_table(table: dict) -> None:
        nonlocal widths, header_done
        view = _view(ctx, t, table, out, prefix=False)
        rows = view.rows if header_done or not view.headers else [view.headers] + view.rows
        if not rows:
            return
        header_done = True
        if widths is None:
            widths = printers.column_widths(rows)
        ctx.out("".join(line + "\n" for line in printers.format_columns(rows, widths=widths)))

    def emit_object(obj: dict) -> None:
        text = printers.render_objects(out, [obj], [t.rt], single=True, no_headers=True)
        if out.kind == "yaml":
            text = "---\n" + text
        ctx.out(text if text.endswith("\n") or not text else text + "\n")

    async def relist() -> str:
        if out.is_table:
            table = await fetch_table(ctx, list_target, label_selector=args.selector, field_selector=field_selector)
            if not args.watch_only:
                emit_table(table)
            return (table.get("metadata") or {}).get("resourceVersion", "")
        objs, rv = await fetch_objects(ctx, list_target, label_selector=args.selector, field_selector=field_selector)
        if not args.watch_only:
            for o in objs:
                emit_object(o)
        return rv

    rv = await relist()
    accept = TABLE_ACCEPT if out.is_table else "application/json"
    while True:
        try:
            async for ev in api.watch(t.rt, namespace=ctx.ns_for(t.rt), resource_version=rv,
                                      label_selector=args.selector, field_selector=field_selector, accept=accept):
                obj = ev.get("object") or {}
                typ = ev.get("type")
                new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                if typ != "BOOKMARK":
                    if out.is_table:
                        emit_table(obj if obj.get("kind") == "Table" else printers.objects_table([obj]))
                    else:
                        emit_object(obj)
                    rows = obj.get("rows") or [] if obj.get("kind") == "Table" else []
                    if not new_rv and rows:
                        new_rv = ((rows[0].get("object") or {}).get("metadata") or {}).get("resourceVersion")
                if new_rv:
                    rv = new_rv
        except Gone:
            args.watch_only = True  # relist quietly, keep watching from now
            rv = await relist()
        except httpx.RemoteProtocolError:
            pass  # the server ended the stream: watch again from the last version seen
