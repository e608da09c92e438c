"""Table rendering: column sets, cell derivations (kubectl's printers), ages, Table shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubelab.apiserver.tables import (
    column_definitions, endpoints_string, human_age, label_selector_string, service_ports, to_table,
)
from kubelab.resources import BY_PLURAL, RESOURCES

R = BY_PLURAL
NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=timezone.utc)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(plural: str, obj: dict, *, wide: bool = True) -> dict:
    """Column header -> cell of the single row (wide columns included)."""
    obj.setdefault("metadata", {}).setdefault("creationTimestamp", ts(90))
    t = to_table(R[plural], [obj], resource_version="7", now=NOW)
    return {c["name"]: cell for c, cell in zip(t["columnDefinitions"], t["rows"][0]["cells"])
            if wide or c["priority"] == 0}


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"),
    (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (4 * 3600, "4h"),
    (4 * 3600 + 5 * 60, "4h5m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
    (51 * 3600, "2d3h"), (8 * 86400, "8d"), (400 * 86400, "400d"), (730 * 86400, "2y"),
    (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_human_age(seconds, text):
    assert human_age(seconds) == text


def test_every_resource_has_a_name_column_and_valid_definitions():
    for rt in RESOURCES:
        cols = column_definitions(rt)
        assert sum(1 for c in cols if c["format"] == "name") == 1, rt.kind
        for c in cols:
            assert set(c) == {"name", "type", "format", "description", "priority"}
            assert c["priority"] in (0, 1)


@pytest.mark.parametrize("plural,headers", [
    ("pods", ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]),
    ("services", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]),
    ("deployments", ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]),
    ("replicasets", ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]),
    ("nodes", ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
               "Kernel-Version", "Container-Runtime"]),
    ("endpoints", ["Name", "Endpoints", "Age"]),
    ("endpointslices", ["Name", "AddressType", "Ports", "Endpoints", "Age"]),
    ("events", ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]),
    ("namespaces", ["Name", "Status", "Age"]),
    ("configmaps", ["Name", "Data", "Age"]),
    ("secrets", ["Name", "Type", "Data", "Age"]),
    ("serviceaccounts", ["Name", "Secrets", "Age"]),
    ("leases", ["Name", "Holder", "Age"]),
])
def test_columns(plural, headers):
    assert [c["name"] for c in column_definitions(R[plural])] == headers


@pytest.mark.parametrize("plural,normal", [
    ("pods", ["Name", "Ready", "Status", "Restarts", "Age"]),
    ("services", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"]),
    ("deployments", ["Name", "Ready", "Up-to-date", "Available", "Age"]),
    ("nodes", ["Name", "Status", "Roles", "Age", "Version"]),
    ("events", ["Last Seen", "Type", "Reason", "Object", "Message"]),
])
def test_wide_only_columns_have_priority_1(plural, normal):
    assert [c["name"] for c in column_definitions(R[plural]) if c["priority"] == 0] == normal


def test_table_shape_for_kubectl():
    objs = [{"metadata": {"name": "a", "namespace": "ns1", "labels": {"x": "y"}, "creationTimestamp": ts(5)}},
            {"metadata": {"name": "b", "namespace": "ns2"}}]
    t = to_table(R["configmaps"], objs, resource_version="42", now=NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    assert t["rows"][0]["cells"] == ["a", 0, "5s"]
    assert t["rows"][1]["cells"] == ["b", 0, "<unknown>"]
    assert t["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                      "metadata": objs[0]["metadata"]}
    assert t["rows"][1]["object"]["metadata"]["namespace"] == "ns2"
    assert to_table(R["configmaps"], [], resource_version="1")["rows"] == []
    assert "object" not in to_table(R["configmaps"], objs, resource_version="1", include_object="None")["rows"][0]
    assert to_table(R["configmaps"], objs, resource_version="1", include_object="Object")["rows"][0]["object"] is objs[0]
    assert to_table(R["configmaps"], objs, resource_version="1", continue_token="c")["metadata"]["continue"] == "c"


# --- pods ---------------------------------------------------------------------------------------

def _pod(status: dict | None = None, containers: int = 1, **meta) -> dict:
    return {"metadata": {"name": "web", **meta},
            "spec": {"containers": [{"name": f"c{i}", "image": "i"} for i in range(containers)], "nodeName": "node-1"},
            "status": status or {}}


def _cs(name="c0", ready=False, restarts=0, last_state=None, **state):
    cs = {"name": name, "ready": ready, "restartCount": restarts, "state": state}
    if last_state:
        cs["lastState"] = last_state
    return cs


@pytest.mark.parametrize("pod,ready,status,restarts", [
    (_pod({"phase": "Pending"}), "0/1", "Pending", "0"),
    (_pod({"phase": "Pending", "containerStatuses": [_cs(waiting={"reason": "ContainerCreating"})]}),
     "0/1", "ContainerCreating", "0"),
    (_pod({"phase": "Running", "containerStatuses": [_cs(ready=True, running={})]}), "1/1", "Running", "0"),
    (_pod({"phase": "Running", "containerStatuses": [_cs(ready=True, running={}), _cs("c1", running={})]}, containers=2),
     "1/2", "Running", "0"),
    (_pod({"phase": "Running", "containerStatuses": [
        _cs(restarts=3, waiting={"reason": "CrashLoopBackOff"},
            last_state={"terminated": {"exitCode": 1, "finishedAt": ts(300)}})]}), "0/1", "CrashLoopBackOff", "3 (5m ago)"),
    (_pod({"phase": "Running", "containerStatuses": [_cs(waiting={"reason": "ImagePullBackOff"})]}),
     "0/1", "ImagePullBackOff", "0"),
    (_pod({"phase": "Succeeded", "containerStatuses": [_cs(terminated={"exitCode": 0, "reason": "Completed"})]}),
     "0/1", "Completed", "0"),
    (_pod({"phase": "Failed", "containerStatuses": [_cs(terminated={"exitCode": 2})]}), "0/1", "ExitCode:2", "0"),
    (_pod({"phase": "Failed", "containerStatuses": [_cs(terminated={"exitCode": 137, "signal": 9})]}), "0/1", "Signal:9", "0"),
    (_pod({"phase": "Failed", "reason": "Evicted"}), "0/1", "Evicted", "0"),
    (_pod({"phase": "Running", "containerStatuses": [_cs(ready=True, running={})]}, deletionTimestamp=ts(1)),
     "1/1", "Terminating", "0"),
    (_pod({"phase": "Running", "containerStatuses": [
        _cs(ready=True, running={}), _cs("c1", terminated={"exitCode": 0, "reason": "Completed"})],
        "conditions": [{"type": "Ready", "status": "False"}]}, containers=2), "1/2", "NotReady", "0"),
])
def test_pod_rows(pod, ready, status, restarts):
    r = row("pods", pod)
    assert (r["Ready"], r["Status"], r["Restarts"]) == (ready, status, restarts)


@pytest.mark.parametrize("init_statuses,status", [
    ([_cs("i0", waiting={"reason": "PodInitializing"})], "Init:0/2"),
    ([_cs("i0", terminated={"exitCode": 0}), _cs("i1", running={})], "Init:1/2"),
    ([_cs("i0", terminated={"exitCode": 1, "reason": "Error"})], "Init:Error"),
    ([_cs("i0", waiting={"reason": "CrashLoopBackOff"})], "Init:CrashLoopBackOff"),
    ([_cs("i0", terminated={"exitCode": 3})], "Init:ExitCode:3"),
])
def test_pod_init_status(init_statuses, status):
    pod = _pod({"phase": "Pending", "initContainerStatuses": init_statuses})
    pod["spec"]["initContainers"] = [{"name": "i0", "image": "x"}, {"name": "i1", "image": "x"}]
    assert row("pods", pod)["Status"] == status


def test_pod_wide_cells():
    pod = _pod({"phase": "Running", "podIP": "10.244.1.5"})
    r = row("pods", pod)
    assert (r["IP"], r["Node"], r["Nominated Node"], r["Readiness Gates"], r["Age"]) == (
        "10.244.1.5", "node-1", "<none>", "<none>", "90s")
    pod = _pod({"phase": "Pending"})
    pod["spec"].pop("nodeName")
    pod["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    pod["status"]["conditions"] = [{"type": "a", "status": "True"}]
    r = row("pods", pod)
    assert (r["IP"], r["Node"], r["Readiness Gates"]) == ("<none>", "<none>", "1/2")


# --- services -----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,status,cells", [
    ({"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
      "selector": {"k8s-app": "kube-dns"}},
     {}, ["ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "k8s-app=kube-dns"]),
    ({"type": "NodePort", "clusterIP": "10.96.0.20", "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
      "selector": {"b": "2", "a": "1"}},
     {}, ["NodePort", "10.96.0.20", "<none>", "80:30080/TCP", "a=1,b=2"]),
    ({"type": "LoadBalancer", "clusterIP": "10.96.0.21", "ports": [{"port": 443, "nodePort": 31443}]},
     {}, ["LoadBalancer", "10.96.0.21", "<pending>", "443:31443/TCP", "<none>"]),
    ({"type": "LoadBalancer", "clusterIP": "10.96.0.21", "ports": [{"port": 443}]},
     {"loadBalancer": {"ingress": [{"ip": "192.168.56.200"}]}}, ["LoadBalancer", "10.96.0.21", "192.168.56.200", "443/TCP", "<none>"]),
    ({"type": "ExternalName", "externalName": "example.com"}, {}, ["ExternalName", "<none>", "example.com", "<none>", "<none>"]),
    ({"clusterIP": "None", "ports": [{"port": 80}], "selector": {"app": "db"}}, {}, ["ClusterIP", "None", "<none>", "80/TCP", "app=db"]),
    ({"clusterIP": "10.96.0.30", "externalIPs": ["192.168.56.50"], "ports": [{"port": 80}]}, {},
     ["ClusterIP", "10.96.0.30", "192.168.56.50", "80/TCP", "<none>"]),
])
def test_service_rows(spec, status, cells):
    r = row("services", {"metadata": {"name": "s"}, "spec": spec, "status": status})
    assert [r[c] for c in ("Type", "Cluster-IP", "External-IP", "Port(s)", "Selector")] == cells


def test_service_ports_helper():
    assert service_ports({}) == "<none>"
    assert service_ports({"ports": [{"port": 80, "nodePort": 30001, "protocol": "SCTP"}]}) == "80:30001/SCTP"


# --- workloads ---------------------------------------------------------------------------------

def test_deployment_and_replicaset_rows():
    tmpl = {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}
    dep = {"metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": tmpl},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert list(row("deployments", dep).values())[1:] == ["2/3", 3, 2, "90s", "web,log", "nginx:1.27,busybox", "app=d"]
    fresh = {"metadata": {"name": "d"}, "spec": {"replicas": 1, "template": tmpl}}
    assert list(row("deployments", fresh).values())[1:4] == ["0/1", 0, 0]
    rs = {"metadata": {"name": "d-abc"}, "spec": {"replicas": 3, "template": tmpl,
          "selector": {"matchLabels": {"app": "d", "pod-template-hash": "abc"}}},
          "status": {"replicas": 3, "readyReplicas": 1}}
    assert list(row("replicasets", rs).values())[1:] == [3, 3, 1, "90s", "web,log", "nginx:1.27,busybox",
                                                        "app=d,pod-template-hash=abc"]


@pytest.mark.parametrize("selector,text", [
    (None, "<none>"), ({}, "<none>"), ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "t", "operator": "In", "values": ["y", "x"]},
                           {"key": "u", "operator": "NotIn", "values": ["z"]},
                           {"key": "e", "operator": "Exists"}, {"key": "g", "operator": "DoesNotExist"}]},
     "t in (x,y),u notin (z),e,!g"),
])
def test_label_selector_string(selector, text):
    assert label_selector_string(selector) == text


# --- nodes ----------------------------------------------------------------------------------------

NODE_STATUS = {
    "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
    "addresses": [{"type": "InternalIP", "address": "192.168.56.11"}, {"type": "Hostname", "address": "w1"}],
    "nodeInfo": {"kubeletVersion": "v1.32.0-kubelab", "osImage": "Debian GNU/Linux 12 (bookworm)",
                 "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "kubelab://0.1.0"},
}


@pytest.mark.parametrize("labels,spec,conditions,status,roles", [
    ({"node-role.kubernetes.io/control-plane": ""}, {}, None, "Ready", "control-plane"),
    ({}, {"unschedulable": True}, None, "Ready,SchedulingDisabled", "<none>"),
    ({"kubernetes.io/role": "worker", "node-role.kubernetes.io/edge": ""}, {}, [{"type": "Ready", "status": "Unknown"}],
     "NotReady", "edge,worker"),
    ({}, {}, [], "Unknown", "<none>"),
])
def test_node_rows(labels, spec, conditions, status, roles):
    st = dict(NODE_STATUS)
    if conditions is not None:
        st["conditions"] = conditions
    r = row("nodes", {"metadata": {"name": "w1", "labels": labels}, "spec": spec, "status": st})
    assert (r["Status"], r["Roles"]) == (status, roles)
    assert [r[c] for c in ("Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime")] == [
        "v1.32.0-kubelab", "192.168.56.11", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", "kubelab://0.1.0"]


# --- endpoints and slices -----------------------------------------------------------------------

@pytest.mark.parametrize("subsets,text", [
    ([], "<none>"),
    ([{"addresses": [{"ip": "10.244.1.2"}], "ports": [{"port": 80}]}], "10.244.1.2:80"),
    ([{"addresses": [{"ip": f"10.244.1.{i}"} for i in range(5)], "ports": [{"port": 80}]}],
     "10.244.1.0:80,10.244.1.1:80,10.244.1.2:80 + 2 more..."),
    ([{"addresses": [{"ip": "10.244.1.2"}], "ports": [{"port": 80}, {"port": 443}]}], "10.244.1.2:80,10.244.1.2:443"),
    ([{"notReadyAddresses": [{"ip": "10.244.1.9"}], "ports": [{"port": 80}]}], "<none>"),
])
def test_endpoints(subsets, text):
    assert endpoints_string({"subsets": subsets}) == text
    assert row("endpoints", {"metadata": {"name": "e"}, "subsets": subsets})["Endpoints"] == text


@pytest.mark.parametrize("slice_,cells", [
    ({"addressType": "IPv4", "ports": [{"port": 80}, {"port": 443}],
      "endpoints": [{"addresses": ["10.244.1.2"]}, {"addresses": ["10.244.2.3"]}]},
     ["IPv4", "80,443", "10.244.1.2,10.244.2.3"]),
    ({"addressType": "IPv4", "endpoints": []}, ["IPv4", "<unset>", "<unset>"]),
    ({"addressType": "IPv4", "ports": [{"name": ""}],
      "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(4)]},
     ["IPv4", "<unset>", "10.0.0.0,10.0.0.1,10.0.0.2 + 1 more..."]),
])
def test_endpointslices(slice_, cells):
    r = row("endpointslices", {"metadata": {"name": "s-abc"}, **slice_})
    assert [r["AddressType"], r["Ports"], r["Endpoints"]] == cells


# --- events and the small ones ------------------------------------------------------------------

def test_event_rows():
    ev = {"metadata": {"name": "web.17a", "namespace": "default"}, "type": "Warning", "reason": "BackOff",
          "message": "Back-off restarting failed container", "count": 4,
          "firstTimestamp": ts(600), "lastTimestamp": ts(30),
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
          "source": {"component": "kubelet", "host": "w1"}}
    r = row("events", ev)
    assert r == {"Last Seen": "30s (x4 over 10m)", "Type": "Warning", "Reason": "BackOff", "Object": "pod/web",
                 "Subobject": "spec.containers{c}", "Source": "kubelet, w1",
                 "Message": "Back-off restarting failed container", "First Seen": "10m", "Count": 4, "Name": "web.17a"}
    once = {"metadata": {"name": "n"}, "type": "Normal", "reason": "Scheduled", "message": "m",
            "eventTime": "2025-01-10T11:59:00.000000Z", "involvedObject": {"kind": "Pod", "name": "p"}}
    assert row("events", once)["Last Seen"] == "60s"


@pytest.mark.parametrize("plural,obj,cells", [
    ("namespaces", {"status": {"phase": "Active"}}, ["Active"]),
    ("namespaces", {"status": {"phase": "Terminating"}}, ["Terminating"]),
    ("configmaps", {"data": {"a": "1", "b": "2"}, "binaryData": {"c": "eA=="}}, [3]),
    ("secrets", {"type": "Opaque", "data": {"u": "eA=="}}, ["Opaque", 1]),
    ("serviceaccounts", {}, [0]),
    ("leases", {"spec": {"holderIdentity": "node-1"}}, ["node-1"]),
    ("leases", {"spec": {}}, [""]),
])
def test_small_kinds(plural, obj, cells):
    obj["metadata"] = {"name": "x"}
    r = list(row(plural, obj).values())
    assert r[0] == "x" and r[-1] == "90s"
    assert r[1:-1] == cells
