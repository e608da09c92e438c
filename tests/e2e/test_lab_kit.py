"""The lab kit on one real lab: every exercise check in both states (not done → fails with its
reason; done → passes), the questions answered against the live lab, hints and the report;
then every scenario through start → check fails → the fix → check passes → reset, with
nothing of it left.

One lab for the whole module (nftables, 2 workers); the exercises use namespace default, the
scenarios their own namespace shop.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from kubelab.lab import components, state, topology
from kubelab.lab.kit import progress
from kubelab.lab.testing import Lab
from kubelab.testing import kubectl as run_kubectl
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]


# the lab: tests/e2e/conftest.py's default (2 workers, nftables); its own, as the scenarios break it


def kit(lab: Lab, *args: str, timeout: float = 240):
    return lab.run(*args, *lab.lab_args(), timeout=timeout, check=False)


def check(lab: Lab, ex: str):
    return kit(lab, "exercise", "check", ex)


def passes(lab: Lab, ex: str, timeout: float = 90) -> str:
    last = {}

    def ok():
        p = last["p"] = check(lab, ex)
        return p.returncode == 0
    try:
        wait_until(ok, timeout=timeout, interval=1, what=f"exercise {ex} to pass")
    except TimeoutError:
        raise AssertionError(f"{ex} never passed: {last['p'].stdout} {last['p'].stderr}") from None
    return last["p"].stdout


def fails(lab: Lab, ex: str, *words: str) -> str:
    p = check(lab, ex)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith(f"FAIL {ex}: "), p.stdout
    for w in words:
        assert w in p.stdout, p.stdout
    return p.stdout


def serves_networking(lab: Lab) -> bool:
    p = lab.kubectl("api-versions")
    return "networking.k8s.io/v1" in p.stdout.split()


# ---- exercises --------------------------------------------------------------------------------

def test_questions_are_checked_against_this_lab(lab):
    cidr = json.loads(lab.kubectl("get", "node", "worker-2", "-o", "json").stdout)["spec"]["podCIDR"]
    p = kit(lab, "exercise", "answer", "worker-2-cidr", cidr, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["ok"], p.stdout + p.stderr
    other = cidr.replace(cidr.split(".")[2], str((int(cidr.split(".")[2]) + 1) % 256), 1)
    p = kit(lab, "exercise", "answer", "worker-2-cidr", other)
    assert p.returncode == 1 and p.stdout.startswith("WRONG"), p.stdout
    p = kit(lab, "exercise", "answer", "worker-2-cidr", "not-a-cidr")
    assert p.returncode == 1 and "is not a network" in p.stdout, p.stdout
    assert kit(lab, "exercise", "answer", "boot-order", "etcd").returncode == 0
    assert kit(lab, "exercise", "answer", "boot-order", "apiserver").returncode == 1
    # a question that the lab cannot answer yet (no client, no Service): a clear error, not a verdict
    p = kit(lab, "exercise", "answer", "dns-search", "1")
    assert p.returncode == 1 and "cannot work out this lab's answer yet" in p.stderr, p.stderr


def test_exercises_fail_with_their_reason_before_the_work(lab):
    fails(lab, "nginx-deployment", "no Deployment nginx")
    fails(lab, "pod-to-pod", "no running pod of Deployment client")
    fails(lab, "service-by-name", "no running pod of Deployment client")
    fails(lab, "nodeport", "no NodePort Service")
    fails(lab, "scale-map", "no Service nginx")


def test_pods_and_pod_to_pod(lab):
    lab.kubectl("create", "deployment", "nginx", "--image=nginx")
    fails(lab, "nginx-deployment", "1 running nginx pod", "wants 2") if _running(lab, "app=nginx") == 1 else None
    lab.kubectl("scale", "deployment", "nginx", "--replicas=2")
    assert "2 nginx pods serve their page" in passes(lab, "nginx-deployment")
    lab.kubectl("create", "deployment", "client", "--image=busybox")
    passes(lab, "pod-to-pod")


def _running(lab: Lab, sel: str) -> int:
    items = json.loads(lab.kubectl("get", "pods", "-l", sel, "-o", "json").stdout)["items"]
    return sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running")


def test_service_by_name_and_the_dns_question(lab):
    fails(lab, "service-by-name", "cannot fetch http://nginx")
    lab.kubectl("expose", "deployment", "nginx", "--port", "80")
    passes(lab, "service-by-name")
    assert kit(lab, "exercise", "answer", "dns-search", "1").returncode == 0
    p = kit(lab, "exercise", "answer", "dns-search", "4")
    assert p.returncode == 1 and "WRONG" in p.stdout


def test_nodeport_from_the_host(lab):
    fails(lab, "nodeport", "no NodePort Service")
    lab.kubectl("expose", "deployment", "nginx", "--type=NodePort", "--name", "nginx-np", "--port", "80")
    out = passes(lab, "nodeport")
    assert all(n.ip in out for n in lab.plan.nodes), out


def test_scale_and_see_the_map_change(lab):
    fails(lab, "scale-map", "2 ready endpoint(s)")
    lab.kubectl("scale", "deployment", "nginx", "--replicas=3")
    out = passes(lab, "scale-map")
    assert out.count("10.244.") == 3, out


def test_a_broken_service_fails_with_the_cause(lab):
    lab.kubectl("patch", "svc", "nginx", "-p", '{"spec":{"selector":{"app":"nothing"}}}')
    try:
        wait_until(lambda: check(lab, "service-by-name").returncode == 1, timeout=60, interval=1,
                   what="service-by-name to fail")
        fails(lab, "service-by-name", "the Service has no ready endpoints (selector app=nothing)")
    finally:
        lab.kubectl("patch", "svc", "nginx", "-p", '{"spec":{"selector":{"app":"nginx"}}}')
    passes(lab, "service-by-name")


def netpol(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def test_networkpolicy_exercises(lab):
    """The guide's N1-N3, each failing before its policy and passing after it."""
    assert serves_networking(lab), "the API server must serve networking.k8s.io/v1 (NetworkPolicy)"
    fails(lab, "netpol-default-deny", "Service web in team-a has no ready endpoints")
    for ns in ("team-a", "team-b"):
        lab.kubectl("create", "namespace", ns)
    try:
        lab.kubectl("-n", "team-a", "create", "deployment", "web", "--image=nginx", "--replicas=2")
        lab.kubectl("-n", "team-a", "expose", "deployment", "web", "--port", "80")
        for ns in ("team-a", "team-b"):
            lab.kubectl("-n", ns, "run", "client", "--image=busybox")
        wait_until(lambda: "still reaches" in check(lab, "netpol-default-deny").stdout, timeout=90, interval=1,
                   what="the apps to run (N1 fails: nothing denies yet)")
        _apply(lab, netpol("team-a", "default-deny", {"podSelector": {}}))
        passes(lab, "netpol-default-deny")
        fails(lab, "netpol-allow-namespace", "team-b/client cannot reach")
        _apply(lab, netpol("team-a", "allow-team-b", {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-b"}}}],
                         "ports": [{"port": 80}]}]}))
        passes(lab, "netpol-allow-namespace")
        fails(lab, "netpol-dns-only", "still reaches")
        _apply(lab, netpol("team-b", "dns-only", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}))
        passes(lab, "netpol-dns-only")
    finally:
        lab.kubectl("delete", "namespace", "team-a", "team-b", "--wait=false", check=False)


def _apply(lab: Lab, obj: dict) -> None:
    run_kubectl(lab.kubeconfig, "apply", "-f", "-", input=json.dumps(obj))


def test_hints_one_at_a_time_and_the_report(lab):
    p = kit(lab, "exercise", "hint", "pod-to-pod", "--json")
    d = json.loads(p.stdout)
    assert (d["hint"], d["of"], len(d["hints"]), d["more"]) == (1, 3, 1, True)
    kit(lab, "exercise", "hint", "pod-to-pod")
    kit(lab, "exercise", "hint", "pod-to-pod")
    p = kit(lab, "exercise", "hint", "pod-to-pod")
    assert "hint 3/3" in p.stdout and "no more hints" in p.stdout and "hint 4" not in p.stdout
    rep = json.loads(kit(lab, "exercise", "report").stdout)
    rows = {r["id"]: r for r in rep["exercises"]}
    assert rows["pod-to-pod"]["passed"] and rows["pod-to-pod"]["first_pass"].endswith("Z")
    assert rows["pod-to-pod"]["hints_used"] == 3
    assert rows["worker-2-cidr"]["passed"] and rows["worker-2-cidr"]["attempts"] == 3
    assert not rows["boot-order"]["hints_used"]
    listed = {r["id"]: r for r in json.loads(kit(lab, "exercise", "list", "--json").stdout)["exercises"]}
    assert listed["scale-map"]["status"] == "passed"
    assert kit(lab, "exercise", "reset", "pod-to-pod").returncode == 0
    rep = json.loads(kit(lab, "exercise", "report").stdout)
    row = next(r for r in rep["exercises"] if r["id"] == "pod-to-pod")
    assert not row["passed"] and row["hints_used"] == 0


def test_bad_input_is_one_line_and_changes_nothing(lab):
    before = progress.load(lab.plan.lab_dir)
    for args in (("exercise", "check", "no-such"), ("exercise", "hint", "../../etc"), ("scenario", "start", "nope"),
                 ("scenario", "check"), ("scenario", "reset"), ("exercise", "check", "worker-2-cidr"),
                 ("exercise", "answer", "pod-to-pod", "3")):
        p = kit(lab, *args)
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert progress.load(lab.plan.lab_dir) == before


# ---- scenarios ----------------------------------------------------------------------------------

def scenario_check(lab: Lab):
    return kit(lab, "scenario", "check")


def broken(lab: Lab, name: str, *words: str) -> None:
    p = scenario_check(lab)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith(f"BROKEN {name}: "), p.stdout
    for w in words:
        assert w in p.stdout, p.stdout


def fixed(lab: Lab, name: str, timeout: float = 120) -> str:
    last = {}

    def ok():
        p = last["p"] = scenario_check(lab)
        return p.returncode == 0
    try:
        wait_until(ok, timeout=timeout, interval=1, what=f"scenario {name} to pass")
    except TimeoutError:
        raise AssertionError(f"{name} never fixed: {last['p'].stdout} {last['p'].stderr}") from None
    return last["p"].stdout


def start(lab: Lab, name: str) -> str:
    p = kit(lab, "scenario", "start", name)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def reset(lab: Lab, name: str) -> None:
    p = kit(lab, "scenario", "reset")
    assert p.returncode == 0, p.stdout + p.stderr
    assert lab.kubectl("get", "ns", "shop", check=False).returncode != 0, "namespace shop left behind"
    assert progress.load(lab.plan.lab_dir)["active_scenario"] is None
    assert kit(lab, "scenario", "check").returncode == 1  # nothing running


def comp(lab: Lab, node: str, name: str) -> dict:
    s = state.read_json(os.path.join(lab.plan.lab_dir, state.SUPERVISOR_FILE))
    return next(c for c in s["components"] if c["spec"]["node"] == node and c["spec"]["name"] == name)


def stat(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_wrong_selector(lab):
    out = start(lab, "wrong-selector")
    assert "connection refused" in out and "webshop" not in out  # the symptom only, not the cause
    broken(lab, "wrong-selector", "cannot fetch http://web", "Failed to connect")
    assert "app=webshop" in kit(lab, "scenario", "solution").stdout
    # one scenario at a time, and verbs naming another one are refused
    p = kit(lab, "scenario", "start", "dns-down")
    assert p.returncode == 1 and "wrong-selector is running" in p.stderr, p.stderr
    p = kit(lab, "scenario", "check", "dns-down")
    assert p.returncode == 1 and "not running" in p.stderr, p.stderr
    lab.kubectl("-n", "shop", "label", "pods", "-l", "app=web", "app=webshop", "--overwrite")  # fix the labels
    fixed(lab, "wrong-selector")
    reset(lab, "wrong-selector")


def test_wrong_targetport(lab):
    start(lab, "wrong-targetport")
    broken(lab, "wrong-targetport", "cannot fetch http://web")
    lab.kubectl("-n", "shop", "patch", "svc", "web", "--type", "json",
                "-p", '[{"op":"replace","path":"/spec/ports/0/targetPort","value":80}]')
    fixed(lab, "wrong-targetport")
    reset(lab, "wrong-targetport")


def test_dns_down(lab):
    start(lab, "dns-down")
    broken(lab, "dns-down", "cannot resolve kubernetes.default")
    h = json.loads(kit(lab, "scenario", "hint", "--json").stdout)
    assert h["hint"] == 1 and "kube-dns" in h["hints"][0]
    lab.kubectl("-n", "kube-system", "scale", "deployment", "kube-dns", "--replicas=1")
    fixed(lab, "dns-down")
    reset(lab, "dns-down")
    dep = json.loads(lab.kubectl("-n", "kube-system", "get", "deploy", "kube-dns", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 1  # the student's fix stands; reset only undoes a breakage still there


def test_default_deny(lab):
    assert serves_networking(lab), "the API server must serve networking.k8s.io/v1 (NetworkPolicy)"
    start(lab, "default-deny")
    broken(lab, "default-deny", "cannot fetch http://web")
    lab.kubectl("-n", "shop", "delete", "networkpolicy", "default-deny")  # the wrong fix: everything opens
    wait_until(lambda: "http://db" in scenario_check(lab).stdout, timeout=60, interval=1,
               what="the check to notice the deny is gone")
    _apply(lab, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "default-deny", "namespace": "shop"},
                 "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    _apply(lab, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "allow-web", "namespace": "shop"},
                 "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                          "ingress": [{"ports": [{"port": 80}]}]}})
    fixed(lab, "default-deny")
    reset(lab, "default-deny")


def test_node_notready(lab):
    out = start(lab, "node-notready")
    assert "worker-2" in out
    agent = comp(lab, "worker-2", "nodeagent")["pid"]
    assert stat(agent["pid"]) == "T"
    broken(lab, "node-notready", "node worker-2", "node agent")
    p = kit(lab, "restart", "nodeagent", "--node", "worker-2")
    assert p.returncode == 0 and "was pid" in p.stdout and "(stopped)" in p.stdout, p.stdout + p.stderr
    assert not state.alive(agent)
    fixed(lab, "node-notready")
    reset(lab, "node-notready")


def test_stale_rules(lab):
    start(lab, "stale-rules")
    proxy = comp(lab, "worker-1", "proxy")["pid"]
    assert stat(proxy["pid"]) == "T"
    broken(lab, "stale-rules", "cannot fetch http://api", "on worker-1")
    assert state.signal_proc(proxy, signal.SIGCONT)  # the command fix (`sudo kill -CONT PID`) works too
    fixed(lab, "stale-rules")
    reset(lab, "stale-rules")
    assert stat(proxy["pid"]) != "T"


def test_stale_rules_reset_resumes_the_proxy(lab):
    start(lab, "stale-rules")
    proxy = comp(lab, "worker-1", "proxy")["pid"]
    reset(lab, "stale-rules")
    assert state.alive(proxy) and stat(proxy["pid"]) != "T"


def test_missing_route(lab):
    start(lab, "missing-route")
    rec = progress.load(lab.plan.lab_dir)["active_scenario"]["data"]
    ns = lab.plan.node(rec["node"]).netns
    assert not topology.run(["ip", "-n", ns, "route", "show", rec["cidr"]]).stdout.strip()
    broken(lab, "missing-route", "cannot fetch http://10.244.")
    topology.run(["ip", "-n", ns, "route", "add", rec["cidr"], "via", rec["via"]])
    fixed(lab, "missing-route")
    reset(lab, "missing-route")


def test_missing_route_reset_puts_the_route_back(lab):
    start(lab, "missing-route")
    rec = progress.load(lab.plan.lab_dir)["active_scenario"]["data"]
    reset(lab, "missing-route")
    ns = lab.plan.node(rec["node"]).netns
    assert f"via {rec['via']}" in topology.run(["ip", "-n", ns, "route", "show", rec["cidr"]]).stdout


def test_bad_ndots(lab):
    start(lab, "bad-ndots")
    broken(lab, "bad-ndots", "cannot fetch http://web", "resolve")
    lab.kubectl("-n", "shop", "patch", "deploy", "client", "--type", "merge",
                "-p", '{"spec":{"template":{"spec":{"dnsPolicy":"ClusterFirst","dnsConfig":null}}}}')
    fixed(lab, "bad-ndots")
    reset(lab, "bad-ndots")


def test_expired_cert(lab):
    start(lab, "expired-cert")
    pki = components.pki_dir(lab.plan)
    kc = os.path.join(pki, "user-dev.kubeconfig")
    assert run_kubectl(kc, "-n", "shop", "get", "pods", check=False).returncode != 0
    broken(lab, "expired-cert", "refuses")
    p = lab.run("pki", "issue", "user", "dev", "--dir", pki, "--server-url", lab.plan.api_url, check=False)
    assert p.returncode == 0, p.stderr
    fixed(lab, "expired-cert")
    reset(lab, "expired-cert")
    assert not [f for f in os.listdir(pki) if f.startswith("user-dev.")]


def test_start_refuses_a_namespace_it_did_not_make(lab):
    lab.kubectl("create", "namespace", "shop")
    try:
        p = kit(lab, "scenario", "start", "wrong-selector")
        assert p.returncode == 1 and "namespace shop exists already" in p.stderr, p.stderr
        assert progress.load(lab.plan.lab_dir)["active_scenario"] is None
    finally:
        lab.kubectl("delete", "namespace", "shop")


def test_the_report_holds_the_scenarios(lab):
    rep = json.loads(kit(lab, "exercise", "report").stdout)
    assert {r["id"] for r in rep["scenarios"] if r["passed"]} >= {"wrong-selector", "wrong-targetport", "dns-down",
                                                                    "node-notready", "stale-rules", "missing-route",
                                                                    "bad-ndots", "expired-cert"}
    listed = json.loads(kit(lab, "scenario", "list", "--json").stdout)["scenarios"]
    assert not any(r["running"] for r in listed)
