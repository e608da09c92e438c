"""OpenAPI v3 documents: what kubectl's field-validation probe and apply patcher look for."""

from __future__ import annotations

import json
import re

import pytest

from kubelab.apiserver.openapi import PATCH_MEDIA_TYPES, document, document_hash, gv_path, index, schema_name
from kubelab.resources import RESOURCES

GVS = sorted({gv_path(rt) for rt in RESOURCES})


def test_index_lists_every_group_version_with_a_hash():
    idx = index()
    assert sorted(idx["paths"]) == GVS
    assert {"api/v1", "apis/apps/v1", "apis/discovery.k8s.io/v1", "apis/coordination.k8s.io/v1"} <= set(idx["paths"])
    for gv, entry in idx["paths"].items():
        assert entry == {"serverRelativeURL": f"/openapi/v3/{gv}?hash={document_hash(gv)}"}
        assert re.fullmatch(r"[0-9A-F]{128}", document_hash(gv))
    assert index() == idx  # stable across calls
    assert len({e["serverRelativeURL"] for e in idx["paths"].values()}) == len(GVS)


@pytest.mark.parametrize("spelled", ["api/v1", "/api/v1", "/openapi/v3/api/v1", "api/v1?hash=X"])
def test_document_path_spellings(spelled):
    assert document(spelled) == document("api/v1")


@pytest.mark.parametrize("gv", ["api/v2", "apis/apps/v2", "apis/batch/v2", "", "openapi/v3"])
def test_unknown_documents(gv):
    assert document(gv) is None


def _supports_field_validation(doc: dict, group: str, version: str, kind: str) -> bool:
    """kubectl's supportsQueryParamV3: the first patch op for the GVK decides."""
    for path in doc["paths"].values():
        op = path.get("patch")
        if not op or op.get("x-kubernetes-group-version-kind") != {"group": group, "version": version, "kind": kind}:
            continue
        return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op.get("parameters", []))
    raise AssertionError(f"Path not found for GVK {group}/{version} {kind}")


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda rt: rt.kind)
def test_each_kind_supports_server_side_field_validation(rt):
    assert _supports_field_validation(document(gv_path(rt)), rt.group, rt.version, rt.kind)


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda rt: rt.kind)
def test_paths_per_resource(rt):
    doc = document(gv_path(rt))
    root = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    coll = f"{root}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{root}/{rt.plural}"
    assert {"get", "post"} <= set(doc["paths"][coll])
    item = doc["paths"][f"{coll}/{{name}}"]
    assert {"get", "put", "patch"} <= set(item)
    assert [p["name"] for p in item["parameters"] if p["in"] == "path"] == (
        ["name", "namespace"] if rt.namespaced else ["name"])
    patch = item["patch"]
    assert patch["x-kubernetes-action"] == "patch"
    # kubectl's apply must compute strategic patches from its built-in types, not our schemas
    assert set(patch["requestBody"]["content"]) == set(PATCH_MEDIA_TYPES)
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    if rt.namespaced:
        assert f"{root}/{rt.plural}" in doc["paths"]
    for sub in set(rt.subresources) & {"status", "scale"}:
        assert "patch" in doc["paths"][f"{coll}/{{name}}/{sub}"]


def test_scale_subresource_carries_the_scale_gvk():
    doc = document("apis/apps/v1")
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]


@pytest.mark.parametrize("rt", RESOURCES, ids=lambda rt: rt.kind)
def test_component_schema_per_kind(rt):
    schemas = document(gv_path(rt))["components"]["schemas"]
    s = schemas[schema_name(rt.group, rt.version, rt.kind)]
    assert s["x-kubernetes-group-version-kind"] == [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    assert {"apiVersion", "kind", "metadata"} <= set(s["properties"])
    assert s["type"] == "object"


@pytest.mark.parametrize("gv", GVS)
def test_every_ref_resolves_and_document_is_json(gv):
    doc = document(gv)
    text = json.dumps(doc)
    assert doc["openapi"].startswith("3.")
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in doc["components"]["schemas"], ref


def test_schema_names_match_upstream():
    assert schema_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schema_name("discovery.k8s.io", "v1", "EndpointSlice") == "io.k8s.api.discovery.v1.EndpointSlice"
    assert schema_name("coordination.k8s.io", "v1", "Lease") == "io.k8s.api.coordination.v1.Lease"


def test_documents_are_independent_copies():
    doc = document("api/v1")
    doc["paths"].clear()
    assert document("api/v1")["paths"]
