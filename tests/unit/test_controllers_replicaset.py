"""ReplicaSet pure parts: diff, deletion ranking, expectations, status, pod template."""

from kubelab.controllers.replicaset import (Expectations, deletion_order, pod_from_template, replica_diff,
                                            replicaset_status)


def rs(replicas=3, **spec):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "rs-uid", "generation": 4},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"x": "y"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}, **spec}}


def pod(name, *, node="n1", phase="Running", ready=True, created="2026-01-01T00:00:00Z", since=None, restarts=0,
        terminating=False):
    p = {"metadata": {"name": name, "creationTimestamp": created, "labels": {"app": "web"}},
         "spec": {"nodeName": node} if node else {},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                    "lastTransitionTime": since or created}],
                    "containerStatuses": [{"restartCount": restarts}]}}
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


def test_diff():
    assert replica_diff(rs(3), [pod("a")]) == 2
    assert replica_diff(rs(1), [pod("a"), pod("b")]) == -1
    assert replica_diff({"metadata": {}, "spec": {}}, []) == 1  # replicas defaults to 1


def test_deletion_order_prefers_unscheduled_pending_notready_new():
    pods = [pod("running-old", created="2026-01-01T00:00:00Z"),
            pod("running-new", created="2026-01-02T00:00:00Z"),
            pod("notready", ready=False),
            pod("pending", phase="Pending", ready=False),
            pod("unscheduled", node=None, phase="Pending", ready=False)]
    assert [p["metadata"]["name"] for p in deletion_order(pods)] == \
        ["unscheduled", "pending", "notready", "running-new", "running-old"]


def test_expectations_block_until_observed():
    t = [0.0]
    e = Expectations(ttl=10, clock=lambda: t[0])
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert e.satisfied("k")
    e.expect_deletions("k", ["ns/a", "ns/b"])
    e.deletion_observed("k", "ns/a")
    e.deletion_observed("k", "ns/a")  # the same pod seen twice (update, then delete) counts once
    assert not e.satisfied("k")
    t[0] = 11  # a lost watch event must not block the set forever
    assert e.satisfied("k")


def test_pod_from_template_sets_owner_and_labels():
    p = pod_from_template(rs())
    assert p["metadata"]["generateName"] == "web-abc-"
    assert p["metadata"]["labels"] == {"app": "web"} and p["metadata"]["annotations"] == {"x": "y"}
    ref = p["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == ("ReplicaSet", "rs-uid", True, True)


def test_status_counts():
    pods = [pod("a"), pod("b", ready=False), pod("c", terminating=True)]
    st = replicaset_status(rs(), pods, now=1e10)
    assert st == {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                  "observedGeneration": 4}


def test_min_ready_seconds_delays_available():
    import time
    now = time.time()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5))
    st = replicaset_status(rs(minReadySeconds=30), [pod("a", since=since)], now=now)
    assert (st["readyReplicas"], st["availableReplicas"]) == (1, 0)
    st = replicaset_status(rs(minReadySeconds=30), [pod("a", since=since)], now=now + 60)
    assert st["availableReplicas"] == 1
