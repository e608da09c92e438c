"""The validation package's registry (apiserver/validation/__init__.py): one check per kind,
merged from the group modules; the rules themselves are tested in test_apiserver_validation.py."""

from __future__ import annotations

import pytest

from kubelab.apiserver import validation as v
from kubelab.resources import BY_PLURAL


def test_each_validated_kind_is_served():
    kinds = {rt.kind for rt in BY_PLURAL.values()}
    assert set(v.VALIDATORS) <= kinds and set(v.UPDATE_VALIDATORS) <= kinds


def test_group_modules_do_not_claim_the_same_kind():
    seen: dict[str, str] = {}
    for group in v._GROUPS:
        for kind in group.VALIDATORS:
            assert kind not in seen, f"{kind} in {seen.get(kind)} and {group.__name__}"
            seen[kind] = group.__name__


def test_register_refuses_a_kind_twice_and_changes_nothing():
    before = dict(v.VALIDATORS)
    with pytest.raises(ValueError, match="Pod"):
        v.register({"Pod": lambda errs, obj: None, "Widget": lambda errs, obj: None})
    assert v.VALIDATORS == before


def test_register_adds_a_kind_that_validate_then_runs():
    kind = "KubelabTestWidget"
    v.register({kind: lambda errs, obj: errs.required("spec.size")})
    try:
        assert v._VALIDATORS is v.VALIDATORS  # the name validation_*.py modules update
        fake = type("RT", (), {"kind": kind, "namespaced": True, "plural": "widgets", "group": "", "version": "v1"})
        causes = v.validate(fake, {"metadata": {"name": "w", "namespace": "default"}})
        assert [c["field"] for c in causes] == ["spec.size"]
    finally:
        del v.VALIDATORS[kind]
