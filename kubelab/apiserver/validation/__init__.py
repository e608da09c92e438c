"""Object validation, reporting Kubernetes `StatusCause`s worded as upstream words them.

`validate()` returns causes `{"reason", "message", "field"}` that `status.invalid()` turns into
the 422 kubectl prints as `The Pod "bad-1" is invalid: spec.containers[0].image: Required
value`. Messages copy k8s.io/apimachinery's field.Error bodies and validation texts, so what
students see matches the real thing (and the docs they search). Validation runs on the
defaulted object (defaults.apply_defaults first), as upstream does.

One module per API group, as upstream keeps pkg/apis/<group>/validation, over shared parts:

- `formats`   value formats (DNS names, qualified names, label values, ports, IPs, CIDRs)
- `causes`    the cause collector (`Causes`), field.Error's wording
- `meta`      ObjectMeta, label selectors, the update rules every kind shares
- `podspec`   the pod spec, shared by Pod and every workload template
- `core`      Pod, Service, Namespace, Node, Endpoints, ConfigMap, Secret, ServiceAccount, Event
- `apps`      Deployment, ReplicaSet, DaemonSet
- `batch`     Job, CronJob
- `discovery` EndpointSlice; `coordination` Lease; `rbac` Roles and bindings;
  `networking` NetworkPolicy

The hook point is the registry below: `VALIDATORS` and `UPDATE_VALIDATORS` map a kind to its
check, merged from each group module's own two dicts. A new kind adds its group module's
dicts to `_GROUPS` (or, for a module outside the package, calls `register()`), nothing else.

Not done here: ClusterIP range / NodePort allocation (the allocator), cross-object checks
(does the namespace exist?), admission.
"""

from __future__ import annotations

from collections.abc import Callable

from kubelab.labels import selector_matches
from kubelab.resources import ResourceType

from . import apps, batch, coordination, core, discovery, networking, rbac
from .apps import _int_or_percent, _validate_replicated
from .batch import JOB_MANAGED_BY, JOB_UNIMPLEMENTED, schedule_error, time_zone_error
from .causes import Causes, _dict, _fmt, _list
from .core import NODE_PORT_RANGE, POD_UPDATE_FORBIDDEN, SERVICE_TYPES
from .discovery import ADDRESS_TYPES
from .formats import (
    MSG_CONFIG_KEY, MSG_DNS1035_LABEL, MSG_DNS1123_LABEL, MSG_DNS1123_SUBDOMAIN, MSG_ENV_VAR_NAME,
    MSG_IMMUTABLE, MSG_LABEL_VALUE, MSG_PORT_RANGE, MSG_QUALIFIED_NAME, _is_cidr, _is_int, _is_ip,
    dns1035_label_errors, dns1123_label_errors, dns1123_subdomain_errors, is_dns1035_label,
    is_dns1123_label, is_dns1123_subdomain, label_value_errors, port_name_errors, qualified_name_errors,
)
from .meta import (
    LABEL_NAMES, PROTOCOLS, RBAC_KINDS, SELECTOR_OPERATORS, _immutable, _validate_meta_update,
    validate_label_selector, validate_labels, validate_metadata,
)
from .networking import MSG_CIDR, POLICY_TYPES
from .podspec import (
    DNS_POLICIES, PULL_POLICIES, RESTART_POLICIES, TAINT_EFFECTS, TERMINATION_MESSAGE_POLICIES,
    TOLERATION_OPERATORS, pod_field_warnings, validate_pod_fields, validate_pod_spec,
)

Validator = Callable[[Causes, dict], None]
UpdateValidator = Callable[[Causes, dict, dict], None]

# ---- the registry: kind → check, one entry per kind --------------------------------------

_GROUPS = (core, apps, batch, discovery, coordination, rbac, networking)

VALIDATORS: dict[str, Validator] = {k: f for g in _GROUPS for k, f in g.VALIDATORS.items()}
UPDATE_VALIDATORS: dict[str, UpdateValidator] = {k: f for g in _GROUPS for k, f in g.UPDATE_VALIDATORS.items()}

# The names modules outside the package (apiserver/validation_*.py) used before the split:
# the same dict objects, so `v._VALIDATORS.update(...)` still registers a kind.
_VALIDATORS = VALIDATORS
_UPDATE_VALIDATORS = UPDATE_VALIDATORS


def register(validators: dict[str, Validator], update_validators: dict[str, UpdateValidator] | None = None) -> None:
    """Add the checks of kinds validated outside this package; a kind registered twice is a bug."""
    for mine, theirs in ((VALIDATORS, validators), (UPDATE_VALIDATORS, update_validators or {})):
        clash = mine.keys() & theirs.keys()
        if clash:
            raise ValueError(f"validators registered twice for {sorted(clash)}")
        mine.update(theirs)


def validate(rt: ResourceType, obj: dict, *, old: dict | None = None) -> list[dict]:
    """StatusCauses for `obj` of type `rt` ([] when valid); with `old`, also update rules."""
    errs = Causes()
    if not isinstance(obj, dict):
        errs.type_error("", obj, "an object")
        return errs
    from ..shapes import type_causes
    wrong = type_causes(rt.kind, obj)
    if wrong:  # the checks below assume the JSON types (as Go's decoder guarantees upstream)
        return wrong
    validate_metadata(errs, rt, obj.get("metadata"))
    check = VALIDATORS.get(rt.kind)
    if check:
        check(errs, obj)
    if old is not None:
        _validate_meta_update(errs, obj, old)
        update = UPDATE_VALIDATORS.get(rt.kind)
        if update:
            update(errs, obj, old)
    return list(errs)


__all__ = [
    # the entry points and the registry
    "validate", "register", "VALIDATORS", "UPDATE_VALIDATORS", "Causes", "selector_matches",
    # formats
    "MSG_CONFIG_KEY", "MSG_DNS1035_LABEL", "MSG_DNS1123_LABEL", "MSG_DNS1123_SUBDOMAIN", "MSG_ENV_VAR_NAME",
    "MSG_IMMUTABLE", "MSG_LABEL_VALUE", "MSG_PORT_RANGE", "MSG_QUALIFIED_NAME", "dns1035_label_errors",
    "dns1123_label_errors", "dns1123_subdomain_errors", "is_dns1035_label", "is_dns1123_label",
    "is_dns1123_subdomain", "label_value_errors", "port_name_errors", "qualified_name_errors",
    # metadata, selectors, pod spec
    "LABEL_NAMES", "PROTOCOLS", "RBAC_KINDS", "SELECTOR_OPERATORS", "validate_label_selector",
    "validate_labels", "validate_metadata", "DNS_POLICIES", "PULL_POLICIES", "RESTART_POLICIES",
    "TAINT_EFFECTS", "TERMINATION_MESSAGE_POLICIES", "TOLERATION_OPERATORS", "pod_field_warnings",
    "validate_pod_fields", "validate_pod_spec",
    # per group
    "NODE_PORT_RANGE", "POD_UPDATE_FORBIDDEN", "SERVICE_TYPES", "JOB_MANAGED_BY", "JOB_UNIMPLEMENTED",
    "schedule_error", "time_zone_error", "ADDRESS_TYPES", "MSG_CIDR", "POLICY_TYPES",
    # helpers the apiserver/validation_*.py modules of other branches use (until they move in)
    "_dict", "_list", "_fmt", "_is_int", "_is_ip", "_is_cidr", "_immutable", "_int_or_percent",
    "_validate_replicated",
]

# ---- kinds whose module registers itself on import (validation/ingress.py; a branch's apiserver/validation_<x>.py moves in here): one import line each,
# at the end so the registry above exists when they register (e.g. `from . import ingress` below).
# networking/v1 Ingress and IngressClass (validation/ingress.py registers itself on import)
from . import ingress  # noqa: E402,F401
# apps/v1 StatefulSet and policy/v1 PodDisruptionBudget, Eviction (validation/apps_policy.py)
from .apps_policy import UPDATE_VALIDATORS as _AP_UPDATES, VALIDATORS as _AP  # noqa: E402
register(_AP, _AP_UPDATES)
# gateway.networking.k8s.io GatewayClass, Gateway, HTTPRoute, ReferenceGrant (validation/gateway.py)
from . import gateway  # noqa: E402,F401
