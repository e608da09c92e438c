"""`kubelab timeline`: merging supervisor events, object timestamps and Events (pure)."""

from __future__ import annotations

import pytest

from kubelab.lab.timeline import Row, build_timeline, render_timeline
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
    assert rows == sorted(rows)
    whats = [(r.who, r.what) for r in rows]
    assert whats[0] == ("up", "kubelab up started")
    assert ("control-plane/etcd", "process started (pid 10) in netns kl-lab-control-plane") in whats
    assert ("node/worker-1", "registered by its node agent") in whats
    assert ("node/worker-1", "pod CIDR 10.244.1.0/24 (nodeipam)") in whats
    assert ("pod/default/nginx-1", "created by ReplicaSet/nginx-7d") in whats
    assert ("pod/default/nginx-1", "scheduled to worker-1") in whats
    assert ("pod/default/nginx-1", "Ready, IP 10.244.1.5") in whats
    assert ("default-scheduler", "Scheduled: pod/nginx-1 assigned to worker-1") in whats
    assert ("worker-1/proxy", "process exited (code 1)") in whats
    assert not any("unknown" in w for _, w in whats)
    order = [w for _, w in whats]
    assert order.index("registered by its node agent") < order.index("Ready") < order.index("created by ReplicaSet/nginx-7d")


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
    assert lines[1].split()[0] == "0.00" and lines[2].split()[:2] == ["2.25", "control-plane/apiserver"]
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
