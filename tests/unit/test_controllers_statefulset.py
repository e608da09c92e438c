"""StatefulSet and disruption-budget pure parts: ordered creation and scale-down (OrderedReady
vs Parallel), stable identity, partitioned rolling update, status and revisions; the budget's
status (minAvailable/maxUnavailable, percentages, expected scale, disrupted pods); the API
side (defaults, validation refusals naming the field)."""

from __future__ import annotations

import pytest

from kubelab.apiserver import defaults, validation
from kubelab.controllers import disruption
from kubelab.controllers.statefulset import HASH_LABEL, ordinal, plan, pod_for, revision
from kubelab.resources import lookup

NOW = 1_800_000_000.0


def sts(image="nginx:1", replicas=3, **spec):
    s = {"replicas": replicas, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
         "podManagementPolicy": "OrderedReady",
         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": image}]}},
         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}
    s.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "sts-uid", "generation": 2}, "spec": s}


def pod(s, n, *, ready=True, phase="Running", terminating=False):
    p = pod_for(s, n)
    p["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    return p


def names(pods):
    return [p["metadata"]["name"] for p in pods]


def test_identity_hostname_subdomain_labels():
    p = pod_for(sts(), 2)
    assert p["metadata"]["name"] == "web-2"
    assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == ("web-2", "web")
    labels = p["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-2" and labels["apps.kubernetes.io/pod-index"] == "2"
    assert labels[HASH_LABEL] == revision(sts()) and revision(sts()).startswith("web-")
    assert revision(sts("nginx:2")) != revision(sts())
    assert p["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert [ordinal("web", {"metadata": {"name": n}}) for n in ("web-0", "web-12", "web-01", "web-x", "webb-1")] == \
        [0, 12, None, None, None]


@pytest.mark.parametrize("have,want_create", [
    ([], [0]),                                   # one at a time
    ([("0", False)], []),                        # web-0 not Ready: wait
    ([("0", True)], [1]),
    ([("0", True), ("1", True)], [2]),
    ([("0", True), ("2", True)], [1]),           # a hole is filled first
])
def test_ordered_ready_creates_in_order(have, want_create):
    s = sts()
    pods = [pod(s, int(n), ready=r) for n, r in have]
    assert plan(s, pods, NOW).create == want_create


def test_parallel_creates_and_deletes_at_once():
    s = sts(podManagementPolicy="Parallel", replicas=4)
    assert plan(s, [pod(s, 1, ready=False)], NOW).create == [0, 2, 3]
    s2 = sts(podManagementPolicy="Parallel", replicas=1)
    assert sorted(names(plan(s2, [pod(s2, n) for n in range(3)], NOW).delete)) == ["web-1", "web-2"]


def test_ordered_scale_down_from_the_top_one_at_a_time():
    s = sts(replicas=1)
    pods = [pod(s, n) for n in range(3)]
    assert names(plan(s, pods, NOW).delete) == ["web-2"]
    pods[2] = pod(s, 2, terminating=True)
    assert plan(s, pods, NOW).delete == []       # wait for web-2 to be gone
    assert names(plan(s, pods[:2], NOW).delete) == ["web-1"]
    assert plan(s, [pod(s, 0, ready=False), pod(s, 1)], NOW).delete == []  # not while another is unhealthy


def test_failed_pod_is_replaced_under_its_name():
    s = sts()
    pods = [pod(s, 0), pod(s, 1, phase="Failed", ready=False), pod(s, 2)]
    assert names(plan(s, pods, NOW).delete) == ["web-1"]


def test_ordinals_start():
    s = sts(replicas=2, ordinals={"start": 5})
    assert plan(s, [], NOW).create == [5]
    assert plan(s, [pod(s, 5)], NOW).create == [6]


def test_rolling_update_from_the_top_down_to_the_partition():
    old = sts("nginx:1")
    pods = [pod(old, n) for n in range(3)]
    new = sts("nginx:2", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    new["status"] = {"currentRevision": revision(old)}
    p = plan(new, pods, NOW)
    assert names(p.delete) == ["web-2"] and p.create == []
    assert (p.status["updatedReplicas"], p.status["currentReplicas"]) == (0, 3)
    pods[2] = pod(new, 2, ready=False)
    assert plan(new, pods, NOW).delete == []     # wait for web-2 to be Ready
    pods[2] = pod(new, 2)
    p = plan(new, pods, NOW)
    assert p.delete == []                        # web-1 and web-0 are below the partition
    assert p.status["updatedReplicas"] == 1 and p.status["currentRevision"] == revision(old)
    assert p.status["updateRevision"] == revision(new)
    done = [pod(new, n) for n in range(3)]
    p = plan(new, done, NOW)
    assert p.status["currentRevision"] == p.status["updateRevision"] and p.status["currentReplicas"] == 3


def test_on_delete_replaces_nothing():
    old = sts("nginx:1")
    new = sts("nginx:2", updateStrategy={"type": "OnDelete"})
    assert plan(new, [pod(old, n) for n in range(3)], NOW).delete == []


def test_status_counts():
    s = sts(replicas=3)
    p = plan(s, [pod(s, 0), pod(s, 1, ready=False)], NOW)
    assert {k: p.status[k] for k in ("replicas", "readyReplicas", "availableReplicas", "observedGeneration")} == \
        {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 2}


# ---- the API side --------------------------------------------------------------------------------

STS = lookup("statefulsets")


def _defaulted(obj):
    defaults.apply_defaults(STS, obj)
    return obj


def test_defaults():
    s = sts()
    del s["spec"]["podManagementPolicy"], s["spec"]["updateStrategy"]
    spec = _defaulted(s)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10


@pytest.mark.parametrize("change,field,words", [
    ({"podManagementPolicy": "Sometimes"}, "spec.podManagementPolicy", "Unsupported value"),
    ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}}, "spec.updateStrategy.rollingUpdate",
     "only allowed for updateStrategy 'RollingUpdate'"),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition", "greater than or equal to 0"),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "not supported by kubelab"),
    ({"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}, "spec.volumeClaimTemplates",
     "storage (PersistentVolumeClaims) is not served yet"),
    ({"serviceName": "Web_1"}, "spec.serviceName", "RFC 1123 label"),
    ({"selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels", "does not match"),
    ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}},
     "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "Unsupported value"),
])
def test_validation_names_the_field(change, field, words):
    s = _defaulted(sts())
    s["spec"].update(change)
    causes = validation.validate(STS, s)
    assert any(c["field"] == field and words in c["message"] for c in causes), causes


def test_a_name_too_long_for_its_pods_labels_is_refused():
    s = _defaulted(sts())
    s["metadata"]["name"] = "w" * 53
    assert any(c["field"] == "metadata.name" and "no more than 52 characters" in c["message"]
               for c in validation.validate(STS, s))
    s["metadata"]["name"] = "w" * 52
    assert validation.validate(STS, s) == []


def test_update_may_change_only_upstreams_list():
    old = _defaulted(sts())
    new = _defaulted(sts("nginx:2", replicas=5))
    assert validation.validate(STS, new, old=old) == []
    moved = _defaulted(sts())
    moved["spec"]["serviceName"] = "other"
    (cause,) = validation.validate(STS, moved, old=old)
    assert cause["field"] == "spec" and "updates to statefulset spec for fields other than" in cause["message"]


# ---- disruption budgets --------------------------------------------------------------------------

PDBS = lookup("pdb")


def pdb(**spec):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "ns", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def scale_of(kind, name):
    return {("StatefulSet", "web"): 4}.get((kind, name))


@pytest.mark.parametrize("spec,ready,want", [  # (desiredHealthy, expectedPods, disruptionsAllowed)
    ({"minAvailable": 2}, 3, (2, 3, 1)),
    ({"minAvailable": 3}, 3, (3, 3, 0)),
    ({"minAvailable": 2}, 1, (2, 3, 0)),
    ({"minAvailable": "50%"}, 3, (2, 4, 1)),       # percentages count the controller's scale (4)
    ({"maxUnavailable": 1}, 3, (3, 4, 0)),         # one of the 4 is already missing
    ({"maxUnavailable": "50%"}, 3, (2, 4, 1)),
    ({"maxUnavailable": 0}, 3, (4, 4, 0)),
])
def test_budget_status(spec, ready, want):
    s = sts(replicas=4)
    pods = [pod(s, n, ready=n < ready) for n in range(3)]
    st = disruption.compute(pdb(**spec), pods, scale_of, NOW)
    assert (st["desiredHealthy"], st["expectedPods"], st["disruptionsAllowed"]) == want
    assert st["currentHealthy"] == ready and st["observedGeneration"] == 1
    cond = st["conditions"][0]
    assert (cond["type"], cond["status"]) == ("DisruptionAllowed", "True" if want[2] else "False")


def test_budget_selectors_and_unknown_controllers():
    s = sts()
    pods = [pod(s, n) for n in range(3)]
    assert disruption.compute(pdb(minAvailable=1, selector=None), pods, scale_of, NOW)["expectedPods"] == 0
    assert disruption.compute(pdb(minAvailable=1, selector={}), pods, scale_of, NOW)["currentHealthy"] == 3
    bare = [{"metadata": {"name": "x", "namespace": "ns", "labels": {"app": "web"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}]
    st = disruption.compute(pdb(maxUnavailable=1), bare, scale_of, NOW)
    assert st["disruptionsAllowed"] == 0 and st["conditions"][0]["reason"] == "SyncFailed"
    assert 'found no controllers for pod "x"' in st["conditions"][0]["message"]


def test_disrupted_pods_do_not_count_and_expire():
    s = sts()
    pods = [pod(s, n) for n in range(3)]
    b = pdb(minAvailable=1)
    b["status"] = {"disruptedPods": {"web-0": "2027-01-15T07:59:30Z", "gone": "2027-01-15T07:59:30Z"}}
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    st = disruption.compute(b, pods, scale_of, now)
    assert st["disruptedPods"] == {"web-0": "2027-01-15T07:59:30Z"} and st["currentHealthy"] == 2
    st = disruption.compute(b, pods, scale_of, now + disruption.DELETION_TIMEOUT)
    assert st["disruptedPods"] == {} and st["currentHealthy"] == 3


@pytest.mark.parametrize("spec,field,words", [
    ({"minAvailable": 1, "maxUnavailable": 1}, "spec", "minAvailable and maxUnavailable cannot be both set"),
    ({"minAvailable": -1}, "spec.minAvailable", "greater than or equal to 0"),
    ({"maxUnavailable": "150%"}, "spec.maxUnavailable", "must not be greater than 100%"),
    ({"minAvailable": "x%"}, "spec.minAvailable", "a valid percent string"),
    ({"unhealthyPodEvictionPolicy": "Never"}, "spec.unhealthyPodEvictionPolicy", "Unsupported value"),
    ({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "spec.selector.matchExpressions[0].values",
     "must be specified"),
])
def test_budget_validation(spec, field, words):
    b = pdb(**spec)
    causes = validation.validate(PDBS, b)
    assert any(c["field"] == field and words in c["message"] for c in causes), causes


def test_an_unbound_pod_deleted_at_once_satisfies_the_expectation():
    """A pod without a node is removed without a deletionTimestamp: the informer's delete
    event alone must count as the deletion the controller waits for (else it stalls for the
    expectations' TTL before replacing the pod during a rolling update)."""
    from kubelab.controllers.base import Context, InformerFactory
    from kubelab.controllers.statefulset import StatefulSetController

    class Recorder:
        host = "test"

        def event(self, *a, **k) -> None:
            pass

        def close(self) -> None:
            pass

    ctx = Context(None, InformerFactory(None), Recorder(), None)
    ctx._recorders[StatefulSetController.component] = Recorder()
    c = StatefulSetController(ctx)
    victim = pod(sts(), 2)
    c.expectations.expect_deletions("ns/web", ["ns/web-2"])
    assert not c.expectations.satisfied("ns/web")
    (_, _, on_delete), = c.pods._handlers
    on_delete(victim)
    assert c.expectations.satisfied("ns/web")


def test_a_huge_replica_count_is_worked_off_in_bounded_bursts():
    from kubelab.controllers.replicaset import BURST_REPLICAS
    s = sts(podManagementPolicy="Parallel", replicas=2**31 - 1)
    p = plan(s, [pod(s, 0)], NOW)
    assert len(p.create) == BURST_REPLICAS and p.create[0] == 1
    assert plan(sts(replicas=2**31 - 1), [], NOW).create == [0]
