"""Output of `kubelab get` and friends: pure functions from API objects to text.

Tables come from the API server's `meta.k8s.io/v1 Table` answers (as kubectl's do), so the
columns are the server's; `-o wide` adds the columns with priority > 0. The other formats
(yaml, json, name, custom-columns, jsonpath) work on the plain objects.
"""

from __future__ import annotations

from kubelab.apiserver.tables import human_age

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import yaml

from kubelab.resources import ResourceType
from kubelab.timestamps import parse_datetime

from . import gotemplate, jsonpath

FORMATS = ("wide", "yaml", "json", "name", "custom-columns", "jsonpath")


class OutputError(ValueError):
    pass


@dataclass(frozen=True)
class Output:
    """A parsed `-o` value: kind is one of "table" (default), FORMATS; arg is the spec."""

    kind: str = "table"
    arg: str = ""

    @property
    def is_table(self) -> bool:
        return self.kind in ("table", "wide")


def parse_output(value: str | None) -> Output:
    if not value:
        return Output()
    kind, _, arg = value.partition("=")
    if kind in ("wide", "yaml", "json", "name") and not arg:
        return Output(kind)
    if kind in ("custom-columns", "jsonpath", "go-template"):
        if not arg:
            raise OutputError(f"{kind} format specified but no {kind} template given")
        if kind == "custom-columns":
            parse_custom_columns(arg)
        elif kind == "go-template":
            try:
                gotemplate.parse(arg)
            except gotemplate.TemplateError as e:
                raise OutputError(f"error parsing template {arg}, {e}") from None
        else:
            try:
                jsonpath.parse(arg)
            except jsonpath.JSONPathError as e:
                raise OutputError(f"error parsing jsonpath {arg}, {e}") from None
        return Output(kind, arg)
    raise OutputError(f'unable to match a printer suitable for the output format "{value}", allowed formats '
                      f'are: custom-columns,go-template,json,jsonpath,name,wide,yaml')


# --- durations -------------------------------------------------------------------------------

def human_duration(seconds: float) -> str:
    """kubectl's `duration.HumanDuration`: 45s, 5m3s, 3h10m, 4d2h, 2y10d (the server's
    Table columns and the CLI's own columns must age objects the same way)."""
    return human_age(seconds)


def age(ts: str | None, now: datetime | None = None) -> str:
    t = parse_datetime(ts)
    if t is None:
        return "<unknown>"
    now = now or datetime.now(timezone.utc)
    return human_duration((now - t).total_seconds())


# --- columns ---------------------------------------------------------------------------------

def format_columns(rows: list[list[str]], *, widths: list[int] | None = None) -> list[str]:
    """Aligned lines like Go's tabwriter with padding 3 (kubectl's): the last column unpadded."""
    if not rows:
        return []
    n = max(len(r) for r in rows)
    w = list(widths or []) + [0] * n
    for r in rows:
        for i, cell in enumerate(r):
            w[i] = max(w[i], len(cell))
    lines = []
    for r in rows:
        parts = [cell.ljust(w[i] + 3) if i < len(r) - 1 else cell for i, cell in enumerate(r)]
        lines.append("".join(parts))
    return lines


def column_widths(rows: list[list[str]]) -> list[int]:
    n = max((len(r) for r in rows), default=0)
    return [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(n)]


def cell_text(v) -> str:
    if v is None or v == "":
        return "<none>" if v is None else ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return go_value(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def kind_prefix(rt: ResourceType) -> str:
    """`pod`, `deployment.apps`: how kubectl names a type in `-o name` and multi-type tables."""
    return f"{rt.singular}.{rt.group}" if rt.group else rt.singular


def labels_text(labels: dict | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@dataclass
class TableView:
    headers: list[str]
    rows: list[list[str]]


def label_column_header(key: str) -> str:
    """kubectl's `-L` header: the key's last `/` segment, upper-cased (`app.kubernetes.io/name` → NAME)."""
    return key.rsplit("/", 1)[-1].upper()


def table_view(table: dict, *, wide: bool = False, with_namespace: bool = False,
               name_prefix: str | None = None, show_labels: bool = False,
               no_headers: bool = False, label_columns: list[str] | tuple[str, ...] = ()) -> TableView:
    """Rows and headers of a server Table, filtered and decorated like kubectl does."""
    cols = table.get("columnDefinitions") or []
    keep = [i for i, c in enumerate(cols) if wide or int(c.get("priority") or 0) == 0]
    headers = [str(cols[i].get("name", "")).upper() for i in keep]
    name_idx = next((j for j, i in enumerate(keep) if cols[i].get("format") == "name"), 0 if keep else None)
    rows: list[list[str]] = []
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        out = [cell_text(cells[i]) if i < len(cells) else "" for i in keep]
        meta = ((row.get("object") or {}).get("metadata") or {})
        if name_prefix and name_idx is not None and out:
            out[name_idx] = f"{name_prefix}/{out[name_idx]}"
        if with_namespace:
            out.insert(0, meta.get("namespace", ""))
        labels = meta.get("labels") or {}
        out.extend(str(labels.get(k, "")) for k in label_columns)
        if show_labels:
            out.append(labels_text(meta.get("labels")))
        rows.append(out)
    if with_namespace:
        headers.insert(0, "NAMESPACE")
    headers.extend(label_column_header(k) for k in label_columns)
    if show_labels:
        headers.append("LABELS")
    return TableView([] if no_headers else headers, rows)


def objects_table(objs: list[dict], *, now: datetime | None = None) -> dict:
    """A minimal NAME/AGE Table built client-side: what kubectl prints for a plain List."""
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "priority": 0},
                              {"name": "Age", "type": "string", "format": "", "priority": 0}],
        "rows": [{"cells": [o.get("metadata", {}).get("name", ""),
                            age(o.get("metadata", {}).get("creationTimestamp"), now)],
                  "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o.get("metadata", {})}} for o in objs],
    }


def render_table(view: TableView) -> str:
    lines = format_columns(([view.headers] if view.headers else []) + view.rows)
    return "".join(line + "\n" for line in lines)


# --- structured formats --------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, data: str):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    if dumper.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str":
        # a string that would read back as a number/bool/date: double-quote it, as kubectl does
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
                     width=1 << 30)


def to_json(obj) -> str:
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def as_list(items: list[dict]) -> dict:
    """kubectl's wrapper when several objects are printed as one document."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def name_line(rt: ResourceType, obj: dict) -> str:
    return f"{kind_prefix(rt)}/{(obj.get('metadata') or {}).get('name', '')}"


# --- custom columns ----------------------------------------------------------------------------

def parse_custom_columns(spec: str) -> list[tuple[str, str]]:
    """`NAME:.metadata.name,CIDR:.spec.podCIDR` → [(header, expression)]."""
    cols = []
    for part in spec.split(","):
        header, sep, expr = part.partition(":")
        if not sep or not header or not expr.strip():
            raise OutputError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        try:
            jsonpath.find(expr, {})
        except jsonpath.JSONPathError as e:
            raise OutputError(f"unexpected custom-columns spec: {part}: {e}") from None
        cols.append((header, expr.strip()))
    return cols


def go_value(v) -> str:
    """Go's `%v` of decoded JSON, as kubectl's custom-columns prints nested values."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_value(x) for x in v) + "]"
    return jsonpath.go_scalar(v)


def custom_columns_rows(objs: list[dict], cols: list[tuple[str, str]]) -> list[list[str]]:
    rows = []
    for obj in objs:
        row = []
        for _, expr in cols:
            vals = jsonpath.find(expr, obj)
            row.append(",".join(go_value(v) for v in vals) if vals else "<none>")
        rows.append(row)
    return rows


def render_custom_columns(objs: list[dict], spec: str, *, no_headers: bool = False) -> str:
    cols = parse_custom_columns(spec)
    rows = custom_columns_rows(objs, cols)
    lines = format_columns(([] if no_headers else [[h for h, _ in cols]]) + rows)
    return "".join(line + "\n" for line in lines)


def render_objects(out: Output, objs: list[dict], rts: list[ResourceType], *, single: bool,
                   no_headers: bool = False) -> str:
    """Print plain objects in a non-table format. `single`: one object asked for by name."""
    if out.kind == "name":
        return "".join(name_line(rt, o) + "\n" for rt, o in zip(rts, objs))
    if out.kind == "custom-columns":
        return render_custom_columns(objs, out.arg, no_headers=no_headers)
    data = objs[0] if single and len(objs) == 1 else as_list(objs)
    if out.kind == "yaml":
        return to_yaml(data)
    if out.kind == "json":
        return to_json(data)
    if out.kind == "jsonpath":
        return jsonpath.render(out.arg, data)
    if out.kind == "go-template":
        try:
            return gotemplate.render(out.arg, data)
        except gotemplate.TemplateError as e:
            raise OutputError(f"error executing template {out.arg!r}: {e}") from None
    raise OutputError(f"unknown output format {out.kind}")
