"""Hostile input against the real API server (hypothesis): malformed JSON/YAML, wrong types,
huge strings, deep nesting, invalid names, unknown fields, bad patches.

Every case is invalid by construction, so every answer must be a 4xx `Status` (never a 500,
never a framework body) and nothing may be stored: at the end the namespace holds only the
seed objects, unchanged. The number of cases tried is printed."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

COUNTS: dict[str, int] = {}
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TARGETS = ("pods", "configmaps", "services", "secrets", "serviceaccounts")
APPS = ("deployments", "replicasets")


@pytest.fixture(scope="module")
def fz(apiserver):
    ns = f"fz-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=apiserver.url, timeout=30) as h:
        assert h.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
        seed = {"metadata": {"name": "seed"}, "data": {"k": "v"}}
        assert h.post(f"/api/v1/namespaces/{ns}/configmaps", json=seed).status_code == 201
        pod = {"metadata": {"name": "seedpod"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        assert h.post(f"/api/v1/namespaces/{ns}/pods", json=pod).status_code == 201
        before = {p: _snapshot(h, ns, p) for p in (*TARGETS, *APPS)}
        try:
            yield h, ns
            after = {p: _snapshot(h, ns, p) for p in (*TARGETS, *APPS)}
            assert after == before, "hostile input changed what is stored"
            total = sum(COUNTS.values())
            print(f"\nfuzz: {total} hostile requests, all answered 4xx Status, nothing stored: "
                  + ", ".join(f"{k}={v}" for k, v in sorted(COUNTS.items())))
        finally:
            h.delete(f"/api/v1/namespaces/{ns}")


def _snapshot(h, ns, plural):
    base = f"/apis/apps/v1/namespaces/{ns}/{plural}" if plural in APPS else f"/api/v1/namespaces/{ns}/{plural}"
    items = h.get(base).json()["items"]
    return sorted((o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in items)


def _path(ns, plural, name=None):
    base = f"/apis/apps/v1/namespaces/{ns}/{plural}" if plural in APPS else f"/api/v1/namespaces/{ns}/{plural}"
    return base + (f"/{name}" if name else "")


def check(kind: str, r: httpx.Response) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + 1
    assert 400 <= r.status_code < 500, f"{kind}: {r.status_code} {r.text[:300]}"
    body = r.json()
    assert body.get("kind") == "Status" and body.get("status") == "Failure" and body.get("code") == r.status_code, body


# ---- strategies -----------------------------------------------------------------------------

json_scalars = hs.one_of(hs.none(), hs.booleans(), hs.integers(), hs.floats(allow_nan=False, allow_infinity=False), hs.text(max_size=20))
json_values = hs.recursive(json_scalars, lambda c: hs.one_of(hs.lists(c, max_size=4),
                                                              hs.dictionaries(hs.text(max_size=8), c, max_size=4)),
                           max_leaves=12)
not_a_string = hs.one_of(hs.integers(), hs.booleans(), hs.lists(json_scalars, max_size=3),
                         hs.dictionaries(hs.text(max_size=5), json_scalars, max_size=3), hs.floats(allow_nan=False, allow_infinity=False))
not_a_list = hs.one_of(hs.integers(), hs.booleans(), hs.text(max_size=10),
                       hs.dictionaries(hs.text(max_size=5), json_scalars, max_size=3))
not_a_map = hs.one_of(hs.integers(), hs.booleans(), hs.text(max_size=10), hs.lists(json_scalars, max_size=3))
bad_names = hs.one_of(
    hs.text(min_size=1, max_size=30).filter(lambda s: not all(c.islower() or c.isdigit() or c in "-." for c in s)
                                            or s[0] in "-." or s[-1] in "-."),
    hs.just("a" * 300), hs.just("UPPER"), hs.just("under_score"), hs.just("-lead"), hs.just("trail-"),
    hs.just(".."), hs.just("x" * 254), hs.just("a.-b"),
)


def _valid(plural: str, name: str) -> dict:
    return {
        "pods": {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        "configmaps": {"metadata": {"name": name}, "data": {"a": "b"}},
        "secrets": {"metadata": {"name": name}, "stringData": {"a": "b"}},
        "serviceaccounts": {"metadata": {"name": name}},
        "services": {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}},
        "deployments": {"metadata": {"name": name}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
    }[plural]


# (plural, path to a field, strategy of a wrong value for it)
WRONG_TYPES = [
    ("pods", ["spec", "containers"], not_a_list), ("pods", ["spec", "containers", 0, "image"], not_a_string),
    ("pods", ["spec", "containers", 0, "name"], not_a_string), ("pods", ["spec"], not_a_map),
    ("pods", ["spec", "containers", 0, "ports"], not_a_list), ("pods", ["spec", "containers", 0, "env"], not_a_list),
    ("pods", ["spec", "containers", 0, "command"], not_a_list), ("pods", ["spec", "volumes"], not_a_list),
    ("pods", ["spec", "restartPolicy"], not_a_string), ("pods", ["spec", "nodeSelector"], not_a_map),
    ("pods", ["metadata", "labels"], not_a_map), ("pods", ["metadata", "annotations"], not_a_map),
    ("pods", ["metadata"], not_a_map), ("pods", ["metadata", "name"], not_a_string),
    ("configmaps", ["data"], not_a_map), ("configmaps", ["data", "a"], not_a_string),
    ("secrets", ["stringData"], not_a_map), ("secrets", ["data"], not_a_map),
    ("services", ["spec", "ports"], not_a_list), ("services", ["spec", "ports", 0, "port"], hs.one_of(
        hs.text(max_size=5), hs.booleans(), hs.integers(max_value=0), hs.integers(min_value=65536))),
    ("services", ["spec", "selector"], not_a_map), ("services", ["spec", "type"], not_a_string),
    ("services", ["spec", "clusterIP"], not_a_string),
    ("deployments", ["spec", "replicas"], hs.one_of(hs.text(max_size=5), hs.integers(max_value=-1), hs.booleans())),
    ("deployments", ["spec", "selector"], not_a_map), ("deployments", ["spec", "template"], not_a_map),
    ("deployments", ["spec", "template", "spec", "containers"], not_a_list),
    ("deployments", ["spec", "selector", "matchLabels"], not_a_map),
]


def _set(obj, path, value):
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def _deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


# ---- the cases --------------------------------------------------------------------------------

@SETTINGS
@given(plural=hs.sampled_from(TARGETS + ("deployments",)), body=hs.one_of(
    hs.binary(max_size=200),
    hs.text(max_size=200).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()).filter(lambda b: not b.startswith(b"{")),
    json_values.map(lambda v: json.dumps(v).encode()[:-1]),
), ct=hs.sampled_from(["application/json", "application/yaml", "application/json; charset=utf-8"]))
def test_malformed_bodies(fz, plural, body, ct):
    h, ns = fz
    try:
        if ct == "application/yaml" and isinstance(yaml.safe_load(body), dict):
            body = b"[" + body  # keep it invalid: a YAML mapping would be a (maybe valid) object
    except Exception:
        pass
    check("malformed", h.post(_path(ns, plural), content=body, headers={"Content-Type": ct}))


@SETTINGS
@given(case=hs.sampled_from(WRONG_TYPES).flatmap(lambda c: hs.tuples(hs.just(c), c[2])))
def test_wrong_types(fz, case):
    (plural, path, _), value = case
    h, ns = fz
    obj = _valid(plural, f"wt-{uuid.uuid4().hex[:8]}")
    _set(obj, path, value)
    check("wrong-type", h.post(_path(ns, plural), json=obj))


@SETTINGS
@given(plural=hs.sampled_from(TARGETS), name=bad_names, in_path=hs.booleans(),
       extra=hs.dictionaries(hs.text(min_size=1, max_size=10).filter(lambda k: k not in (
           "metadata", "spec", "data", "stringData", "kind", "apiVersion", "status", "type", "immutable",
           "binaryData", "secrets", "imagePullSecrets", "automountServiceAccountToken")), json_values, max_size=3))
def test_invalid_names_and_unknown_fields(fz, plural, name, in_path, extra):
    h, ns = fz
    obj = {**_valid(plural, name), **extra}
    if in_path:  # PUT to a name that is invalid in the URL
        r = h.put(_path(ns, plural, quote(name, safe="")), json=obj)
    else:
        r = h.post(_path(ns, plural), json=obj)
    if r.status_code == 404 and in_path:
        COUNTS["invalid-name"] = COUNTS.get("invalid-name", 0) + 1
        assert r.json()["kind"] == "Status"
        return
    check("invalid-name", r)


@SETTINGS
@given(plural=hs.sampled_from(("configmaps", "pods")), size=hs.sampled_from([64 * 1024, 300 * 1024, 2 * 1024 * 1024]),
       where=hs.sampled_from(["name", "label", "annotation-key", "generateName"]))
def test_huge_strings(fz, plural, size, where):
    h, ns = fz
    big = "a" * size
    obj = _valid(plural, f"hs-{uuid.uuid4().hex[:8]}")
    if where == "name":
        obj["metadata"]["name"] = big
    elif where == "generateName":
        obj["metadata"] = {"generateName": big}
    elif where == "label":
        obj["metadata"]["labels"] = {"a": big}
    else:
        obj["metadata"]["annotations"] = {big: "x"}
    check("huge-string", h.post(_path(ns, plural), json=obj))


@SETTINGS
@given(depth=hs.integers(min_value=50, max_value=100000), kind=hs.sampled_from(["list", "map"]),
       where=hs.sampled_from(["body", "data", "patch"]), ct=hs.sampled_from(["application/json", "application/yaml"]))
def test_deep_nesting(fz, depth, kind, where, ct):
    h, ns = fz
    inner = _deep(depth, kind)
    if where == "body":
        r = h.post(_path(ns, "configmaps"), content=inner.encode(), headers={"Content-Type": ct})
    elif where == "data":  # a deep value where a string belongs
        body = '{"metadata":{"name":"deep-%s"},"data":{"a":%s}}' % (uuid.uuid4().hex[:6], inner)
        r = h.post(_path(ns, "configmaps"), content=body.encode(), headers={"Content-Type": ct})
    else:
        body = '{"data":{"k":%s}}' % inner
        r = h.patch(_path(ns, "configmaps", "seed"), content=body.encode(),
                    headers={"Content-Type": "application/merge-patch+json"})
    check("deep-nesting", r)


bad_json_patches = hs.one_of(
    json_values.filter(lambda v: not isinstance(v, list)),
    hs.lists(hs.fixed_dictionaries({"op": hs.text(max_size=8).filter(
        lambda s: s not in ("add", "remove", "replace", "move", "copy", "test")),
        "path": hs.text(max_size=10)}), min_size=1, max_size=3),
    hs.lists(hs.fixed_dictionaries({"op": hs.sampled_from(["remove", "replace", "move", "copy"]),
                                    "path": hs.sampled_from(["/nope/x", "/data/missing", "/metadata/x/y", "", "data",
                                                             "/spec/containers/9"]),
                                    "from": hs.sampled_from(["/nope", "/data/missing"])}), min_size=1, max_size=3),
    hs.just([{"op": "test", "path": "/data/k", "value": "not-v"}, {"op": "replace", "path": "/data/k", "value": "x"}]),
    hs.builds(lambda v: [{"op": "replace", "path": "/metadata/name", "value": v}], hs.one_of(not_a_string, bad_names)),
    hs.builds(lambda v: [{"op": "add", "path": "/data", "value": v}], not_a_map),
)
bad_merge_patches = hs.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    hs.builds(lambda v: {"data": v}, not_a_map.filter(lambda v: v is not None)),
    hs.builds(lambda v: {"data": {"k": v}}, not_a_string.filter(lambda v: v is not None)),
    hs.builds(lambda v: {"metadata": {"name": v}}, hs.one_of(not_a_string, bad_names)),
    hs.builds(lambda v: {"metadata": v}, not_a_map.filter(lambda v: v is not None)),
    hs.builds(lambda v: {"metadata": {"labels": v}}, not_a_map.filter(lambda v: v is not None)),
    hs.builds(lambda v: {"kind": v}, hs.text(min_size=1, max_size=8).filter(lambda s: s != "ConfigMap")),
)


@SETTINGS
@given(patch=hs.one_of(bad_json_patches.map(lambda p: ("application/json-patch+json", json.dumps(p).encode())),
                       bad_merge_patches.map(lambda p: ("application/merge-patch+json", json.dumps(p).encode())),
                       bad_merge_patches.map(lambda p: ("application/strategic-merge-patch+json",
                                                        json.dumps(p).encode())),
                       hs.binary(max_size=50).map(lambda b: ("application/merge-patch+json", b"{" + b)),
                       hs.just(("application/x-unknown", b"{}"))))
def test_bad_patches(fz, patch):
    h, ns = fz
    ct, body = patch
    check("bad-patch", h.patch(_path(ns, "configmaps", "seed"), content=body, headers={"Content-Type": ct}))


@SETTINGS
@given(patch=hs.one_of(
    hs.builds(lambda v: {"spec": {"containers": v}}, not_a_list.filter(lambda v: v is not None)),
    hs.builds(lambda v: {"spec": {"containers": [{"name": "c", "image": v}]}}, not_a_string),
    hs.builds(lambda v: {"spec": {"nodeName": v}}, not_a_string.filter(lambda v: v is not None)),
    hs.builds(lambda v: {"metadata": {"name": v}}, hs.text(min_size=1, max_size=10).filter(lambda s: s != "seedpod")),
), ct=hs.sampled_from(["application/merge-patch+json", "application/strategic-merge-patch+json"]))
def test_bad_pod_patches(fz, patch, ct):
    h, ns = fz
    check("bad-pod-patch", h.patch(_path(ns, "pods", "seedpod"), content=json.dumps(patch).encode(),
                                   headers={"Content-Type": ct}))


# ---- amplification: small requests that expand (alias bombs, self-copying patches) -----------

def _alias_bomb(levels: int, width: int, kind: str) -> bytes:
    """`levels` anchored lists, each `width` aliases of the one before: width**levels nodes.
    `kind` puts the bomb where a mapping (map) or a list (seq) is expected."""
    lines = ["metadata: {name: bomb-%s}" % uuid.uuid4().hex[:6], "x0: &x0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        refs = ", ".join([f"*x{i - 1}"] * width)
        lines.append(f"x{i}: &x{i} " + ("[" + refs + "]" if kind == "seq" else
                                         "{" + ", ".join(f"k{j}: *x{i - 1}" for j in range(width)) + "}"))
    lines.append(f"data: {{k: *x{levels - 1}}}")
    return "\n".join(lines).encode()


@SETTINGS
@given(levels=hs.integers(min_value=6, max_value=12), width=hs.integers(min_value=5, max_value=12),
       kind=hs.sampled_from(["seq", "map"]),
       target=hs.sampled_from(["post", "apply-existing", "apply-new", "ssar", "put"]))
def test_alias_bombs(fz, levels, width, kind, target):
    h, ns = fz
    body = _alias_bomb(levels, width, kind)
    yaml_ct = {"Content-Type": "application/yaml"}
    if target == "post":
        r = h.post(_path(ns, "configmaps"), content=body, headers=yaml_ct)
    elif target == "put":
        r = h.put(_path(ns, "configmaps", "seed"), content=body.replace(b"name: bomb-", b"name: seed-"), headers=yaml_ct)
    elif target == "ssar":
        r = h.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", content=body, headers=yaml_ct)
    else:
        name = "seed" if target == "apply-existing" else f"bomb-{uuid.uuid4().hex[:6]}"
        r = h.patch(_path(ns, "configmaps", name) + "?fieldManager=fz",
                    content=b"apiVersion: v1\nkind: ConfigMap\n" + body, headers={
                        "Content-Type": "application/apply-patch+yaml"})
    check("alias-bomb", r)
    assert "aliasing" in r.json()["message"], r.text[:300]


amplifying_patches = hs.one_of(
    # copy the object's data into itself, n times: 2**n
    hs.integers(min_value=21, max_value=40).map(lambda n: ("application/json-patch+json", [
        {"op": "copy", "from": "/data", "path": f"/data/c{i}"} for i in range(n)])),
    # copy the whole metadata under annotations, then the annotations into themselves
    hs.integers(min_value=21, max_value=30).map(lambda n: ("application/json-patch+json", [
        {"op": "add", "path": "/metadata/annotations", "value": {"a": "x" * 64}}] + [
        {"op": "copy", "from": "/metadata/annotations", "path": f"/metadata/annotations/c{i}"} for i in range(n)])),
    # more operations than upstream allows
    hs.just(("application/json-patch+json", [{"op": "test", "path": "/data/k", "value": "v"}] * 10001)),
    # a huge primitive-list merge, refused afterwards (rename): must not be quadratic
    hs.integers(min_value=5000, max_value=20000).map(lambda n: ("application/strategic-merge-patch+json", {
        "metadata": {"name": "renamed", "finalizers": [f"example.com/f{i}" for i in range(n)]}})),
    hs.integers(min_value=5000, max_value=20000).map(lambda n: ("application/strategic-merge-patch+json", {
        "metadata": {"name": "renamed", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": f"o{i}", "uid": f"u{i}"} for i in range(n)]}})),
)


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(patch=amplifying_patches)
def test_amplifying_patches(fz, patch):
    h, ns = fz
    ct, body = patch
    check("amplifying-patch", h.patch(_path(ns, "configmaps", "seed"), content=json.dumps(body).encode(),
                                      headers={"Content-Type": ct}))
