"""coordination.k8s.io/v1 Lease.
"""

from __future__ import annotations

from .causes import Causes, _dict
from .formats import _is_int


def _validate_lease(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    d = spec.get("leaseDurationSeconds")
    if d is not None and (not _is_int(d) or d <= 0):
        errs.invalid("spec.leaseDurationSeconds", d, "must be greater than 0")
    errs.nonneg("spec.leaseTransitions", spec.get("leaseTransitions"))


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {"Lease": _validate_lease}
UPDATE_VALIDATORS: dict = {}
