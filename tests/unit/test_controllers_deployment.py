"""Deployment pure parts: fenceposts, one rolling step, Recreate, status, new ReplicaSet."""

import pytest

from kubelab.controllers.deployment import (DESIRED_REPLICAS, HASH_LABEL, REVISION, proportional_scale, deployment_status, new_replicaset, new_rs_replicas,
                                            old_rs_scale_down, recreate_step, resolve_fenceposts, template_hash,
                                            templates_equal)


def dep(replicas=4, surge=None, unavailable=None, strategy="RollingUpdate", generation=2):
    s = {"type": strategy}
    if strategy == "RollingUpdate" and (surge is not None or unavailable is not None):
        s["rollingUpdate"] = {k: v for k, v in (("maxSurge", surge), ("maxUnavailable", unavailable)) if v is not None}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": generation},
            "spec": {"replicas": replicas, "strategy": s, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}


def rs(name, replicas, available=None, created="2026-01-01T00:00:00Z", ready=None, total=None):
    available = replicas if available is None else available
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas if total is None else total, "availableReplicas": available,
                       "readyReplicas": available if ready is None else ready}}


@pytest.mark.parametrize("replicas,surge,unavail,expected", [
    (4, None, None, (1, 1)),      # 25% each: surge rounds up, unavailable down
    (10, "30%", "30%", (3, 3)),
    (3, 0, 0, (0, 1)),            # both zero: unavailable becomes 1
    (3, 2, 1, (2, 1)),
    (1, "25%", "25%", (1, 0)),
])
def test_fenceposts(replicas, surge, unavail, expected):
    assert resolve_fenceposts(dep(replicas, surge, unavail)) == expected


def test_recreate_has_no_fenceposts():
    assert resolve_fenceposts(dep(strategy="Recreate")) == (0, 0)


def test_rolling_step_scales_new_up_to_surge():
    d = dep(4, 1, 1)
    old = rs("old", 4)
    assert new_rs_replicas(d, rs("new", 0), [old, rs("new", 0)]) == 1
    assert new_rs_replicas(d, rs("new", 1), [old, rs("new", 1)]) == 1  # total 5 = 4 + surge: wait


def test_rolling_step_scales_old_down_keeping_min_available():
    d = dep(4, 1, 1)
    # new has 1 replica, not yet available; old 4 available: may drop 1 (min available 3)
    assert old_rs_scale_down(d, rs("new", 1, available=0), [rs("old", 4)]) == {"old": 3}
    # new has 1 available: 5 available, may drop to min 3 but total limit: allPods 5 - 3 - 0 = 2
    assert old_rs_scale_down(d, rs("new", 1, available=1), [rs("old", 4)]) == {"old": 2}
    # nothing to drop when new pods are not available and we are at the floor
    assert old_rs_scale_down(d, rs("new", 2, available=0), [rs("old", 2)]) == {}


def test_unhealthy_old_replicas_go_first():
    d = dep(4, 0, 1)
    olds = [rs("older", 2, available=0, created="2026-01-01T00:00:00Z"), rs("old", 2, available=2,
                                                                            created="2026-01-02T00:00:00Z")]
    out = old_rs_scale_down(d, rs("new", 0, available=0), olds)
    # all pods 4 - min available 3 = at most 1 may go per step: an unhealthy one, never a healthy one
    assert out == {"older": 1}
    d = dep(4, 2, 1)  # room for 3: both unhealthy go, then one healthy (4 available, 3 needed)
    olds = [rs("older", 2, available=0), rs("old", 3, available=3, created="2026-01-02T00:00:00Z")]
    assert old_rs_scale_down(d, rs("new", 1, available=1), olds) == {"older": 0, "old": 2}


def test_full_rollout_simulation_never_drops_below_min_available():
    """Drive steps to completion assuming pods become available instantly: the invariant
    available >= replicas - maxUnavailable holds after every step and it converges."""
    d = dep(5, 2, 1)
    new, old = rs("new", 0), rs("old", 5)
    for _ in range(20):
        target = new_rs_replicas(d, new, [new, old])
        if target != new["spec"]["replicas"]:
            new = rs("new", target)
        else:
            changes = old_rs_scale_down(d, new, [old])
            if "old" in changes:
                old = rs("old", changes["old"])
        available = new["status"]["availableReplicas"] + old["status"]["availableReplicas"]
        assert available >= 4
        assert new["spec"]["replicas"] + old["spec"]["replicas"] <= 7
    assert (new["spec"]["replicas"], old["spec"]["replicas"]) == (5, 0)


def test_recreate_step():
    d = dep(3, strategy="Recreate")
    assert recreate_step(d, rs("new", 0), [rs("old", 3)], old_pods_running=3) == {"old": 0}
    assert recreate_step(d, rs("new", 0), [rs("old", 0)], old_pods_running=1) == {}
    assert recreate_step(d, rs("new", 0), [rs("old", 0)], old_pods_running=0) == {"new": 3}


def test_new_replicaset_hash_label_selector_revision_owner():
    d = dep()
    r = new_replicaset(d, revision=3, replicas=1)
    h = r["spec"]["template"]["metadata"]["labels"][HASH_LABEL]
    assert r["metadata"]["name"] == f"web-{h}" and r["spec"]["selector"]["matchLabels"][HASH_LABEL] == h
    assert r["metadata"]["annotations"][REVISION] == "3"
    assert r["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert templates_equal(r["spec"]["template"], d["spec"]["template"])
    assert template_hash(d["spec"]["template"]) != template_hash(d["spec"]["template"], 1)
    assert not set(h) & set("aeiou")


def test_status_complete_rollout_is_what_rollout_status_wants():
    d = dep(3)
    new = rs("web-abc", 3)
    st = deployment_status(d, new, [new, rs("web-old", 0, total=0)], now="2026-01-01T00:00:00Z")
    assert st["observedGeneration"] == 2
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"


def test_status_in_progress():
    d = dep(3, 1, 0)
    new, old = rs("web-new", 1, available=0), rs("web-old", 3)
    st = deployment_status(d, new, [new, old], now="t")
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Progressing"]["reason"] == "ReplicaSetUpdated"
    assert st["updatedReplicas"] == 1 and st["replicas"] == 4 and st["unavailableReplicas"] == 0
    st2 = deployment_status({**d, "status": st}, new, [new, rs("web-old", 1)], now="later")
    c2 = {c["type"]: c for c in st2["conditions"]}
    assert c2["Available"]["status"] == "False"
    assert c2["Available"]["lastTransitionTime"] == "later"
    assert c2["Progressing"]["lastTransitionTime"] == "t"  # still True: transition time kept


def test_progress_deadline_exceeded_when_nothing_moves():
    import time as _t
    d = dep(3, 1, 0)
    d["spec"]["progressDeadlineSeconds"] = 30
    new, old = rs("web-new", 1, available=0), rs("web-old", 3)
    t0 = 1_000_000.0
    iso = lambda t: _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(t))  # noqa: E731
    st = deployment_status(d, new, [new, old], now=iso(t0), now_ts=t0)
    d = {**d, "status": st}
    same = deployment_status(d, new, [new, old], now=iso(t0 + 10), now_ts=t0 + 10)
    assert {c["type"]: c for c in same["conditions"]}["Progressing"]["status"] == "True"
    late = deployment_status(d, new, [new, old], now=iso(t0 + 31), now_ts=t0 + 31)
    prog = {c["type"]: c for c in late["conditions"]}["Progressing"]
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    moved_new = rs("web-new", 1, available=1)
    moving = deployment_status(d, moved_new, [moved_new, old], now=iso(t0 + 31), now_ts=t0 + 31)
    assert {c["type"]: c for c in moving["conditions"]}["Progressing"]["status"] == "True"


def test_templates_equal_semantically_as_after_kubectl_rollout_undo():
    stored = {"metadata": {"labels": {"app": "web", HASH_LABEL: "abc"}},
              "spec": {"containers": [{"name": "c", "image": "nginx"}], "securityContext": {}}}
    from_undo = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]}}
    assert templates_equal(stored, from_undo)
    assert template_hash(from_undo) == template_hash({"metadata": {"labels": {"app": "web"}},
                                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    assert not templates_equal(stored, {**from_undo, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}})


def test_proportional_scale_mid_rollout():
    d = dep(20, "25%", "25%")
    new = rs("new", 3, created="2026-01-02T00:00:00Z")
    new["metadata"]["annotations"] = {DESIRED_REPLICAS: "10"}  # the sets were sized for 10
    old = rs("old", 8)
    out = proportional_scale(d, new, [old])
    assert out == {"old": 19, "new": 6}  # 25 allowed (20 + surge 5): +14 split 8:3, leftover to the largest
    assert sum(out.values()) == 25
    down = proportional_scale(dep(4, "25%", "25%"), new, [old])  # 4 + 1 allowed: -6 split
    assert sum(down.values()) == 5 and all(v >= 0 for v in down.values())
    new["metadata"]["annotations"] = {DESIRED_REPLICAS: "20"}
    assert proportional_scale(d, new, [old]) == {}  # not a scale event
    assert proportional_scale(d, new, [rs("old", 0)]) == {}  # one active set: the normal path
