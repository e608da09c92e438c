"""The seed's walk-through on a real 3-node lab, with the real kubectl, in both proxy modes.

One lab per proxy mode (module-scoped, parametrized): create a deployment, look at pods,
resolv.conf, expose it, fetch it by short and full name from a pod, pod->pod across nodes,
NodePort from the host on every node IP, endpoints/endpointslices, pod CIDRs, the kubeadm
config, the proxy's rules inside a node's namespace, and `kubelab trace` on all of it.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest

from kubelab.lab import topology
from kubelab.lab.testing import Lab, pod_exec
from kubelab.testing import wait_until

# the lab (tests/e2e/conftest.py): one per proxy mode
pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.parametrize("lab", ["nftables", "iptables"], indirect=True, scope="module")]

NGINX_PAGE = "Welcome to nginx!"


def pods(lab: Lab, selector: str) -> list[dict]:
    return json.loads(lab.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def running(lab: Lab, selector: str, n: int) -> list[dict]:
    def ok():
        ps = [p for p in pods(lab, selector) if p.get("status", {}).get("phase") == "Running"
              and p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")]
        return ps if len(ps) >= n else None
    return wait_until(ok, timeout=90, interval=0.5, what=f"{n} running pod(s) {selector}")


@pytest.fixture(scope="module")
def nginx(lab):
    lab.kubectl("create", "deployment", "nginx", "--image=nginx")
    lab.kubectl("scale", "deployment", "nginx", "--replicas=2")
    lab.kubectl("create", "deployment", "client", "--image=busybox")
    lab.kubectl("expose", "deployment", "nginx", "--port", "80")
    ips = {p["status"]["podIP"] for p in running(lab, "app=nginx", 2)}
    running(lab, "app=client", 1)

    def endpoints_ready():
        out = lab.kubectl("get", "endpoints", "nginx", "-o", "json").stdout
        addrs = {a["ip"] for s in json.loads(out).get("subsets") or [] for a in s.get("addresses") or []}
        return ips <= addrs
    wait_until(endpoints_ready, timeout=60, interval=0.5, what="both nginx pods behind Service nginx")
    return lab


def client(lab: Lab) -> dict:
    return running(lab, "app=client", 1)[0]


def test_nodes_and_pod_cidrs(lab):
    out = lab.kubectl("get", "no", "-o=custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR").stdout
    rows = dict(line.split() for line in out.splitlines()[1:])
    assert {"worker-1", "worker-2"} <= set(rows)
    for w in ("worker-1", "worker-2"):
        assert re.fullmatch(r"10\.244\.\d+\.0/24", rows[w]), out
    assert rows["worker-1"] != rows["worker-2"]
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    for n in nodes:
        if n["metadata"]["name"].startswith("worker"):
            ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "True"


def test_kubeadm_config_pod_subnet(lab):
    out = lab.kubectl("get", "configmap", "-n", "kube-system", "kubeadm-config", "-o", "yaml").stdout
    assert "podSubnet: 10.244.0.0/16" in out
    assert "serviceSubnet: 10.96.0.0/12" in out


def test_get_pods_wide(nginx):
    out = nginx.kubectl("get", "pods", "-o", "wide").stdout
    lines = [line for line in out.splitlines() if line.startswith("nginx-")]
    assert len(lines) == 2
    for line in lines:
        cols = line.split()
        assert cols[2] == "Running" and re.fullmatch(r"10\.244\.\d+\.\d+", cols[5]) and cols[6].startswith("worker-")


def test_resolv_conf_in_a_pod(nginx):
    p = pod_exec(nginx, client(nginx), "cat", "/etc/resolv.conf")
    assert p.returncode == 0, p.stderr
    assert "nameserver 10.96.0.10" in p.stdout
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in p.stdout
    assert "ndots:5" in p.stdout


def test_kubectl_exec(nginx):
    c = client(nginx)["metadata"]["name"]
    p = nginx.kubectl("exec", c, "--", "cat", "/etc/resolv.conf", check=False)
    if p.returncode != 0 and "pods/exec" in p.stderr:
        pytest.skip(f"kubectl exec is not wired through the API server to the node agent yet: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    assert "nameserver 10.96.0.10" in p.stdout


@pytest.mark.parametrize("url", ["http://nginx", "http://nginx.default.svc.cluster.local"])
def test_a_pod_fetches_the_service_by_name(nginx, url):
    c = client(nginx)
    last = {}

    def fetch():  # the endpoints and every proxy's rules follow the pods within a sync or two
        p = last["p"] = pod_exec(nginx, c, "curl", "-sS", "--noproxy", "*", "-m", "10", url)
        return p.returncode == 0 and NGINX_PAGE in p.stdout
    try:
        wait_until(fetch, timeout=30, interval=0.5, what=f"{url} from a pod")
    except TimeoutError:
        raise AssertionError(f"{url}: {last['p'].stdout[-300:]} {last['p'].stderr}") from None


def test_pod_to_pod_across_nodes_by_ip(nginx):
    c = client(nginx)
    other = [p for p in running(nginx, "app=nginx", 2) if p["spec"]["nodeName"] != c["spec"]["nodeName"]]
    if not other:
        pytest.skip("the scheduler put both nginx pods on the client's node (no cross-node pair to test)")
    ip = other[0]["status"]["podIP"]
    p = pod_exec(nginx, c, "curl", "-sS", "--noproxy", "*", "-m", "10", f"http://{ip}/")
    assert p.returncode == 0 and NGINX_PAGE in p.stdout, p.stderr


def test_nodeport_from_the_host_on_every_node_ip(nginx):
    nginx.kubectl("expose", "deployment", "nginx", "--name", "nginx-np", "--type", "NodePort", "--port", "80")
    svc = json.loads(nginx.kubectl("get", "svc", "nginx-np", "-o", "json").stdout)
    port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    for n in nginx.plan.nodes:
        def fetch():
            p = topology.run(["curl", "-sS", "--noproxy", "*", "-m", "5", f"http://{n.ip}:{port}/"], check=False)
            return NGINX_PAGE in p.stdout
        wait_until(fetch, timeout=30, interval=0.5, what=f"NodePort {port} on {n.name} ({n.ip})")


def test_endpoints_and_endpointslices(nginx):
    ips = sorted(p["status"]["podIP"] for p in running(nginx, "app=nginx", 2))

    def listed():
        out = nginx.kubectl("get", "endpoints", "nginx").stdout
        return all(f"{ip}:80" in out for ip in ips)
    wait_until(listed, timeout=30, what="both nginx pods in `kubectl get endpoints nginx`")
    out = nginx.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=nginx").stdout
    assert all(ip in out for ip in ips), out


def test_proxy_rules_in_a_node_namespace(nginx):
    cip = json.loads(nginx.kubectl("get", "svc", "nginx", "-o", "json").stdout)["spec"]["clusterIP"]
    w = nginx.plan.workers[0].netns
    if nginx.proxy_mode == "nftables":
        out = topology.run(["ip", "netns", "exec", w, "nft", "-s", "list", "map", "ip", "kube-proxy",
                            "service-ips"]).stdout
        assert f"{cip} . tcp . 80 : goto service-" in out and "default/nginx/tcp/" in out
    else:
        out = topology.run(["ip", "netns", "exec", w, "iptables-save", "-t", "nat"]).stdout
        assert re.search(rf"-A KUBE-SERVICES -d {re.escape(cip)}/32 .*--dport 80 -j KUBE-SVC-", out), out[-2000:]


def test_trace_from_a_pod_to_the_service(nginx):
    c = client(nginx)
    pod_exec(nginx, c, "curl", "-sS", "--noproxy", "*", "-m", "10", "http://nginx")  # leaves a conntrack entry
    p = nginx.run("trace", *nginx.lab_args(), c["metadata"]["name"], "nginx")
    out = p.stdout
    cip = json.loads(nginx.kubectl("get", "svc", "nginx", "-o", "json").stdout)["spec"]["clusterIP"]
    assert "nameserver 10.96.0.10" in out
    assert re.search(rf"nginx\.default\.svc\.cluster\.local\.\s+NOERROR\s+{re.escape(cip)}", out), out
    assert "proxy rules on" in out and f"({nginx.proxy_mode}" in out
    assert "<- chosen" in out
    assert re.search(r"arrives at default/nginx-\S+ 10\.244\.\d+\.\d+:80 on worker-\d", out), out
    assert "$ sudo ip netns exec" in out


def test_dns_lookup_of_the_service(nginx):
    cip = json.loads(nginx.kubectl("get", "svc", "nginx", "-o", "json").stdout)["spec"]["clusterIP"]
    p = pod_exec(nginx, client(nginx), "dig", "+short", "+search", "nginx")
    assert p.stdout.split() == [cip], p.stdout + p.stderr


def test_failing_readiness_probe_takes_a_pod_out_of_the_service(lab, tmp_path):
    """Node agent probe → pod Ready=False → endpoints controller → not-ready address; and back.
    (Containers share the node's filesystem here: the flag file is unique to this test.)"""
    flag = f"/tmp/kl-unready-{uuid.uuid4().hex[:8]}"
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed", "labels": {"app": "probed"}},
                "spec": {"containers": [{
                    "name": "web", "image": "nginx",
                    "readinessProbe": {"exec": {"command": ["test", "!", "-e", flag]},
                                       "periodSeconds": 1, "failureThreshold": 1}}]}}
    path = tmp_path / "probed.json"
    path.write_text(json.dumps(manifest))
    lab.kubectl("apply", "-f", str(path))
    lab.kubectl("expose", "pod", "probed", "--port", "80")
    ip = running(lab, "app=probed", 1)[0]["status"]["podIP"]

    def addresses() -> tuple[set, set]:
        ep = json.loads(lab.kubectl("get", "endpoints", "probed", "-o", "json").stdout)
        ready = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
        not_ready = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []}
        return ready, not_ready

    try:
        wait_until(lambda: addresses() == ({ip}, set()), timeout=60, interval=0.5, what="probed pod in endpoints")
        lab.kubectl("exec", "probed", "--", "touch", flag)
        wait_until(lambda: addresses() == (set(), {ip}), timeout=30, interval=0.5,
                   what="failing readiness probe moves the pod to notReadyAddresses")
        lab.kubectl("exec", "probed", "--", "rm", flag)
        wait_until(lambda: addresses() == ({ip}, set()), timeout=30, interval=0.5, what="ready again")
    finally:
        if os.path.exists(flag):
            os.unlink(flag)


def test_the_walkthrough_with_kubelab_itself(lab):
    """The same steps with `kubelab` instead of kubectl: create, get -o wide, exec, expose,
    endpoints, custom columns — against the secured lab, with the student's kubeconfig."""
    def kl(*args: str) -> str:
        return lab.run("--kubeconfig", lab.kubeconfig, *args).stdout

    assert "deployment.apps/web created" in kl("create", "deployment", "web", "--image=nginx", "--replicas", "2")
    running(lab, "app=web", 2)
    wide = kl("get", "pods", "-l", "app=web", "-o", "wide").splitlines()
    assert wide[0].split()[:3] == ["NAME", "READY", "STATUS"] and "NODE" in wide[0]
    assert len(wide) == 3 and all("Running" in row for row in wide[1:])
    pod = running(lab, "app=web", 1)[0]["metadata"]["name"]
    resolv = kl("exec", pod, "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.96.0.10" in resolv and "options ndots:5" in resolv
    assert "service/web exposed" in kl("expose", "deployment", "web", "--port", "80")
    ips = {p["status"]["podIP"] for p in running(lab, "app=web", 2)}
    wait_until(lambda: all(ip in kl("get", "endpoints", "web") for ip in ips), timeout=30, interval=0.5,
               what="both web pods in `kubelab get endpoints web`")
    cidrs = kl("get", "no", "-o=custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR").splitlines()
    assert cidrs[0].split() == ["NAME", "CIDR"] and all(re.search(r"10\.244\.\d+\.0/24", r) for r in cidrs[1:])
