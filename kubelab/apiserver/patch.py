"""The four PATCH body types of the Kubernetes API, applied to a stored object.

- `application/json-patch+json`: RFC 6902 operations (via the `jsonpatch` library).
- `application/merge-patch+json`: RFC 7386; maps merge, lists are replaced, null deletes.
- `application/strategic-merge-patch+json`: what `kubectl apply` (client side), `edit`,
  `set image`, `label` send. Like a merge patch, except lists Kubernetes declares
  `patchStrategy: merge` are merged item by item on their `patchMergeKey` (containers by
  `name`, container ports by `containerPort`, service ports by `port`...), and the
  directives `$patch`, `$setElementOrder/<f>`, `$retainKeys`, `$deleteFromPrimitiveList/<f>`
  are honoured (`$retainKeys` is what kubectl sends for Deployment.spec.strategy and volume
sources: fields not listed are cleared). The merge keys come from upstream's Go struct tags (table `_SCHEMAS`);
  lists of kinds not in the table are replaced, as upstream does for custom resources.
- `application/apply-patch+yaml`: server-side apply, approximated as a strategic merge of the
  applied configuration onto the live object (no field ownership); nulls mean "not set".

All functions are pure: they return a new dict and never touch their inputs.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import jsonpatch
import jsonpointer

from . import yamlbody

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CONTENT_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


class PatchError(Exception):
    """A patch that cannot be decoded (400), applied (422), or of an unknown type (415)."""

    def __init__(self, message: str, code: int = 422):
        super().__init__(message)
        self.message = message
        self.code = code


# ---------------------------------------------------------------------------------------
# Strategic-merge metadata: which lists merge, and on which key (upstream struct tags).

@dataclass(frozen=True)
class _T:
    """The patch metadata of one struct: its children by field name."""
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _L:
    """A list with patchStrategy merge: items matched on `key` (None: a set of primitives)."""
    key: str | None = None
    item: _T | None = None


_META = _T({"finalizers": _L(None), "ownerReferences": _L("uid")})
_CONTAINER = _T({"ports": _L("containerPort"), "env": _L("name"),
                 "volumeMounts": _L("mountPath"), "volumeDevices": _L("devicePath")})
_POD_SPEC = _T({
    "containers": _L("name", _CONTAINER), "initContainers": _L("name", _CONTAINER),
    "ephemeralContainers": _L("name", _CONTAINER),
    "volumes": _L("name"), "imagePullSecrets": _L("name"),
    "hostAliases": _L("ip"),
})
_CONDITIONS = _T({"conditions": _L("type")})
_TEMPLATE = _T({"metadata": _META, "spec": _POD_SPEC})
_SCHEMAS: dict[str, _T] = {
    "Pod": _T({"metadata": _META, "spec": _POD_SPEC, "status": _T({
        "conditions": _L("type"), "podIPs": _L("ip"), "hostIPs": _L("ip")})}),
    "PodTemplate": _T({"metadata": _META, "template": _TEMPLATE}),
    "Deployment": _T({"metadata": _META, "spec": _T({
        "template": _TEMPLATE}), "status": _CONDITIONS}),
    "ReplicaSet": _T({"metadata": _META, "spec": _T({"template": _TEMPLATE}),
                      "status": _CONDITIONS}),
    "Service": _T({"metadata": _META, "spec": _T({"ports": _L("port")}),
                   "status": _CONDITIONS}),
    "Node": _T({"metadata": _META, "spec": _T({"podCIDRs": _L(None)}), "status": _T({
        "conditions": _L("type"), "addresses": _L("type")})}),
    "Namespace": _T({"metadata": _META, "status": _CONDITIONS}),
}
_DEFAULT = _T({"metadata": _META})


def schema_for(kind: str | None) -> _T:
    return _SCHEMAS.get(kind or "", _DEFAULT)


# ---------------------------------------------------------------------------------------

def apply_patch(obj: dict, body: bytes, content_type: str, *, kind: str | None = None,
                max_bytes: int | None = None) -> dict:
    """Apply a PATCH body to `obj`; a new dict. `kind` picks the strategic-merge metadata
    (default: `obj["kind"]`, or the patch's own `kind` when `obj` is empty). `max_bytes` (the
    stored-object limit) bounds what a JSON patch may copy while it is applied: see
    `json_patch`. Merge patches cannot amplify (the result is at most object + patch)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise PatchError(f"the body of the request was in an unknown format - accepted media "
                         f"types include: {', '.join(CONTENT_TYPES)}", 415)
    try:
        patch = _decode_yaml(body) if ctype == APPLY_PATCH else _decode_json(body)
    except RecursionError:
        raise PatchError("error decoding patch: nested too deeply", 400) from None
    from .shapes import MAX_DEPTH, too_deep
    if too_deep(patch) or too_deep(obj):
        raise PatchError(f"the patch or the object is nested deeper than {MAX_DEPTH} levels", 400)

    if ctype == JSON_PATCH:
        return json_patch(obj, patch, max_bytes=max_bytes)
    if not isinstance(patch, dict):
        raise PatchError(f"{ctype} body must be a JSON object, not {_json_type(patch)}", 400)
    if ctype == MERGE_PATCH:
        return merge_patch(obj, patch)
    kind = kind or obj.get("kind") or patch.get("kind")
    if ctype == STRATEGIC_MERGE_PATCH:
        return strategic_merge(obj, patch, kind=kind)
    return server_side_apply(obj, patch, kind=kind)


def _decode_json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise PatchError(f"error decoding patch: {e}", 400) from None


def _decode_yaml(body: bytes):
    try:
        doc = yamlbody.load(body)
    except yamlbody.YamlBodyError as e:
        raise PatchError(str(e), 400) from None
    if not isinstance(doc, dict):
        raise PatchError(f"apply patch must be an object, not {_json_type(doc)}", 400)
    return doc


def _json_type(v) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(v), "a number")


# --- RFC 6902 -----------------------------------------------------------------------------

MAX_JSON_PATCH_OPERATIONS = 10000  # upstream's maxJSONPatchOperations (a 413 beyond)


def json_patch(obj: dict, ops, *, max_bytes: int | None = None) -> dict:
    """RFC 6902; every op (add, remove, replace, move, copy, test) or a 422 naming the failure.

    Why op by op: `copy` duplicates a subtree without the patch growing, so `copy /a to /a/b`
    twenty-five times builds 2^25 nodes from 2 KB. The bytes all `copy` ops duplicate are
    summed *before* each copy runs, and past `max_bytes` (the size a stored object may have)
    the patch is refused with a 413, as upstream's AccumulatedCopySizeLimit does. Every other
    op only moves or adds what the patch body itself carries, so the result stays bounded by
    object + body + max_bytes, and the work by the op count times that."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be an array of operations", 400)
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
                         f"got {len(ops)}", 413)
    copied = 0
    try:
        result = copy.deepcopy(obj)
        for op in ops:
            if max_bytes is not None and isinstance(op, dict) and op.get("op") == "copy":
                source = jsonpointer.resolve_pointer(result, op.get("from"))
                copied += len(json.dumps(source, separators=(",", ":")))
                if copied > max_bytes:
                    raise PatchError(f"Request entity too large: the json patch copies more than {max_bytes} "
                                     f"bytes (the limit of a stored object)", 413)
            result = jsonpatch.JsonPatch([op]).apply(result, in_place=True)
    except jsonpatch.JsonPatchTestFailed as e:
        raise PatchError(f"the server rejected our request due to an error in our request: "
                         f"testing value failed: {e}", 422) from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
            TypeError, KeyError, IndexError, ValueError, AttributeError) as e:
        raise PatchError(f"the server rejected our request due to an error in our request: "
                         f"{e}", 422) from None
    if not isinstance(result, dict):
        raise PatchError("json patch result is not an object", 422)
    return result


# --- RFC 7386 -----------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null deletes, anything else replaces. The target
    is copied once, then merged into in place: a deep patch costs O(object + patch), not a
    copy of each subtree per level."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    _merge_into(result, patch)
    return result


def _merge_into(result: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            child = result.get(k)
            if not isinstance(child, dict):
                child = {}
            result[k] = child
            _merge_into(child, v)
        else:
            result[k] = copy.deepcopy(v)


# --- Strategic merge patch ---------------------------------------------------------------

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DEL_PRIM = "$deleteFromPrimitiveList/"
_DELETE = object()  # a map that `$patch: delete` removed


def strategic_merge(obj: dict, patch: dict, *, kind: str | None = None) -> dict:
    """Kubernetes strategic merge patch of `patch` onto `obj` (both left untouched)."""
    result = _merge_map(obj, patch, schema_for(kind or obj.get("kind")), path="")
    return {} if result is _DELETE else result


def _merge_map(orig, patch: dict, schema: _T | None, *, path: str, owned: bool = False):
    """`owned`: `orig` is already this merge's own copy (a child of a copied parent), so it
    is merged into in place rather than copied again at every level."""
    orig = orig if isinstance(orig, dict) else {}
    directive = patch.get(_PATCH)
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return strip_directives(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"{path or '<root>'}: unknown patch directive {_PATCH}: {directive!r}")

    fields = schema.fields if schema else {}
    result = orig if owned else copy.deepcopy(orig)
    for key, value in patch.items():
        if key.startswith(_DEL_PRIM):
            name = key[len(_DEL_PRIM):]
            if not isinstance(value, list):
                raise PatchError(f"{path}{name}: {_DEL_PRIM}{name} must be a list")
            if isinstance(result.get(name), list):
                gone = {_ident(x) for x in value}
                result[name] = [x for x in result[name] if _ident(x) not in gone]
            continue
        if key.startswith("$"):
            continue
        sub = f"{path}{key}"
        if value is None:
            result.pop(key, None)
            continue
        meta = fields.get(key)
        if isinstance(value, dict):
            child = meta if isinstance(meta, _T) else None
            merged = _merge_map(result.get(key), value, child, path=sub + ".", owned=True)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and isinstance(meta, _L):
            result[key] = _merge_list(result.get(key), value, meta, path=sub, owned=True)
        else:
            result[key] = strip_directives(value)

    for key, order in patch.items():
        if key.startswith(_ORDER):
            name = key[len(_ORDER):]
            meta = fields.get(name)
            if isinstance(result.get(name), list) and isinstance(order, list):
                result[name] = _reorder(result[name], order, meta.key if isinstance(meta, _L) else None)

    if _RETAIN in patch:
        retain = patch[_RETAIN]
        if not isinstance(retain, list):
            raise PatchError(f"{path or '<root>'}: {_RETAIN} must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(orig, patch: list, meta: _L, *, path: str, owned: bool = False) -> list:
    orig = orig if isinstance(orig, list) else []
    if any(isinstance(x, dict) and x.get(_PATCH) == "replace" for x in patch):
        return [strip_directives(x) for x in patch
                if not (isinstance(x, dict) and x.get(_PATCH) == "replace")]

    if meta.key is None:  # a set of primitives: union, keeping the original order
        result = list(orig) if owned else copy.deepcopy(orig)
        seen = {_ident(x) for x in result}
        for x in patch:
            if isinstance(x, dict):
                raise PatchError(f"{path}: expected a list of primitives, found an object")
            ident = _ident(x)
            if ident not in seen:
                seen.add(ident)
                result.append(x)
        return result

    # Items matched on their key through an index (not a scan per patch item): a patch of
    # n items onto a list of m is O(n + m), not O(n * m). Deleted slots are None until the end.
    key = meta.key
    result: list = list(orig) if owned else copy.deepcopy(orig)
    index = {}
    for i, x in enumerate(result):
        if isinstance(x, dict):
            index.setdefault(_ident(x.get(key)), i)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{path}: expected a list of objects merged by {key!r}, "
                             f"found {json.dumps(item)}")
        if key not in item:
            raise PatchError(f"{path}: map: {json.dumps(item)} does not contain declared "
                             f"merge key: {key}")
        ident = _ident(item[key])
        idx = index.get(ident)
        directive = item.get(_PATCH)
        if directive == "delete":
            if idx is not None:
                result[idx] = None
                del index[ident]
            continue
        if idx is None:
            index[ident] = len(result)
            result.append(strip_directives(item))
        else:
            merged = _merge_map(result[idx], item, meta.item, path=f"{path}[{key}={item[key]}].", owned=True)
            if merged is _DELETE:
                result[idx] = None
                del index[ident]
            else:
                result[idx] = merged
    return [x for x in result if x is not None]


def _ident(value):
    """A hashable identity for a list item or merge key that keeps JSON's distinctions
    (Python has `1 == True` and `1 == 1.0`; JSON and Go do not)."""
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True))
    return (type(value).__name__, value)


def _reorder(items: list, order: list, key: str | None) -> list:
    """`$setElementOrder`: items named in `order` first, in that order; the rest (items the
    client did not know about) keep their relative order after them."""
    def ident(x):
        return x.get(key) if key is not None and isinstance(x, dict) else x

    wanted = [o.get(key) if key is not None and isinstance(o, dict) else o for o in order]
    pos = {json.dumps(w, sort_keys=True): i for i, w in enumerate(wanted)}
    ranked = [(pos.get(json.dumps(ident(x), sort_keys=True), len(pos)), n, x)
              for n, x in enumerate(items)]
    return [x for _, _, x in sorted(ranked, key=lambda t: (t[0], t[1]))]


def strip_directives(value):
    """A copy of `value` without `$...` keys and without `{"$patch": ...}` list items."""
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(x) for x in value
                if not (isinstance(x, dict) and _PATCH in x and len(x) == 1)]
    return value


# --- Server-side apply --------------------------------------------------------------------

def server_side_apply(obj: dict, config: dict, *, kind: str | None = None) -> dict:
    """Apply configuration onto the live object: a strategic merge without directives, where
    null means "unset in my config" (not "delete"), like SSA's treatment of nulls."""
    if obj and config.get("kind") and obj.get("kind") and config["kind"] != obj["kind"]:
        raise PatchError(f"apply patch kind {config['kind']!r} does not match the object's "
                         f"kind {obj['kind']!r}")
    for required in ("apiVersion", "kind"):
        if not config.get(required):
            raise PatchError(f"{required} must be set in an apply patch", 400)
    clean = _drop_nulls(strip_directives(config))
    return strategic_merge(obj, clean, kind=kind or config.get("kind"))


def _drop_nulls(value):
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(x) for x in value]
    return value
