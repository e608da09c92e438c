"""Leader election decisions, flags, namespace finalize, events, helpers."""

import pytest

from kubelab.client.record import make_event
from kubelab.client.leaderelection import lease_decision, lease_spec
from kubelab.timestamps import format_micro_time as micro_time
from kubelab.controllers.manager import build_parser, select_controllers
from kubelab.controllers.namespace import finalize_body
from kubelab.controllers.util import resolve_target_port, selector_matches


def lease(holder, renewed, duration=15):
    return {"spec": {"holderIdentity": holder, "renewTime": micro_time(renewed), "leaseDurationSeconds": duration,
                     "leaseTransitions": 2, "acquireTime": micro_time(renewed - 100)}}


def test_lease_decisions():
    assert lease_decision(None, identity="a", now=1000) == "create"
    assert lease_decision(lease("a", 999), identity="a", now=1000) == "renew"
    assert lease_decision(lease("b", 990), identity="a", now=1000) == "wait"
    assert lease_decision(lease("b", 980), identity="a", now=1000) == "acquire"  # 980 + 15 < 1000
    assert lease_decision(lease("", 999), identity="a", now=1000) == "acquire"


def test_lease_spec_counts_transitions():
    old = lease("b", 980)
    s = lease_spec(old, identity="a", now=1000, lease_duration=15, decision="acquire")
    assert (s["holderIdentity"], s["leaseTransitions"], s["leaseDurationSeconds"]) == ("a", 3, 15)
    r = lease_spec(lease("a", 999), identity="a", now=1000, lease_duration=15, decision="renew")
    assert r["leaseTransitions"] == 2 and r["acquireTime"] == micro_time(899)


def test_select_controllers():
    assert "garbagecollector" not in select_controllers("*,-garbagecollector")
    assert select_controllers("-garbagecollector") == select_controllers("*,-garbagecollector")
    assert "endpoints" in select_controllers("-garbagecollector")
    assert select_controllers("endpoints,replicaset") == ["endpoints", "replicaset"]
    with pytest.raises(ValueError, match="unknown controller"):
        select_controllers("nope")


def test_flags():
    a = build_parser().parse_args(["--server", "http://x", "--leader-elect=false", "--node-monitor-grace-period",
                                   "3s"])
    assert a.leader_elect is False and a.node_monitor_grace_period == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--node-monitor-grace-period", "soon"])


def test_finalize_body_drops_only_kubernetes():
    ns = {"metadata": {"name": "x"}, "spec": {"finalizers": ["kubernetes", "example.com/y"]}}
    assert finalize_body(ns)["spec"]["finalizers"] == ["example.com/y"]
    assert ns["spec"]["finalizers"] == ["kubernetes", "example.com/y"]


def test_make_event():
    obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
           "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "5"}}
    ev = make_event(obj, type_="Normal", reason="SuccessfulCreate", message="Created pod: web-x",
                    component="replicaset-controller", timestamp="T")
    assert ev["involvedObject"] == {"kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "web", "uid": "u",
                                    "resourceVersion": "5", "namespace": "ns"}
    assert ev["source"] == {"component": "replicaset-controller"}
    assert (ev["count"], ev["firstTimestamp"], ev["lastTimestamp"], ev["type"]) == (1, "T", "T", "Normal")
    assert ev["metadata"]["namespace"] == "ns" and ev["metadata"]["name"].startswith("web.")


def test_selector_and_ports():
    sel = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "In", "values": ["x", "y"]},
                                                           {"key": "c", "operator": "DoesNotExist"}]}
    assert selector_matches(sel, {"a": "1", "b": "y"})
    assert not selector_matches(sel, {"a": "1", "b": "z"})
    assert not selector_matches(sel, {"a": "1", "b": "x", "c": ""})
    pod = {"spec": {"containers": [{"ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                              {"name": "dns", "containerPort": 5353}]}]}}
    assert resolve_target_port({"port": 53, "targetPort": "dns", "protocol": "UDP"}, pod) == 53
    assert resolve_target_port({"port": 53, "targetPort": "dns"}, pod) == 5353
    assert resolve_target_port({"port": 80}, pod) == 80
    assert resolve_target_port({"port": 80, "targetPort": "nope"}, pod) is None
