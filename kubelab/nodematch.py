"""Does a pod's placement (tolerations, node selector terms) fit a node? Shared by the
scheduler and the DaemonSet controller, which decide the same question for different ends
(where to bind a pod; which nodes should run a daemon pod)."""

from __future__ import annotations


def tolerates(toleration: dict, taint: dict) -> bool:
    """core/v1 Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def node_selector_term_matches(term: dict, labels: dict, fields: dict) -> bool:
    for expr in term.get("matchExpressions") or []:
        if not expr_matches(expr, labels):
            return False
    for expr in term.get("matchFields") or []:
        if not expr_matches(expr, fields):
            return False
    return bool(term.get("matchExpressions") or term.get("matchFields"))


def expr_matches(expr: dict, labels: dict) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            a, b = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def matches_node(spec: dict, node: dict) -> bool:
    """The pod spec's nodeSelector and required node affinity accept `node`."""
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    fields = {"metadata.name": node["metadata"]["name"]}
    return not terms or any(node_selector_term_matches(t, labels, fields) for t in terms)


def untolerated_taint(spec: dict, node: dict, effects=("NoSchedule", "NoExecute")) -> dict | None:
    """The first taint of `node` with one of `effects` that the pod spec does not tolerate."""
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None
