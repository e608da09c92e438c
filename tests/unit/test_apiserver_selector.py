"""Label and field selector parsing/matching (table-driven)."""

import pytest

from kubelab.apiserver.selector import SelectorError, labels_match, parse_fields, parse_labels

OBJ = {"metadata": {"name": "p1", "namespace": "ns", "labels": {"app": "web", "tier": "fe", "empty": ""}},
       "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("selector,expected", [
    ("", True),
    ("app=web", True), ("app==web", True), ("app=db", False),
    ("app!=db", True), ("app!=web", False), ("missing!=x", True),
    ("tier in (fe,be)", True), ("tier in (be)", False), ("missing in (x)", False),
    ("tier notin (be)", True), ("tier notin (fe)", False), ("missing notin (x)", True),
    ("app", True), ("missing", False), ("!missing", True), ("!app", False),
    ("app=web,tier=fe", True), ("app=web,tier=be", False),
    ("empty=", True), (" app = web , tier in ( fe ) ", True),
])
def test_label_selectors(selector, expected):
    assert labels_match(parse_labels(selector), OBJ) is expected


@pytest.mark.parametrize("bad", ["app in (", "=x", "app=web,,", "a in x"])
def test_bad_label_selectors(bad):
    with pytest.raises(SelectorError):
        parse_labels(bad)


@pytest.mark.parametrize("selector,expected", [
    ("metadata.name=p1", True), ("metadata.name!=p1", False), ("metadata.namespace=ns", True),
    ("spec.nodeName=n1", True), ("spec.nodeName=", False), ("status.phase=Running,spec.nodeName=n1", True),
    ("status.phase==Pending", False),
])
def test_field_selectors(selector, expected):
    assert parse_fields("pods", selector)(OBJ) is expected


def test_unsupported_field():
    with pytest.raises(SelectorError, match="field label not supported: spec.foo"):
        parse_fields("pods", "spec.foo=1")
    assert parse_fields("pods", "") is None


def test_event_involved_object_fields():
    ev = {"metadata": {"name": "e"}, "involvedObject": {"uid": "u1", "kind": "Pod", "name": "p"}}
    assert parse_fields("events", "involvedObject.uid=u1,involvedObject.kind=Pod")(ev)
