"""Pure parts of the node agent: image catalogue, pod status, resolv.conf/hosts, CNI config,
environment and `$(VAR)` expansion, back-off, probe thresholds, routes, log tails."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from kubelab.nodeagent import containers as ctr
from kubelab.nodeagent import images, podstatus, routes, sandbox, server
from kubelab.nodeagent.podstatus import ContainerView, SandboxView
from kubelab.nodeagent.probes import ProbeWorker, Timing, http_get, resolve_port, tcp_socket


def mkpod(**spec) -> dict:
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


# ---- images ----------------------------------------------------------------------------

@pytest.mark.parametrize("ref,repo", [
    ("nginx", "nginx"), ("nginx:1.25", "nginx"), ("docker.io/library/nginx:1.25", "library/nginx"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.39", "e2e-test-images/agnhost"),
    ("localhost:5000/busybox@sha256:abc", "busybox"), ("kubelab/dns", "kubelab/dns"),
])
def test_repository(ref, repo):
    assert images.repository(ref) == repo


def test_resolve_catalogue_and_overrides():
    assert images.resolve("busybox:1.36", None, None) == ["sleep", "infinity"]
    assert images.resolve("busybox", ["sh", "-c"], ["echo hi"]) == ["sh", "-c", "echo hi"]
    assert images.resolve("busybox", None, ["sleep", "5"]) == ["sleep", "5"]  # args replace CMD
    agn = images.resolve("registry.k8s.io/e2e-test-images/agnhost:2.39", None, ["serve-hostname"])
    assert agn[1:] == ["-m", "kubelab.nodeagent.agnhost", "serve-hostname"]
    assert images.resolve("kubelab/dns", None, ["--zone=cluster.local"])[1:] == ["-m", "kubelab.dns", "--zone=cluster.local"]
    assert images.resolve("example.com/anything:1", ["/bin/true"], None) == ["/bin/true"]


def test_unknown_image_names_the_catalogue():
    with pytest.raises(images.ImageError) as e:
        images.resolve("example.com/nothing:1", None, None)
    assert "catalogue" in str(e.value) and "agnhost" in str(e.value) and e.value.reason == "ErrImagePull"


def test_image_id_is_stable():
    assert images.image_id("nginx:1.25") == images.image_id("nginx:1.25")
    assert images.image_id("nginx").startswith("kubelab.local/nginx@sha256:")


# ---- pod status --------------------------------------------------------------------------

def running(name="c", ready=True):
    return ContainerView(name, "nginx", ready=ready, started=True, state={"running": {"startedAt": "t"}})


def terminated(code, name="c"):
    return ContainerView(name, "nginx", state={"terminated": {"exitCode": code}})


@pytest.mark.parametrize("policy,views,phase", [
    ("Always", [ContainerView("c", "x")], "Pending"),
    ("Always", [running()], "Running"),
    ("Always", [terminated(0)], "Running"),
    ("OnFailure", [terminated(0)], "Succeeded"),
    ("OnFailure", [terminated(1)], "Running"),
    ("Never", [terminated(1)], "Failed"),
    ("Never", [terminated(0), terminated(0, "d")], "Succeeded"),
    ("Never", [terminated(0), running("d")], "Running"),
    ("Always", [ContainerView("c", "x", state={"waiting": {"reason": "CrashLoopBackOff"}},
                              last_state={"terminated": {"exitCode": 1}})], "Running"),
])
def test_phase(policy, views, phase):
    assert podstatus.phase(policy, views) == phase


def test_status_fields_and_conditions():
    pod = mkpod()
    st = podstatus.compute(pod, SandboxView(True, "10.244.1.5", "192.168.56.11", "2024-01-01T00:00:00Z"),
                           [running()], now="2024-01-01T00:00:01Z")
    assert st["phase"] == "Running" and st["podIP"] == "10.244.1.5" and st["podIPs"] == [{"ip": "10.244.1.5"}]
    assert st["hostIP"] == "192.168.56.11" and st["startTime"] == "2024-01-01T00:00:00Z"
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    for k in ("image", "imageID", "name", "ready", "restartCount"):  # the Python client requires these
        assert k in cs
    assert st["qosClass"] == "BestEffort"


def test_unready_container_and_stable_transition_times():
    pod = mkpod()
    sb = SandboxView(True, "10.244.1.5", "n", "t0")
    first = podstatus.compute(pod, sb, [running(ready=False)], now="T1")
    ready = {c["type"]: c for c in first["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [c]"
    again = podstatus.compute(pod, sb, [running(ready=False)], now="T2", previous=first)
    assert again == first and not podstatus.changed(first, again)  # nothing to write
    flipped = podstatus.compute(pod, sb, [running(ready=True)], now="T3", previous=first)
    assert {c["type"]: c for c in flipped["conditions"]}["Ready"]["lastTransitionTime"] == "T3"
    assert podstatus.changed(first, flipped)


def test_qos_class():
    res = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert podstatus.qos_class({"spec": {"containers": [{"resources": res}]}}) == "Guaranteed"
    assert podstatus.qos_class({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}) == "Burstable"


# ---- sandbox files -----------------------------------------------------------------------

NODE_RESOLV = "# generated\nnameserver 192.168.56.1\nsearch lab.local\noptions edns0\n"


def test_resolv_conf_cluster_first():
    assert sandbox.resolv_conf(mkpod(), sandbox.DnsSettings(), NODE_RESOLV) == (
        "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")


def test_resolv_conf_default_and_none():
    assert sandbox.resolv_conf(mkpod(dnsPolicy="Default"), sandbox.DnsSettings(), NODE_RESOLV) == (
        "nameserver 192.168.56.1\nsearch lab.local\noptions edns0\n")
    pod = mkpod(dnsPolicy="None", dnsConfig={"nameservers": ["1.2.3.4"], "searches": ["a.b"],
                                             "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert sandbox.resolv_conf(pod, sandbox.DnsSettings(), NODE_RESOLV) == (
        "nameserver 1.2.3.4\nsearch a.b\noptions ndots:2 edns0\n")
    # dnsConfig merges into ClusterFirst, replacing an option of the same name
    pod = mkpod(dnsConfig={"options": [{"name": "ndots", "value": "1"}]})
    assert sandbox.resolv_conf(pod, sandbox.DnsSettings(), "").endswith("options ndots:1\n")


def test_hosts_file():
    text = sandbox.hosts_file(mkpod(hostname="h", subdomain="sub",
                                    hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a", "b"]}]),
                              "10.244.1.5", "cluster.local")
    assert "127.0.0.1\tlocalhost" in text
    assert "10.244.1.5\th.sub.shop.svc.cluster.local\th" in text
    assert "1.2.3.4\ta\tb" in text
    assert "10.244.1.5\tweb-1\n" in sandbox.hosts_file(mkpod(), "10.244.1.5", "cluster.local")


def test_node_conflist():
    c = sandbox.node_conflist("10.244.1.0/24", data_dir="/var/lib/x", cluster_cidr="10.244.0.0/16")
    p = c["plugins"][0]
    assert c["cniVersion"] == "1.0.0" and p["type"] == "kubelab-bridge" and p["bridge"] == "cni0"
    assert p["isGateway"] and p["ipMasq"] and p["hairpinMode"]
    assert p["ipam"] == {"type": "kubelab-ipam", "ranges": [[{"subnet": "10.244.1.0/24"}]],
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/var/lib/x"}


def test_pod_ip_and_cni_args():
    assert sandbox.pod_ip_of({"ips": [{"address": "10.244.1.7/24", "interface": 2}]}) == "10.244.1.7"
    assert sandbox.pod_ip_of(None) is None
    assert "K8S_POD_NAME=web-1" in sandbox.cni_args(mkpod()) and sandbox.cni_args(mkpod()).startswith("IgnoreUnknown=1")


# ---- containers --------------------------------------------------------------------------

def test_expand():
    env = {"A": "x", "B": "y"}
    assert ctr.expand("$(A)-$(B)-$(C)-$$(A)", env) == "x-y-$(C)-$(A)"


def test_container_env():
    pod = mkpod()
    pod["spec"]["nodeName"] = "n1"
    c = {"env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "$(X)2"},
                 {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    env = ctr.container_env(pod, c, pod_ip="10.244.1.5", host_ip="h", hostname="web-1")
    assert env["Y"] == "12" and env["POD"] == "web-1" and env["IP"] == "10.244.1.5" and env["NODE"] == "n1"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["HOSTNAME"] == "web-1" and "/usr/sbin" in env["PATH"]


def test_argv_for_nginx_uses_pod_prefix():
    argv = ctr.argv_for({"image": "nginx:1.25"}, {}, nginx_prefix="/r/pods/u/nginx/c")
    assert argv[:3] == ["nginx", "-p", "/r/pods/u/nginx/c"] and argv[-2:] == ["-g", "daemon off;"]
    conf = ctr.nginx_config("/r/p")
    assert "pid /r/p/nginx.pid;" in conf and "listen 80" in conf and "/var/www/html" in conf


def test_backoff_delay():
    assert [ctr.backoff_delay(n, base=10) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]


def test_container_view_states():
    c = ctr.Container("c", "nginx")
    assert c.view().state == {"waiting": {"reason": "ContainerCreating"}}
    c.state, c.exit_code, c.reason, c.started_at, c.finished_at = "terminated", 3, "Error", 0.0, 1.0
    t = c.view().state["terminated"]
    assert t["exitCode"] == 3 and t["reason"] == "Error" and t["startedAt"] == "1970-01-01T00:00:00Z"


# ---- probes ------------------------------------------------------------------------------

def test_probe_thresholds():
    changes = []
    w = ProbeWorker("readiness", {"successThreshold": 2, "failureThreshold": 2}, attempt=None,
                    on_change=lambda k, ok, m: changes.append(ok))
    for ok in (True, True, True, False, True, False, False, False):
        w.feed(ok, "")
    assert changes == [True, False]


def test_probe_timing_defaults_and_ports():
    t = Timing.of({})
    assert (t.initial_delay, t.period, t.timeout, t.success_threshold, t.failure_threshold) == (0, 10, 1, 1, 3)
    assert resolve_port("http", {"ports": [{"name": "http", "containerPort": 8080}]}) == 8080
    assert resolve_port(80, {}) == 80
    with pytest.raises(ValueError):
        resolve_port("nope", {"name": "c"})


async def test_http_and_tcp_probes_against_a_local_server():
    async def handle(reader, writer):
        line = await reader.readline()
        code = 200 if b" /ok " in line else 500
        writer.write(f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        assert (await http_get("127.0.0.1", port, "/ok", [], 1))[0] is True
        ok, msg = await http_get("127.0.0.1", port, "/bad", [], 1)
        assert ok is False and "500" in msg
        assert (await tcp_socket("127.0.0.1", port, 1))[0] is True
    finally:
        srv.close()
        await srv.wait_closed()
    assert (await tcp_socket("127.0.0.1", port, 1))[0] is False


# ---- routes, server helpers, CLI -----------------------------------------------------------

def node(name, ip, cidr):
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def test_desired_routes():
    nodes = [node("a", "192.168.56.10", "10.244.0.0/24"), node("b", "192.168.56.11", "10.244.1.0/24"),
             node("c", "192.168.56.12", None), {"metadata": {"name": "d"}, "spec": {"podCIDR": "10.244.3.0/24"}}]
    assert routes.desired_routes(nodes, self_name="a") == {"10.244.1.0/24": "192.168.56.11"}


def test_tail_lines_and_exit_status():
    assert server.tail_lines(b"a\nb\nc\n", 2) == b"b\nc\n"
    assert server.tail_lines(b"a\nb", None) == b"a\nb" and server.tail_lines(b"a\n", 0) == b""
    assert server.exit_status(0) == {"metadata": {}, "status": "Success"}
    assert server.exit_status(3) == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: exit status 3",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


def test_cli_help_and_bad_ip():
    r = subprocess.run([sys.executable, "-m", "kubelab.nodeagent", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--node-name" in r.stdout and "--cni-conf-dir" in r.stdout
    r = subprocess.run([sys.executable, "-m", "kubelab.nodeagent", "--server", "http://x", "--node-name", "n",
                        "--node-ip", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "not an IP address" in r.stderr and "Traceback" not in r.stderr


def test_plain_http_only_on_loopback_unless_insecure():
    base = [sys.executable, "-m", "kubelab.nodeagent", "--server", "http://x", "--node-name", "n", "--node-ip",
            "10.0.0.1"]
    r = subprocess.run([*base, "--address", "0.0.0.0", "--port", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "refusing to serve logs and exec over plain HTTP on 0.0.0.0" in r.stderr
    from kubelab.nodeagent.__main__ import parse_args
    assert parse_args([*base[3:], "--address", "127.0.0.1"]).address == "127.0.0.1"
    assert parse_args([*base[3:], "--insecure"]).insecure


def test_init_containers_gate_phase_and_conditions():
    pod = mkpod(initContainers=[{"name": "init", "image": "busybox"}])
    sb = SandboxView(True, "10.244.1.5", "n", "t0")
    waiting = ContainerView("c", "nginx", state={"waiting": {"reason": "PodInitializing"}})
    st = podstatus.compute(pod, sb, [waiting], now="T", init_containers=[running("init", ready=False)])
    conds = {c["type"]: c for c in st["conditions"]}
    assert st["phase"] == "Pending" and conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [init]"
    assert st["initContainerStatuses"][0]["name"] == "init"
    st = podstatus.compute(pod, sb, [running()], now="T", init_containers=[terminated(0, "init")])
    assert st["phase"] == "Running" and {c["type"]: c["status"] for c in st["conditions"]}["Initialized"] == "True"
    pod["spec"]["restartPolicy"] = "Never"
    st = podstatus.compute(pod, sb, [waiting], now="T", init_containers=[terminated(1, "init")])
    assert st["phase"] == "Failed"


def test_resolv_conf_host_network():
    pod = mkpod(hostNetwork=True)
    assert sandbox.resolv_conf(pod, sandbox.DnsSettings(), NODE_RESOLV).startswith("nameserver 192.168.56.1\n")
    pod = mkpod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert sandbox.resolv_conf(pod, sandbox.DnsSettings(), NODE_RESOLV).startswith("nameserver 10.96.0.10\n")


def test_conflist_follows_the_node_pod_cidr_and_spares_foreign_ones(tmp_path):
    cni = sandbox.CniSettings(conf_dir=str(tmp_path / "net.d"), bin_dir=str(tmp_path / "bin"))
    cni.ensure("10.244.1.0/24", data_dir="/d", cluster_cidr="10.244.0.0/16")
    ours = tmp_path / "net.d" / sandbox.CONFLIST_NAME
    assert "10.244.1.0/24" in ours.read_text()
    cni.ensure("10.244.7.0/24", data_dir="/d", cluster_cidr="10.244.0.0/16")  # a new podCIDR: rewritten
    assert "10.244.7.0/24" in ours.read_text() and "10.244.1.0/24" not in ours.read_text()
    (tmp_path / "net.d" / "05-site.conflist").write_text("{}")  # the admin's own config wins, untouched
    cni.ensure("10.244.9.0/24", data_dir="/d", cluster_cidr="10.244.0.0/16")
    assert "10.244.7.0/24" in ours.read_text() and (tmp_path / "net.d" / "05-site.conflist").read_text() == "{}"
