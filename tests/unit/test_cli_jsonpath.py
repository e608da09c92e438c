"""kubectl's JSONPath template subset, as `kubelab get -o jsonpath=...` evaluates it."""

from __future__ import annotations

import pytest

from kubelab.cli.jsonpath import JSONPathError, find, parse, render

PODS = {
    "kind": "List", "apiVersion": "v1",
    "items": [
        {"metadata": {"name": "web-1", "labels": {"app": "web"}},
         "spec": {"nodeName": "n1", "containers": [{"name": "nginx", "image": "nginx:1.25"}]},
         "status": {"phase": "Running", "podIP": "10.244.1.5",
                    "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}},
        {"metadata": {"name": "db-1", "labels": {"app": "db"}},
         "spec": {"nodeName": "n2", "containers": [{"name": "pg", "image": "postgres:16"},
                                                   {"name": "exporter", "image": "exp:1"}]},
         "status": {"phase": "Pending", "restarts": 3,
                    "conditions": [{"type": "Ready", "status": "False"}]}},
    ],
}


@pytest.mark.parametrize("template,expected", [
    ("{.kind}", "List"),
    ("{.items[*].metadata.name}", "web-1 db-1"),
    ("{.items[0].metadata.name}", "web-1"),
    ("{.items[-1].metadata.name}", "db-1"),
    ("{.items[0:1].metadata.name}", "web-1"),
    ("{.items[*].spec.containers[*].image}", "nginx:1.25 postgres:16 exp:1"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', "web-1\tRunning\ndb-1\tPending\n"),
    ('{range .items[*]}[{.spec.nodeName}]{end}', "[n1][n2]"),
    ('{.items[?(@.status.phase=="Running")].metadata.name}', "web-1"),
    ("{.items[?(@.status.phase!='Running')].metadata.name}", "db-1"),
    ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
    ("{.items[?(@.status.restarts>2)].metadata.name}", "db-1"),
    ("{.items[?(@.status.podIP)].metadata.name}", "web-1"),
    ("{..podIP}", "10.244.1.5"),
    ("{.items[0].metadata.labels}", '{"app":"web"}'),
    ("{.items[0].metadata['labels'].app}", "web"),
    ("{.items[*].metadata.missing}", ""),
    ("names: {.items[*].metadata.name}!", "names: web-1 db-1!"),
    ("{.items[1].status.restarts}", "3"),
    ("{$.kind}", "List"),
])
def test_templates(template, expected):
    assert render(template, PODS) == expected


def test_range_over_a_list_value_iterates_its_items():
    assert render('{range .items}{.metadata.name},{end}', PODS) == "web-1,db-1,"


def test_nested_range():
    t = '{range .items[*]}{.metadata.name}:{range .spec.containers[*]}{.name} {end};{end}'
    assert render(t, PODS) == "web-1:nginx ;db-1:pg exporter ;"


def test_find_accepts_bare_braced_and_relaxed_paths():
    pod = PODS["items"][0]
    assert find(".metadata.name", pod) == ["web-1"]
    assert find("{.metadata.name}", pod) == ["web-1"]
    assert find("metadata.name", pod) == ["web-1"]
    assert find(".spec.missing", pod) == []


@pytest.mark.parametrize("bad", ["{.items[0", "{range .items[*]}{.x}", "{end}", "{.items[?(@.a==)]}"])
def test_parse_errors(bad):
    with pytest.raises(JSONPathError):
        parse(bad)
