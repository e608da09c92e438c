"""apps/v1 kinds: Deployment, ReplicaSet, DaemonSet (and the selector-is-immutable update rule).
"""

from __future__ import annotations

from kubelab.labels import selector_matches

from .causes import Causes, _dict
from .formats import _full, _is_int, _PERCENT
from .meta import _immutable, validate_label_selector, validate_labels
from .podspec import validate_pod_spec


def _validate_replicated(errs: Causes, obj: dict, kind: str) -> None:
    spec = _dict(obj.get("spec"))
    replicas = spec.get("replicas")
    if replicas is not None:
        errs.nonneg("spec.replicas", replicas)
    errs.nonneg("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        errs.required("spec.selector")
    elif not _dict(selector).get("matchLabels") and not _dict(selector).get("matchExpressions"):
        errs.invalid("spec.selector", selector, f"empty selector is invalid for {kind}")
    else:
        validate_label_selector(errs, selector, "spec.selector")
    if not isinstance(template, dict):
        errs.required("spec.template")
        return
    tmeta = _dict(template.get("metadata"))
    labels = tmeta.get("labels") or {}
    validate_labels(errs, tmeta.get("labels"), "spec.template.metadata.labels")
    if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")) \
            and not selector_matches(selector, labels):
        errs.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    pod_spec = template.get("spec")
    validate_pod_spec(errs, pod_spec, "spec.template.spec")
    rp = _dict(pod_spec).get("restartPolicy")
    if rp not in (None, "", "Always"):
        errs.not_supported("spec.template.spec.restartPolicy", rp, ("Always",))
    if _dict(pod_spec).get("activeDeadlineSeconds") is not None:
        errs.forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported")


def _int_or_percent(errs: Causes, path: str, v) -> int | None:
    """Returns the value when it is a plain number or a percentage (number part), else None."""
    if v is None:
        return None
    if _is_int(v):
        if v < 0:
            errs.invalid(path, v, "must be greater than or equal to 0")
        return v
    if isinstance(v, str) and _full(_PERCENT, v):
        n = int(v[:-1])
        if n > 100 and path.endswith("maxUnavailable"):
            errs.invalid(path, v, "must not be greater than 100%")
        return n
    errs.invalid(path, v, "a valid percent string must be a numeric string followed by an ending '%' "
                          "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
    return None


def _validate_deployment(errs: Causes, obj: dict) -> None:
    _validate_replicated(errs, obj, "deployment")
    spec = _dict(obj.get("spec"))
    strategy = _dict(spec.get("strategy"))
    stype = strategy.get("type")
    errs.enum("spec.strategy.type", stype, ("Recreate", "RollingUpdate"), required=False)
    ru = strategy.get("rollingUpdate")
    if stype == "Recreate" and ru is not None:
        errs.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif ru is not None:
        ru = _dict(ru)
        unavailable = _int_or_percent(errs, "spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"))
        surge = _int_or_percent(errs, "spec.strategy.rollingUpdate.maxSurge", ru.get("maxSurge"))
        if unavailable == 0 and surge == 0:
            errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "may not be 0 when `maxSurge` is 0")
    errs.nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        mrs = spec.get("minReadySeconds") or 0
        if not _is_int(pds) or pds <= 0:
            errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than 0")
        elif _is_int(mrs) and pds <= mrs:
            errs.invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def _validate_daemonset(errs: Causes, obj: dict) -> None:
    _validate_replicated(errs, obj, "daemonset")
    strategy = _dict(_dict(obj.get("spec")).get("updateStrategy"))
    stype = strategy.get("type")
    errs.enum("spec.updateStrategy.type", stype, ("OnDelete", "RollingUpdate"), required=False)
    ru = strategy.get("rollingUpdate")
    if stype == "OnDelete" and ru is not None:
        errs.forbidden("spec.updateStrategy.rollingUpdate", "may not be specified when strategy `type` is 'OnDelete'")
    elif ru is not None:
        ru = _dict(ru)
        unavailable = _int_or_percent(errs, "spec.updateStrategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"))
        surge = ru.get("maxSurge")
        if surge not in (None, 0, "0%"):
            errs.forbidden("spec.updateStrategy.rollingUpdate.maxSurge",
                           "not supported by kubelab's daemonset controller (must be 0)")
        elif unavailable == 0:
            errs.invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", ru.get("maxUnavailable"),
                         "cannot be 0 when maxSurge is 0")
    errs.nonneg("spec.revisionHistoryLimit", _dict(obj.get("spec")).get("revisionHistoryLimit"))


def _validate_replicaset(errs: Causes, obj: dict) -> None:
    _validate_replicated(errs, obj, "replicaset")


def _validate_replicated_update(errs: Causes, obj: dict, old: dict) -> None:
    _immutable(errs, "spec.selector", _dict(obj.get("spec")).get("selector"),
               _dict(old.get("spec")).get("selector"))


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {"Deployment": _validate_deployment, "ReplicaSet": _validate_replicaset, "DaemonSet": _validate_daemonset}
UPDATE_VALIDATORS = {
    "Deployment": _validate_replicated_update, "ReplicaSet": _validate_replicated_update,
    "DaemonSet": _validate_replicated_update,
}
