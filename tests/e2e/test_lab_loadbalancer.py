"""LoadBalancer Services on a real lab (nftables mode; iptables mode's rules are pinned by the
whole-ruleset unit tests): the address is assigned, shown by kubectl, owned by one node that
answers ARP for it, and answers curl from the host through the bridge; when the owner's node
agent stops (frozen with SIGSTOP: the supervisor would restart a killed one) the node goes
NotReady, the address moves to the other worker with a gratuitous ARP (the host's neighbour
entry changes MAC) and curl answers again; `externalTrafficPolicy: Local` keeps the client's
address and is announced only by the node with the endpoint; loadBalancerSourceRanges drops
other clients; deleting the Service frees the address.

One lab for the module; the node-monitor grace period is 20 s (leases renew every 10 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from kubelab.lab import state
from kubelab.lab.testing import Lab
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NGINX_PAGE = "Welcome to nginx!"


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab.create(workers=2, proxy_mode="nftables")
    try:
        lab.up("--no-kubeconfig", "--no-dns", "--node-monitor-grace-period", "20s")
        lab.kubectl("create", "deployment", "nginx", "--image=nginx", "--replicas=2")
        lab.kubectl("expose", "deployment", "nginx", "--port", "80", "--type", "LoadBalancer")
        yield lab
    finally:
        left = lab.cleanup()
        assert not left, f"lab residue after down: {left}"


def curl(url: str, timeout: float = 3) -> str | None:
    p = subprocess.run(["curl", "-sS", "--noproxy", "*", "-m", str(timeout), url], capture_output=True, text=True,
                       timeout=timeout + 5, stdin=subprocess.DEVNULL)
    return p.stdout if p.returncode == 0 else None


def external_ip(lab: Lab, svc: str) -> str | None:
    s = json.loads(lab.kubectl("get", "svc", svc, "-o", "json").stdout)
    ing = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ing[0]["ip"] if ing else None


def holders(lab: Lab, ip: str) -> list[str]:
    """Nodes with the address on eth0 (what makes the kernel answer ARP for it)."""
    out = []
    for n in lab.plan.workers:
        p = subprocess.run(["ip", "-n", n.netns, "-j", "-4", "addr", "show", "dev", "eth0"], capture_output=True,
                           text=True)
        if any(a.get("local") == ip for link in json.loads(p.stdout or "[]") for a in link.get("addr_info", ())):
            out.append(n.name)
    return out


def node_mac(lab: Lab, node: str) -> str:
    p = subprocess.run(["ip", "-n", lab.plan.node(node).netns, "-j", "link", "show", "eth0"], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)[0]["address"]


def host_neighbour_mac(lab: Lab, ip: str) -> str | None:
    p = subprocess.run(["ip", "-j", "neigh", "show", ip, "dev", lab.plan.bridge], capture_output=True, text=True)
    entries = json.loads(p.stdout or "[]")
    return entries[0].get("lladdr") if entries else None


def comp(lab: Lab, node: str, name: str) -> dict:
    s = state.read_json(os.path.join(lab.plan.lab_dir, state.SUPERVISOR_FILE))
    return next(c for c in s["components"] if c["spec"]["node"] == node and c["spec"]["name"] == name)


def events(lab: Lab, svc: str) -> list[dict]:
    return json.loads(lab.kubectl("get", "events", "--field-selector", f"involvedObject.name={svc}",
                                  "-o", "json").stdout)["items"]


def test_status_lists_the_controller_and_a_speaker_per_worker(lab):
    out = lab.run("status", *lab.lab_args()).stdout
    rows = [line.split() for line in out.splitlines()]
    assert any(r[:2] == ["control-plane", "loadbalancer"] and "ok" in r for r in rows), out
    for w in ("worker-1", "worker-2"):
        assert any(r[:2] == [w, "speaker"] and "ok" in r for r in rows), out


def test_address_answers_from_the_host_and_moves_when_its_node_dies(lab):
    ip = wait_until(lambda: external_ip(lab, "nginx"), timeout=60, interval=0.2, what="an EXTERNAL-IP")
    first, last = lab.plan.lb_pool.split("-")
    assert ip == first  # the lowest free address of the lab's pool
    row = lab.kubectl("get", "svc", "nginx").stdout.splitlines()[1].split()
    assert row[1:4] == ["LoadBalancer", row[2], ip], row  # kubectl's EXTERNAL-IP column

    assert wait_until(lambda: curl(f"http://{ip}/") and NGINX_PAGE in curl(f"http://{ip}/"), timeout=60,
                      interval=0.3, what=f"curl http://{ip}/ from the host")
    (owner,) = wait_until(lambda: holders(lab, ip), timeout=10, what="one node holding the address")
    assert holders(lab, ip) == [owner]
    assert host_neighbour_mac(lab, ip) == node_mac(lab, owner)  # the owner answered the host's ARP
    evs = events(lab, "nginx")
    assert any(e["reason"] == "IPAllocated" for e in evs), evs
    assert wait_until(lambda: any(e["reason"] == "nodeAssigned" and owner in e["message"]
                                  for e in events(lab, "nginx")), timeout=20, what="the nodeAssigned Event")
    log = lab.run("logs", "speaker", "--node", owner, *lab.lab_args()).stdout
    assert f"gratuitous ARP: {ip} is-at {node_mac(lab, owner)} ({owner})" in log, log[-2000:]

    other = next(n.name for n in lab.plan.workers if n.name != owner)
    agent = comp(lab, owner, "nodeagent")
    assert state.signal_proc(agent["pid"], signal.SIGSTOP)
    try:
        wait_until(lambda: holders(lab, ip) == [other], timeout=120, interval=0.5,
                   what=f"{ip} moving from {owner} to {other}")
        # the gratuitous ARP updated the host's entry: no need to wait for it to go stale
        wait_until(lambda: host_neighbour_mac(lab, ip) == node_mac(lab, other), timeout=10,
                   what="the host's neighbour entry to follow the gratuitous ARP")
        assert wait_until(lambda: (curl(f"http://{ip}/") or "").count(NGINX_PAGE), timeout=30, interval=0.3,
                          what="curl answering again after the move")
    finally:
        state.signal_proc(agent["pid"], signal.SIGCONT)
    wait_until(lambda: json.loads(lab.kubectl("get", "node", owner, "-o", "json").stdout)["status"]["conditions"],
               timeout=5)


def test_local_policy_keeps_the_client_address_and_source_ranges_drop_others(lab):
    # agnhost's default is `netexec` on 8080: /clientip answers the address the request came from
    lab.kubectl("create", "deployment", "echo", "--image=registry.k8s.io/e2e-test-images/agnhost:2.53")
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
                "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": {"app": "echo"},
                         "ports": [{"port": 80, "targetPort": 8080}],
                         "loadBalancerSourceRanges": [f"{lab.plan.bridge_ip}/32"]}}
    subprocess.run(["kubectl", "--kubeconfig", lab.kubeconfig, "apply", "-f", "-"], input=json.dumps(manifest),
                   text=True, check=True, capture_output=True)
    ip = wait_until(lambda: external_ip(lab, "echo"), timeout=60, interval=0.2, what="an EXTERNAL-IP for echo")
    got = wait_until(lambda: curl(f"http://{ip}/clientip"), timeout=90, interval=0.3,
                     what=f"curl http://{ip}/clientip")
    assert got.split(":")[0] == lab.plan.bridge_ip  # client address preserved (no masquerade)
    pod = json.loads(lab.kubectl("get", "pods", "-l", "app=echo", "-o", "json").stdout)["items"][0]
    assert holders(lab, ip) == [pod["spec"]["nodeName"]]  # announced only where the endpoint is
    # the host is no longer in the allowed ranges: dropped before DNAT
    lab.kubectl("patch", "svc", "echo", "-p", json.dumps({"spec": {"loadBalancerSourceRanges": ["10.255.255.0/24"]}}))
    wait_until(lambda: curl(f"http://{ip}/clientip", timeout=1) is None, timeout=30, interval=0.3,
               what="the host to be dropped by loadBalancerSourceRanges")
    lab.kubectl("delete", "svc", "echo")
    wait_until(lambda: holders(lab, ip) == [], timeout=30, interval=0.3, what=f"{ip} released after delete")
