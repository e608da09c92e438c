"""Faults on a real lab: node agent, proxy, API server and DNS pod failures (both proxy modes).

The supervisor restarts a killed component within about a second, so "the component is
down for a while" is played with SIGSTOP (the process is frozen: no lease renewals, no rule
syncs), and "killed and restarted" with SIGKILL (the supervisor starts a new one).
"""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from kubelab.lab import state, topology
from kubelab.lab.testing import Lab, pod_exec
from kubelab.testing import wait_until

# the lab (tests/e2e/conftest.py): one per proxy mode, its own (the tests here break it)
pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.parametrize("lab", ["nftables", "iptables"], indirect=True, scope="module")]

NGINX_PAGE = "Welcome to nginx!"


def lab_setup(lab: Lab) -> None:
    lab.kubectl("create", "deployment", "nginx", "--image=nginx", "--replicas=2")
    lab.kubectl("create", "deployment", "client", "--image=busybox")
    lab.kubectl("expose", "deployment", "nginx", "--port", "80")


def pods(lab: Lab, selector: str, n: int = 1) -> list[dict]:
    def ok():
        items = json.loads(lab.kubectl("get", "pods", "-A", "-l", selector, "-o", "json").stdout)["items"]
        ps = [p for p in items if (p.get("status") or {}).get("phase") == "Running" and p["status"].get("podIP")
              and not p["metadata"].get("deletionTimestamp")]
        return ps if len(ps) >= n else None
    return wait_until(ok, timeout=90, interval=0.5, what=f"{n} running pod(s) {selector}")


def comp(lab: Lab, node: str, name: str) -> dict:
    s = state.read_json(os.path.join(lab.plan.lab_dir, state.SUPERVISOR_FILE))
    return next(c for c in s["components"] if c["spec"]["node"] == node and c["spec"]["name"] == name)


def fetch(lab: Lab, client: dict, url: str) -> bool:
    p = pod_exec(lab, client, "curl", "-sS", "--noproxy", "*", "-m", "5", url)
    return p.returncode == 0 and NGINX_PAGE in p.stdout


def node_ready(lab: Lab, node: str) -> str:
    n = json.loads(lab.kubectl("get", "node", node, "-o", "json").stdout)
    return next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["status"]


def endpoint_ips(lab: Lab, svc: str, ns: str = "default") -> set[str]:
    items = json.loads(lab.kubectl("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={svc}",
                                   "-o", "json").stdout)["items"]
    return {a for s in items for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready", True)
            for a in e.get("addresses") or []}


def test_killed_node_agent_readopts_its_pods(lab):
    ng = pods(lab, "app=nginx", 2)
    target = ng[0]
    node = target["spec"]["nodeName"]
    before = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0].get("restartCount", 0) for p in ng}
    agent = comp(lab, node, "nodeagent")
    assert state.signal_proc(agent["pid"], signal.SIGKILL)
    wait_until(lambda: comp(lab, node, "nodeagent")["restarts"] >= 1, timeout=30, what="agent restart")
    wait_until(lambda: node_ready(lab, node) == "True", timeout=60, what=f"{node} Ready again")
    after = pods(lab, "app=nginx", 2)
    assert {p["metadata"]["uid"] for p in after} == set(before), "the pods were replaced, not re-adopted"
    for p in after:
        assert p["status"]["containerStatuses"][0].get("restartCount", 0) == before[p["metadata"]["uid"]]


def test_frozen_node_agent_makes_the_node_not_ready_and_its_pods_leave_endpoints(lab):
    ng = pods(lab, "app=nginx", 2)
    node = ng[0]["spec"]["nodeName"]
    on_node = {p["status"]["podIP"] for p in ng if p["spec"]["nodeName"] == node}
    agent = comp(lab, node, "nodeagent")["pid"]
    assert state.signal_proc(agent, signal.SIGSTOP)
    try:
        wait_until(lambda: node_ready(lab, node) != "True", timeout=120, interval=1,
                   what=f"{node} NotReady/Unknown after its agent stopped renewing")
        wait_until(lambda: not (endpoint_ips(lab, "nginx") & on_node), timeout=60, interval=1,
                   what="the node's pods to leave the nginx endpoints")
    finally:
        state.signal_proc(agent, signal.SIGCONT)
    wait_until(lambda: node_ready(lab, node) == "True", timeout=60, interval=1, what=f"{node} Ready again")
    wait_until(lambda: on_node <= endpoint_ips(lab, "nginx"), timeout=60, interval=1,
               what="the node's pods back in the endpoints")


def _rule_for(lab: Lab, netns: str, cip: str) -> bool:
    if lab.proxy_mode == "nftables":
        out = topology.run(["ip", "netns", "exec", netns, "nft", "-s", "list", "map", "ip", "kube-proxy",
                            "service-ips"], check=False).stdout
        return f"{cip} . tcp . 80 " in out
    out = topology.run(["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"], check=False).stdout
    return f"-d {cip}/32" in out


def test_proxy_down_keeps_traffic_and_catches_up(lab):
    client = pods(lab, "app=client")[0]
    node = client["spec"]["nodeName"]
    netns = lab.plan.node(node).netns
    wait_until(lambda: fetch(lab, client, "http://nginx"), timeout=60, what="nginx reachable")
    proxy = comp(lab, node, "proxy")["pid"]
    assert state.signal_proc(proxy, signal.SIGSTOP)
    try:
        for _ in range(3):
            assert fetch(lab, client, "http://nginx"), "traffic must keep flowing while the proxy is down"
        lab.kubectl("expose", "deployment", "nginx", "--name", "nginx-late", "--port", "80")
        cip = json.loads(lab.kubectl("get", "svc", "nginx-late", "-o", "json").stdout)["spec"]["clusterIP"]
        other = next(n.netns for n in lab.plan.workers if n.netns != netns)
        wait_until(lambda: _rule_for(lab, other, cip), timeout=30, what="the running proxy to program nginx-late")
        assert not _rule_for(lab, netns, cip), "a frozen proxy cannot have programmed it"
    finally:
        state.signal_proc(proxy, signal.SIGKILL)  # dies frozen; the supervisor starts a new one
    wait_until(lambda: comp(lab, node, "proxy")["restarts"] >= 1, timeout=30, what="proxy restart")
    wait_until(lambda: _rule_for(lab, netns, cip), timeout=30, what="the change applied after the restart")
    wait_until(lambda: fetch(lab, client, f"http://{cip}"), timeout=30, what="nginx-late reachable")


def test_api_server_restart_resumes_without_relisting(lab):
    api = comp(lab, "control-plane", "apiserver")
    assert state.signal_proc(api["pid"], signal.SIGKILL)
    wait_until(lambda: comp(lab, "control-plane", "apiserver")["restarts"] >= 1, timeout=30, what="restart")
    wait_until(lambda: lab.kubectl("get", "ns", check=False).returncode == 0, timeout=60, what="API back")
    lab.kubectl("create", "deployment", "after", "--image=nginx")
    pods(lab, "app=after")  # controllers, scheduler and node agent all resumed
    client = pods(lab, "app=client")[0]
    wait_until(lambda: fetch(lab, client, "http://nginx"), timeout=60, what="nginx reachable after restart")
    # the proxies resumed their watches rather than relisting everything over and over
    for w in lab.plan.workers:
        with open(state.log_path(lab.plan.lab_dir, w.name, "proxy"), errors="replace") as f:
            log = f.read()
        lists = len(re.findall(r"GET https?://\S+\?(?!\S*watch=true)\S*", log))
        assert lists < 50, f"{w.name}'s proxy listed {lists} times: a relisting storm"


def test_a_killed_dns_pod_does_not_stop_lookups(lab):
    dns = pods(lab, "k8s-app=kube-dns", 2)
    client = pods(lab, "app=client")[0]
    victim = dns[0]
    lab.kubectl("delete", "pod", "-n", "kube-system", victim["metadata"]["name"], "--wait=false")
    ok = 0
    tries = 20
    for _ in range(tries):
        p = pod_exec(lab, client, "dig", "+short", "+search", "+time=1", "+tries=2", "nginx")
        ok += bool(p.stdout.strip())
    assert ok >= tries - 1, f"only {ok}/{tries} lookups answered while a DNS pod was going away"
    pods(lab, "k8s-app=kube-dns", 2)  # the Deployment replaced it
