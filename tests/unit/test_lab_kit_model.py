"""The lab kit's pure parts: answers, progress, graded hints, the report, resolver arithmetic,
the proxy-rule parsers, the definitions themselves, and exercise checks over a fake probe."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from kubelab.lab.kit import exercises, model, probe, scenarios
from kubelab.lab.kit.model import ResolvConf, candidate_names, judge_answer, parse_resolv_conf
from kubelab.proxy import iptables
from kubelab.proxy.model import ProxyConfig, build_state

ISSUE_SCENARIOS = {"wrong-selector", "wrong-targetport", "dns-down", "default-deny", "node-notready",
                   "stale-rules", "missing-route", "bad-ndots", "expired-cert"}


# ---- answers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("given,expected,kind,right", [
    ("10.244.2.0/24", "10.244.2.0/24", "cidr", True),
    (" 10.244.2.0/24 ", "10.244.2.0/24", "cidr", True),
    ("10.244.3.0/24", "10.244.2.0/24", "cidr", False),
    ("10.244.2.1/24", "10.244.2.0/24", "cidr", False),   # host bits set: not a network
    ("1", "1", "int", True), ("+1", "1", "int", True), ("2", "1", "int", False),
    ("ETCD", "etcd", "text", True), ("apiserver", "etcd", "text", False),
])
def test_judge_answer(given, expected, kind, right):
    r = judge_answer(given, expected, kind)
    assert r.ok is right and r.reason


def test_a_malformed_answer_says_what_shape_is_wanted():
    assert "not a network" in judge_answer("ten", "10.244.2.0/24", "cidr").reason
    assert "not a whole number" in judge_answer("one", "1", "int").reason
    assert not judge_answer("", "etcd", "text").ok


# ---- progress, hints, report -------------------------------------------------------------------------

def test_first_pass_is_kept_and_attempts_count():
    p = model.empty_progress()
    model.record_result(p, "exercises", "a", model.fail("no"), now=1.0)
    e = model.record_result(p, "exercises", "a", model.ok("yes"), now=2.0)
    assert (e["attempts"], e["first_pass"], e["last_pass"]) == (2, 2.0, 2.0)
    e = model.record_result(p, "exercises", "a", model.ok("yes"), now=3.0)
    assert (e["first_pass"], e["last_pass"]) == (2.0, 3.0)
    model.record_result(p, "exercises", "a", model.fail("broke"), now=4.0)
    assert model.status_of(p, "exercises", "a") == "passed before, failing now"
    assert model.status_of(p, "exercises", "b") == "not tried"


def test_hints_are_revealed_one_at_a_time_and_never_past_the_last():
    p = model.empty_progress()
    hints = ("one", "two")
    assert model.reveal_hint(p, "exercises", "x", hints) == (1, ["one"])
    assert model.reveal_hint(p, "exercises", "x", hints) == (2, ["one", "two"])
    assert model.reveal_hint(p, "exercises", "x", hints) == (2, ["one", "two"])
    assert model.forget(p, "exercises", "x") and not model.forget(p, "exercises", "x")
    assert model.reveal_hint(p, "exercises", "x", hints) == (1, ["one"])


def test_report_lists_every_exercise_and_scenario_in_order():
    p = model.empty_progress()
    model.record_result(p, "exercises", "pod-to-pod", model.ok("fine"), now=10.0)
    model.reveal_hint(p, "exercises", "pod-to-pod", ("h",))
    model.record_result(p, "scenarios", "dns-down", model.fail("still"), now=11.0)
    rep = model.report(p, exercises.EXERCISES, scenarios.SCENARIOS, lab="lab", student="ann", now=12.0,
                       format_time=lambda t: f"T{t}")
    assert [r["id"] for r in rep["exercises"]] == [e.id for e in exercises.EXERCISES]
    row = next(r for r in rep["exercises"] if r["id"] == "pod-to-pod")
    assert (row["passed"], row["first_pass"], row["hints_used"], row["attempts"]) == (True, "T10.0", 1, 1)
    dns = next(r for r in rep["scenarios"] if r["id"] == "dns-down")
    assert (dns["passed"], dns["last_result"]) == (False, "still")
    assert rep["summary"] == {"exercises_passed": 1, "exercises": len(exercises.EXERCISES), "scenarios_passed": 0,
                              "scenarios": len(scenarios.SCENARIOS), "hints_used": 1}


# ---- resolver arithmetic --------------------------------------------------------------------------

POD_RESOLV = """nameserver 10.96.0.10
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
"""


def test_parse_resolv_conf():
    c = parse_resolv_conf(POD_RESOLV)
    assert c == ResolvConf(("10.96.0.10",), ("default.svc.cluster.local", "svc.cluster.local", "cluster.local"), 5)


def test_candidate_names_follow_ndots():
    c = parse_resolv_conf(POD_RESOLV)
    assert candidate_names("nginx", c) == ["nginx.default.svc.cluster.local.", "nginx.svc.cluster.local.",
                                           "nginx.cluster.local.", "nginx."]
    assert candidate_names("nginx.default.svc.cluster.local.", c) == ["nginx.default.svc.cluster.local."]
    one = ResolvConf(search=("cluster.local",), ndots=1)
    assert candidate_names("web.shop", one) == ["web.shop.", "web.shop.cluster.local."]
    assert candidate_names("web", one) == ["web.cluster.local.", "web."]


# ---- probe parsers ----------------------------------------------------------------------------------

NFT_LIST = """table ip kube-proxy {
\tchain service-ULMVA6XW-default/nginx/tcp/p80 {
\t\tip daddr 10.96.4.7 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
\t\tnumgen random mod 2 vmap { 0 : goto endpoint-5OJB2KTY-default/nginx/tcp/p80__10.244.1.5/80, 1 : goto endpoint-AAAA2KTY-default/nginx/tcp/p80__10.244.2.6/80 }
\t}
\tchain endpoint-5OJB2KTY-default/nginx/tcp/p80__10.244.1.5/80 {
\t\tip saddr 10.244.1.5 jump mark-for-masquerade
\t\tmeta l4proto tcp dnat to 10.244.1.5:80
\t}
\tchain endpoint-AAAA2KTY-default/nginx/tcp/p80__10.244.2.6/80 {
\t\tmeta l4proto tcp dnat to 10.244.2.6:80
\t}
\tchain endpoint-BBBB2KTY-default/nginx-np/tcp/p80__10.244.2.9/80 {
\t\tmeta l4proto tcp dnat to 10.244.2.9:80
\t}
}
"""


def test_parse_nft_backends_takes_only_that_service():
    assert probe.parse_nft_backends(NFT_LIST, "default", "nginx") == ["10.244.1.5:80", "10.244.2.6:80"]
    assert probe.parse_nft_backends(NFT_LIST, "default", "nginx-np") == ["10.244.2.9:80"]
    assert probe.parse_nft_backends(NFT_LIST, "shop", "nginx") == []


def test_parse_iptables_backends_on_the_real_renderer():
    cfg = ProxyConfig(node_name="n1", node_ips=("192.168.0.2",), cluster_cidr="10.244.0.0/16",
                      service_cidr="10.96.0.0/12")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "default", "name": "nginx"},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.4.7", "ports": [{"name": "", "port": 80,
                                                                              "protocol": "TCP"}]}}
    eps = [{"addresses": [ip], "nodeName": "n1", "conditions": {"ready": True}} for ip in ("10.244.1.5", "10.244.2.6")]
    sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
          "metadata": {"namespace": "default", "name": "nginx-x", "labels": {"kubernetes.io/service-name": "nginx"}},
          "endpoints": eps, "ports": [{"name": "", "port": 80, "protocol": "TCP"}]}
    text = iptables.render(build_state(services=[svc], slices=[sl], config=cfg))
    assert probe.parse_iptables_backends(text, "default", "nginx") == ["10.244.1.5:80", "10.244.2.6:80"]
    assert probe.parse_iptables_backends(text, "default", "ngin") == []


@pytest.mark.parametrize("rc,out,err,ok,detail", [
    (0, "<title>Welcome to nginx!</title>\n200", "", True, "HTTP 200"),
    (0, "<html>other</html>\n404", "", False, "HTTP 404 but not nginx's page"),
    (7, "", "curl: (7) Failed to connect to 10.96.0.5 port 80 after 0 ms: Connection refused\n", False,
     "Failed to connect to 10.96.0.5 port 80 after 0 ms: Connection refused"),
    (6, "", "curl: (6) Could not resolve host: web\n", False, "Could not resolve host: web"),
])
def test_fetch_result(rc, out, err, ok, detail):
    f = probe.fetch_result(subprocess.CompletedProcess([], rc, out, err))
    assert f.ok is ok and detail in f.detail


# ---- definitions ----------------------------------------------------------------------------------------

def test_ids_are_stable_slugs_and_unique():
    ids = [e.id for e in exercises.EXERCISES]
    names = [s.name for s in scenarios.SCENARIOS]
    assert len(set(ids)) == len(ids) and len(set(names)) == len(names)
    assert all(model.ID_RE.match(i) for i in ids + names)
    assert set(names) == ISSUE_SCENARIOS


def test_every_exercise_is_either_a_check_or_a_question_with_graded_hints():
    for e in exercises.EXERCISES:
        assert (e.check is None) != (e.expected is None), e.id
        assert len(e.hints) >= 2 and e.task and e.title, e.id


def test_every_scenario_text_renders_with_a_lab_facts():
    from kubelab.lab.topology import plan_lab
    plan = plan_lab(name="lab", workers=2, root_dir="/var/lib/kubelab")
    for s in scenarios.SCENARIOS:
        f = scenarios.facts(plan, {"name": s.name, "data": {}})
        for text in (s.symptom, s.solution, *s.hints):
            out = model.render_text(text, f)
            assert not re.search(r"\{(ns|node|netns|pid|pki|api|name_flag|cidr|via|other|replicas)\}", out), (s.name, out)
        assert "Fix" in s.solution and "Show it" in s.solution, s.name
        # the symptom is what a user reports, not the cause
        assert "SIGSTOP" not in s.symptom and "selector" not in s.symptom.lower()


def test_the_lab_guide_names_every_exercise_check():
    import pathlib
    guide = (pathlib.Path(__file__).parents[2] / "docs" / "lab-guide.md").read_text()
    for e in exercises.EXERCISES:
        verb = f"kubelab exercise answer {e.id}" if e.expected else f"kubelab exercise check {e.id}"
        assert verb in guide, verb


def test_docs_list_every_scenario():
    import pathlib
    doc = (pathlib.Path(__file__).parents[2] / "docs" / "scenarios.md").read_text()
    for s in scenarios.SCENARIOS:
        assert f"`{s.name}`" in doc, s.name


# ---- checks over a fake probe -------------------------------------------------------------------------------

class FakeProbe:
    def __init__(self, pods=(), objects=None, fetch=None):
        self.pods = list(pods)
        self.objects = objects or {}
        self.fetch = fetch or {}
        self.fetched = []

    async def running_pods(self, ns, selector):
        k, v = selector.split("=")
        return [p for p in self.pods if p["metadata"]["labels"].get(k) == v]

    async def get(self, resource, name, namespace=None):
        return self.objects.get((resource, name))

    async def ready_endpoints(self, ns, svc):
        return self.objects.get(("endpoints", svc), [])

    async def fetch_from_pod(self, pod, url):
        self.fetched.append((pod["metadata"]["name"], url))
        return self.fetch.get(url, probe.Fetch(False, "Connection refused"))


def pod(name, app, node, ip):
    return {"metadata": {"name": name, "labels": {"app": app}}, "spec": {"nodeName": node},
            "status": {"phase": "Running", "podIP": ip}}


def test_pod_to_pod_wants_a_pod_on_another_node():
    fake = FakeProbe([pod("client-1", "client", "worker-1", "10.244.1.2"), pod("nginx-1", "nginx", "worker-1", "10.244.1.3")])
    r = asyncio.run(exercises.check_pod_to_pod(fake))
    assert not r.ok and "no nginx pod runs on another node" in r.reason and not fake.fetched
    fake.pods.append(pod("nginx-2", "nginx", "worker-2", "10.244.2.3"))
    r = asyncio.run(exercises.check_pod_to_pod(fake))
    assert not r.ok and "cannot fetch http://10.244.2.3/" in r.reason and "Connection refused" in r.reason
    fake.fetch["http://10.244.2.3/"] = probe.Fetch(True, "HTTP 200")
    assert asyncio.run(exercises.check_pod_to_pod(fake)).ok


def test_service_check_names_the_missing_endpoints():
    fake = FakeProbe([pod("client-1", "client", "worker-1", "10.244.1.2")],
                     objects={("services", "nginx"): {"spec": {"selector": {"app": "ngnix"}}}})
    r = asyncio.run(exercises.check_service_by_name(fake))
    assert not r.ok and "the Service has no ready endpoints (selector app=ngnix)" in r.reason


def test_check_verbs_need_root(monkeypatch):
    from kubelab.cli import exercise as cli
    from kubelab.cli.context import CliError
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(CliError, match="needs root"):
        cli.need_root("exercise check pod-to-pod")


@pytest.mark.parametrize("value", ["x" * 101, "10.244.1.0/24\n", "a\x1b[2Jb"])
def test_a_hostile_answer_is_refused_before_the_lab_is_asked(value):
    from kubelab.lab.kit import run

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError("the lab must not be asked")
    with pytest.raises(model.KitError, match="one short printable value"):
        asyncio.run(run.answer_exercise(Untouchable(), "worker-2-cidr", value))


def test_default_deny_check_wants_web_open_and_db_closed():
    fake = FakeProbe([pod("client", "client", "worker-1", "10.244.1.2")])
    fake.running_pods = lambda ns, sel: _coro([p for p in fake.pods if sel == "app=client"])
    r = asyncio.run(scenarios.check_default_deny(fake, {}))
    assert not r.ok and "cannot fetch http://web" in r.reason
    fake.fetch["http://web"] = probe.Fetch(True, "HTTP 200")
    fake.fetch["http://db"] = probe.Fetch(True, "HTTP 200")
    r = asyncio.run(scenarios.check_default_deny(fake, {}))
    assert not r.ok and "the deny for everything else is gone" in r.reason
    fake.fetch["http://db"] = probe.Fetch(False, "Connection timed out after 4001 milliseconds")
    r = asyncio.run(scenarios.check_default_deny(fake, {}))
    assert r.ok and "http://db stays closed" in r.reason


async def _coro(value):
    return value
