"""What the user named on the command line: `TYPE`, `TYPE NAME...`, `TYPE/NAME...`,
`TYPE1,TYPE2`, `all`, and the reads that fetch them (plain objects or server Tables)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelab.client import ApiError, NotFound
from kubelab.resources import ALL, RESOURCES, ResourceType

from . import printers
from .context import CliError, Context, api_error_line, resolve_type

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclass
class Target:
    rt: ResourceType
    names: list[str] = field(default_factory=list)  # empty: every object (of the selector)


def expand_types(spec: str) -> list[ResourceType]:
    out: list[ResourceType] = []
    for part in spec.split(","):
        if not part:
            continue
        if part.lower() == ALL:
            out.extend(r for r in RESOURCES if ALL in r.categories)
        else:
            out.append(resolve_type(part))
    seen, uniq = set(), []
    for r in out:
        if r.plural not in seen:
            seen.add(r.plural)
            uniq.append(r)
    return uniq


def parse_targets(words: list[str], *, verb: str = "get") -> list[Target]:
    if not words:
        raise CliError(f"you must specify the type of resource to {verb}; types: "
                       + ", ".join(r.plural for r in RESOURCES))
    if "/" in words[0]:
        targets: list[Target] = []
        for w in words:
            if "/" not in w:
                raise CliError(f"there is no need to specify a resource type as a separate argument when passing "
                               f"arguments in resource/name form (e.g. 'kubelab {verb} resource/<resource_name>' "
                               f"instead of 'kubelab {verb} resource resource/<resource_name>'")
            type_, _, name = w.partition("/")
            if not name:
                raise CliError("arguments in resource/name form must have a single resource and name")
            rt = resolve_type(type_)
            if targets and targets[-1].rt == rt:
                targets[-1].names.append(name)
            else:
                targets.append(Target(rt, [name]))
        return targets
    rts = expand_types(words[0])
    names = words[1:]
    if names and len(rts) > 1:
        raise CliError("you must specify only one resource type when giving names (or use TYPE/NAME)")
    if any("/" in n for n in names):
        raise CliError("there is no need to specify a resource type as a separate argument when passing "
                       "arguments in resource/name form")
    return [Target(rt, list(names)) for rt in rts]


def multi_type(words: list[str], targets: list[Target]) -> bool:
    """kubectl prefixes names with their type when several types are printed."""
    return len(targets) > 1 or (bool(words) and ("," in words[0] or words[0].lower() == ALL))


def _fill_kind(rt: ResourceType, obj: dict) -> dict:
    obj.setdefault("apiVersion", rt.api_version)
    obj.setdefault("kind", rt.kind)
    return obj


async def fetch_objects(ctx: Context, t: Target, *, label_selector: str | None = None,
                        field_selector: str | None = None) -> tuple[list[dict], str]:
    """Plain objects of one target, and the list's resourceVersion. Missing names are
    reported (kubectl's NotFound line) and skipped."""
    api = ctx.client
    ns = ctx.ns_for(t.rt)
    if t.names:
        objs = []
        for name in t.names:
            try:
                objs.append(_fill_kind(t.rt, await api.get(t.rt, name, namespace=ns if t.rt.namespaced else None)))
            except NotFound as e:
                ctx.error(api_error_line(e))
        return objs, ""
    listed = await api.list(t.rt, namespace=ns, label_selector=label_selector, field_selector=field_selector)
    return [_fill_kind(t.rt, o) for o in listed["items"]], (listed.get("metadata") or {}).get("resourceVersion", "")


async def fetch_table(ctx: Context, t: Target, *, label_selector: str | None = None,
                      field_selector: str | None = None, include_object: bool = False) -> dict:
    """The server's Table for a target (rows of several named GETs merged). If the server
    answers a plain object or List, a NAME/AGE table is made from it, as kubectl does."""
    api = ctx.client
    ns = ctx.ns_for(t.rt)
    if t.names:
        merged: dict | None = None
        for name in t.names:
            try:
                tbl = await _get_table(api, api.path(t.rt, name, namespace=ns),
                                       {"includeObject": "Object"} if include_object else None)
            except NotFound as e:
                ctx.error(api_error_line(e))
                continue
            tbl = as_table(tbl)
            if merged is None:
                merged = tbl
            else:
                merged["rows"].extend(tbl.get("rows") or [])
        return merged or printers.objects_table([])
    params = {"labelSelector": label_selector, "fieldSelector": field_selector}
    if include_object:
        params["includeObject"] = "Object"  # whole objects in the rows: what --sort-by reads
    return as_table(await _get_table(api, api.path(t.rt, namespace=ns), params))


async def _get_table(api, path: str, params: dict | None) -> dict:
    """GET asking for a Table; a server that cannot make one (406, or a 5xx from a missing
    table printer) gets asked for plain JSON, which becomes a NAME/AGE table."""
    try:
        return await api.request("GET", path, params=params, headers={"Accept": TABLE_ACCEPT})
    except ApiError as e:
        if e.code not in (406, 500, 501):
            raise
    return await api.request("GET", path, params=params)


def as_table(answer: dict) -> dict:
    if answer.get("kind") == "Table":
        answer.setdefault("rows", [])
        answer["rows"] = answer["rows"] or []
        return answer
    if "items" in answer:
        return {**printers.objects_table(answer.get("items") or []), "metadata": answer.get("metadata") or {}}
    return printers.objects_table([answer])
