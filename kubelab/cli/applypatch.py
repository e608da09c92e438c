"""Client-side `apply`: the three-way strategic merge patch kubectl computes.

Three inputs: the configuration applied last time (stored in the object's
`kubectl.kubernetes.io/last-applied-configuration` annotation), the new configuration
(the file), and the live object. The patch
- sets what the file says and the live object does not have (additions and changes,
  ignoring fields the server or controllers added: those are not ours to remove);
- deletes what the last configuration had and the file no longer has (null for map keys,
  `{"name": x, "$patch": "delete"}` for items of lists merged by key,
  `$deleteFromPrimitiveList/<f>` for sets of strings);
- orders keyed lists like the file (`$setElementOrder/<f>`).
An empty patch means "unchanged". Merge keys come from the API server's own strategic-merge
table, so the client and the server agree on which lists merge.
"""

from __future__ import annotations

import copy
import json

from kubelab.apiserver.patch import schema_for

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MISSING = object()


def last_applied_text(obj: dict) -> str:
    """The annotation value for `obj`: itself as compact JSON with sorted keys, without the
    annotation but with an `annotations` map (maybe empty): byte for byte what kubectl writes,
    so kubectl and kubelab each see the other's apply as "unchanged"."""
    clean = copy.deepcopy(obj)
    meta = clean.setdefault("metadata", {})
    ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    ann.pop(LAST_APPLIED, None)
    meta["annotations"] = ann
    return json.dumps(clean, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"


def with_last_applied(obj: dict) -> dict:
    """A copy of `obj` carrying its own last-applied annotation (what create/patch send)."""
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {}).setdefault("annotations", {})
    if out["metadata"]["annotations"] is None:
        out["metadata"]["annotations"] = {}
    out["metadata"]["annotations"][LAST_APPLIED] = last_applied_text(obj)
    return out


def original_of(live: dict) -> dict | None:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _fields(schema) -> dict:
    return getattr(schema, "fields", None) or {}


def _is_merge_list(meta) -> bool:
    return meta is not None and hasattr(meta, "key") and hasattr(meta, "item")


def _diff_map(original: dict | None, modified: dict, current: dict, schema) -> dict:
    patch: dict = {}
    fields = _fields(schema)
    for k in (original or {}):
        if k not in modified and k in current:
            patch[k] = None
    for k, mv in modified.items():
        cv = current.get(k, _MISSING)
        ov = (original or {}).get(k)
        meta = fields.get(k)
        if cv is _MISSING:
            if mv is not None:
                patch[k] = copy.deepcopy(mv)
        elif isinstance(mv, dict) and isinstance(cv, dict):
            sub = _diff_map(ov if isinstance(ov, dict) else None, mv, cv,
                            meta if hasattr(meta, "fields") else None)
            if sub:
                patch[k] = sub
        elif isinstance(mv, list) and isinstance(cv, list) and _is_merge_list(meta):
            _diff_list(patch, k, ov if isinstance(ov, list) else None, mv, cv, meta)
        elif mv != cv:
            patch[k] = copy.deepcopy(mv)
    return patch


def _diff_list(patch: dict, name: str, original: list | None, modified: list, current: list, meta) -> None:
    key = meta.key
    if key is None:  # a set of primitives
        adds = [x for x in modified if x not in current]
        dels = [x for x in (original or []) if x not in modified and x in current]
        if adds:
            patch[name] = copy.deepcopy(modified)
        if dels:
            patch[f"$deleteFromPrimitiveList/{name}"] = dels
        if adds or dels:
            patch[f"$setElementOrder/{name}"] = copy.deepcopy(modified)
        return
    if not all(isinstance(x, dict) and key in x for x in modified):
        if modified != current:  # not mergeable: replace the whole list
            patch[name] = copy.deepcopy(modified) + [{"$patch": "replace"}]
        return
    cur = {x.get(key): x for x in current if isinstance(x, dict)}
    orig = {x.get(key): x for x in (original or []) if isinstance(x, dict)}
    mod_keys = [x[key] for x in modified]
    items: list = []
    for item in modified:
        c = cur.get(item[key])
        if c is None:
            items.append(copy.deepcopy(item))
        else:
            sub = _diff_map(orig.get(item[key]), item, c, meta.item)
            if sub:
                items.append({key: item[key], **sub})
    for k in orig:
        if k not in mod_keys and k in cur:
            items.append({key: k, "$patch": "delete"})
    live_order = [x.get(key) for x in current if isinstance(x, dict) and x.get(key) in mod_keys]
    if items or live_order != mod_keys:
        patch[f"$setElementOrder/{name}"] = [{key: k} for k in mod_keys]
        if items:
            patch[name] = items


# Maps upstream tags `patchStrategy: retainKeys`: when the patch touches them, the keys the
# file lists are the only ones kept (so switching a Deployment to `Recreate` drops the
# server-defaulted `rollingUpdate`, as kubectl's apply does).
RETAIN_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Deployment": (("spec", "strategy"),),
}


def three_way_patch(original: dict | None, modified: dict, current: dict, *, kind: str | None = None) -> dict:
    """The strategic merge patch turning `current` into what `modified` asks, given that
    `original` was applied before. `{}` when there is nothing to change."""
    kind = kind or modified.get("kind")
    patch = _diff_map(original, modified, current, schema_for(kind))
    for path in RETAIN_KEYS.get(kind or "", ()):
        p, m = patch, modified
        for part in path:
            p = p.get(part) if isinstance(p, dict) else None
            m = m.get(part) if isinstance(m, dict) else None
        if isinstance(p, dict) and isinstance(m, dict):
            p["$retainKeys"] = sorted(m)
    return patch
