"""The request grammar (apiserver/request.py) and the resource routing table (app.py): pure checks,
no server. The live verbs are proven by tests/integration/test_apiserver_crud.py and friends."""

from __future__ import annotations

import pytest

from kubelab.apiserver import app, request
from kubelab.apiserver.request import TARGET_KEY, parse_path, target_of
from kubelab.apiserver.status import StatusError
from kubelab.resources import BY_PLURAL


@pytest.mark.parametrize("path, want", [
    ("/api/v1/pods", ("pods", None, None, None)),
    ("/api/v1/namespaces/ns1/pods/p%2D1/status", ("pods", "ns1", "p-1", "status")),
    ("/apis/apps/v1/namespaces/d/deployments/web/scale", ("deployments", "d", "web", "scale")),
    ("/api/v1/namespaces/ns1", ("namespaces", None, "ns1", None)),
    ("/api/v1/namespaces/ns1/finalize", ("namespaces", None, "ns1", "finalize")),
])
def test_parse_path_names_the_resource(path, want):
    t = parse_path(path)
    assert (t.rt.plural, t.namespace, t.name, t.sub) == want


@pytest.mark.parametrize("path", [
    "/api", "/apis/apps/v1", "/api/v1/widgets", "/api/v1/namespaces//pods", "/api/v1/pods/x/nosuchsub",
    "/api/v1/namespaces/a/nodes", "/api/v1/pods/a/b/c/d",
])
def test_parse_path_refuses_what_is_not_a_resource(path):
    assert parse_path(path) is None


def test_node_proxy_keeps_the_rest_of_the_path():
    t = parse_path("/api/v1/nodes/n1/proxy/configz/x")
    assert (t.name, t.sub, t.proxy_path) == ("n1", "proxy", "configz/x")


def test_target_is_parsed_once_per_request():
    scope = {"type": "http", "path": "/api/v1/namespaces/a/pods/p"}
    first = target_of(scope)
    scope["path"] = "/api/v1/nodes"  # a second parse would see this; the cached Target wins
    assert target_of(scope) is first and scope[TARGET_KEY] is first
    assert target_of({"type": "http", "path": "/healthz"}) is None


@pytest.mark.parametrize("value, got", [(None, "Warn"), ("", "Warn"), ("Strict", "Strict"), ("Ignore", "Ignore")])
def test_field_validation_values(value, got):
    assert request.field_validation(value, "POST") == got


def test_field_validation_refuses_unknown_values_naming_the_field():
    with pytest.raises(StatusError) as e:
        request.field_validation("strict", "PATCH")
    assert e.value.code == 422
    assert e.value.to_status()["details"]["causes"][0]["field"] == "fieldValidation"
    assert "PatchOptions" in e.value.message


@pytest.mark.parametrize("body, ct, code", [
    (b"[1]", "application/json", 400), (b"{", "application/json", 400), (b"a: [", "application/yaml", 400),
    (b"{}", "application/xml", 415),
])
def test_decode_body_refuses_with_a_status(body, ct, code):
    with pytest.raises(StatusError) as e:
        request.decode_body(body, ct)
    assert e.value.code == code


def test_decode_body_reads_json_and_yaml():
    assert request.decode_body(b'{"a":1}', "application/json; charset=utf-8") == {"a": 1}
    assert request.decode_body(b"a: 1\n", "application/yaml") == {"a": 1}


def test_watch_reads_the_first_value_only():
    assert request.watch_requested(["true", "false"]) and not request.watch_requested(["false", "true"])


def test_every_route_names_a_handler_method():
    for name in [*app.COLLECTION_ROUTES.values(), *app.OBJECT_ROUTES.values(), *app.WEBSOCKET_ROUTES.values()]:
        assert callable(getattr(app.ResourceHandler, name, None)), name


def test_every_routed_subresource_is_served_by_some_kind():
    served = {s for rt in BY_PLURAL.values() for s in rt.subresources}
    assert {sub for sub, _ in app.OBJECT_ROUTES if sub is not None} <= served
