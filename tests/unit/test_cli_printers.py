"""Printers: server Tables rendered like kubectl, custom columns, yaml/json/name, durations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from kubelab.cli import printers
from kubelab.resources import lookup

TABLE = {
    "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "42"},
    "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Ready", "type": "string", "format": "", "priority": 0},
        {"name": "Status", "type": "string", "format": "", "priority": 0},
        {"name": "Restarts", "type": "integer", "format": "", "priority": 0},
        {"name": "Age", "type": "string", "format": "", "priority": 0},
        {"name": "IP", "type": "string", "format": "", "priority": 1},
        {"name": "Node", "type": "string", "format": "", "priority": 1},
    ],
    "rows": [
        {"cells": ["web-1", "1/1", "Running", 0, "5m", "10.244.1.5", "n1"],
         "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "web-1", "namespace": "shop",
                                                                  "labels": {"app": "web", "tier": "fe"}}}},
        {"cells": ["database-0", "0/1", "Pending", 12, "3h", None, None],
         "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "database-0", "namespace": "db"}}},
    ],
}


def test_default_table_hides_priority_columns_and_aligns_like_tabwriter():
    text = printers.render_table(printers.table_view(TABLE))
    assert text == (
        "NAME         READY   STATUS    RESTARTS   AGE\n"
        "web-1        1/1     Running   0          5m\n"
        "database-0   0/1     Pending   12         3h\n")


def test_wide_adds_priority_columns_and_none_cells():
    lines = printers.render_table(printers.table_view(TABLE, wide=True)).splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert lines[2].split()[-2:] == ["<none>", "<none>"]


def test_all_namespaces_prefix_and_labels():
    view = printers.table_view(TABLE, with_namespace=True, name_prefix="pod", show_labels=True)
    assert view.headers[0] == "NAMESPACE" and view.headers[-1] == "LABELS"
    assert view.rows[0][:2] == ["shop", "pod/web-1"]
    assert view.rows[0][-1] == "app=web,tier=fe"
    assert view.rows[1][-1] == "<none>"


def test_no_headers():
    text = printers.render_table(printers.table_view(TABLE, no_headers=True))
    assert not text.startswith("NAME") and text.count("\n") == 2


def test_fallback_table_from_plain_objects():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    t = printers.objects_table([{"metadata": {"name": "x", "creationTimestamp": "2026-01-01T11:57:00Z"}}], now=now)
    assert printers.render_table(printers.table_view(t)) == "NAME   AGE\nx      3m\n"


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (45, "45s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (179 * 60, "179m"),
    (3 * 3600 + 600, "3h10m"), (10 * 3600, "10h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"),
    (800 * 86400, "2y70d"), (-5, "<invalid>"),
])
def test_human_duration(seconds, text):
    assert printers.human_duration(seconds) == text


def test_age_of_timestamps():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert printers.age((now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ"), now) == "30s"
    assert printers.age(None, now) == "<unknown>"


NODES = [
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"a": "b"}},
     "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}},
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-2"}, "spec": {}},
]


def test_custom_columns():
    text = printers.render_custom_columns(NODES, "NAME:.metadata.name,CIDR:.spec.podCIDR,CIDRS:.spec.podCIDRs,"
                                                 "L:.metadata.labels")
    assert text.splitlines() == [
        "NAME     CIDR            CIDRS             L",
        "node-1   10.244.1.0/24   [10.244.1.0/24]   map[a:b]",
        "node-2   <none>          <none>            <none>",
    ]


def test_custom_columns_with_wildcards_joins_values():
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    assert printers.custom_columns_rows([pod], [("C", "{.spec.containers[*].name}")]) == [["a,b"]]


@pytest.mark.parametrize("spec", ["NAME", "NAME:", ":.x", "NAME:.metadata.name,BAD"])
def test_custom_columns_bad_specs(spec):
    with pytest.raises(printers.OutputError, match="custom-columns"):
        printers.parse_custom_columns(spec)


@pytest.mark.parametrize("value,kind", [(None, "table"), ("wide", "wide"), ("yaml", "yaml"), ("json", "json"),
                                        ("name", "name"), ("jsonpath={.a}", "jsonpath"),
                                        ("custom-columns=A:.a", "custom-columns")])
def test_parse_output(value, kind):
    assert printers.parse_output(value).kind == kind


@pytest.mark.parametrize("value", ["xml", "jsonpath=", "jsonpath={.a", "custom-columns=", "yaml=1"])
def test_parse_output_errors(value):
    with pytest.raises(printers.OutputError):
        printers.parse_output(value)


def test_yaml_quotes_ambiguous_strings_and_keeps_multiline_readable():
    obj = {"metadata": {"resourceVersion": "6", "creationTimestamp": "2026-01-01T00:00:00Z", "name": "x"},
           "data": {"on": "yes", "conf": "a: 1\nb: 2\n"}}
    text = printers.to_yaml(obj)
    assert 'resourceVersion: "6"' in text
    assert '"on": "yes"' in text
    assert "conf: |" in text and "  b: 2" in text
    assert yaml.safe_load(text) == obj


def test_render_objects_single_vs_list():
    rt = lookup("nodes")
    out = printers.parse_output("json")
    single = printers.render_objects(out, NODES[:1], [rt], single=True)
    assert '"kind": "Node"' in single and '"items"' not in single
    many = yaml.safe_load(printers.render_objects(printers.parse_output("yaml"), NODES, [rt, rt], single=False))
    assert many["kind"] == "List" and [i["metadata"]["name"] for i in many["items"]] == ["node-1", "node-2"]
    assert printers.render_objects(printers.parse_output("name"), NODES, [rt, rt], single=False) == \
        "node/node-1\nnode/node-2\n"
    assert printers.name_line(lookup("deploy"), {"metadata": {"name": "d"}}) == "deployment.apps/d"
    jp = printers.render_objects(printers.parse_output("jsonpath={.items[*].metadata.name}"), NODES, [rt, rt],
                                 single=False)
    assert jp == "node-1 node-2"
