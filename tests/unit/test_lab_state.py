"""The lab's state files, process identity, kubeconfig backup, status text and add-on edits."""

from __future__ import annotations

import os
import subprocess
import sys

from kubelab.lab import lab, state
from kubelab.lab.topology import plan_lab


def test_record_round_trip_and_atomic_write(tmp_path):
    plan = plan_lab(name="st", workers=1, root_dir=str(tmp_path))
    rec = state.new_record(plan, argv=["kubelab", "up"])
    state.save_record(plan.lab_dir, rec)
    got = state.load_record(plan.lab_dir)
    assert got["plan"]["name"] == "st" and got["phase"] == "creating"
    assert got["created"] == {"netns": [], "links": []}
    assert not [f for f in os.listdir(plan.lab_dir) if ".tmp." in f]
    assert state.load_record(str(tmp_path / "nothing")) is None


def test_events_are_read_incrementally_and_partial_lines_wait(tmp_path):
    d = str(tmp_path)
    state.append_event(d, {"event": "a"})
    state.append_event(d, {"event": "b"})
    evs, off = state.read_events(d)
    assert [e["event"] for e in evs] == ["a", "b"] and all("t" in e for e in evs)
    with open(os.path.join(d, state.EVENTS_FILE), "a") as f:
        f.write('{"event": "c"')  # a writer mid-line
    evs2, off2 = state.read_events(d, off)
    assert evs2 == [] and off2 == off
    with open(os.path.join(d, state.EVENTS_FILE), "a") as f:
        f.write("}\n")
    evs3, _ = state.read_events(d, off2)
    assert [e["event"] for e in evs3] == ["c"]


def test_process_identity_survives_only_for_the_same_process():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid = state.proc_id(p.pid)
        assert state.alive(pid)
        impostor = state.ProcId(p.pid, pid.start + 1)  # same PID, other start time: a recycled PID
        assert not state.alive(impostor)
        assert not state.signal_proc(impostor, 15)
        assert state.alive(pid)
        state.stop_proc(pid, timeout=5)
        p.wait(5)
        assert not state.alive(pid)
    finally:
        if p.poll() is None:
            p.kill()
    assert not state.alive({"pid": 1, "start": state.proc_start(1)})  # never PID 1
    assert not state.signal_proc(state.ProcId(1, state.proc_start(1)), 0)


def test_dns_addon_never_forwards_to_the_host_resolvers():
    plan = plan_lab()
    docs = lab.addon_objects(plan)
    dep = next(d for d in docs if d["kind"] == "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--upstream=none" in args and sum(a.startswith("--upstream") for a in args) == 1
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"


def test_demo_is_an_nginx_deployment_with_clusterip_and_nodeport():
    objs = lab.demo_objects()
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert ("Deployment", "nginx") in kinds
    svcs = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    assert svcs["nginx"]["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svcs["nginx-nodeport"]["spec"]["type"] == "NodePort"
    assert svcs["nginx-nodeport"]["spec"]["ports"][0]["nodePort"] == lab.DEMO_NODEPORT


def test_status_rendering():
    plan = plan_lab()
    rows = [
        {"node": "control-plane", "component": "apiserver", "pid": 42, "alive": True, "health": "ok",
         "health_url": "x", "restarts": 0, "started_at": 100.0},
        {"node": "worker-1", "component": "proxy", "pid": None, "alive": False, "health": None,
         "health_url": "y", "restarts": 3, "started_at": 90.0},
    ]
    nodes = [{"metadata": {"name": "worker-1"}, "spec": {"podCIDR": "10.244.1.0/24"},
              "status": {"conditions": [{"type": "Ready", "status": "True"}],
                         "addresses": [{"type": "InternalIP", "address": "192.168.56.11"}]}}]
    text = lab.render_status(plan, supervisor_alive=True, rows=rows, nodes=nodes, now=130.0)
    lines = text.splitlines()
    api = next(line for line in lines if "apiserver" in line)
    assert "42" in api and "running" in api and "ok" in api and "30s" in api
    proxy = next(line for line in lines if "proxy" in line)
    assert "DEAD" in proxy and " 3 " in proxy
    assert any("worker-1" in line and "True" in line and "10.244.1.0/24" in line for line in lines)
    down = lab.render_status(plan, supervisor_alive=False, rows=[], nodes=None, now=0, api_error="refused")
    assert "NOT running" in down and "refused" in down


def test_mounts_under_orders_deepest_first():
    info = "\n".join([
        "22 1 0:21 / / rw - ext4 /dev/vda rw",
        "90 22 0:50 / /var/lib/kubelab/lab/control-plane/etcd rw - tmpfs kubelab-etcd rw",
        "91 22 0:51 / /var/lib/kubelab/lab/worker-1/nodeagent/pods/p1/rootfs rw - overlay overlay rw",
        "92 91 0:52 / /var/lib/kubelab/lab/worker-1/nodeagent/pods/p1/rootfs/proc rw - proc proc rw",
        "93 22 0:53 / /var/lib/kubelab/lab2/x rw - tmpfs t rw",
    ])
    got = state.mounts_under("/var/lib/kubelab/lab", info)
    assert got == ["/var/lib/kubelab/lab/worker-1/nodeagent/pods/p1/rootfs/proc",
                   "/var/lib/kubelab/lab/worker-1/nodeagent/pods/p1/rootfs",
                   "/var/lib/kubelab/lab/control-plane/etcd"]
