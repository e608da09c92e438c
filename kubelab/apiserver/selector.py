"""Label and field selectors: parsed once per request, matched per object.

Grammar as Kubernetes: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
comma-separated, all must hold. Field selectors support `=`, `==`, `!=` on a fixed set of
fields per resource (as upstream; anything else is a 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|[^\s!=(),]+)")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SelectorError(f"unable to parse selector {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_labels(text: str | None) -> tuple[Requirement, ...]:
    if not text or not text.strip():
        return ()
    toks, i, reqs = _tokens(text), 0, []

    def expect(cond: bool, what: str) -> None:
        if not cond:
            raise SelectorError(f"unable to parse requirement: {what} in {text!r}")

    while i < len(toks):
        if toks[i] == "!":
            expect(i + 1 < len(toks), "missing key after '!'")
            reqs.append(Requirement(toks[i + 1], "!exists"))
            i += 2
        else:
            key = toks[i]
            expect(key not in {",", "(", ")", "=", "==", "!="}, f"unexpected {key!r}")
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                has_value = i + 1 < len(toks) and toks[i + 1] != ","
                expect(not has_value or toks[i + 1] not in {"(", ")"}, "bad value")
                reqs.append(Requirement(key, op, (toks[i + 1] if has_value else "",)))
                i += 2 if has_value else 1
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                expect(i + 1 < len(toks) and toks[i + 1] == "(", "expected '('")
                i += 2
                values = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        values.append(toks[i])
                    i += 1
                expect(i < len(toks), "expected ')'")
                i += 1
                reqs.append(Requirement(key, op, tuple(values)))
            else:
                raise SelectorError(f"unable to parse requirement: unexpected {toks[i]!r} in {text!r}")
        if i < len(toks):
            expect(toks[i] == ",", f"expected ',' before {toks[i]!r}")
            i += 1
    return tuple(reqs)


def labels_match(reqs: tuple[Requirement, ...], obj: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_map(labels: dict) -> tuple[Requirement, ...]:
    """A `matchLabels`-style map as requirements."""
    return tuple(Requirement(k, "=", (str(v),)) for k, v in sorted(labels.items()))


def _get(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


_COMMON = ("metadata.name", "metadata.namespace")
FIELDS: dict[str, tuple[str, ...]] = {
    "pods": _COMMON + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                       "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": _COMMON + ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "nodes": _COMMON + ("spec.unschedulable",),
    "namespaces": _COMMON + ("status.phase",),
    "secrets": _COMMON + ("type",),
    "replicasets": _COMMON + ("status.replicas",),
}


def parse_fields(resource: str, text: str | None) -> Callable[[dict], bool] | None:
    """A predicate for a field selector, or None when there is none."""
    if not text or not text.strip():
        return None
    allowed = FIELDS.get(resource, _COMMON)
    terms = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)", part)
        if not m:
            raise SelectorError(f'invalid selector: {part!r}; can\'t understand "{part}"')
        field, op, value = m.groups()
        if field not in allowed:
            raise SelectorError(f'field label not supported: {field}')
        terms.append((field, op != "!=", value))

    def match(obj: dict) -> bool:
        for field, eq, value in terms:
            v = _get(obj, field)
            if field == "spec.unschedulable":
                v = "true" if v else "false"
            sv = "" if v is None else str(v)
            if (sv == value) != eq:
                return False
        return True

    return match


def field_value(obj: dict, path: str) -> str:
    v = _get(obj, path)
    return "" if v is None else str(v)
