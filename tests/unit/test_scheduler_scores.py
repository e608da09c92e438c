"""Scores and the node choice over the scheduler cache (pure)."""

import random

from kubelab.scheduler.filters import NodeInfo, Resources
from kubelab.scheduler.scheduler import SchedulerCache, choose_node
from kubelab.scheduler.scores import least_requested, score_nodes, spread_score


def node(name, cpu="4", memory="8Gi", ready="True", taints=None):
    return {"metadata": {"name": name, "uid": name}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}


def pod(name, owner="rs1", cpu="100m", node_name=None):
    p = {"metadata": {"name": name, "namespace": "ns",
                      "ownerReferences": [{"uid": owner, "controller": True, "kind": "ReplicaSet", "name": owner}]},
         "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]}}
    if node_name:
        p["spec"]["nodeName"] = node_name
    return p


def test_least_requested_prefers_emptier():
    empty, busy = NodeInfo(node("a")), NodeInfo(node("b"))
    assert least_requested(pod("p"), empty, Resources()) > least_requested(pod("p"), busy, Resources(3000, 2 ** 32, 5))


def test_spread_prefers_nodes_without_siblings():
    a, b = NodeInfo(node("a")), NodeInfo(node("b"))
    a.owners["rs1"] = 1  # one sibling already on a
    s = score_nodes(pod("y"), [a, b], {})
    assert s["b"] > s["a"]
    assert spread_score(0, 0) == 100 and spread_score(2, 2) == 0


def test_cache_assume_spreads_a_burst():
    cache = SchedulerCache()
    for n in ("a", "b"):
        cache.set_node(node(n))
    placed = []
    for i in range(4):
        p = pod(f"p{i}")
        chosen, msg = choose_node(p, cache, random.Random(i))
        assert msg == ""
        cache.assume(p, chosen)
        placed.append(chosen)
    assert sorted(placed) == ["a", "a", "b", "b"]
    assert cache.infos["a"].requested.milli_cpu == 200


def test_cache_confirm_and_remove_keep_accounting():
    cache = SchedulerCache()
    cache.set_node(node("a"))
    p = pod("p0")
    cache.assume(p, "a")
    cache.confirm({**p, "spec": {**p["spec"], "nodeName": "a"}})
    assert "ns/p0" not in cache.assumed and cache.infos["a"].requested.pods == 1
    assert cache.infos["a"].owners == {"rs1": 1}
    cache.remove_pod("ns/p0")
    assert cache.infos["a"].requested == Resources(0, 0, 0) and cache.infos["a"].owners == {}


def test_unschedulable_message_and_control_plane():
    cache = SchedulerCache()
    cache.set_node(node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    cache.set_node(node("w1", cpu="1"))
    cache.set_node(node("w2", ready="False"))
    chosen, msg = choose_node(pod("big", cpu="2"), cache)
    assert chosen is None
    assert msg.startswith("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
                          "{node-role.kubernetes.io/control-plane: }, 1 node(s) were not ready.")
    chosen, _ = choose_node(pod("small", cpu="100m"), cache)
    assert chosen == "w1"


def test_pods_on_unknown_nodes_do_not_create_candidates():
    cache = SchedulerCache()
    cache.add_pod(pod("x", node_name="ghost"), "ghost")
    assert choose_node(pod("y"), cache) == (None, "no nodes available to schedule pods")
