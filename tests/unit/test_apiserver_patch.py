"""PATCH semantics: RFC 6902, RFC 7386, strategic merge and apply, on real kubectl bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from kubelab.apiserver.patch import (
    APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, PatchError, apply_patch,
    strategic_merge,
)

DATA = Path(__file__).parent / "data"
REFERENCE_LOG = Path("/work/shared/reference/kubectl-1.32-requests.jsonl")
CAPTURED = json.loads((DATA / "kubectl-patches.json").read_text())


def captured(name: str) -> tuple[dict, dict]:
    req = next(r for r in CAPTURED["requests"] if r["name"] == name)
    live = CAPTURED["live"]["service" if "services" in req["path"] else "deployment"]
    return live, req


def run_captured(name: str) -> dict:
    live, req = captured(name)
    before = copy.deepcopy(live)
    out = apply_patch(live, req["body"].encode(), req["content_type"])
    assert live == before, "apply_patch must not mutate its input"
    return out


POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "a", "tier": "t"}, "finalizers": ["a/b"]},
    "spec": {
        "containers": [
            {"name": "c1", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}],
             "env": [{"name": "X", "value": "1"}],
             "volumeMounts": [{"name": "v", "mountPath": "/data"}]},
            {"name": "c2", "image": "busybox"},
        ],
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "volumes": [{"name": "v", "emptyDir": {}}],
    },
    "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]},
}


# --- content types and errors ---------------------------------------------------------------

@pytest.mark.parametrize("ctype,body,code", [
    ("application/json", b"{}", 415),
    ("text/plain", b"{}", 415),
    ("", b"{}", 415),
    (MERGE_PATCH, b"{not json", 400),
    (STRATEGIC_MERGE_PATCH, b"\xff\xfe", 400),
    (MERGE_PATCH, b"[1,2]", 400),
    (STRATEGIC_MERGE_PATCH, b'"x"', 400),
    (JSON_PATCH, b'{"op":"add"}', 400),
    (JSON_PATCH, b'[{"op":"test","path":"/metadata/name","value":"other"}]', 422),
    (JSON_PATCH, b'[{"op":"remove","path":"/spec/nope"}]', 422),
    (JSON_PATCH, b'[{"op":"replace","path":"/spec/containers/9/image","value":"x"}]', 422),
    (JSON_PATCH, b'[{"op":"frobnicate","path":"/a"}]', 422),
    (JSON_PATCH, b'[{"op":"replace","path":"","value":[1]}]', 422),
    (APPLY_PATCH, b"a: [unclosed", 400),
    (APPLY_PATCH, b"- a\n- b\n", 400),
    (APPLY_PATCH, b"metadata: {name: p}\n", 400),  # no apiVersion/kind
    (APPLY_PATCH, b"apiVersion: v1\nkind: Service\n", 422),  # kind mismatch
    (STRATEGIC_MERGE_PATCH, b'{"spec":{"containers":[{"image":"x"}]}}', 422),  # no merge key
    (STRATEGIC_MERGE_PATCH, b'{"spec":{"$patch":"explode"}}', 422),
    (STRATEGIC_MERGE_PATCH, b'{"spec":{"containers":["c1"]}}', 422),
])
def test_errors_carry_http_code(ctype, body, code):
    with pytest.raises(PatchError) as e:
        apply_patch(POD, body, ctype)
    assert e.value.code == code
    assert e.value.message


def test_content_type_parameters_are_ignored():
    out = apply_patch(POD, b'{"metadata":{"labels":{"x":"y"}}}', MERGE_PATCH + "; charset=utf-8")
    assert out["metadata"]["labels"]["x"] == "y"


# --- RFC 6902 -------------------------------------------------------------------------------

@pytest.mark.parametrize("ops,check", [
    ([{"op": "add", "path": "/metadata/labels/new", "value": "v"}],
     lambda o: o["metadata"]["labels"]["new"] == "v"),
    ([{"op": "add", "path": "/spec/containers/-", "value": {"name": "c3", "image": "i"}}],
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["c1", "c2", "c3"]),
    ([{"op": "remove", "path": "/metadata/labels/tier"}],
     lambda o: "tier" not in o["metadata"]["labels"]),
    ([{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:2"}],
     lambda o: o["spec"]["containers"][0]["image"] == "nginx:2"),
    ([{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/app2"}],
     lambda o: o["metadata"]["labels"] == {"app2": "a", "tier": "t"}),
    ([{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}],
     lambda o: o["metadata"]["labels"]["name"] == "p"),
    ([{"op": "test", "path": "/status/phase", "value": "Pending"},
      {"op": "replace", "path": "/status/phase", "value": "Running"}],
     lambda o: o["status"]["phase"] == "Running"),
    ([{"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "1"}},
      {"op": "replace", "path": "/metadata/annotations/a~0b~1c", "value": "2"}],
     lambda o: o["metadata"]["annotations"] == {"a~b/c": "2"}),
    ([], lambda o: o == POD),
])
def test_json_patch(ops, check):
    before = copy.deepcopy(POD)
    out = apply_patch(POD, json.dumps(ops).encode(), JSON_PATCH)
    assert check(out)
    assert POD == before


def test_json_patch_captured_from_kubectl_patch_type_json():
    assert run_captured("json-patch-test-replace")["spec"]["replicas"] == 5


# --- RFC 7386 -------------------------------------------------------------------------------

@pytest.mark.parametrize("patch,check", [
    ({"metadata": {"labels": {"app": None}}}, lambda o: o["metadata"]["labels"] == {"tier": "t"}),
    ({"spec": {"containers": [{"name": "only"}]}},  # lists are replaced, not merged
     lambda o: o["spec"]["containers"] == [{"name": "only"}]),
    ({"status": None}, lambda o: "status" not in o),
    ({"spec": {"new": {"deep": {"x": None, "y": 1}}}}, lambda o: o["spec"]["new"] == {"deep": {"y": 1}}),
    ({"metadata": {"labels": "flat"}}, lambda o: o["metadata"]["labels"] == "flat"),
    ({}, lambda o: o == POD),
])
def test_merge_patch(patch, check):
    assert check(apply_patch(POD, json.dumps(patch).encode(), MERGE_PATCH))


def test_merge_patch_scale_vector_from_reference_log():
    body = next(json.loads(line)["body"] for line in REFERENCE_LOG.read_text().splitlines()
                if json.loads(line).get("ctype") == MERGE_PATCH)
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 1}}
    assert apply_patch(scale, body.encode(), MERGE_PATCH)["spec"] == {"replicas": 3}


@pytest.mark.parametrize("name,labels", [
    ("label-add", {"app": "demo", "tier": "db"}),
    ("label-remove", {}),
])
def test_merge_patch_captured_kubectl_label(name, labels):
    assert run_captured(name)["metadata"].get("labels", {}) == labels


# --- strategic merge --------------------------------------------------------------------------

def smp(obj: dict, patch: dict) -> dict:
    return apply_patch(obj, json.dumps(patch).encode(), STRATEGIC_MERGE_PATCH)


@pytest.mark.parametrize("patch,check", [
    # containers merge by name: c1's other fields survive, c2 untouched
    ({"spec": {"containers": [{"name": "c1", "image": "nginx:2"}]}},
     lambda o: o["spec"]["containers"][0] == {**POD["spec"]["containers"][0], "image": "nginx:2"}
     and o["spec"]["containers"][1] == {"name": "c2", "image": "busybox"}),
    # a new container is appended
    ({"spec": {"containers": [{"name": "c9", "image": "x"}]}},
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["c1", "c2", "c9"]),
    # $patch: delete removes one item by key
    ({"spec": {"containers": [{"$patch": "delete", "name": "c2"}]}},
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["c1"]),
    # $patch: replace on a list item replaces the whole list
    ({"spec": {"containers": [{"name": "n", "image": "i"}, {"$patch": "replace"}]}},
     lambda o: o["spec"]["containers"] == [{"name": "n", "image": "i"}]),
    # $patch: replace on a map replaces that map
    ({"metadata": {"labels": {"$patch": "replace", "only": "x"}}},
     lambda o: o["metadata"]["labels"] == {"only": "x"}),
    # $patch: delete on a map removes it
    ({"status": {"$patch": "delete"}}, lambda o: "status" not in o),
    # container ports merge by containerPort
    ({"spec": {"containers": [{"name": "c1", "ports": [{"containerPort": 80, "name": "http"},
                                                        {"containerPort": 443}]}]}},
     lambda o: o["spec"]["containers"][0]["ports"] == [
         {"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}]),
    # env by name, volumeMounts by mountPath
    ({"spec": {"containers": [{"name": "c1", "env": [{"name": "X", "value": "2"}, {"name": "Y", "value": "3"}],
                               "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}]}},
     lambda o: o["spec"]["containers"][0]["env"] == [{"name": "X", "value": "2"}, {"name": "Y", "value": "3"}]
     and o["spec"]["containers"][0]["volumeMounts"] == [{"name": "v", "mountPath": "/data", "readOnly": True}]),
    # tolerations have no patch strategy upstream: replaced
    ({"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}},
     lambda o: o["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]),
    # status conditions merge by type
    ({"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
     lambda o: o["status"]["conditions"] == [{"type": "PodScheduled", "status": "True"},
                                             {"type": "Ready", "status": "True"}]),
    # finalizers: a merged set of primitives...
    ({"metadata": {"finalizers": ["a/b", "c/d"]}}, lambda o: o["metadata"]["finalizers"] == ["a/b", "c/d"]),
    # ...from which $deleteFromPrimitiveList removes
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/b"]}},
     lambda o: o["metadata"]["finalizers"] == []),
    # null deletes a field
    ({"metadata": {"labels": {"tier": None}}, "spec": {"volumes": None}},
     lambda o: o["metadata"]["labels"] == {"app": "a"} and "volumes" not in o["spec"]),
    # $retainKeys clears fields not listed
    ({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}},
     lambda o: o["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/x"}}]),
    # $setElementOrder reorders the merged list
    ({"spec": {"$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}],
               "containers": [{"name": "c1", "image": "nginx:3"}]}},
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["c2", "c1"]),
    # directives never leak into the stored object, even inside new values
    ({"spec": {"newField": {"$patch": "replace", "a": 1}, "containers": [{"name": "c3", "$patch": "merge"}]}},
     lambda o: o["spec"]["newField"] == {"a": 1} and o["spec"]["containers"][2] == {"name": "c3"}),
])
def test_strategic_merge(patch, check):
    before = copy.deepcopy(POD)
    out = smp(POD, patch)
    assert check(out), json.dumps(out, indent=1)
    assert POD == before
    assert "$" not in json.dumps(out)


def test_smp_service_ports_merge_by_port():
    svc = {"kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 80, "nodePort": 30080}]}})
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "nodePort": 30080},
                                    {"port": 53, "protocol": "UDP"}]


def test_smp_unknown_kind_replaces_lists():
    slice_ = {"kind": "EndpointSlice", "endpoints": [{"addresses": ["10.244.1.2"]}], "metadata": {"finalizers": ["x"]}}
    out = smp(slice_, {"endpoints": [{"addresses": ["10.244.1.3"]}], "metadata": {"finalizers": ["y"]}})
    assert out["endpoints"] == [{"addresses": ["10.244.1.3"]}]
    assert out["metadata"]["finalizers"] == ["x", "y"]  # ObjectMeta is shared by every kind


def test_smp_deployment_template_containers_by_name():
    dep = {"kind": "Deployment", "spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}}
    out = strategic_merge(dep, {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "3"}]}}}})
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "1"}, {"name": "b", "image": "3"}]


def test_smp_kind_override_for_subresources():
    status = {"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "True"}]}
    obj = {"status": status}  # no kind in obj: caller names it
    out = apply_patch(obj, b'{"status":{"conditions":[{"type":"A","status":"True"}]}}',
                      STRATEGIC_MERGE_PATCH, kind="Node")
    assert out["status"]["conditions"] == [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]


def test_smp_captured_client_side_apply_deployment():
    """kubectl apply of a changed manifest: $retainKeys, $setElementOrder, $patch delete."""
    out = run_captured("apply-deployment")
    spec = out["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "Recreate"}  # rollingUpdate nulled, retainKeys [type]
    pod = spec["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["init-less", "web"]
    web = pod["containers"][1]
    assert web["image"] == "nginx:1.27"
    assert web["imagePullPolicy"] == "IfNotPresent"  # server-side field kept
    assert web["env"] == [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert web["ports"] == [{"containerPort": 8080}, {"containerPort": 80}]
    assert pod["volumes"] == [{"name": "data", "hostPath": {"path": "/tmp"}}]
    assert out["metadata"]["labels"] == {"app": "demo", "tier": "web"}
    assert out["metadata"]["finalizers"] == ["example.com/keep"]
    last = json.loads(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_captured_client_side_apply_service():
    out = run_captured("apply-service")
    assert out["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "web",
                                     "protocol": "TCP", "nodePort": 30080}]
    assert out["spec"]["type"] == "NodePort"
    assert out["spec"]["clusterIP"] == "10.96.0.50"
    assert out["spec"]["selector"] == {"app": "demo", "tier": "web"}


def test_smp_captured_set_image_and_rollout_restart():
    out = run_captured("set-image")
    assert [(c["name"], c["image"]) for c in out["spec"]["template"]["spec"]["containers"]] == [
        ("web", "nginx:1.28"), ("sidecar", "busybox")]
    out = run_captured("rollout-restart")
    assert "kubectl.kubernetes.io/restartedAt" in out["spec"]["template"]["metadata"]["annotations"]
    assert out["spec"]["template"]["metadata"]["labels"] == {"app": "demo"}


def _reference_bodies(ctype: str) -> list[str]:
    return [json.loads(line)["body"] for line in REFERENCE_LOG.read_text().splitlines()
            if json.loads(line).get("ctype") == ctype]


def test_smp_reference_log_apply_replicas():
    live = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "demo", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 2}}
    body = next(b for b in _reference_bodies(STRATEGIC_MERGE_PATCH) if "last-applied" in b)
    out = apply_patch(live, body.encode(), STRATEGIC_MERGE_PATCH)
    assert out["spec"]["replicas"] == 3
    assert '"replicas\\":3' in json.dumps(out["metadata"]["annotations"])


# --- server-side apply ------------------------------------------------------------------------

def test_apply_reference_log_bodies_create_and_update():
    bodies = _reference_bodies(APPLY_PATCH)
    assert len(bodies) == 4
    dep = apply_patch({}, bodies[0].encode(), APPLY_PATCH)  # apply on a missing object
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 3
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    dep2 = apply_patch(dep, bodies[1].encode(), APPLY_PATCH)  # the kubectl-last-applied one
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep2["metadata"]["annotations"]
    assert dep2["spec"] == dep["spec"]  # metadata-only apply keeps the spec
    svc_live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "demo"},
                "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}
    svc = apply_patch(svc_live, bodies[2].encode(), APPLY_PATCH)
    assert svc["spec"]["clusterIP"] == "10.96.0.7"
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert svc["spec"]["selector"] == {"app": "demo"}


def test_apply_yaml_nulls_mean_unset_and_lists_merge():
    live = copy.deepcopy(POD)
    body = b"""
apiVersion: v1
kind: Pod
metadata:
  name: p
  creationTimestamp: null
  labels: {tier: t2}
spec:
  containers:
  - name: c2
    image: busybox:1.36
"""
    live["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    out = apply_patch(live, body, APPLY_PATCH)
    assert out["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert out["metadata"]["labels"] == {"app": "a", "tier": "t2"}
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [("c1", "nginx:1"), ("c2", "busybox:1.36")]
