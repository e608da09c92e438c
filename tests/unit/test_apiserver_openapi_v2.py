"""/openapi/v2: the swagger 2.0 view kubectl ≤ 1.27 needs, and its gnostic protobuf encoding.

The protobuf is checked by decoding it with a small independent wire reader (field numbers
from gnostic's OpenAPIv2.proto), so a wrong number in the encoder fails here, not only in the
kubectl 1.27 integration test."""

from __future__ import annotations

import json

import yaml

from kubelab.apiserver import openapi, openapi_v2
from kubelab.resources import RESOURCES


def _fields(buf: bytes) -> list[tuple[int, bytes | int]]:
    """(number, value) of each field; length-delimited values as bytes, varints as ints."""
    out, i = [], 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
            out.append((number, v))
        elif wire == 2:
            n, i = _read_varint(buf, i)
            out.append((number, buf[i:i + n]))
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _one(buf: bytes, number: int) -> bytes:
    vals = [v for n, v in _fields(buf) if n == number]
    assert len(vals) == 1, (number, vals)
    return vals[0]


def _all(buf: bytes, number: int) -> list:
    return [v for n, v in _fields(buf) if n == number]


def test_every_served_kind_has_a_patch_operation_with_field_validation_and_its_gvk():
    doc = openapi_v2.document()
    assert doc["swagger"] == "2.0" and doc["info"]["version"] == openapi.K8S_VERSION
    patches = {}
    for path, item in doc["paths"].items():
        if "patch" in item:
            op = item["patch"]
            gvk = op["x-kubernetes-group-version-kind"]
            if "fieldValidation" in {p["name"] for p in op["parameters"]} and not path.endswith(("/status", "/scale")):
                patches[(gvk["group"], gvk["version"], gvk["kind"])] = path
    for rt in RESOURCES:
        if "patch" in rt.verbs:
            assert (rt.group, rt.version, rt.kind) in patches, rt.kind


def test_refs_resolve_and_definitions_carry_no_gvk():
    """No GVK on definitions: kubectl 1.27 then computes apply patches from its Go types
    instead of our shallow schemas (which would print 'error calculating patch from openapi')."""
    doc = openapi_v2.document()
    text = json.dumps(doc)
    assert "#/components/schemas/" not in text and '"allOf"' not in text
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/definitions/')[1:]}:
        assert ref in doc["definitions"], ref
    assert all("x-kubernetes-group-version-kind" not in s for s in doc["definitions"].values())
    body = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]["parameters"][-1]
    assert body == {"name": "body", "in": "body", "required": True,
                    "schema": {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}}


def test_protobuf_decodes_to_the_same_document():
    doc = openapi_v2.document()
    pb = openapi_v2.protobuf()
    assert _one(pb, 1) == b"2.0"
    info = _one(pb, 2)
    assert _one(info, 1) == b"Kubernetes" and _one(info, 2) == openapi.K8S_VERSION.encode()
    named = {_one(p, 1).decode(): _one(p, 2) for p in _all(_one(pb, 8), 2)}
    assert set(named) == set(doc["paths"])
    item = named["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = _one(item, 8)  # PathItem.patch
    assert _one(patch, 5) == b"patchNamespacedDeployment"  # operation_id
    exts = {_one(e, 1).decode(): yaml.safe_load(_one(_one(e, 2), 2)) for e in _all(patch, 13)}
    assert exts["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    # ParametersItem.parameter(1) -> Parameter.non_body_parameter(2) -> NonBody.query(3) -> name(4)
    params = [_one(p, 1) for p in _all(patch, 8)]
    assert sum(1 for p in params if _all(p, 1)) == 1  # the body
    query = [_one(_one(p, 2), 3) for p in params if _all(p, 2)]
    assert b"fieldValidation" in {_one(q, 4) for q in query}
    defs = {_one(d, 1).decode(): _one(d, 2) for d in _all(_one(pb, 9), 1)}
    assert set(defs) == set(doc["definitions"])
    meta = defs[openapi.OBJECT_META]
    assert _one(_one(meta, 22), 1) == b"object"  # TypeItem
    props = {_one(p, 1).decode() for p in _all(_one(meta, 25), 1)}
    assert {"name", "namespace", "labels", "annotations"} <= props
