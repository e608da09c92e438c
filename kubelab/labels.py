"""LabelSelector semantics (`matchLabels` AND `matchExpressions`), shared by the API server's
validation, the controllers and the scheduler, so "which pods does this select" has one answer.

Tolerant of malformed input (validation calls it on what users send): anything that is not
the right shape selects as if absent.
"""

from __future__ import annotations


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    return v if isinstance(v, list) else []


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """True when `labels` satisfy a LabelSelector; an empty selector matches everything."""
    labels = labels or {}
    selector = _dict(selector)
    for k, v in _dict(selector.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for r in _list(selector.get("matchExpressions")):
        r = _dict(r)
        key, op, values = r.get("key"), r.get("operator"), _list(r.get("values"))
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
