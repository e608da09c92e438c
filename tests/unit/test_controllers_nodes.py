"""Node IPAM and node lifecycle pure parts."""

import pytest

from kubelab.controllers.nodeipam import CIDRExhausted, allocate_cidr, used_cidrs
from kubelab.controllers.nodelifecycle import (UNREACHABLE, desired_taints, heartbeat_of, pod_not_ready_patch,
                                               unknown_conditions)


def test_allocate_first_free_and_no_overlap():
    assert allocate_cidr("10.244.0.0/16", 24, set()) == "10.244.0.0/24"
    assert allocate_cidr("10.244.0.0/16", 24, {"10.244.0.0/24", "10.244.2.0/24"}) == "10.244.1.0/24"
    # a bigger used range blocks all of its /24s
    assert allocate_cidr("10.244.0.0/16", 24, {"10.244.0.0/23"}) == "10.244.2.0/24"


def test_allocate_exhausted_and_bad_mask():
    with pytest.raises(CIDRExhausted):
        allocate_cidr("10.244.0.0/23", 24, {"10.244.0.0/24", "10.244.1.0/24"})
    with pytest.raises(ValueError):
        allocate_cidr("10.244.0.0/16", 8, set())


def test_used_cidrs_rebuilt_from_nodes():
    nodes = [{"spec": {"podCIDR": "10.244.3.0/24", "podCIDRs": ["10.244.3.0/24"]}}, {"spec": {}}, {}]
    assert used_cidrs(nodes) == {"10.244.3.0/24"}


def node(ready="True", taints=None):
    return {"metadata": {"name": "n1"}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": "h1",
                                       "lastTransitionTime": "t0"},
                                      {"type": "MemoryPressure", "status": "False"}]}}


def test_unknown_conditions():
    conds = {c["type"]: c for c in unknown_conditions(node(), "t1")}
    assert conds["Ready"]["status"] == "Unknown" and conds["Ready"]["reason"] == "NodeStatusUnknown"
    assert conds["Ready"]["lastTransitionTime"] == "t1" and conds["Ready"]["lastHeartbeatTime"] == "h1"
    assert conds["MemoryPressure"]["status"] == "Unknown"
    never = unknown_conditions({"metadata": {"name": "n"}, "status": {}}, "t1")
    assert never[0]["reason"] == "NodeStatusNeverUpdated"


def test_taints_follow_ready():
    t = desired_taints(node("Unknown", taints=[{"key": "other", "effect": "NoSchedule"}]))
    assert {(x["key"], x["effect"]) for x in t} == {("other", "NoSchedule"), (UNREACHABLE, "NoSchedule"),
                                                    (UNREACHABLE, "NoExecute")}
    assert desired_taints(node("True", taints=t)) == [{"key": "other", "effect": "NoSchedule"}]
    assert desired_taints(node("Unknown", taints=t)) == t  # stable: no rewrite


def test_heartbeat_and_pod_patch():
    assert heartbeat_of(node(), {"spec": {"renewTime": "r"}}) == ("r", "h1")
    pod = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    patch = pod_not_ready_patch(pod, "t")
    assert patch["status"]["conditions"][0]["status"] == "False"
    assert pod_not_ready_patch({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, "t") is None
