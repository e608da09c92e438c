"""rbac.authorization.k8s.io/v1: Role/ClusterRole rules and (Cluster)RoleBinding subjects and roleRef.
"""

from __future__ import annotations

from .causes import Causes


def _string_list(errs: Causes, value, path: str, *, required: bool = False) -> None:
    if value is None:
        if required:
            errs.required(path)
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errs.type_error(path, value, "a list of strings")
    elif required and not value:
        errs.required(path)


def _validate_rules(errs: Causes, obj: dict) -> None:
    rules = obj.get("rules")
    if rules is None:
        return
    if not isinstance(rules, list):
        errs.type_error("rules", rules, "a list of PolicyRules")
        return
    for i, r in enumerate(rules):
        p = f"rules[{i}]"
        if not isinstance(r, dict):
            errs.type_error(p, r, "a PolicyRule object")
            continue
        _string_list(errs, r.get("verbs"), f"{p}.verbs", required=True)
        for f in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"):
            _string_list(errs, r.get(f), f"{p}.{f}")
        if r.get("nonResourceURLs") and obj.get("kind") == "Role":
            errs.invalid(f"{p}.nonResourceURLs", r["nonResourceURLs"], "namespaced rules cannot apply to "
                                                                     "non-resource URLs")
        elif not r.get("nonResourceURLs") and not r.get("resources"):
            errs.required(f"{p}.resources", "resource rules must supply at least one resource")


def _validate_binding(errs: Causes, obj: dict) -> None:
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        errs.required("roleRef") if ref is None else errs.type_error("roleRef", ref, "a RoleRef object")
    else:
        kinds = ("Role", "ClusterRole") if obj.get("kind") == "RoleBinding" else ("ClusterRole",)
        errs.enum("roleRef.kind", ref.get("kind"), kinds)
        if not isinstance(ref.get("name"), str) or not ref.get("name"):
            errs.required("roleRef.name")
    subjects = obj.get("subjects")
    if subjects is None:
        return
    if not isinstance(subjects, list):
        errs.type_error("subjects", subjects, "a list of Subjects")
        return
    for i, sj in enumerate(subjects):
        if not isinstance(sj, dict):
            errs.type_error(f"subjects[{i}]", sj, "a Subject object")
            continue
        errs.enum(f"subjects[{i}].kind", sj.get("kind"), ("User", "Group", "ServiceAccount"))
        if not isinstance(sj.get("name"), str) or not sj.get("name"):
            errs.required(f"subjects[{i}].name")


def _validate_binding_update(errs: Causes, obj: dict, old: dict) -> None:
    """Upstream: a binding's roleRef never changes (delete and recreate to point elsewhere)."""
    if old.get("roleRef") and obj.get("roleRef") != old["roleRef"]:
        errs.invalid("roleRef", obj.get("roleRef"), "cannot change roleRef")


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {
    "Role": _validate_rules, "ClusterRole": _validate_rules,
    "RoleBinding": _validate_binding, "ClusterRoleBinding": _validate_binding,
}
UPDATE_VALIDATORS = {"RoleBinding": _validate_binding_update, "ClusterRoleBinding": _validate_binding_update}
