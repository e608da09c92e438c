"""Validation of apps/v1 StatefulSet and policy/v1 PodDisruptionBudget (upstream's rules and messages).

One home per kind family: the package's `__init__` registers the two tables below
(`VALIDATORS`, `UPDATE_VALIDATORS`) in its registry. Every StatefulSet field is
implemented, or refused with a 422 naming it: `volumeClaimTemplates` needs storage
(PersistentVolumeClaims), which kubelab does not serve yet, so a manifest carrying it is
refused instead of running pods without their volumes; `maxUnavailable` in a rolling update
is an alpha field upstream (gate MaxUnavailableStatefulSet, off by default) and refused too.
"""

from __future__ import annotations

from kubelab.apiserver import validation as v

STATEFULSET_POLICIES = ("OrderedReady", "Parallel")
STATEFULSET_STRATEGIES = ("RollingUpdate", "OnDelete")
PVC_RETENTION = ("Retain", "Delete")
UNHEALTHY_POD_EVICTION = ("IfHealthyBudget", "AlwaysAllow")
# Upstream's list: everything else in a StatefulSet's spec is fixed at creation.
STATEFULSET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
MSG_STATEFULSET_UPDATE = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                          "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                          "'minReadySeconds' are forbidden")
# `<name>-<ordinal>` (label statefulset.kubernetes.io/pod-name) and `<name>-<hash>` (label
# controller-revision-hash) are label values, at most 63 characters: a longer name could
# never get a pod (upstream accepts it and then fails every pod creation; kubelab says so at once).
MAX_NAME = 52
MSG_NO_STORAGE = ("not supported by kubelab: storage (PersistentVolumeClaims) is not served yet, so the pods "
                  "could not get their volumes")


def _validate_statefulset(errs: v.Causes, obj: dict) -> None:
    v._validate_replicated(errs, obj, "statefulset")
    name = v._dict(obj.get("metadata")).get("name") or ""
    if len(name) > MAX_NAME:
        errs.invalid("metadata.name", name, f"must be no more than {MAX_NAME} characters: the pods' names "
                                            "and revision hashes are label values (63 characters at most)")
    spec = v._dict(obj.get("spec"))
    errs.enum("spec.podManagementPolicy", spec.get("podManagementPolicy"), STATEFULSET_POLICIES)
    service = spec.get("serviceName")
    if service:
        errs.each("spec.serviceName", service, v.dns1123_label_errors(service))
    strategy = v._dict(spec.get("updateStrategy"))
    stype = strategy.get("type")
    errs.enum("spec.updateStrategy.type", stype, STATEFULSET_STRATEGIES)
    ru = strategy.get("rollingUpdate")
    if stype == "OnDelete" and ru is not None:
        errs.invalid("spec.updateStrategy.rollingUpdate", ru,
                     "only allowed for updateStrategy 'RollingUpdate'")
    elif ru is not None:
        ru = v._dict(ru)
        errs.nonneg("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"))
        if ru.get("maxUnavailable") is not None:
            errs.forbidden("spec.updateStrategy.rollingUpdate.maxUnavailable",
                           "not supported by kubelab (alpha upstream, feature gate MaxUnavailableStatefulSet)")
    errs.nonneg("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    ordinals = spec.get("ordinals")
    if ordinals is not None:
        errs.nonneg("spec.ordinals.start", v._dict(ordinals).get("start"))
    policy = v._dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for f in ("whenDeleted", "whenScaled"):
        errs.enum(f"spec.persistentVolumeClaimRetentionPolicy.{f}", policy.get(f), PVC_RETENTION, required=False)
    if spec.get("volumeClaimTemplates"):
        errs.forbidden("spec.volumeClaimTemplates", MSG_NO_STORAGE)


def _validate_statefulset_update(errs: v.Causes, obj: dict, old: dict) -> None:
    spec, ospec = v._dict(obj.get("spec")), v._dict(old.get("spec"))
    if {k: x for k, x in spec.items() if k not in STATEFULSET_MUTABLE} != \
            {k: x for k, x in ospec.items() if k not in STATEFULSET_MUTABLE}:
        errs.forbidden("spec", MSG_STATEFULSET_UPDATE)


def _validate_pdb(errs: v.Causes, obj: dict) -> None:
    spec = v._dict(obj.get("spec"))
    low, high = spec.get("minAvailable"), spec.get("maxUnavailable")
    if low is not None and high is not None:
        errs.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set")
    for f in ("minAvailable", "maxUnavailable"):
        n = v._int_or_percent(errs, f"spec.{f}", spec.get(f))
        if n is not None and isinstance(spec.get(f), str) and n > 100 and f == "minAvailable":
            errs.invalid(f"spec.{f}", spec.get(f), "must not be greater than 100%")
    if spec.get("selector") is not None:
        v.validate_label_selector(errs, spec.get("selector"), "spec.selector")
    errs.enum("spec.unhealthyPodEvictionPolicy", spec.get("unhealthyPodEvictionPolicy"), UNHEALTHY_POD_EVICTION,
              required=False)


VALIDATORS = {"StatefulSet": _validate_statefulset, "PodDisruptionBudget": _validate_pdb}
UPDATE_VALIDATORS = {"StatefulSet": _validate_statefulset_update}
