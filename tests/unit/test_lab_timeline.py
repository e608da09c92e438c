"""`kubelab timeline`: merging supervisor events, object timestamps and Events (pure)."""

from __future__ import annotations

import pytest

from kubelab.lab.timeline import Row, action_rows, build_timeline, render_timeline, sort_rows
from kubelab.timestamps import format_time, parse_epoch

T0 = parse_epoch("2026-11-26T12:00:00Z")


def test_parse_time():
    assert parse_epoch("2026-11-26T12:00:01Z") == T0 + 1
    assert parse_epoch("2026-11-26T12:00:01.500000Z") == T0 + 1.5
    assert parse_epoch(None) is None and parse_epoch("garbage") is None
    assert format_time(T0 + 1.9) == "2026-11-26T12:00:01Z"  # metav1.Time: whole seconds


def test_build_timeline_merges_sources_in_time_order():
    events = [
        {"t": T0 + 0.0, "source": "up", "event": "up-started"},
        {"t": T0 + 0.3, "source": "supervisor", "event": "started", "component": "etcd", "node": "control-plane",
         "pid": 10, "netns": "kl-lab-control-plane"},
        {"t": T0 + 0.8, "source": "supervisor", "event": "healthy", "component": "etcd", "node": "control-plane",
         "pid": 10, "seconds": 0.5},
        {"t": T0 + 5.5, "source": "supervisor", "event": "exited", "component": "proxy", "node": "worker-1",
         "pid": 20, "code": 1},
        {"t": T0 + 0.1, "source": "x", "event": "unknown-kind"},
    ]
    objects = {
        "nodes": [{"metadata": {"name": "worker-1", "creationTimestamp": "2026-11-26T12:00:03Z"},
                   "spec": {"podCIDR": "10.244.1.0/24"},
                   "status": {"conditions": [{"type": "Ready", "status": "True",
                                              "lastTransitionTime": "2026-11-26T12:00:04Z"}]}}],
        "pods": [{"metadata": {"name": "nginx-1", "namespace": "default", "creationTimestamp": "2026-11-26T12:00:06Z",
                               "ownerReferences": [{"kind": "ReplicaSet", "name": "nginx-7d"}]},
                  "spec": {"nodeName": "worker-1"},
                  "status": {"podIP": "10.244.1.5", "conditions": [
                      {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-26T12:00:06Z"},
                      {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-26T12:00:08Z"}]}}],
        "events": [{"reason": "Scheduled", "source": {"component": "default-scheduler"},
                    "involvedObject": {"kind": "Pod", "name": "nginx-1"}, "message": "assigned to worker-1",
                    "firstTimestamp": "2026-11-26T12:00:06Z"}],
        "services": [], "endpointslices": [], "leases": [],
    }
    rows = build_timeline(events, objects)
    assert rows == sort_rows(rows) and [r.t for r in rows] == sorted(r.t for r in rows)
    whats = [(r.who, r.what) for r in rows]
    assert whats[0] == ("up", "kubelab up started")
    assert ("control-plane/etcd", "process started (pid 10) in netns kl-lab-control-plane") in whats
    assert ("node/worker-1", "registered by its node agent") in whats
    assert ("node/worker-1", "pod CIDR 10.244.1.0/24 set by nodeipam (controllers)") in whats
    assert ("pod/default/nginx-1", "created by ReplicaSet/nginx-7d (replicaset controller)") in whats
    assert ("pod/default/nginx-1", "scheduled to worker-1 by default-scheduler") in whats
    assert ("pod/default/nginx-1", "Ready, IP 10.244.1.5 (reported by the node agent of worker-1)") in whats
    assert ("default-scheduler", "Scheduled: pod/nginx-1 assigned to worker-1") in whats
    assert ("worker-1/proxy", "process exited (code 1)") in whats
    assert not any("unknown" in w for _, w in whats)
    order = [w for _, w in whats]
    assert order.index("registered by its node agent") < order.index("Ready (reported by its node agent)") \
        < order.index("created by ReplicaSet/nginx-7d (replicaset controller)")
    # same whole second: created, then scheduled (cause before effect), then the scheduler's Event
    assert order.index("created by ReplicaSet/nginx-7d (replicaset controller)") \
        < order.index("scheduled to worker-1 by default-scheduler") < order.index("Scheduled: pod/nginx-1 assigned to worker-1")


def test_since_drops_older_rows_and_render_is_relative():
    rows = [Row(T0 - 100, "old", "before this up", "api"), Row(T0, "up", "kubelab up started", "supervisor"),
            Row(T0 + 2.25, "control-plane/apiserver", "healthy after 1.0s", "supervisor")]
    events = [{"t": T0 - 100, "source": "up", "event": "up-done", "seconds": 3},
              {"t": T0, "source": "up", "event": "up-started"}]
    kept = build_timeline(events, {}, since=T0)
    assert [r.what for r in kept] == ["kubelab up started"]
    assert len(build_timeline(events, {})) == 2
    text = render_timeline(rows[1:], t0=T0)
    lines = text.splitlines()
    assert lines[0].split() == ["+SECONDS", "WHO", "WHAT"]
    assert lines[1].split()[0] == "0.000" and lines[2].split()[:2] == ["2.250", "control-plane/apiserver"]
    assert render_timeline([]) == "no events yet"


PROXY_LOG = """--- kubelab supervisor: starting worker-1/proxy at 12:37:13 (start #1)
2026-11-26 12:37:14,393 INFO httpx: HTTP Request: GET http://192.168.56.10:6443/api/v1/services?limit=500 "HTTP/1.1 200 OK"
2026-11-26 12:37:14,396 INFO httpx: HTTP Request: GET http://192.168.56.10:6443/apis/discovery.k8s.io/v1/endpointslices?limit=500 "HTTP/1.1 200 OK"
2026-11-26 12:37:14,415 INFO httpx: HTTP Request: GET http://192.168.56.10:6443/api/v1/services?watch=true&resourceVersion=33&timeoutSeconds=343&allowWatchBookmarks=true "HTTP/1.1 200 OK"
2026-11-26 12:37:14,500 INFO httpx: HTTP Request: GET http://192.168.56.10:6443/api/v1/nodes/worker-1 "HTTP/1.1 200 OK"
2026-11-26 12:42:57,001 INFO httpx: HTTP Request: GET http://192.168.56.10:6443/api/v1/services?watch=true&resourceVersion=90&timeoutSeconds=343&allowWatchBookmarks=true "HTTP/1.1 200 OK"
2026-11-26 12:43:00,000 INFO httpx: HTTP Request: GET http://192.168.56.10:6443/api/v1/services?limit=500 "HTTP/1.1 200 OK"
some other line
"""


def test_log_rows_show_lists_first_watches_and_relists():
    from kubelab.lab.timeline import log_rows
    rows = log_rows("worker-1/proxy", PROXY_LOG)
    assert [r.what for r in rows] == ["LIST services", "LIST endpointslices",
                                      "WATCH services from resourceVersion 33", "relist services"]
    assert all(r.who == "worker-1/proxy" and r.source == "log" for r in rows)
    assert rows[1].t - rows[0].t == pytest.approx(0.003, abs=1e-6)
    merged = build_timeline([], {}, logs={"worker-1/proxy": PROXY_LOG})
    assert [r.what for r in merged][0] == "LIST services"


def test_ties_keep_causal_order_not_alphabetical():
    """Same whole second: a Node registered, got its pod CIDR and became Ready; alphabetically
    "Ready" < "pod CIDR" < "registered" -- the timeline must not reorder them so."""
    node = {"metadata": {"name": "worker-1", "creationTimestamp": "2026-11-26T12:00:03Z"},
            "spec": {"podCIDR": "10.244.1.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-26T12:00:03Z"}]}}
    rows = build_timeline([], {"nodes": [node]})
    assert [r.what.split()[0] for r in rows] == ["registered", "pod", "Ready"]
    # rows with equal time and rank keep the order they were made in (never sorted by name)
    made = [Row(T0, "zz", "first", "api"), Row(T0, "aa", "second", "api")]
    assert [r.what for r in sort_rows(made)] == ["first", "second"]


CONTROLLERS_LOG = """2026-11-26 12:00:04,900 INFO kubelab.controllers.nodeipam: node worker-1: pod CIDR 10.244.1.0/24 assigned
2026-11-26 12:00:07,450 INFO kubelab.controllers.endpointslice: endpointslice kube-system/kube-dns-x1 created for service kube-system/kube-dns: 1 endpoint(s), 0 ready, ports 53/UDP
2026-11-26 12:00:07,912 INFO kubelab.controllers.endpointslice: endpointslice kube-system/kube-dns-x1 updated for service kube-system/kube-dns: 1 endpoint(s), 1 ready (10.244.1.2), ports 53/UDP
2026-11-26 12:00:07,913 INFO kubelab.controllers.endpoints: endpoints kube-system/kube-dns updated: 1 ready address(es) (10.244.1.2), 0 not ready
"""
SCHEDULER_LOG = "2026-11-26 12:00:06,005 INFO kubelab.scheduler: bound pod kube-system/kube-dns-1 to worker-1\n"
AGENT_LOG = ("2026-11-26 12:00:04,700 INFO kubelab.nodeagent.agent: node worker-1 registered (InternalIP 192.168.56.11)\n"
             "2026-11-26 12:00:06,600 INFO kubelab.nodeagent.agent: pod kube-system/kube-dns-1: sandbox kl-lab-worker-1-u "
             "ready in 480 ms (pause 30 ms, CNI ADD 450 ms), IP 10.244.1.2\n")


def test_action_rows_give_milliseconds_and_who_did_it():
    rows = action_rows("control-plane/controllers", CONTROLLERS_LOG)
    assert [(r.who, r.what) for r in rows] == [
        ("node/worker-1", "pod CIDR 10.244.1.0/24 set by control-plane/controllers (nodeipam)"),
        ("endpointslice/kube-system/kube-dns-x1", "created by control-plane/controllers for service kube-system/kube-dns: "
                                                  "1 endpoint(s), 0 ready, ports 53/UDP"),
        ("endpointslice/kube-system/kube-dns-x1", "updated by control-plane/controllers for service kube-system/kube-dns: "
                                                  "1 endpoint(s), 1 ready (10.244.1.2), ports 53/UDP"),
        ("endpoints/kube-system/kube-dns", "updated by control-plane/controllers: 1 ready address(es) (10.244.1.2), "
                                           "0 not ready")]
    assert rows[2].t - rows[1].t == pytest.approx(0.462, abs=1e-6)
    assert action_rows("x", "garbage\n2026-13-40 99:00:00,000 node a registered\n") == []


def test_a_components_millisecond_line_replaces_the_whole_second_api_row():
    objects = {
        "nodes": [{"metadata": {"name": "worker-1", "creationTimestamp": "2026-11-26T12:00:04Z"},
                   "spec": {"podCIDR": "10.244.1.0/24"}}],
        "pods": [{"metadata": {"name": "kube-dns-1", "namespace": "kube-system",
                               "creationTimestamp": "2026-11-26T12:00:05Z"},
                  "spec": {"nodeName": "worker-1", "schedulerName": "default-scheduler"},
                  "status": {"conditions": [{"type": "PodScheduled", "status": "True",
                                             "lastTransitionTime": "2026-11-26T12:00:06Z"}]}}],
        "endpointslices": [{"metadata": {"name": "kube-dns-x1", "namespace": "kube-system",
                                         "creationTimestamp": "2026-11-26T12:00:07Z",
                                         "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                            "endpoints": []}],
    }
    logs = {"control-plane/controllers": CONTROLLERS_LOG, "control-plane/scheduler": SCHEDULER_LOG,
            "worker-1/nodeagent": AGENT_LOG}
    rows = build_timeline([], objects, logs=logs)
    whats = [(r.who, r.what) for r in rows]
    assert ("node/worker-1", "registered by its node agent") in whats  # the agent logs it after its status update
    assert ("pod/kube-system/kube-dns-1", "scheduled to worker-1 by control-plane/scheduler") in whats
    assert not any(w.startswith("scheduled to worker-1 by default-scheduler") for _, w in whats)
    assert sum(1 for who, w in whats if who == "endpointslice/kube-system/kube-dns-x1" and w.startswith("created")) == 1
    # the order of exercise 11: registered, pod CIDR, created, scheduled, sandbox, slice written
    order = [w.split()[0] for who, w in whats if who in ("node/worker-1", "pod/kube-system/kube-dns-1")
             or who.startswith("endpointslice/")]
    assert order == ["registered", "pod", "created", "scheduled", "sandbox", "created", "updated"]
    text = render_timeline(rows, t0=rows[0].t)
    assert "~" in text and "whole seconds" in text
    exact = next(line for line in text.splitlines() if "scheduled to worker-1" in line)
    assert exact.split()[0].count(".") == 1 and len(exact.split()[0].split(".")[1]) == 3
