"""NetworkPolicy on a real lab, replaying the upstream test/e2e/network/netpol scenarios.

One lab per proxy mode. Namespaces x, y, z × pods a, b, c (label pod=<name>; a and c on
worker-1, b on worker-2, so every scenario crosses nodes), each pod running `agnhost porter`
on 80 and 81 (TCP and UDP) under the upstream port names `serve-<port>-<proto>`.

Every scenario applies its policies, then waits until the measured 9×9 truth table (a real
connect from inside every pod to every pod: kubelab.lab.reach) equals the one predicted from the
policies by kubelab.netpol.model (itself pinned to upstream's tables by the unit tests); the
key scenarios also compare with a table written out by hand. Probes run in parallel with a
1 s timeout, so one table costs about a second.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest
import yaml

from kubelab.lab import reach
from kubelab.lab.testing import Lab
from kubelab.netpol.model import cluster_from_objects
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.parametrize("lab", ["nftables", "iptables"], indirect=True, scope="module")]

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
NODE_OF = {"a": "worker-1", "b": "worker-2", "c": "worker-1"}
ALL = [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]


def model_pod(ns: str, name: str) -> dict:
    env, ports = [], []
    for port in (80, 81):
        env += [{"name": f"SERVE_PORT_{port}", "value": "foo"}, {"name": f"SERVE_UDP_PORT_{port}", "value": "foo"}]
        ports += [{"name": f"serve-{port}-tcp", "containerPort": port, "protocol": "TCP"},
                  {"name": f"serve-{port}-udp", "containerPort": port, "protocol": "UDP"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
            "spec": {"nodeName": NODE_OF[name], "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "cont", "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                                     "args": ["porter"], "env": env, "ports": ports}]}}


class _Quoted(yaml.SafeDumper):
    """Every string double-quoted: kubectl's YAML 1.1 would read the namespace label `y` as a bool."""


_Quoted.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style='"'))


def apply(lab: Lab, *objs: dict) -> None:
    p = subprocess.run(["kubectl", "--kubeconfig", lab.kubeconfig, "apply", "-f", "-"],
                       input=yaml.dump_all(objs, Dumper=_Quoted),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def get(lab: Lab, *args: str) -> list[dict]:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)["items"]


# the lab (tests/e2e/conftest.py): one per proxy mode, without DNS, the model pods running
LAB_UP = ("--no-kubeconfig", "--no-dns")


def lab_setup(lab: Lab) -> None:
    apply(lab, *[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"ns": ns}}}
                 for ns in NAMESPACES])
    apply(lab, *[model_pod(ns, p) for ns in NAMESPACES for p in PODS])

    def running():
        pods = [p for ns in NAMESPACES for p in get(lab, "pods", "-n", ns)]
        ok = [p for p in pods if p.get("status", {}).get("phase") == "Running" and p["status"].get("podIP")]
        return len(ok) == 9
    wait_until(running, timeout=120, interval=0.5, what="the 9 model pods running")


def snapshot(lab: Lab):
    pods = get(lab, "pods", "-A")
    cluster = cluster_from_objects(pods, get(lab, "namespaces"), get(lab, "networkpolicies", "-A"))
    model = [p for p in cluster.pods if p.namespace in NAMESPACES]
    return cluster, sorted(model, key=lambda p: p.key)


def tables(lab: Lab, port: int = 80, protocol: str = "TCP", targets=None):
    cluster, pods = snapshot(lab)
    paths = reach.netns_paths(lab.plan, pods)
    assert len(paths) == 9, paths
    targets = targets or [reach.Target(p.key, p.ip, p.ip) for p in pods]
    predicted = reach.predict(cluster, pods, targets, port, protocol)
    measured = reach.measure(paths, pods, targets, port, protocol, timeout=1.0)
    return predicted, measured


def converge(lab: Lab, port: int = 80, protocol: str = "TCP", *, expected: str | None = None, targets=None,
             timeout: float = 30.0):
    """Wait until measured == predicted (the agents have caught up); optionally == `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        predicted, measured = tables(lab, port, protocol, targets)
        if not reach.disagreements(predicted, measured):
            break
        if time.monotonic() > deadline:
            pytest.fail(reach.render(predicted, measured, title=f"did not converge on {port}/{protocol}"))
        time.sleep(0.5)
    if expected is not None:
        got = "\n".join("".join("." if predicted.cells[(s, t)] else "X" for t in predicted.targets)
                        for s in predicted.sources)
        want = "\n".join(line.split()[-1] for line in expected.strip().splitlines())
        assert got == want, reach.render(predicted, measured, title="predicted table differs from the upstream one")
    return predicted


@pytest.fixture
def clean(lab):
    yield
    for ns in NAMESPACES:
        lab.kubectl("delete", "networkpolicy", "--all", "-n", ns, check=False)


def netpol(name: str, ns: str = "x", **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


POD_A = {"matchLabels": {"pod": "a"}}
OPEN = "\n".join(["........."] * 9)


def test_no_policy_everything_reaches_everything(lab, clean):
    converge(lab, expected=OPEN)
    converge(lab, 81, "UDP", expected=OPEN)


def test_default_deny_ingress(lab, clean):
    apply(lab, netpol("deny-ingress"))
    converge(lab, expected="""
x/a .XX......
x/b X.X......
x/c XX.......
y/a XXX......
y/b XXX......
y/c XXX......
z/a XXX......
z/b XXX......
z/c XXX......""")


def test_default_deny_all_in_x(lab, clean):
    apply(lab, netpol("deny-all", policyTypes=["Ingress", "Egress"]))
    converge(lab, expected="""
x/a .XXXXXXXX
x/b X.XXXXXXX
x/c XX.XXXXXX
y/a XXX......
y/b XXX......
y/c XXX......
z/a XXX......
z/b XXX......
z/c XXX......""")


def test_pod_selector_and_namespace_selector_and_vs_or(lab, clean):
    apply(lab, netpol("and", podSelector=POD_A, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {"matchLabels": {"pod": "b"}}}]}]))
    converge(lab, expected="""
x/a .........
x/b X........
x/c X........
y/a X........
y/b .........
y/c X........
z/a X........
z/b X........
z/c X........""")
    apply(lab, netpol("and", podSelector=POD_A, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}, {"podSelector": {"matchLabels": {"pod": "b"}}}]}]))
    converge(lab, expected="""
x/a .........
x/b .........
x/c X........
y/a .........
y/b .........
y/c .........
z/a X........
z/b X........
z/c X........""")


def test_namespace_by_metadata_name_and_match_expressions(lab, clean):
    apply(lab, netpol("by-name", podSelector=POD_A, ingress=[{"from": [
        {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                                     "values": ["z"]}]}}]}]))
    converge(lab)


def test_ports_numeric_named_and_ranges(lab, clean):
    apply(lab, netpol("port-81", podSelector=POD_A, ingress=[{"ports": [{"port": 81, "protocol": "TCP"}]}]))
    converge(lab, 80)
    converge(lab, 81, expected=OPEN)
    apply(lab, netpol("port-81", podSelector=POD_A, ingress=[{"ports": [{"port": "serve-81-udp", "protocol": "UDP"}]}]))
    converge(lab, 81, "UDP", expected=OPEN)
    converge(lab, 81, "TCP")
    apply(lab, netpol("port-81", podSelector=POD_A, ingress=[{"ports": [{"port": 79, "endPort": 80, "protocol": "TCP"}]}]))
    converge(lab, 80, expected=OPEN)
    converge(lab, 81)


def test_egress_to_ip_block_with_except_and_udp(lab, clean):
    _, pods = snapshot(lab)
    ip = {p.key: p.ip for p in pods}
    apply(lab, netpol("egress", podSelector=POD_A, policyTypes=["Egress"], egress=[
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": [f"{ip['y/b']}/32"]}}],
         "ports": [{"port": 80, "protocol": "UDP"}]}]))
    converge(lab, 80, "UDP")
    predicted = converge(lab, 80, "TCP")
    assert not predicted.cells[("x/a", "x/b")] and predicted.cells[("x/b", "x/a")]


def test_label_and_namespace_label_changes(lab, clean):
    apply(lab, netpol("team", podSelector=POD_A, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"trusted": "yes"}}}, {"podSelector": {"matchLabels": {"team": "blue"}}}]}]))
    converge(lab)
    lab.kubectl("label", "pod", "c", "team=blue", "-n", "x")
    lab.kubectl("label", "namespace", "z", "trusted=yes")
    try:
        predicted = converge(lab)
        assert predicted.cells[("x/c", "x/a")] and predicted.cells[("z/b", "x/a")] and not predicted.cells[("y/b", "x/a")]
    finally:
        lab.kubectl("label", "pod", "c", "team-", "-n", "x")
        lab.kubectl("label", "namespace", "z", "trusted-")
    converge(lab)


def test_service_traffic_is_judged_after_dnat(lab, clean):
    apply(lab, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc-a", "namespace": "x"},
                "spec": {"selector": {"pod": "a"}, "ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]}})
    try:
        svc = json.loads(lab.kubectl("get", "service", "svc-a", "-n", "x", "-o", "json").stdout)
        _, pods = snapshot(lab)
        a_ip = next(p.ip for p in pods if p.key == "x/a")
        target = [reach.Target("svc-a", svc["spec"]["clusterIP"], a_ip)]
        apply(lab, netpol("from-b", podSelector=POD_A, ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]))
        predicted = converge(lab, 8080, targets=target)
        assert [predicted.cells[(s, "svc-a")] for s in ALL] == [True, True] + [False] * 7
    finally:
        lab.kubectl("delete", "service", "svc-a", "-n", "x", check=False)


def test_cross_node_drop_happens_at_the_destination_node(lab, clean):
    """x/b lives on worker-2: ingress to it is dropped by worker-2's default deny, not worker-1's."""
    apply(lab, netpol("deny-b", podSelector={"matchLabels": {"pod": "b"}}))
    converge(lab)

    def counter(node: str) -> int:
        ns = lab.plan.node(node).netns
        out = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "kubelab-netpol", "ingress"],
                             capture_output=True, text=True, timeout=10).stdout
        line = next(ln for ln in out.splitlines() if "default deny ingress" in ln)
        return int(line.split("packets")[1].split()[0])
    before = counter("worker-2"), counter("worker-1")
    _, pods = snapshot(lab)
    paths = reach.netns_paths(lab.plan, pods)
    b_ip = next(p.ip for p in pods if p.key == "x/b")
    assert not reach.probe_from(paths["x/a"], b_ip, 80, "TCP", 1.0)
    assert counter("worker-2") > before[0] and counter("worker-1") == before[1]
    # kubelab trace names the verdict, the node, the chain and the rule
    out = lab.run("trace", *lab.lab_args(), "-n", "x", "a", f"{b_ip}:80", "--no-dns").stdout
    assert "NetworkPolicy: DROPPED (80/TCP, judged after DNAT)" in out, out
    assert "ingress: dropped by default deny (isolated by x/deny-b; no rule matches) on worker-2" in out, out
    assert 'chain ingress: counter drop comment "default deny ingress"' in out, out


def test_policy_change_keeps_established_connections(lab, clean):
    """An allowed connection opened before a deny keeps working; a new one is refused; deleting
    the policy lets new ones in again."""
    _, pods = snapshot(lab)
    paths = reach.netns_paths(lab.plan, pods)
    a_ip = next(p.ip for p in pods if p.key == "x/a")
    opened, go, result = threading.Event(), threading.Event(), {}

    def hold() -> None:
        reach._enter(paths["x/c"])
        with socket.create_connection((a_ip, 80), timeout=5) as s:
            opened.set()
            go.wait(60)
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            body = b""
            while chunk := s.recv(4096):  # HTTP/1.0: the server closes after the body
                body += chunk
            result["body"] = body
    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert opened.wait(10)
    apply(lab, netpol("deny-a", podSelector=POD_A))
    wait_until(lambda: not reach.probe_from(paths["x/c"], a_ip, 80, "TCP", 1.0), timeout=30, what="x/c -> x/a denied")
    go.set()
    t.join(15)
    assert result.get("body", b"").endswith(b"foo")
    lab.kubectl("delete", "networkpolicy", "deny-a", "-n", "x")
    wait_until(lambda: reach.probe_from(paths["x/c"], a_ip, 80, "TCP", 1.0), timeout=30, what="x/c -> x/a allowed")


def test_reach_tool_agrees_with_measured_traffic(lab, clean):
    apply(lab, netpol("deny-ingress"), netpol("allow-y", ns="y", podSelector={}, policyTypes=["Egress"],
                                               egress=[{"to": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]))
    converge(lab)
    p = lab.run("netpol", "reach", *lab.lab_args(), "-n", "x", "-n", "y", "-n", "z", check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "predicted and measured agree" in p.stdout and "x/a" in p.stdout
