"""`kubelab up/status/logs/timeline/down` on a real lab (root): one lab for the whole module.

Needs only etcd + the API server + controllers + scheduler + proxy; the node agent is used
when it exists but not required here (see test_lab_walkthrough.py for pods and traffic).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest
import yaml

from kubelab.lab import components, state, topology
from kubelab.lab.testing import Lab
from kubelab.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]

# the student's own kubeconfig, with a cluster of their own that must survive `up` and `down`
USER_KUBECONFIG = """apiVersion: v1
kind: Config
current-context: work
clusters:
- name: work
  cluster: {server: 'https://work.example:6443'}
users:
- name: me
  user: {token: not-a-real-token}
contexts:
- name: work
  context: {cluster: work, user: me, namespace: team}
"""


def host_nft_tables() -> set[str]:
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return set(p.stdout.splitlines())


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab.create(workers=2)
    os.makedirs(os.path.join(lab.home, ".kube"))
    with open(os.path.join(lab.home, ".kube", "config"), "w") as f:
        f.write(USER_KUBECONFIG)
    lab.host_tables_before = host_nft_tables()
    try:
        lab.up()
        yield lab
    finally:
        if not getattr(lab, "cleaned", False):
            left = lab.cleanup()
            assert not left, f"lab residue after down: {left}"


def sup(lab: Lab) -> dict:
    return state.read_json(os.path.join(lab.plan.lab_dir, state.SUPERVISOR_FILE))


def comp(lab: Lab, node: str, name: str) -> dict:
    return next(c for c in sup(lab)["components"] if c["spec"]["node"] == node and c["spec"]["name"] == name)


def test_up_shows_progress_and_a_summary(lab):
    out = lab.up_output
    for what in ("host bridge kl-", "control-plane: etcd started", "control-plane: etcd healthy",
                 "control-plane: apiserver healthy", "control-plane: controllers started",
                 "control-plane: scheduler started", "worker-1: proxy healthy", "worker-2: proxy healthy"):
        assert what in out, what
    assert f"Lab '{lab.name}' is up in" in out
    assert f"API server:  {lab.plan.api_url}" in out
    assert "Next:" in out and "kubectl" in out
    # etcd was healthy before the API server started, which was healthy before the controllers
    assert out.index("etcd healthy") < out.index("apiserver started") < out.index("apiserver healthy") \
        < out.index("controllers started")


def test_node_network(lab):
    plan = lab.plan
    assert plan.bridge in topology.existing_links()
    for n in plan.nodes:
        addrs = json.loads(topology.run(["ip", "-n", n.netns, "-j", "-4", "addr", "show", "eth0"]).stdout)
        assert addrs[0]["addr_info"][0]["local"] == n.ip
        lo = json.loads(topology.run(["ip", "-n", n.netns, "-j", "link", "show", "lo"]).stdout)
        assert "UP" in lo[0]["flags"]
        routes = topology.run(["ip", "-n", n.netns, "route", "show"]).stdout
        assert "default" not in routes, f"{n.name} must not route out of the lab: {routes}"
    # node to node over the bridge, from inside the namespaces: a worker asks etcd's health
    cp, w2 = plan.nodes[0], plan.nodes[-1]
    if lab.plan.tls:  # etcd speaks only mutual TLS: present the API server's etcd client certificate
        pki = components.pki_dir(lab.plan)
        tls = ["--cacert", f"{pki}/etcd-ca.crt", "--cert", f"{pki}/apiserver-etcd-client.crt",
               "--key", f"{pki}/apiserver-etcd-client.key"]
    else:
        tls = []
    scheme = "https" if lab.plan.tls else "http"
    p = topology.run(["ip", "netns", "exec", w2.netns, "curl", "-sS", "--noproxy", "*", "-m", "5", *tls,
                      f"{scheme}://{cp.ip}:2379/health"], check=False)
    assert p.returncode == 0 and '"health":"true"' in p.stdout.replace(" ", ""), p.stdout + p.stderr
    # the host reaches the API server through the bridge, with the real kubectl
    ns = lab.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert "namespace/kube-system" in ns and "namespace/default" in ns


def test_status_reports_every_component_healthy(lab):
    p = lab.run("status", *lab.lab_args())
    names = {(c["spec"]["node"], c["spec"]["name"]) for c in sup(lab)["components"]}
    assert {("control-plane", "etcd"), ("control-plane", "apiserver"), ("control-plane", "controllers"),
            ("control-plane", "scheduler"), ("worker-1", "proxy"), ("worker-2", "proxy")} <= names
    for node, name in names:
        row = next(line for line in p.stdout.splitlines() if line.startswith(node) and f" {name} " in line)
        assert "running" in row, row
    assert "supervisor running" in p.stdout
    js = json.loads(lab.run("status", *lab.lab_args(), "-o", "json").stdout)
    assert all(r["alive"] for r in js["components"])
    assert next(r for r in js["components"] if r["component"] == "etcd")["health"] == "ok"


def scrape(url: str, lab: Lab | None = None) -> str:
    """GET with the lab's CA and admin certificate when the lab is secured (HTTPS ports)."""
    verify = components.health_verify(lab.plan) if lab is not None and url.startswith("https:") else True
    r = httpx.get(url, timeout=10, trust_env=False, verify=verify)
    assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:200]}"
    return r.text


def test_every_component_serves_upstream_metrics(lab):
    """Each component's /metrics on its upstream port, in the Prometheus format, with upstream's
    names: a Prometheus set up for a kubeadm cluster finds them where it looks."""
    cp = lab.plan.control_plane
    scheme = "https" if lab.plan.tls else "http"
    api = scrape(f"{lab.plan.api_url}/metrics", lab)
    for name in ("apiserver_request_total{", "apiserver_request_duration_seconds_bucket{",
                 "apiserver_registered_watchers "):
        assert name in api, name
    kcm = scrape(f"{scheme}://{cp.ip}:10257/metrics", lab)
    for name in ('workqueue_depth{name="deployment"}', 'workqueue_adds_total{name="endpointslice"}',
                 "workqueue_queue_duration_seconds_bucket{", "workqueue_work_duration_seconds_count{",
                 "workqueue_retries_total{", "workqueue_longest_running_processor_seconds{"):
        assert name in kcm, name
    sched = scrape(f"{scheme}://{cp.ip}:10259/metrics", lab)
    assert 'scheduler_pending_pods{queue="active"}' in sched and "scheduler_schedule_attempts_total" in sched
    for w in lab.plan.workers:
        proxy = scrape(f"http://{w.ip}:10249/metrics")
        for name in ("kubeproxy_sync_proxy_rules_duration_seconds_bucket{", "kubeproxy_sync_proxy_rules_last_timestamp_seconds ",
                     "kubeproxy_network_programming_duration_seconds_count "):
            assert name in proxy, name
        agent = lab.kubectl("get", "--raw", f"/api/v1/nodes/{w.name}/proxy/metrics").stdout
        assert "kubelet_running_pods " in agent and 'kubelet_running_containers{container_state="running"}' in agent
        assert f'kubelet_node_name{{node="{w.name}"}} 1.0' in agent
    # the node proxy forwards only the agent's status paths
    refused = lab.kubectl("get", "--raw", f"/api/v1/nodes/{lab.plan.workers[0].name}/proxy/containerLogs/x/y/z",
                          check=False)
    assert refused.returncode != 0 and "serves only" in refused.stderr
    dns_pods = json.loads(lab.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o",
                                      "json").stdout)["items"]
    assert dns_pods, "the DNS add-on runs"
    for pod in dns_pods:
        node = next(n for n in lab.plan.nodes if n.name == pod["spec"]["nodeName"])
        out = topology.run(["ip", "netns", "exec", node.netns, "curl", "-sS", "--noproxy", "*", "-m", "10",
                            f"http://{pod['status']['podIP']}:9153/metrics"]).stdout
        # (a pod that has answered nothing yet has the family but no samples)
        assert "# TYPE coredns_dns_requests_total counter" in out, out
        assert "coredns_dns_request_duration_seconds_bucket{" in out
        assert "--v=2" in pod["spec"]["containers"][0]["args"]


def test_controller_manager_and_scheduler_health(lab):
    """/healthz, /livez and /readyz (per-check lines with ?verbose) on 10257 and 10259, and
    `kubelab status` shows them instead of `-`."""
    cp = lab.plan.control_plane
    scheme = "https" if lab.plan.tls else "http"
    for port in (10257, 10259):
        for path in ("/healthz", "/livez", "/readyz"):
            assert scrape(f"{scheme}://{cp.ip}:{port}{path}", lab) == "ok"
        verbose = scrape(f"{scheme}://{cp.ip}:{port}/readyz?verbose", lab)
        assert verbose.splitlines() == ["[+]ping ok", "[+]informer-sync ok", "readyz check passed"]
    js = json.loads(lab.run("status", *lab.lab_args(), "-o", "json").stdout)
    for name, port in (("controllers", 10257), ("scheduler", 10259)):
        row = next(r for r in js["components"] if r["component"] == name)
        assert row["health"] == "ok" and row["health_url"] == f"{scheme}://{cp.ip}:{port}/healthz", row
    text = lab.run("status", *lab.lab_args()).stdout
    for name in ("controllers", "scheduler"):
        row = next(line for line in text.splitlines() if f" {name} " in line)
        assert " ok " in f"{row} ", row


def test_every_component_runs_with_klog_verbosity_2(lab):
    """`--v=2` as a Hard Way guide passes it: accepted by every component the lab runs."""
    comps = sup(lab)["components"]
    names = {c["spec"]["name"] for c in comps}
    assert {"apiserver", "controllers", "scheduler", "proxy"} <= names
    for c in comps:
        if c["spec"]["name"] == "etcd":
            continue
        assert "--v=2" in c["spec"]["argv"], c["spec"]["name"]
        assert state.alive(c["pid"]), c["spec"]["name"]


def test_up_again_reports_the_running_lab(lab):
    before = sup(lab)["supervisor"]
    p = lab.run("up", *lab.lab_args(), "--node-subnet", lab.subnet, timeout=60)
    assert "already running" in p.stdout
    assert sup(lab)["supervisor"] == before


def test_proxy_rules_live_inside_the_worker_namespaces(lab):
    for w in lab.plan.workers:
        p = topology.run(["ip", "netns", "exec", w.netns, "nft", "-s", "list", "map", "ip", "kube-proxy",
                          "service-ips"], check=False)
        if lab.proxy_mode == "nftables":
            assert "10.96.0.1 . tcp . 443" in p.stdout, p.stdout + p.stderr


def test_a_killed_component_is_restarted(lab):
    old = comp(lab, "control-plane", "apiserver")
    assert state.signal_proc(old["pid"], signal.SIGKILL)
    wait_until(lambda: (c := comp(lab, "control-plane", "apiserver"))["restarts"] >= 1 and c["pid"]
               and c["pid"] != old["pid"], timeout=30, what="the supervisor to restart the API server")
    wait_until(lambda: lab.kubectl("get", "ns", check=False).returncode == 0, timeout=30,
               what="the restarted API server to answer")
    p = lab.run("status", *lab.lab_args(), check=False)
    row = next(line for line in p.stdout.splitlines() if " apiserver " in line)
    assert row.split()[-2] == "1", row  # RESTARTS column
    log = lab.run("logs", "apiserver", *lab.lab_args()).stdout
    assert "(start #2)" in log


def test_logs(lab):
    p = lab.run("logs", "etcd", *lab.lab_args(), "--tail", "200")
    assert "kubelab supervisor: starting control-plane/etcd" in p.stdout
    p = lab.run("logs", "proxy", *lab.lab_args(), "--node", "worker-2")
    assert "==>" not in p.stdout and "starting worker-2/proxy" in p.stdout
    p = lab.run("logs", "proxy", *lab.lab_args())  # both workers, with headers
    assert "==> worker-1/proxy" in p.stdout and "==> worker-2/proxy" in p.stdout
    p = lab.run("logs", "nosuch", *lab.lab_args(), check=False)
    assert p.returncode == 1 and "no log for 'nosuch'" in p.stderr and "apiserver" in p.stderr


def test_timeline_shows_the_boot_order(lab):
    out = lab.run("timeline", *lab.lab_args()).stdout
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["+SECONDS", "WHO", "WHAT"]
    etcd = next(i for i, line in enumerate(lines) if "control-plane/etcd" in line and "process started" in line)
    api = next(i for i, line in enumerate(lines) if "control-plane/apiserver" in line and "process started" in line)
    ready = next(i for i, line in enumerate(lines) if "all components healthy" in line)
    assert etcd < api < ready
    assert any("service/default/kubernetes" in line for line in lines)


def test_up_merged_the_lab_into_the_users_kubeconfig(lab):
    """As kind: cluster/user/context kubelab-<lab> added and current, the student's own kept;
    the real kubectl uses it with no --kubeconfig (HOME is the lab's throwaway home)."""
    kc = os.path.join(lab.home, ".kube", "config")
    with open(kc) as f:
        cfg = yaml.safe_load(f)
    name = f"kubelab-{lab.name}"
    assert cfg["current-context"] == name
    for key in ("clusters", "users", "contexts"):
        assert [e["name"] for e in cfg[key]] == [yaml.safe_load(USER_KUBECONFIG)[key][0]["name"], name]
    assert cfg["clusters"][1]["cluster"]["server"] == lab.plan.api_url
    assert os.listdir(os.path.dirname(kc)) == ["config"]  # no backup copies, no temporaries
    env = {k: v for k, v in lab.env.items() if k != "KUBECONFIG"}
    p = subprocess.run(["kubectl", "get", "ns", "kube-system", "-o", "name", "--request-timeout=20s"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.stdout.strip() == "namespace/kube-system", p.stderr
    # `kubelab get-kubeconfig` prints the same entries (as `kind get kubeconfig`)
    got = yaml.safe_load(lab.run("get-kubeconfig", *lab.lab_args()).stdout)
    assert got["current-context"] == name and got["clusters"][0]["cluster"]["server"] == lab.plan.api_url


def test_a_half_started_lab_is_torn_down_and_rebuilt(lab):
    s = sup(lab)
    orphans = [c["pid"] for c in s["components"] if c["pid"]]
    assert state.signal_proc(s["supervisor"], signal.SIGKILL)  # the supervisor dies, components linger
    wait_until(lambda: not state.alive(s["supervisor"]), timeout=10, what="the supervisor to die")
    p = lab.run("up", *lab.lab_args(), "--workers", str(lab.workers), "--node-subnet", lab.subnet, timeout=240)
    assert "half-started" in p.stdout and f"Lab '{lab.name}' is up" in p.stdout
    assert not any(state.alive(o) for o in orphans), "the old components must be gone"
    assert state.alive(sup(lab)["supervisor"])
    lab.remember_namespaces()
    wait_until(lambda: lab.kubectl("get", "ns", check=False).returncode == 0, timeout=30, what="the API")


def test_zz_down_leaves_no_residue(lab):
    """Last in the module: `down` removes netns, links, routes, processes, mounts, the dir,
    restores the user's kubeconfig, and leaves the host's nftables as they were."""
    pids = [c["pid"] for c in sup(lab)["components"] if c["pid"]]
    t0 = time.monotonic()
    p = lab.down()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nothing of it is left" in p.stdout
    left = lab.residue()
    assert not left, f"residue after down: {left}"
    assert time.monotonic() - t0 < 60
    assert not any(state.alive(p) for p in pids)
    with open(os.path.join(lab.home, ".kube", "config")) as f:  # exactly the lab's entries went
        assert yaml.safe_load(f) == yaml.safe_load(USER_KUBECONFIG)
    assert f"removed cluster, user and context kubelab-{lab.name}" in p.stdout
    assert not os.path.exists(lab.root_dir), "the root dir `up` created is removed with the last lab"
    lab.cleaned = True
    assert lab.cleanup() == []
    new_tables = host_nft_tables() - lab.host_tables_before
    assert not any("kube-proxy" in t or "kubelab" in t for t in new_tables), new_tables
