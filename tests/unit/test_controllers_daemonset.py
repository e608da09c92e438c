"""DaemonSet pure parts: eligible nodes (selector, affinity, taints), one pod per node,
rolling update within maxUnavailable, OnDelete, status counts; the API side."""

from kubelab.apiserver import defaults, validation
from kubelab.controllers.daemonset import HASH_LABEL, eligible, plan, pod_for, pod_node, template_hash
from kubelab.resources import lookup

DSS = lookup("daemonsets")
NOW = 1_800_000_000.0


def ds(image="agent:1", **spec):
    s = {"selector": {"matchLabels": {"app": "agent"}},
         "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": image}]}},
         "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}
    s.update(spec)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 2}, "spec": s}


def node(name, labels=None, taints=None):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints} if taints else {}}


def pod(d, node_name, *, ready=True, name=None, phase="Running"):
    p = pod_for(d, node_name)
    p["metadata"]["name"] = name or f"agent-{node_name}"
    p["spec"]["nodeName"] = node_name
    p["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return p


def test_eligibility():
    d = ds()
    assert eligible(d, node("w1"))
    assert not eligible(d, node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    assert eligible(d, node("cordoned", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]))
    tol = ds(template={"metadata": {"labels": {"app": "agent"}}, "spec": {
        "containers": [{"name": "a", "image": "x"}],
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}})
    assert eligible(tol, node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    sel = ds(template={"metadata": {"labels": {"app": "agent"}}, "spec": {
        "containers": [{"name": "a", "image": "x"}], "nodeSelector": {"disk": "ssd"}}})
    assert eligible(sel, node("a", {"disk": "ssd"})) and not eligible(sel, node("b"))
    aff = ds(template={"metadata": {"labels": {"app": "agent"}}, "spec": {
        "containers": [{"name": "a", "image": "x"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}})
    assert eligible(aff, node("a", {"zone": "a"})) and not eligible(aff, node("b", {"zone": "b"}))


def test_pod_pinned_to_its_node():
    p = pod_for(ds(), "w1")
    assert pod_node(p) == "w1" and p["metadata"]["labels"][HASH_LABEL] == template_hash(ds())
    assert any(t["key"] == "node.kubernetes.io/unreachable" for t in p["spec"]["tolerations"])


def test_one_pod_per_node_and_misscheduled_removed():
    d = ds()
    nodes = [node("w1"), node("w2"), node("w3", {"x": "y"})]
    p = plan(d, nodes, [pod(d, "w1"), pod(d, "w1", name="dup"), pod(d, "gone")], NOW)
    assert p.create_on == ["w2", "w3"]
    assert sorted(x["metadata"]["name"] for x in p.delete) == ["agent-gone", "dup"]
    assert p.status["desiredNumberScheduled"] == 3 and p.status["numberMisscheduled"] == 1


def test_rolling_update_respects_max_unavailable():
    old = ds("agent:1")
    new = ds("agent:2")
    nodes = [node(f"w{i}") for i in range(4)]
    pods = [pod(old, f"w{i}") for i in range(4)]
    p = plan(new, nodes, pods, NOW)
    assert len(p.delete) == 1 and p.create_on == []
    assert p.status["updatedNumberScheduled"] == 0 and p.status["numberAvailable"] == 4
    # one node already replaced but not ready yet: no more deletions
    pods2 = [pod(new, "w0", ready=False)] + [pod(old, f"w{i}") for i in range(1, 4)]
    assert plan(new, nodes, pods2, NOW).delete == []
    # a 50% budget takes two at once
    wide = ds("agent:2", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}})
    assert len(plan(wide, nodes, [pod(old, f"w{i}") for i in range(4)], NOW).delete) == 2


def test_on_delete_keeps_old_pods():
    old, new = ds("agent:1"), ds("agent:2", updateStrategy={"type": "OnDelete"})
    p = plan(new, [node("w1")], [pod(old, "w1")], NOW)
    assert p.delete == [] and p.status["updatedNumberScheduled"] == 0


def test_failed_pod_replaced():
    d = ds()
    p = plan(d, [node("w1")], [pod(d, "w1", phase="Failed")], NOW)
    assert [x["metadata"]["name"] for x in p.delete] == ["agent-w1"] and p.create_on == ["w1"]


def test_api_defaults_and_validation():
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {
                "metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}
    defaults.apply_defaults(DSS, body)
    assert body["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert validation.validate(DSS, body) == []
    body["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = 1
    assert any(c["field"] == "spec.updateStrategy.rollingUpdate.maxSurge" for c in validation.validate(DSS, body))
    body["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert any("cannot be 0" in c["message"] for c in validation.validate(DSS, body))


def test_an_unbound_pod_deleted_at_once_satisfies_the_expectation():
    """A pod not yet bound is removed without a deletionTimestamp: the informer's delete event
    alone must count as the deletion the controller waits for (else it stalls for the
    expectations' TTL before creating the replacement)."""
    from kubelab.controllers.base import Context, InformerFactory
    from kubelab.controllers.daemonset import DaemonSetController

    class Recorder:
        host = "test"

        def event(self, *a, **k) -> None:
            pass

        def close(self) -> None:
            pass

    ctx = Context(None, InformerFactory(None), Recorder(), None)
    ctx._recorders[DaemonSetController.component] = Recorder()
    c = DaemonSetController(ctx)
    victim = pod(ds(), "worker-1", name="agent-x")
    key = f"{victim['metadata']['namespace']}/{victim['metadata']['ownerReferences'][0]['name']}"
    c.expectations.expect_deletions(key, [f"{victim['metadata']['namespace']}/agent-x"])
    assert not c.expectations.satisfied(key)
    (_, _, on_delete), = c.pods._handlers
    on_delete(victim)
    assert c.expectations.satisfied(key)
