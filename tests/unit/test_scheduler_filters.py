"""Scheduler filters and the FitError message (pure)."""

from kubelab.scheduler.filters import NodeInfo, Resources, filter_node, fit_error_message, pod_requests, tolerates

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(name="n1", *, ready="True", unschedulable=False, taints=None, labels=None, cpu="2", memory="4Gi", pods="110"):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"unschedulable": unschedulable, "taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}}


def pod(cpu=None, memory=None, *, tolerations=None, node_selector=None, affinity=None):
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": req}}],
                     "tolerations": tolerations or [], "nodeSelector": node_selector or {},
                     **({"affinity": affinity} if affinity else {})}}


def test_pod_requests_sums_containers_and_max_init():
    p = pod("250m", "64Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "250m"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}]
    assert pod_requests(p) == Resources(1000, 64 * 2 ** 20, 1)


def test_fits():
    assert filter_node(pod("500m"), NodeInfo(node())) == []


def test_not_ready_unschedulable():
    assert filter_node(pod(), NodeInfo(node(ready="Unknown"))) == ["node(s) were not ready"]
    assert filter_node(pod(), NodeInfo(node(unschedulable=True))) == ["node(s) were unschedulable"]


def test_taints_and_tolerations():
    ni = NodeInfo(node(taints=[CP_TAINT]))
    assert filter_node(pod(), ni) == ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
    tol = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
    assert filter_node(pod(tolerations=tol), ni) == []
    assert filter_node(pod(), NodeInfo(node(taints=[{"key": "x", "effect": "PreferNoSchedule"}]))) == []
    assert tolerates({"operator": "Exists"}, CP_TAINT)
    assert not tolerates({"key": "a", "value": "1"}, {"key": "a", "value": "2", "effect": "NoSchedule"})
    assert tolerates({"key": "a", "value": "1"}, {"key": "a", "value": "1", "effect": "NoExecute"})


def test_node_selector_and_affinity():
    ni = NodeInfo(node(labels={"disk": "ssd"}))
    assert filter_node(pod(node_selector={"disk": "ssd"}), ni) == []
    assert filter_node(pod(node_selector={"disk": "hdd"}), ni) == ["node(s) didn't match Pod's node affinity/selector"]
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]}]}}}
    assert filter_node(pod(affinity=aff), ni) == ["node(s) didn't match Pod's node affinity/selector"]


def test_resources_report_every_shortage():
    ni = NodeInfo(node(cpu="1", memory="1Gi", pods="3"), requested=Resources(800, 2 ** 29, 2))
    assert filter_node(pod("300m", "600Mi"), ni) == ["Insufficient cpu", "Insufficient memory"]
    ni.requested = Resources(0, 0, 3)
    assert filter_node(pod(), ni) == ["Too many pods"]


def test_fit_error_message_like_upstream():
    msg = fit_error_message(3, {"Insufficient cpu": 2,
                                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }": 1})
    assert msg.startswith("0/3 nodes are available: 1 node(s) had untolerated taint "
                          "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption:")
    assert fit_error_message(0, {}) == "no nodes available to schedule pods"
