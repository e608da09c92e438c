"""The pure cores of the API server's hardening: bounded YAML aliases, bounded JSON-patch
copies and linear list merges, NodeRestriction's decisions, the externalIPs policy, and the
audience / bound-object checks of service-account tokens."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kubelab.apiserver import externalips, noderestriction, patch, yamlbody
from kubelab.apiserver.authn import Authenticator, AuthError
from kubelab.apiserver.registry import MAX_OBJECT_BYTES
from kubelab.pki import tokens


# ---- YAML ----------------------------------------------------------------------------------

def _bomb(levels=9, width=9) -> bytes:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines).encode()


def test_alias_bomb_is_refused_before_any_tree_is_built():
    start = time.perf_counter()
    with pytest.raises(yamlbody.YamlBodyError, match="excessive aliasing"):
        yamlbody.load(_bomb())
    assert time.perf_counter() - start < 5.0  # generous: the expanded tree took hours


def test_moderate_aliases_and_anchors_still_load():
    assert yamlbody.load(b"a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}
    assert yamlbody.load(_bomb(levels=3, width=9))["a2"][0][0] == ["x"] * 9  # 10 + 91 + 820 nodes


def test_recursive_and_unknown_aliases_are_refused():
    with pytest.raises(yamlbody.YamlBodyError, match="complete anchored node"):
        yamlbody.load(b"a: &x [1, *x]")
    with pytest.raises(yamlbody.YamlBodyError):
        yamlbody.load(b"a: *nowhere")


def test_yaml_errors_are_one_line_reasons():
    for body in (b"a: [", b"a: 1\n---\nb: 2", b"[" * 5000):
        with pytest.raises(yamlbody.YamlBodyError, match="error decoding YAML"):
            yamlbody.load(body)


def test_apply_patch_yaml_goes_through_the_same_bound():
    with pytest.raises(patch.PatchError) as e:
        patch.apply_patch({"kind": "ConfigMap"}, b"apiVersion: v1\nkind: ConfigMap\n" + _bomb(), patch.APPLY_PATCH)
    assert e.value.code == 400 and "aliasing" in e.value.message


# ---- patches --------------------------------------------------------------------------------

CM = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}, "data": {"k": "v" * 100}}


def test_json_patch_copy_doubling_is_refused_while_applying():
    ops = [{"op": "copy", "from": "/data", "path": f"/data/c{i}"} for i in range(25)]
    start = time.perf_counter()
    with pytest.raises(patch.PatchError) as e:
        patch.apply_patch(CM, json.dumps(ops).encode(), patch.JSON_PATCH, max_bytes=MAX_OBJECT_BYTES)
    assert e.value.code == 413 and str(MAX_OBJECT_BYTES) in e.value.message
    assert time.perf_counter() - start < 10.0  # generous: 2**25 copies never finish


def test_json_patch_small_copies_and_op_limit():
    out = patch.apply_patch(CM, json.dumps([{"op": "copy", "from": "/data/k", "path": "/data/k2"}]).encode(),
                            patch.JSON_PATCH, max_bytes=MAX_OBJECT_BYTES)
    assert out["data"] == {"k": "v" * 100, "k2": "v" * 100} and CM["data"] == {"k": "v" * 100}
    ops = [{"op": "test", "path": "/data/k", "value": "v" * 100}] * (patch.MAX_JSON_PATCH_OPERATIONS + 1)
    with pytest.raises(patch.PatchError) as e:
        patch.apply_patch(CM, json.dumps(ops).encode(), patch.JSON_PATCH)
    assert e.value.code == 413


def test_primitive_and_keyed_list_merges_are_linear():
    n = 20000
    pod = {"kind": "Pod", "metadata": {"name": "p", "finalizers": [f"a/{i}" for i in range(n)]},
           "spec": {"containers": [{"name": f"c{i}", "image": "x"} for i in range(n)]}}
    body = {"metadata": {"finalizers": [f"b/{i}" for i in range(n)] + ["a/0"]},
            "spec": {"containers": [{"name": f"c{i}", "image": "y"} for i in range(0, n, 2)] +
                     [{"name": "c1", "$patch": "delete"}, {"name": "new", "image": "z"}]}}
    start = time.perf_counter()
    out = patch.strategic_merge(pod, body)
    assert time.perf_counter() - start < 15.0  # generous: the keyed merge was quadratic (minutes)
    assert len(out["metadata"]["finalizers"]) == 2 * n
    names = [c["name"] for c in out["spec"]["containers"]]
    assert len(names) == n and "c1" not in names and names[-1] == "new"
    assert out["spec"]["containers"][0]["image"] == "y" and out["spec"]["containers"][2]["image"] == "x"


def test_list_identity_keeps_json_types_apart():
    out = patch.strategic_merge({"kind": "Pod", "metadata": {"finalizers": [1]}},
                                {"metadata": {"finalizers": [True, 1.0, 1]}})
    assert out["metadata"]["finalizers"] == [1, True, 1.0]
    out = patch.strategic_merge({"kind": "Pod", "metadata": {"finalizers": ["a", "b", "c"]}},
                                {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}})
    assert out["metadata"]["finalizers"] == ["a", "c"]


# ---- NodeRestriction --------------------------------------------------------------------------

def _node(name="n1", labels=None, **spec):
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


@pytest.mark.parametrize("key,ok", [
    ("kubernetes.io/hostname", True), ("topology.kubernetes.io/zone", True), ("node.kubernetes.io/x", True),
    ("a.node.kubernetes.io/x", True), ("kubelet.kubernetes.io/x", True), ("beta.kubernetes.io/arch", True),
    ("example.com/rack", True), ("plain", True),
    ("node-role.kubernetes.io/master", False), ("node-restriction.kubernetes.io/x", False),
    ("a.node-restriction.kubernetes.io/x", False), ("k8s.io/x", False), ("beta.kubernetes.io/zone", False),
])
def test_kubelet_labels(key, ok):
    assert (noderestriction.forbidden_labels({key}) == []) is ok


def test_node_decisions():
    admit = noderestriction.admit_node
    assert admit("n1", _node("ghost"), None) and "ghost" in admit("n1", _node("ghost"), None)
    assert admit("n1", _node(podCIDR="10.244.1.0/24"), None)
    assert admit("n1", _node(labels={"kubernetes.io/hostname": "n1"}), None) is None
    old = _node(podCIDR="10.244.1.0/24", taints=[{"key": "a", "effect": "NoSchedule"}])
    assert admit("n1", _node(podCIDR="10.244.1.0/24", taints=[{"key": "a", "effect": "NoSchedule"}]), old) is None
    assert "taints" in admit("n1", _node(podCIDR="10.244.1.0/24"), old)
    assert "podCIDR" in admit("n1", _node(podCIDR="10.244.2.0/24", taints=old["spec"]["taints"]), old)
    kept = {"node-role.kubernetes.io/master": ""}  # set by the admin: the node may keep it, not drop it
    old2 = _node(labels=kept)
    assert admit("n1", _node(labels={**kept, "example.com/a": "b"}), old2) is None
    assert "node-role" in admit("n1", _node(labels={}), old2)


def test_pod_lease_and_token_decisions():
    pod = {"metadata": {"name": "p", "uid": "u1"}, "spec": {"nodeName": "n1"}}
    assert noderestriction.admit_pod("n1", "status", pod, pod) is None
    assert "status" in noderestriction.admit_pod("n1", "", pod, pod)
    assert noderestriction.admit_pod("n2", "status", pod, pod)
    assert noderestriction.admit_pod("n1", "", pod, None)
    lease = {"metadata": {"name": "n1", "namespace": "kube-node-lease"}}
    assert noderestriction.admit_lease("n1", lease, None) is None
    assert noderestriction.admit_lease("n2", lease, None)
    assert noderestriction.admit_lease("n1", {"metadata": {"name": "n1", "namespace": "default"}}, None)
    tr = {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u1"}}}
    assert noderestriction.admit_token_request("n1", tr, pod) is None
    assert "different node" in noderestriction.admit_token_request("n2", tr, pod)
    assert "not bound" in noderestriction.admit_token_request("n1", {"spec": {}}, None)
    assert "does not match" in noderestriction.admit_token_request("n1", tr, {**pod, "metadata": {"uid": "u2"}})


# ---- externalIPs -----------------------------------------------------------------------------

def test_external_ip_policy():
    policy = externalips.ExternalIPPolicy(externalips.parse_cidrs("192.0.2.0/24"), apiserver_address="192.0.2.1")
    nodes = {"192.0.2.5": "n1"}

    def fields(ips, old=None):
        spec = {"externalIPs": ips}
        return [c["field"] for c in externalips.check(policy, externalips.added(spec, old), nodes)]

    assert fields(["192.0.2.9"]) == []
    assert fields(["192.0.2.5", "192.0.2.1", "10.96.0.1", "10.244.0.5", "198.51.100.1", "192.0.2.9"]) == [
        f"spec.externalIPs[{i}]" for i in range(5)]
    assert fields(["198.51.100.1"], {"externalIPs": ["198.51.100.1"]}) == []  # already there: kept
    closed = externalips.ExternalIPPolicy()
    assert externalips.check(closed, [(0, "192.0.2.9")], {})[0]["message"].endswith("none are allowed)")
    with pytest.raises(ValueError, match="nope"):
        externalips.parse_cidrs("192.0.2.0/24,nope")


# ---- tokens ----------------------------------------------------------------------------------

def _authn(objects: dict, **kw) -> tuple[Authenticator, object]:
    key = ec.generate_private_key(ec.SECP256R1())

    async def sa(ns, name):
        return {"metadata": {"uid": "sa-uid"}}

    async def lookup(plural, ns, name):
        return objects.get((plural, name))

    return Authenticator(sa_public_key=key.public_key(), sa_lookup=sa, object_lookup=lookup, cache_ttl=0, **kw), key


def _token(key, aud=tokens.DEFAULT_ISSUER, pod=None):
    claims = tokens.service_account_claims(namespace="d", name="bot", uid="sa-uid", ttl=600)
    claims["aud"] = [aud]
    if pod:
        claims["kubernetes.io"]["pod"] = pod
    return tokens.sign(claims, key)


def test_audience_must_be_the_api_servers():
    authn, key = _authn({})
    assert asyncio.run(authn.authenticate(authorization="Bearer " + _token(key), peercert=None)).name.endswith("bot")
    with pytest.raises(AuthError, match="audience"):
        asyncio.run(authn.authenticate(authorization="Bearer " + _token(key, "https://vault.example"), peercert=None))
    custom, key2 = _authn({}, audiences=("https://vault.example",))
    assert asyncio.run(custom.authenticate(authorization="Bearer " + _token(key2, "https://vault.example"),
                                           peercert=None))


def test_pod_bound_token_follows_the_pod():
    pod = {"metadata": {"name": "p", "uid": "u1"}}
    objects = {("pods", "p"): pod}
    authn, key = _authn(objects)
    token = "Bearer " + _token(key, pod={"name": "p", "uid": "u1"})
    assert asyncio.run(authn.authenticate(authorization=token, peercert=None))
    objects[("pods", "p")] = {"metadata": {"name": "p", "uid": "u2"}}
    with pytest.raises(AuthError, match="replaced"):
        asyncio.run(authn.authenticate(authorization=token, peercert=None))
    objects[("pods", "p")] = {"metadata": {"name": "p", "uid": "u1", "deletionTimestamp": "2020-01-01T00:00:00Z"}}
    with pytest.raises(AuthError, match="deleted"):
        asyncio.run(authn.authenticate(authorization=token, peercert=None))
    del objects[("pods", "p")]
    with pytest.raises(AuthError, match="no longer exists"):
        asyncio.run(authn.authenticate(authorization=token, peercert=None))


def test_flags_api_audiences_and_external_ip_cidrs():
    from kubelab.apiserver import tokenrequest
    from kubelab.apiserver.__main__ import main, parse_args
    from kubelab.apiserver.flags import security_settings
    sec, _ = security_settings(parse_args(["--api-audiences", "https://a.example, https://b.example"]))
    assert sec["api_audiences"] == ["https://a.example", "https://b.example"]
    assert tokenrequest.Signer.from_security(sec).default_audience == "https://a.example"
    assert security_settings(parse_args([]))[0]["api_audiences"] is None
    assert tokenrequest.Signer.from_security({}).default_audience == tokens.DEFAULT_ISSUER
    assert parse_args(["--service-external-ip-cidrs", "192.0.2.0/24"]).service_external_ip_cidrs == "192.0.2.0/24"
    assert main(["--service-external-ip-cidrs", "192.0.2.0/24,bogus"]) == 2  # refused before serving
