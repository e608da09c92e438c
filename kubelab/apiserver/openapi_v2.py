"""`GET /openapi/v2`: the Swagger 2.0 view of the OpenAPI v3 documents, for kubectl 1.27.

kubectl 1.27 (and older) fetches `/openapi/v2` before `apply`, `create -f` and `replace` and
stops with "the server could not find the requested resource" if it is missing. It asks only
for gnostic's protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and
decodes the body as protobuf whatever the content type, so JSON is no answer to it: the
document is built as a dict (swagger 2.0, the same content as `openapi.document()`, which stays
the one source) and encoded to gnostic's `openapi.v2.Document` wire format here. JSON is served
to clients that ask for it (curl, tests).

kubectl reads two things from it:
1. Field validation: the `patch` operation of the object's GVK (operation vendor extension
   `x-kubernetes-group-version-kind`) with a `fieldValidation` query parameter → it sends
   `fieldValidation=Strict` and leaves validation to the server, as later versions do via v3.
2. Client-side apply looks up the kind's *definition* by its `x-kubernetes-group-version-kind`
   to compute a strategic merge patch from it. Our schemas are deliberately shallow, so the
   definitions carry no GVK: kubectl then uses its compiled-in Go types (exact patch metadata
   for every built-in kind), the same choice `openapi.py` makes for v3.

Wire format: only the gnostic fields used below are written; the numbers are gnostic's
OpenAPIv2.proto (written out as constants next to each message). Vendor extension values are
`Any{yaml}` (field 2), which kube-openapi decodes as YAML (JSON is YAML).
"""

from __future__ import annotations

import json
from functools import lru_cache

from . import openapi

PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# What the body is labelled: client-go parses the response Content-Type as a MIME type, and the
# `@` of the requested name is not legal there ("mime: unexpected content after media subtype").
PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_V3_REF = "#/components/schemas/"
_V2_REF = "#/definitions/"


# --- swagger 2.0 as a dict ---------------------------------------------------------------------

def _schema_v2(s: dict, *, keep_gvk: bool = True) -> dict:
    """A v3 schema as a swagger 2.0 schema: refs renamed, `allOf:[$ref]` collapsed to the ref."""
    out: dict = {}
    for k, v in s.items():
        if k == "$ref":
            out[k] = v.replace(_V3_REF, _V2_REF)
        elif k == "allOf" and len(v) == 1 and "$ref" in v[0]:
            out["$ref"] = v[0]["$ref"].replace(_V3_REF, _V2_REF)
        elif k == "x-kubernetes-group-version-kind" and not keep_gvk:
            continue
        elif k in ("properties",):
            out[k] = {n: _schema_v2(p) for n, p in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = _schema_v2(v)
        elif k == "default":
            continue  # v2 defaults on refs are not allowed; kubectl does not need them
        else:
            out[k] = v
    return out


def _param_v2(p: dict) -> dict:
    q = {k: v for k, v in p.items() if k != "schema"}
    q.update({k: v for k, v in p.get("schema", {}).items() if k in ("type", "uniqueItems")})
    return q


def _op_v2(op: dict) -> dict:
    out = {k: op[k] for k in ("tags", "description", "operationId", "x-kubernetes-action",
                              "x-kubernetes-group-version-kind") if k in op}
    out["consumes"] = sorted(op["requestBody"]["content"]) if "requestBody" in op else ["*/*"]
    out["produces"] = ["application/json", "application/yaml"]
    params = [_param_v2(p) for p in op.get("parameters", [])]
    if "requestBody" in op:
        schema = next(iter(op["requestBody"]["content"].values()))["schema"]
        params.append({"name": "body", "in": "body", "required": bool(op["requestBody"].get("required")),
                       "schema": _schema_v2(schema)})
    if params:
        out["parameters"] = params
    out["responses"] = {}
    for code, r in op["responses"].items():
        resp = {"description": r["description"]}
        if "content" in r:
            resp["schema"] = _schema_v2(r["content"]["application/json"]["schema"])
        out["responses"][code] = resp
    return out


@lru_cache(maxsize=1)
def _document_json() -> str:
    paths: dict = {}
    definitions: dict = {}
    for gv in openapi.index()["paths"]:
        doc = openapi.document(gv)
        for path, item in doc["paths"].items():
            paths[path] = {verb: (_op_v2(op) if verb != "parameters" else [_param_v2(p) for p in op])
                           for verb, op in item.items()}
        for name, schema in doc["components"]["schemas"].items():
            definitions[name] = _schema_v2(schema, keep_gvk=False)
    return json.dumps({"swagger": "2.0", "info": {"title": "Kubernetes", "version": openapi.K8S_VERSION},
                       "paths": paths, "definitions": definitions}, sort_keys=True, separators=(",", ":"))


def document() -> dict:
    """The swagger 2.0 document of every served group-version (JSON form)."""
    return json.loads(_document_json())


# --- gnostic protobuf -------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings and messages."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _str(field: int, s: str | None) -> bytes:
    return _ld(field, s.encode()) if s else b""


def _bool(field: int, b: bool | None) -> bytes:
    return _varint(field << 3) + b"\x01" if b else b""


def _named_any(name: str, value) -> bytes:
    # NamedAny{1 name, 2 Any{2 yaml}}
    return _str(1, name) + _ld(2, _str(2, json.dumps(value, sort_keys=True)))


def _extensions(field: int, d: dict) -> bytes:
    return b"".join(_ld(field, _named_any(k, v)) for k, v in sorted(d.items()) if k.startswith("x-"))


def _schema(s: dict) -> bytes:
    # Schema: 1 _ref, 2 format, 4 description, 19 required, 21 additional_properties,
    # 22 type, 23 items, 24 all_of, 25 properties, 31 vendor_extension
    out = _str(1, s.get("$ref")) + _str(2, s.get("format")) + _str(4, s.get("description"))
    out += b"".join(_str(19, r) for r in s.get("required", []))
    if isinstance(s.get("additionalProperties"), dict):  # AdditionalPropertiesItem{1 schema}
        out += _ld(21, _ld(1, _schema(s["additionalProperties"])))
    if "type" in s:  # TypeItem{1 repeated value}
        out += _ld(22, _str(1, s["type"]))
    if "items" in s:  # ItemsItem{1 repeated schema}
        out += _ld(23, _ld(1, _schema(s["items"])))
    if "properties" in s:  # Properties{1 NamedSchema{1 name, 2 value}}
        out += _ld(25, b"".join(_ld(1, _str(1, n) + _ld(2, _schema(p))) for n, p in sorted(s["properties"].items())))
    return out + _extensions(31, s)


def _parameter(p: dict) -> bytes:
    # ParametersItem{1 Parameter{1 BodyParameter, 2 NonBodyParameter{3 query, 4 path}}}
    if p["in"] == "body":  # BodyParameter: 1 description, 2 name, 3 in, 4 required, 5 schema
        body = _str(1, p.get("description")) + _str(2, p["name"]) + _str(3, "body") + \
            _bool(4, p.get("required")) + _ld(5, _schema(p["schema"]))
        return _ld(1, _ld(1, body))
    if p["in"] == "query":  # QueryParameterSubSchema: 1 required, 2 in, 3 description, 4 name, 6 type, 20 unique_items
        sub = _bool(1, p.get("required")) + _str(2, "query") + _str(3, p.get("description")) + \
            _str(4, p["name"]) + _str(6, p.get("type")) + _bool(20, p.get("uniqueItems"))
        return _ld(1, _ld(2, _ld(3, sub)))
    # PathParameterSubSchema: 1 required, 2 in, 3 description, 4 name, 5 type, 19 unique_items
    sub = _bool(1, p.get("required")) + _str(2, "path") + _str(3, p.get("description")) + \
        _str(4, p["name"]) + _str(5, p.get("type")) + _bool(19, p.get("uniqueItems"))
    return _ld(1, _ld(2, _ld(4, sub)))


def _operation(op: dict) -> bytes:
    # Operation: 1 tags, 3 description, 5 operation_id, 6 produces, 7 consumes, 8 parameters,
    # 9 Responses{1 NamedResponseValue{1 name, 2 ResponseValue{1 Response{1 description,
    # 2 SchemaItem{1 schema}}}}}, 13 vendor_extension
    out = b"".join(_str(1, t) for t in op.get("tags", [])) + _str(3, op.get("description")) + \
        _str(5, op.get("operationId"))
    out += b"".join(_str(6, m) for m in op.get("produces", [])) + b"".join(_str(7, m) for m in op.get("consumes", []))
    out += b"".join(_ld(8, _parameter(p)) for p in op.get("parameters", []))
    responses = b""
    for code, r in sorted(op["responses"].items()):
        resp = _str(1, r["description"]) + (_ld(2, _ld(1, _schema(r["schema"]))) if "schema" in r else b"")
        responses += _ld(1, _str(1, code) + _ld(2, _ld(1, resp)))
    return out + _ld(9, responses) + _extensions(13, op)


_VERBS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}  # PathItem's fields; 9 parameters


def encode(doc: dict) -> bytes:
    """gnostic `openapi.v2.Document`: 1 swagger, 2 Info{1 title, 2 version}, 8 Paths{2 NamedPathItem},
    9 Definitions{1 NamedSchema}."""
    out = _str(1, doc["swagger"]) + _ld(2, _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"]))
    paths = b""
    for path, item in sorted(doc["paths"].items()):
        body = b"".join(_ld(_VERBS[verb], _operation(op)) for verb, op in sorted(item.items()) if verb in _VERBS)
        body += b"".join(_ld(9, _parameter(p)) for p in item.get("parameters", []))
        paths += _ld(2, _str(1, path) + _ld(2, body))
    out += _ld(8, paths)
    out += _ld(9, b"".join(_ld(1, _str(1, n) + _ld(2, _schema(s))) for n, s in sorted(doc["definitions"].items())))
    return out


@lru_cache(maxsize=1)
def protobuf() -> bytes:
    """The document in gnostic's protobuf, what kubectl ≤ 1.27 asks for."""
    return encode(document())
