"""Client-side apply's three-way strategic merge patch, checked by applying it with the API
server's own strategic merge: the live object must end up as the new file says, keeping
what the server/controllers added and dropping only what the previous file had."""

from __future__ import annotations

import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kubelab.apiserver.patch import strategic_merge
from kubelab.cli.applypatch import LAST_APPLIED, original_of, three_way_patch, with_last_applied


def deployment(*, replicas=2, env=(("A", "1"), ("B", "2")), containers=("web",), labels=None) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "demo", "labels": labels or {"app": "demo"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "demo"}},
                 "template": {"metadata": {"labels": {"app": "demo"}},
                              "spec": {"containers": [
                                  {"name": c, "image": f"{c}:1", "env": [{"name": k, "value": v} for k, v in env]}
                                  for c in containers]}}},
    }


def live_from(applied: dict) -> dict:
    """What the server stores after creating `applied`: plus defaults and status."""
    live = copy.deepcopy(with_last_applied(applied))
    live["metadata"].update(uid="u1", resourceVersion="7", generation=1, creationTimestamp="2026-01-01T00:00:00Z")
    for c in live["spec"]["template"]["spec"]["containers"]:
        c["imagePullPolicy"] = "IfNotPresent"
        c["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2, "observedGeneration": 1}
    return live


def apply_to(live: dict, new: dict) -> tuple[dict, dict]:
    patch = three_way_patch(original_of(live), with_last_applied(new), live, kind="Deployment")
    return patch, strategic_merge(live, patch, kind="Deployment")


def test_unchanged_file_gives_empty_patch():
    d = deployment()
    patch, _ = apply_to(live_from(d), d)
    assert patch == {}


def test_changed_scalar_only_sends_the_change_and_new_annotation():
    d = deployment()
    patch, result = apply_to(live_from(d), deployment(replicas=5))
    assert patch["spec"] == {"replicas": 5}
    assert set(patch["metadata"]) == {"annotations"}
    assert result["spec"]["replicas"] == 5
    assert json.loads(result["metadata"]["annotations"][LAST_APPLIED])["spec"]["replicas"] == 5
    # defaults and status the server added survive
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert result["status"]["replicas"] == 2
    assert result["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_removed_map_key_and_list_item_are_deleted():
    d = deployment(labels={"app": "demo", "team": "x"})
    new = deployment(env=(("A", "1"),), labels={"app": "demo"})
    patch, result = apply_to(live_from(d), new)
    assert patch["metadata"]["labels"] == {"team": None}
    c = patch["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "B", "$patch": "delete"} in c["env"]
    assert result["metadata"]["labels"] == {"app": "demo"}
    assert result["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_containers_merge_by_name_add_remove_and_order():
    d = deployment(containers=("web", "sidecar"))
    new = deployment(containers=("log", "web"))
    patch, result = apply_to(live_from(d), new)
    spec_patch = patch["spec"]["template"]["spec"]
    assert spec_patch["$setElementOrder/containers"] == [{"name": "log"}, {"name": "web"}]
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["log", "web"]
    web = result["spec"]["template"]["spec"]["containers"][1]
    assert web["imagePullPolicy"] == "IfNotPresent"  # merged, not replaced


def test_fields_added_by_others_are_not_removed():
    d = deployment()
    live = live_from(d)
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
    patch, result = apply_to(live, deployment(replicas=3))
    assert result["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


def test_without_last_applied_nothing_is_deleted():
    d = deployment(labels={"app": "demo", "team": "x"})
    live = live_from(d)
    del live["metadata"]["annotations"][LAST_APPLIED]
    patch, result = apply_to(live, deployment())
    assert "team" in result["metadata"]["labels"]
    assert LAST_APPLIED in result["metadata"]["annotations"]


def test_switching_strategy_drops_defaulted_rolling_update():
    d = deployment()
    live = live_from(d)
    live["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    new = deployment()
    new["spec"]["strategy"] = {"type": "Recreate"}
    patch, result = apply_to(live, new)
    assert patch["spec"]["strategy"] == {"type": "Recreate", "$retainKeys": ["type"]}
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_last_applied_excludes_itself():
    d = with_last_applied(with_last_applied(deployment()))
    assert LAST_APPLIED not in json.loads(d["metadata"]["annotations"][LAST_APPLIED])["metadata"].get(
        "annotations", {})


# Property: for plain maps, the patched live object holds exactly the new file's values,
# loses the keys only the old file had, and keeps keys nobody applied.
keys = st.sampled_from(list("abcde"))
leaf = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"]))
maps = st.recursive(st.dictionaries(keys, leaf, max_size=4),
                    lambda inner: st.dictionaries(keys, st.one_of(leaf, inner), max_size=4), max_leaves=12)


def _contains(big, small) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(big[k], v) for k, v in small.items())
    return big == small


@settings(max_examples=300, deadline=None)
@given(old=maps, new=maps, extra=maps)
def test_property_three_way_on_maps(old, new, extra):
    live = strategic_merge(extra, old, kind="ConfigMap")  # others' fields, then the old file's
    patch = three_way_patch(old, new, live, kind="ConfigMap")
    result = strategic_merge(live, patch, kind="ConfigMap")
    assert _contains(result, new)
    for k in old:
        if k not in new:
            assert k not in result
    for k in extra:
        if k not in old and k not in new:
            assert result[k] == live[k]


@settings(max_examples=200, deadline=None)
@given(applied=maps, extra=maps)
def test_property_reapplying_the_same_file_is_unchanged(applied, extra):
    live = strategic_merge(extra, applied, kind="ConfigMap")
    assert three_way_patch(applied, applied, live, kind="ConfigMap") == {}


def test_annotation_text_is_byte_for_byte_kubectls():
    """Captured from kubectl 1.32 `apply` of this object: same text means each tool sees the
    other's apply as unchanged."""
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "interop", "namespace": "t1"},
           "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "interop"}},
                    "template": {"metadata": {"labels": {"app": "interop"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx",
                                                          "env": [{"name": "A", "value": "1"}]}]}}}}
    kubectl = ('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"interop",'
               '"namespace":"t1"},"spec":{"replicas":4,"selector":{"matchLabels":{"app":"interop"}},"template":'
               '{"metadata":{"labels":{"app":"interop"}},"spec":{"containers":[{"env":[{"name":"A","value":"1"}],'
               '"image":"nginx","name":"web"}]}}}}\n')
    assert with_last_applied(obj)["metadata"]["annotations"][LAST_APPLIED] == kubectl
