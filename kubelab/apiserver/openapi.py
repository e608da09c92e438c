"""The minimal OpenAPI v3 documents kubectl downloads before `apply`, `create -f`, `replace`.

kubectl (1.27+) reads `/openapi/v3` (an index of group-versions) and `/openapi/v3/<gv>?hash=`
for two things:

1. Does the server validate fields itself? It looks, in the gv document, for the `patch`
   operation whose `x-kubernetes-group-version-kind` is the object's GVK, and for a query
   parameter `fieldValidation` on it. Found: it sends `fieldValidation=Strict` and skips
   client-side validation. Not found: it falls back to /openapi/v2.
2. Client-side `apply` computes its strategic merge patch from the gv's schemas, but only
   when that patch operation accepts `application/strategic-merge-patch+json`. We leave that
   media type out of the requestBody on purpose: kubectl then uses its compiled-in Go types
   (exact patch metadata for every built-in kind) instead of our deliberately small schemas,
   which would make it print "warning: error calculating patch from openapi v3 spec". The
   server still accepts strategic merge patches.

Documents are pure functions of kubelab.resources; `hash` is a digest of the document, so it
changes when the table changes (kubectl caches by it under ~/.kube/cache).
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache

from kubelab.resources import RESOURCES, ResourceType, groups

K8S_VERSION = "v1.32.0"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{_META}.ObjectMeta"
PATCH_MEDIA_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                     "application/apply-patch+yaml")


def gv_path(rt: ResourceType) -> str:
    """`api/v1` or `apis/<group>/<version>`: the index key of a resource's document."""
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def schema_name(group: str, version: str, kind: str) -> str:
    """Upstream's definition names: io.k8s.api.core.v1.Pod, io.k8s.api.apps.v1.Deployment."""
    if kind == "Scale":
        return "io.k8s.api.autoscaling.v1.Scale"
    short = group.split(".")[0] if group else "core"
    return f"io.k8s.api.{short}.{version}.{kind}"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "version": version, "kind": kind}


# --- schemas ------------------------------------------------------------------------------------

_FREE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
_ARRAY = {"type": "array", "items": _FREE}

# Top-level fields besides apiVersion/kind/metadata, per kind (nested objects stay free-form).
_TOP_FIELDS: dict[str, dict] = {
    "ConfigMap": {"data": _STRING_MAP, "binaryData": {"type": "object", "additionalProperties": {
        "type": "string", "format": "byte"}}, "immutable": {"type": "boolean"}},
    "Secret": {"data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
               "stringData": _STRING_MAP, "type": {"type": "string"}, "immutable": {"type": "boolean"}},
    "ServiceAccount": {"secrets": _ARRAY, "imagePullSecrets": _ARRAY,
                       "automountServiceAccountToken": {"type": "boolean"}},
    "Endpoints": {"subsets": _ARRAY},
    "EndpointSlice": {"addressType": {"type": "string", "default": ""}, "endpoints": _ARRAY, "ports": _ARRAY},
    "Event": {k: _FREE for k in ("involvedObject", "source", "series", "related")}
    | {k: {"type": "string"} for k in ("reason", "message", "type", "action", "reportingComponent",
                                       "reportingInstance", "firstTimestamp", "lastTimestamp", "eventTime")}
    | {"count": {"type": "integer", "format": "int32"}},
}
_REQUIRED: dict[str, list[str]] = {"EndpointSlice": ["addressType", "endpoints"],
                                   "Event": ["metadata", "involvedObject"]}


def _kind_schema(rt: ResourceType) -> dict:
    props: dict = {
        "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
        "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
        "metadata": {"allOf": [_ref(OBJECT_META)], "default": {},
                     "description": "Standard object's metadata."},
    }
    if rt.kind in _TOP_FIELDS:
        props.update(copy.deepcopy(_TOP_FIELDS[rt.kind]))
    else:
        props["spec"] = dict(_FREE, default={})
        if rt.has_status:
            props["status"] = dict(_FREE, default={})
    schema = {"type": "object", "description": f"{rt.kind} ({rt.api_version}), served by kubelab.",
              "properties": props,
              "x-kubernetes-group-version-kind": [_gvk(rt.group, rt.version, rt.kind)]}
    if rt.kind in _REQUIRED:
        schema["required"] = _REQUIRED[rt.kind]
    return schema


def _common_schemas() -> dict:
    return {
        OBJECT_META: {"type": "object", "description": "ObjectMeta is metadata that all persisted resources must have.",
                      "properties": {
                          "name": {"type": "string"}, "generateName": {"type": "string"},
                          "namespace": {"type": "string"}, "uid": {"type": "string"},
                          "resourceVersion": {"type": "string"},
                          "generation": {"type": "integer", "format": "int64"},
                          "creationTimestamp": {"type": "string", "format": "date-time"},
                          "deletionTimestamp": {"type": "string", "format": "date-time"},
                          "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
                          "labels": _STRING_MAP, "annotations": _STRING_MAP,
                          "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                                         "x-kubernetes-list-type": "set",
                                         "x-kubernetes-patch-strategy": "merge"},
                          "ownerReferences": {"type": "array", "items": _FREE,
                                              "x-kubernetes-patch-merge-key": "uid",
                                              "x-kubernetes-patch-strategy": "merge"},
                          "managedFields": {"type": "array", "items": _FREE},
                      }},
        f"{_META}.Patch": {"type": "object", "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."},
        f"{_META}.Status": {"type": "object", "description": "Status is a return value for calls that don't return other objects.",
                            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                           "code": {"type": "integer", "format": "int32"},
                                           "details": _FREE, "message": {"type": "string"},
                                           "metadata": _FREE, "reason": {"type": "string"},
                                           "status": {"type": "string"}},
                            "x-kubernetes-group-version-kind": [_gvk("", "v1", "Status")]},
        f"{_META}.DeleteOptions": {"type": "object", "description": "DeleteOptions may be provided when deleting an API object.",
                                   "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                  "gracePeriodSeconds": {"type": "integer", "format": "int64"},
                                                  "propagationPolicy": {"type": "string"},
                                                  "dryRun": {"type": "array", "items": {"type": "string"}},
                                                  "preconditions": _FREE}},
    }


_SCALE = {"type": "object", "description": "Scale represents a scaling request for a resource.",
          "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                         "metadata": {"allOf": [_ref(OBJECT_META)], "default": {}},
                         "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "format": "int32"}}},
                         "status": {"type": "object", "properties": {"replicas": {"type": "integer", "format": "int32"},
                                                                      "selector": {"type": "string"}}}},
          "x-kubernetes-group-version-kind": [_gvk("autoscaling", "v1", "Scale")]}


# --- paths -----------------------------------------------------------------------------------------

def _q(name: str, description: str, type_: str = "string") -> dict:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": True}}


_DRY_RUN = _q("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _q("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.")
_FIELD_VALIDATION = _q("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request "
                       "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.")
_FORCE = _q("force", "Force is going to \"force\" Apply requests.", "boolean")
_PRETTY = _q("pretty", "If 'true', then the output is pretty printed.")
_LIST_PARAMS = [_q(n, n, t) for n, t in (
    ("allowWatchBookmarks", "boolean"), ("continue", "string"), ("fieldSelector", "string"),
    ("labelSelector", "string"), ("limit", "integer"), ("resourceVersion", "string"),
    ("resourceVersionMatch", "string"), ("sendInitialEvents", "boolean"),
    ("timeoutSeconds", "integer"), ("watch", "boolean"))]


def _path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


def _responses(schema: str, *codes: str) -> dict:
    body = {"content": {"application/json": {"schema": _ref(schema)}, "application/yaml": {"schema": _ref(schema)}}}
    names = {"200": "OK", "201": "Created", "202": "Accepted"}
    out = {c: {"description": names[c], **copy.deepcopy(body)} for c in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _op(action: str, op_id: str, schema: str, gvk: dict, *, params: list | None = None,
        body: dict | None = None, codes: tuple[str, ...] = ("200",), tag: str = "") -> dict:
    op = {"tags": [tag] if tag else [], "description": f"{action} {gvk['kind']}", "operationId": op_id,
          "responses": _responses(schema, *codes), "x-kubernetes-action": action,
          "x-kubernetes-group-version-kind": dict(gvk)}
    if params:
        op["parameters"] = copy.deepcopy(params)
    if body:
        op["requestBody"] = body
    return op


def _item_ops(name: str, schema: str, gvk: dict, tag: str, *, delete: bool) -> dict:
    write_params = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    ops = {
        "get": _op("get", f"read{name}", schema, gvk, tag=tag),
        "put": _op("put", f"replace{name}", schema, gvk, params=write_params, codes=("200", "201"), tag=tag,
                   body={"content": {"*/*": {"schema": _ref(schema)}}, "required": True}),
        "patch": _op("patch", f"patch{name}", schema, gvk, params=[*write_params, _FORCE], codes=("200", "201"), tag=tag,
                     body={"content": {mt: {"schema": _ref(f"{_META}.Patch")} for mt in PATCH_MEDIA_TYPES},
                           "required": True}),
    }
    if delete:
        ops["delete"] = _op("delete", f"delete{name}", f"{_META}.Status", gvk, tag=tag,
                            params=[_DRY_RUN, _q("gracePeriodSeconds", "seconds", "integer"),
                                    _q("propagationPolicy", "policy")],
                            body={"content": {"*/*": {"schema": _ref(f"{_META}.DeleteOptions")}}},
                            codes=("200", "202"))
    return ops


def _paths(rt: ResourceType) -> dict:
    gvk = _gvk(rt.group, rt.version, rt.kind)
    schema = schema_name(rt.group, rt.version, rt.kind)
    tag = f"{rt.group.split('.')[0] if rt.group else 'core'}_{rt.version}"
    scope = "Namespaced" if rt.namespaced else ""
    root = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    coll = f"{root}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{root}/{rt.plural}"
    ns_param = [_path_param("namespace", "object name and auth scope, such as for teams and projects")] if rt.namespaced else []
    name_param = _path_param("name", f"name of the {rt.kind}")
    paths: dict = {}
    coll_ops = {
        "get": _op("list", f"list{scope}{rt.kind}", f"{schema}List", gvk, params=_LIST_PARAMS, tag=tag),
        "post": _op("post", f"create{scope}{rt.kind}", schema, gvk, tag=tag,
                    params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], codes=("200", "201", "202"),
                    body={"content": {"*/*": {"schema": _ref(schema)}}, "required": True}),
    }
    paths[coll] = {**coll_ops, "parameters": [*ns_param, _PRETTY]}
    if rt.namespaced:
        paths[f"{root}/{rt.plural}"] = {
            "get": _op("list", f"list{rt.kind}ForAllNamespaces", f"{schema}List", gvk, params=_LIST_PARAMS, tag=tag),
            "parameters": [_PRETTY]}
    paths[f"{coll}/{{name}}"] = {**_item_ops(f"{scope}{rt.kind}", schema, gvk, tag, delete="delete" in rt.verbs),
                                 "parameters": [name_param, *ns_param, _PRETTY]}
    for sub in rt.subresources:
        if sub in ("status", "scale"):
            sgvk, sschema = (gvk, schema) if sub == "status" else (_gvk("autoscaling", "v1", "Scale"), schema_name("autoscaling", "v1", "Scale"))
            ops = _item_ops(f"{scope}{rt.kind}{sub.capitalize()}", sschema, sgvk, tag, delete=False)
            paths[f"{coll}/{{name}}/{sub}"] = {**ops, "parameters": [name_param, *ns_param, _PRETTY]}
    return paths


def _list_schema(rt: ResourceType) -> dict:
    return {"type": "object", "required": ["items"],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "items": {"type": "array", "items": {"allOf": [_ref(schema_name(rt.group, rt.version, rt.kind))], "default": {}}},
                           "metadata": _FREE},
            "x-kubernetes-group-version-kind": [_gvk(rt.group, rt.version, f"{rt.kind}List")]}


# --- public API -------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _document_json(group_version: str) -> str | None:
    rts = [rt for rt in RESOURCES if gv_path(rt) == group_version]
    if not rts:
        return None
    schemas = _common_schemas()
    paths: dict = {}
    for rt in rts:
        paths.update(_paths(rt))
        schemas[schema_name(rt.group, rt.version, rt.kind)] = _kind_schema(rt)
        schemas[f"{schema_name(rt.group, rt.version, rt.kind)}List"] = _list_schema(rt)
        if "scale" in rt.subresources:
            schemas[schema_name("autoscaling", "v1", "Scale")] = _SCALE
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": K8S_VERSION},
           "paths": paths, "components": {"schemas": schemas}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def document(group_version: str) -> dict | None:
    """The OpenAPI v3 document of `api/v1` or `apis/<group>/<version>`; None if not served.
    A leading `/openapi/v3/` or `/` and a `?hash=` query are tolerated."""
    gv = group_version.split("?", 1)[0].strip("/")
    gv = gv[len("openapi/v3/"):] if gv.startswith("openapi/v3/") else gv
    text = _document_json(gv)
    return json.loads(text) if text is not None else None


def document_hash(group_version: str) -> str | None:
    """Upstream-style hash (uppercase hex SHA-512) of the document's canonical JSON."""
    text = _document_json(group_version.strip("/"))
    return hashlib.sha512(text.encode()).hexdigest().upper() if text is not None else None


def index() -> dict:
    """`GET /openapi/v3`: every served group-version with its document URL and hash."""
    paths = {}
    for group, rts in groups().items():
        for version in dict.fromkeys(rt.version for rt in rts):
            gv = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={document_hash(gv)}"}
    return {"paths": paths}
