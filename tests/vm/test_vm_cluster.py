"""The cluster Ansible made on qemu VMs, end to end: the same checks as the lab's walkthrough
(pod-to-pod across nodes, Service by name, NodePort, DNS, exec, logs), plus what only VMs
show: systemd units, node IPs on the node network, a second Ansible run with changed=0, and a
worker coming back after a reboot.

kubectl runs on the host against the control plane's API server (qemu hostfwd to 6443);
NodePorts are tried from the control plane VM (the host has no address on the node network).
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import vmlab  # tests/vm is on sys.path (conftest.py)

from kubelab.testing import kubectl, wait_until

NS = "vmtest"
CP_UNITS = ("etcd", "kubelab-apiserver", "kubelab-controllers", "kubelab-scheduler")
WORKER_UNITS = ("kubelab-nodeagent", "kubelab-proxy")


def apply(c, manifest: dict | list) -> None:
    docs = manifest if isinstance(manifest, list) else [manifest]
    for d in docs:  # one object per apply: kubectl reads one JSON document from stdin
        kubectl(c.kubeconfig, "apply", "-f", "-", input=json.dumps(d), request_timeout="60s", timeout=90)


def pod(name: str, node: str, image: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}]}}


def get(c, *args: str) -> dict:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def running(c, name: str) -> dict | None:
    p = c.kubectl("get", "pod", "-n", NS, name, "-o", "json", check=False)
    if p.returncode != 0:
        return None
    obj = json.loads(p.stdout)
    ready = [x for x in obj.get("status", {}).get("conditions", []) if x["type"] == "Ready"]
    return obj if obj["status"].get("phase") == "Running" and ready and ready[0]["status"] == "True" else None


@pytest.fixture(scope="module")
def workload(vmcluster):
    c = vmcluster
    workers = [vm.name for vm in c.lab.vms[1:]]
    apply(c, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    apply(c, [pod("web", workers[0], "nginx", {"app": "web"}), pod("client", workers[-1], "busybox"),
              pod("neighbour", workers[0], "busybox"),
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}},
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-np", "namespace": NS},
               "spec": {"type": "NodePort", "selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": 80, "nodePort": 30081}]}}])
    web = wait_until(lambda: running(c, "web"), timeout=240, interval=2, what="pod web Running")
    client = wait_until(lambda: running(c, "client"), timeout=240, interval=2, what="pod client Running")
    wait_until(lambda: running(c, "neighbour"), timeout=240, interval=2, what="pod neighbour Running")
    return {"web": web, "client": client, "workers": workers}


def exec_client(c, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return c.kubectl("exec", "-n", NS, "client", "--", *cmd, check=check)


def test_first_ansible_run_changed_things(vmcluster):
    recap = recap_counts(vmcluster.first_run.stdout)
    assert set(recap) >= {vm.name for vm in vmcluster.lab.vms}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap.values()), recap


def test_systemd_units_active(vmcluster):
    c = vmcluster
    for vm in c.lab.vms:
        units = CP_UNITS if vm.index == 0 else WORKER_UNITS
        p = c.ssh(vm.name, "systemctl", "is-active", *units, check=False)
        assert p.stdout.split() == ["active"] * len(units), f"{vm.name}: {p.stdout}"
        p = c.ssh(vm.name, "systemctl", "show", "-p", "Restart", *[u for u in units if u.startswith("kubelab")])
        assert set(p.stdout.split()) == {"Restart=on-failure"}, p.stdout


def test_nodes_ready_on_the_node_network(vmcluster):
    c = vmcluster
    nodes = {n["metadata"]["name"]: n for n in get(c, "nodes")["items"]}
    for vm in c.lab.vms[1:]:
        n = nodes[vm.name]
        ips = [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        assert ips == [vm.node_ip], f"{vm.name} must register its node IP, not the NAT one: {ips}"
        ready = [x["status"] for x in n["status"]["conditions"] if x["type"] == "Ready"]
        assert ready == ["True"]
        assert n["spec"].get("podCIDR", "").startswith("10.244.")


def test_vms_route_nowhere_else(vmcluster):
    for vm in vmcluster.lab.vms:
        routes = vmcluster.ssh(vm.name, "ip", "-4", "route", "show", "default").stdout
        assert routes.strip() == "", f"{vm.name} has a default route: {routes}"


def test_pod_to_pod_across_nodes(vmcluster, workload):
    web, client = workload["web"], workload["client"]
    assert web["spec"]["nodeName"] != client["spec"]["nodeName"]
    p = exec_client(vmcluster, "curl", "-sS", "-m", "10", f"http://{web['status']['podIP']}/")
    assert "nginx" in p.stdout.lower(), p.stdout + p.stderr


def test_dns_and_service_by_name(vmcluster, workload):
    c = vmcluster
    svc = get(c, "service", "-n", NS, "web")
    name = f"web.{NS}.svc.cluster.local"
    def resolved():
        p = exec_client(c, "dig", "+short", "+time=2", "+tries=1", name, check=False)
        return p.returncode == 0 and p.stdout.strip()
    out = wait_until(resolved, timeout=120, interval=2, what=f"{name} to resolve")
    assert out.splitlines()[-1] == svc["spec"]["clusterIP"]
    p = wait_until(lambda: (r := exec_client(c, "curl", "-sS", "-m", "10", f"http://web.{NS}/", check=False))
                   .returncode == 0 and r, timeout=120, interval=2, what="the Service by name")
    assert "nginx" in p.stdout.lower()


def test_service_from_the_same_node(vmcluster, workload):
    """The reply of a pod on its client's own bridge is switched, not routed: only br_netfilter
    brings it back through conntrack to be un-DNATed (stock kernels load it for no one)."""
    c = vmcluster
    svc = get(c, "service", "-n", NS, "web")
    for _ in range(3):  # one endpoint: every try goes to the pod on this node
        p = c.kubectl("exec", "-n", NS, "neighbour", "--", "curl", "-sS", "-m", "10",
                      f"http://{svc['spec']['clusterIP']}/")
        assert "nginx" in p.stdout.lower(), p.stdout + p.stderr


def test_nodeport_from_another_node(vmcluster, workload):
    c = vmcluster
    for vm in c.lab.vms[1:]:
        p = wait_until(lambda vm=vm: (r := c.ssh(c.lab.vms[0].name, "curl", "-sS", "-m", "10",
                                                 f"http://{vm.node_ip}:30081/", check=False)).returncode == 0 and r,
                       timeout=120, interval=2, what=f"NodePort on {vm.name}")
        assert "nginx" in p.stdout.lower()


def test_exec_and_logs(vmcluster, workload):
    c = vmcluster
    p = exec_client(c, "cat", "/etc/resolv.conf")
    assert "nameserver 10.96.0.10" in p.stdout
    exec_client(c, "curl", "-sS", "-m", "10", "-o", "/dev/null", f"http://{workload['web']['status']['podIP']}/vm-logs-probe")
    logs = wait_until(lambda: "vm-logs-probe" in (o := c.kubectl("logs", "-n", NS, "web").stdout) and o,
                      timeout=60, interval=2, what="nginx's access log line")
    assert "GET /vm-logs-probe" in logs


def recap_counts(out: str) -> dict[str, dict[str, int]]:
    recap = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", out, re.M):
        recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return recap


def test_second_ansible_run_changes_nothing(vmcluster):
    lab = vmcluster.lab
    t0 = time.monotonic()
    p = lab.ansible_playbook()
    lab.phase("ansible (2nd run)", t0)
    vmlab.TIMES["ansible (2nd run)"] = lab.times["ansible (2nd run)"]
    assert p.returncode == 0, p.stdout[-6000:]
    recap = recap_counts(p.stdout)
    changed = {h: r["changed"] for h, r in recap.items() if r["changed"]}
    assert not changed, f"second run changed: {changed}\n" + "\n".join(
        line for line in p.stdout.splitlines() if line.startswith("changed:") or line.startswith("TASK"))[-6000:]


def test_rebooted_worker_comes_back(vmcluster, workload):
    c = vmcluster
    worker = c.lab.vm(workload["workers"][0])
    boot_id = c.ssh(worker.name, "cat", "/proc/sys/kernel/random/boot_id").stdout.strip()
    c.ssh(worker.name, "sudo", "systemctl", "reboot", check=False, timeout=30)
    t0 = time.monotonic()

    def new_boot():
        p = c.ssh(worker.name, "cat", "/proc/sys/kernel/random/boot_id", check=False, timeout=30)
        return p.returncode == 0 and p.stdout.strip() not in ("", boot_id)
    wait_until(new_boot, timeout=400, interval=3, what=f"{worker.name} to come back with a new boot id")

    def ready():
        n = get(c, "node", worker.name)
        return [x["status"] for x in n["status"]["conditions"] if x["type"] == "Ready"] == ["True"]
    wait_until(ready, timeout=300, interval=3, what=f"{worker.name} Ready after reboot")
    wait_until(lambda: running(c, "web"), timeout=300, interval=3, what="pod web running again after the reboot")
    # Ready is reported before the client node's proxy has the new endpoint: wait for it there
    p = wait_until(lambda: (r := exec_client(c, "curl", "-sS", "-m", "10", f"http://web.{NS}/", check=False))
                   .returncode == 0 and r, timeout=120, interval=2,
                   what="the Service to answer from the rebooted worker's new pod")
    vmlab.TIMES["worker reboot"] = round(time.monotonic() - t0, 1)
    assert "nginx" in p.stdout.lower()
