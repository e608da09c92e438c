"""The CLI's template languages without a server: JSONPath's escaped dots, the go-template
subset (and what it refuses), `--sort-by` keys and `-L` columns."""

from __future__ import annotations

import pytest

from kubelab.cli import gotemplate, jsonpath, printers
from kubelab.cli.context import CliError
from kubelab.cli.get import sort_key_for

OBJ = {"kind": "Pod", "metadata": {"name": "web-1", "labels": {"app.kubernetes.io/name": "web", "app": "x"}},
       "spec": {"containers": [{"name": "c", "image": "nginx"}]}, "status": {"phase": "Running"}}
LIST = {"kind": "List", "items": [OBJ, {"kind": "Pod", "metadata": {"name": "db-1"}, "status": {}}]}


def test_jsonpath_escaped_dots_name_one_key():
    assert jsonpath.render(r"{.metadata.labels.app\.kubernetes\.io/name}", OBJ) == "web"
    assert jsonpath.render("{.metadata.labels.app}", OBJ) == "x"
    assert jsonpath.render(r"{..app\.kubernetes\.io/name}", LIST) == "web"
    assert jsonpath.render(r"{.metadata.labels.nope\.io}", OBJ) == ""


@pytest.mark.parametrize("template,want", [
    ("{{.metadata.name}}", "web-1"),
    ('{{index .metadata.labels "app.kubernetes.io/name"}}', "web"),
    ("{{range .spec.containers}}{{.name}}={{.image}}{{end}}", "c=nginx"),
    ('{{if eq .status.phase "Running"}}up{{else}}down{{end}}', "up"),
    ("{{.missing}}", "<no value>"),
    ('{{printf "%s/%s" .kind .metadata.name}}', "Pod/web-1"),
    ("{{len .spec.containers}} {{not .spec}}", "1 false"),
    ("a  {{- .kind -}}  b", "aPodb"),
    ("{{range .nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{$.kind}}", "Pod"),
])
def test_go_template_subset(template, want):
    assert gotemplate.render(template, OBJ) == want


def test_go_template_over_a_list():
    t = '{{range .items}}{{.metadata.name}}:{{index .metadata.labels "app"}}{{"\\n"}}{{end}}'
    assert gotemplate.render(t, LIST) == "web-1:x\ndb-1:<no value>\n"


@pytest.mark.parametrize("template,says", [
    ("{{with .spec}}{{end}}", "{{with}} is not supported"), ("{{.a | printf}}", "pipes"),
    ("{{$x := .a}}", "variables"), ("{{template \"x\"}}", "{{template}} is not supported"),
    ("{{call .f}}", 'function "call" not defined'), ("{{range .items}}", "missing {{end}}"),
    ("{{end}}", "unexpected {{end}}"), ("{{.a", "unclosed action"), ("{{.a .b}}", "non-function"),
    ('{{printf "%x" 1}}', "%x is not supported"),
])
def test_go_template_refuses_what_it_does_not_implement(template, says):
    with pytest.raises(gotemplate.TemplateError, match=None) as e:
        gotemplate.render(template, OBJ)
    assert says in str(e.value)


def test_go_template_is_an_output_format():
    out = printers.parse_output("go-template={{.metadata.name}}")
    assert printers.render_objects(out, [OBJ], [None], single=True) == "web-1"
    with pytest.raises(printers.OutputError, match="error parsing template"):
        printers.parse_output("go-template={{with .a}}{{end}}")
    with pytest.raises(printers.OutputError, match="no go-template template given"):
        printers.parse_output("go-template=")


def test_sort_by_keys_and_label_column_headers():
    key = sort_key_for("{.status.phase}")
    objs = [{"status": {"phase": "Running"}}, {"status": {}}, {"status": {"phase": "Pending"}}, {"status": {"phase": 3}}]
    assert [o["status"].get("phase") for o in sorted(objs, key=key)] == [None, 3, "Pending", "Running"]
    assert sort_key_for(None) is None
    with pytest.raises(CliError):
        sort_key_for("{.a[}")
    assert printers.label_column_header("app.kubernetes.io/name") == "NAME"
    view = printers.table_view({"columnDefinitions": [{"name": "Name", "format": "name"}],
                                "rows": [{"cells": ["web-1"], "object": {"metadata": OBJ["metadata"]}}]},
                               label_columns=["app.kubernetes.io/name", "tier"])
    assert view.headers == ["NAME", "NAME", "TIER"] and view.rows == [["web-1", "web", ""]]
