"""kubelab-bridge + kubelab-ipam on a real kernel.

Every plugin run happens inside a throwaway "node" netns (`ip netns exec kl-cni-...`), so
the root namespace's forwarding, links and nftables are never touched; pods are more
throwaway netns.  The plugins are run as executables from a wrapper dir on CNI_PATH (the
way a runtime runs them), importing this checkout.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from kubelab.cni import bridge, spec

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ["0.4.0", "1.0.0", "1.1.0"]
BRIDGE = "kl-br0"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not shutil.which("ip") or not shutil.which("nft"), reason="needs iproute2 + nft"),
]


def sh(*cmd: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=timeout, **kw)


def ns_json(ns: str, *args: str):
    return json.loads(sh("ip", "-n", ns, "-j", *args).stdout or "[]")


@pytest.fixture(scope="module")
def cni_bin(tmp_path_factory):
    """CNI_PATH dir holding kubelab-bridge and kubelab-ipam: the installed console scripts
    (pip install -e .) when they sit beside this interpreter, else tiny wrappers that exec
    `python -m kubelab.cni.<plugin>` from this checkout."""
    d = tmp_path_factory.mktemp("cni-bin")
    for name, module in (("kubelab-bridge", "kubelab.cni.bridge"), ("kubelab-ipam", "kubelab.cni.ipam")):
        p = d / name
        installed = Path(sys.executable).parent / name
        if installed.is_file() and os.access(installed, os.X_OK):
            p.symlink_to(installed)
        else:
            p.write_text(f"#!/bin/sh\nexec {sys.executable} -m {module} \"$@\"\n")
            p.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Node:
    """A node netns plus helpers to run the plugin in it and to make pods."""

    def __init__(self, stack: ExitStack, cni_bin: Path, data_dir: Path) -> None:
        self.stack = stack
        self.cni_bin = cni_bin
        self.data_dir = data_dir
        self.name = self.netns("kl-cni-")
        self.network = "kl-" + secrets.token_hex(3)

    def netns(self, prefix: str) -> str:
        name = prefix + secrets.token_hex(4)
        sh("ip", "netns", "add", name)
        self.stack.callback(lambda: sh("ip", "netns", "del", name, check=False))
        return name

    def pod(self) -> str:
        return self.netns("kl-cnp-")

    def conf(self, version: str = "1.1.0", *, subnet: str = "10.244.1.0/24", ipam_extra=None,
             **extra) -> dict:
        ipam = {"type": "kubelab-ipam", "ranges": [[{"subnet": subnet}]],
                "dataDir": str(self.data_dir)}
        ipam.update(ipam_extra or {})
        conf = {"cniVersion": version, "name": self.network, "type": "kubelab-bridge",
                "bridge": BRIDGE, "isGateway": True, "isDefaultGateway": True, "ipMasq": True,
                "clusterCIDR": "10.244.0.0/16", "ipam": ipam}
        conf.update(extra)
        return conf

    def env(self, command: str, *, cid: str = "", pod: str | None = None, ifname: str = "eth0",
            args: str = "", cni_path: str | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.update({"CNI_COMMAND": command, "CNI_PATH": cni_path or str(self.cni_bin),
                    "CNI_IFNAME": ifname, "CNI_ARGS": args})
        if cid:
            env["CNI_CONTAINERID"] = cid
        if pod:
            env["CNI_NETNS"] = f"/run/netns/{pod}"
        return env

    def argv(self) -> list[str]:
        return ["ip", "netns", "exec", self.name, str(self.cni_bin / "kubelab-bridge")]

    def run(self, command: str, conf: dict | str, **kw) -> tuple[int, dict | None]:
        stdin = conf if isinstance(conf, str) else json.dumps(conf)
        proc = subprocess.run(self.argv(), input=stdin, env=self.env(command, **kw),
                              capture_output=True, text=True, timeout=120)
        out = proc.stdout.strip()
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, (json.loads(out) if out else None)

    def add(self, conf: dict, cid: str, pod: str, **kw) -> dict:
        rc, res = self.run("ADD", conf, cid=cid, pod=pod, **kw)
        assert rc == 0, res
        return res

    def allocations(self) -> dict[str, str]:
        d = self.data_dir / self.network
        if not d.exists():
            return {}
        return {p.name: p.read_bytes().decode() for p in d.iterdir() if p.name[0].isdigit()}

    def masq_comments(self) -> list[str]:
        proc = sh("ip", "netns", "exec", self.name, "nft", "-j", "list", "table", "ip",
                  "kubelab-cni", check=False)
        if proc.returncode != 0:
            return []
        return [i["rule"].get("comment", "") for i in json.loads(proc.stdout)["nftables"] if "rule" in i]

    def links(self) -> dict[str, dict]:
        return {link["ifname"]: link for link in ns_json(self.name, "-d", "link", "show")}


@pytest.fixture
def node(cni_bin, tmp_path):
    with ExitStack() as stack:
        data = tmp_path / "cni-data"
        stack.callback(lambda: shutil.rmtree(data, ignore_errors=True))
        yield Node(stack, cni_bin, data)


def pod_addr(pod: str, ifname: str = "eth0") -> list[str]:
    info = ns_json(pod, "addr", "show", "dev", ifname)
    return [f"{a['local']}/{a['prefixlen']}" for a in info[0]["addr_info"] if a["family"] == "inet"]


def with_prev(conf: dict, prev: dict) -> dict:
    return dict(conf, prevResult=prev)


def root_state() -> tuple[str, int]:
    fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    rc = sh("nft", "list", "table", "ip", "kubelab-cni", check=False).returncode
    return fwd, rc


# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del(node, version):
    before = root_state()
    pod = node.pod()
    conf = node.conf(version)
    res = node.add(conf, "cid-1", pod)

    # Result shape per spec version
    assert res["cniVersion"] == version
    names = [i["name"] for i in res["interfaces"]]
    host_veth = bridge.host_veth_name("cid-1", "eth0")
    assert names == [BRIDGE, host_veth, "eth0"]
    assert res["interfaces"][2]["sandbox"] == f"/run/netns/{pod}"
    assert all(i["mac"] for i in res["interfaces"])
    assert ("mtu" in res["interfaces"][0]) == (version == "1.1.0")
    ip = res["ips"][0]
    assert ip["address"] == "10.244.1.2/24" and ip["gateway"] == "10.244.1.1" and ip["interface"] == 2
    assert ("version" in ip) == (version == "0.4.0")
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]

    # Pod side: address, default route, lo up, MAC as reported
    assert pod_addr(pod) == ["10.244.1.2/24"]
    routes = ns_json(pod, "route", "show")
    assert {"dst": "default", "gateway": "10.244.1.1", "dev": "eth0"}.items() <= routes[0].items()
    lo = ns_json(pod, "link", "show", "dev", "lo")[0]
    assert "UP" in lo["flags"]
    assert ns_json(pod, "link", "show", "dev", "eth0")[0]["address"] == res["interfaces"][2]["mac"]

    # Node side: bridge with the gateway, veth on it with hairpin, forwarding, masquerade
    links = node.links()
    assert links[host_veth]["master"] == BRIDGE
    assert links[host_veth]["linkinfo"]["info_slave_data"]["hairpin"] is True
    br_addrs = [f"{a['local']}/{a['prefixlen']}"
                for a in ns_json(node.name, "addr", "show", "dev", BRIDGE)[0]["addr_info"]
                if a["family"] == "inet"]
    assert br_addrs == ["10.244.1.1/24"]
    fwd = sh("ip", "netns", "exec", node.name, "cat", "/proc/sys/net/ipv4/ip_forward").stdout
    assert fwd.strip() == "1"
    assert node.masq_comments() == [
        f"kubelab-cni: network {node.network}: masquerade 10.244.1.0/24 leaving 10.244.0.0/16"]
    assert node.allocations() == {"10.244.1.2": "cid-1\r\neth0"}

    # CHECK passes; then breaks when the route goes
    assert node.run("CHECK", with_prev(conf, res), cid="cid-1", pod=pod) == (0, None)
    sh("ip", "-n", pod, "route", "del", "default")
    rc, err = node.run("CHECK", with_prev(conf, res), cid="cid-1", pod=pod)
    assert rc == 1 and err["code"] == spec.ERR_CHECK_FAILED and "route" in err["msg"]

    # DEL cleans everything; a second DEL is fine
    assert node.run("DEL", with_prev(conf, res), cid="cid-1", pod=pod) == (0, None)
    assert "eth0" not in {link["ifname"] for link in ns_json(pod, "link", "show")}
    assert host_veth not in node.links()
    assert node.allocations() == {}
    assert node.masq_comments() == []
    assert node.run("DEL", with_prev(conf, res), cid="cid-1", pod=pod) == (0, None)

    # the root namespace was never touched
    assert root_state() == before


def test_check_detects_missing_masquerade_address_and_veth(node):
    pod = node.pod()
    conf = node.conf()
    res = node.add(conf, "cid-x", pod)
    sh("ip", "netns", "exec", node.name, "nft", "delete", "table", "ip", "kubelab-cni")
    rc, err = node.run("CHECK", with_prev(conf, res), cid="cid-x", pod=pod)
    assert err["code"] == spec.ERR_CHECK_FAILED and "masquerade" in err["msg"]
    sh("ip", "-n", pod, "addr", "flush", "dev", "eth0")
    rc, err = node.run("CHECK", with_prev(conf, res), cid="cid-x", pod=pod)
    assert err["code"] == spec.ERR_CHECK_FAILED and "address" in err["msg"]
    sh("ip", "-n", node.name, "link", "del", bridge.host_veth_name("cid-x", "eth0"))
    rc, err = node.run("CHECK", with_prev(conf, res), cid="cid-x", pod=pod)
    assert err["code"] == spec.ERR_CHECK_FAILED


def test_add_makes_bridged_packets_pass_netfilter(node):
    """A Service reply from a pod on the client's own bridge is switched, not routed: unless
    br_netfilter hands it to conntrack, it is never un-DNATed (the VMs' stock kernel has it off)."""
    nf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    sh("ip", "netns", "exec", node.name, "sh", "-c", f"echo 0 > {nf}")
    pod = node.pod()
    conf = node.conf()
    res = node.add(conf, "cid-nf", pod)
    assert sh("ip", "netns", "exec", node.name, "cat", nf).stdout.strip() == "1"
    assert node.run("CHECK", with_prev(conf, res), cid="cid-nf", pod=pod) == (0, None)
    sh("ip", "netns", "exec", node.name, "sh", "-c", f"echo 0 > {nf}")
    rc, err = node.run("CHECK", with_prev(conf, res), cid="cid-nf", pod=pod)
    assert rc == 1 and err["code"] == spec.ERR_CHECK_FAILED and "bridge-nf-call-iptables" in err["msg"]


def test_del_when_netns_gone(node):
    pod = node.pod()
    conf = node.conf()
    node.add(conf, "cid-gone", pod)
    sh("ip", "netns", "del", pod)
    assert node.run("DEL", conf, cid="cid-gone", pod=pod) == (0, None)
    assert node.allocations() == {}
    assert bridge.host_veth_name("cid-gone", "eth0") not in node.links()
    assert node.run("DEL", conf, cid="cid-gone", pod=pod) == (0, None)


def test_del_without_netns_releases_ip(node):
    pod = node.pod()
    conf = node.conf()
    node.add(conf, "cid-nons", pod)
    assert node.run("DEL", conf, cid="cid-nons") == (0, None)      # no CNI_NETNS at all
    assert node.allocations() == {}
    assert bridge.host_veth_name("cid-nons", "eth0") not in node.links()


def test_status_and_gc(node):
    conf = node.conf("1.1.0")
    assert node.run("STATUS", conf) == (0, None)
    pods = [node.pod() for _ in range(3)]
    for i, p in enumerate(pods):
        node.add(conf, f"gc-{i}", p)
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "gc-1", "ifname": "eth0"}]})
    assert node.run("GC", gc) == (0, None)
    assert list(node.allocations().values()) == ["gc-1\r\neth0"]
    gc_none = dict(conf, **{"cni.dev/valid-attachments": []})
    assert node.run("GC", gc_none) == (0, None)
    assert node.allocations() == {} and node.masq_comments() == []


def test_pod_to_pod_traffic(node):
    conf = node.conf()
    a, b = node.pod(), node.pod()
    ip_a = node.add(conf, "traffic-a", a)["ips"][0]["address"].split("/")[0]
    ip_b = node.add(conf, "traffic-b", b)["ips"][0]["address"].split("/")[0]
    assert ip_a != ip_b

    # ICMP echo b -> a and b -> gateway (the bridge), with a raw socket
    for dst in (ip_a, "10.244.1.1"):
        out = sh("ip", "netns", "exec", b, sys.executable, "-c", PING, dst).stdout
        assert out.strip() == "reply", dst

    # TCP: a server in pod a, a client in pod b
    server = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 15)
        assert ready and server.stdout.readline().strip() == "ready"
        out = sh("ip", "netns", "exec", b, sys.executable, "-c", CLIENT, ip_a).stdout
        assert out.strip() == f"echo:hello from {ip_b}"
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_runtime_helpers_run_a_conflist(node):
    """kubelab.cni.invoke as the node agent uses it: a conflist, ADD -> CHECK -> DEL."""
    pod = node.pod()
    conf = node.conf("1.0.0")
    conflist = {"cniVersion": "1.0.0", "name": conf.pop("name"),
                "plugins": [{k: v for k, v in conf.items() if k != "cniVersion"}]}
    script = (
        "import json, sys\n"
        "from kubelab.cni import invoke\n"
        "conflist, netns, path = json.loads(sys.argv[1]), sys.argv[2], [sys.argv[3]]\n"
        "res = invoke.conflist_add(conflist, container_id='rt-1', netns=netns, cni_path=path)\n"
        "invoke.conflist_check(conflist, container_id='rt-1', netns=netns, cni_path=path,"
        " prev_result=res)\n"
        "print(json.dumps(res), flush=True)\n"
        "invoke.conflist_del(conflist, container_id='rt-1', netns=netns, cni_path=path,"
        " prev_result=res)\n"
    )
    out = sh("ip", "netns", "exec", node.name, sys.executable, "-c", script, json.dumps(conflist),
             f"/run/netns/{pod}", str(node.cni_bin), env=node.env("ADD")).stdout
    res = json.loads(out)
    assert res["cniVersion"] == "1.0.0" and res["ips"][0]["address"] == "10.244.1.2/24"
    assert node.allocations() == {}
    assert "eth0" not in {link["ifname"] for link in ns_json(pod, "link", "show")}


def test_concurrent_adds_and_dels(node):
    """50 ADDs at once get 50 distinct addresses; 50 DELs free them all."""
    n = 50
    conf = node.conf()
    pods = [node.pod() for _ in range(n)]
    stdin = json.dumps(conf)

    def launch(command: str) -> list[subprocess.Popen]:
        return [subprocess.Popen(node.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 env=node.env(command, cid=f"many-{i}", pod=pods[i]))
                for i in range(n)]

    def finish(procs: list[subprocess.Popen]) -> list[str]:
        try:
            return [p.communicate(stdin, timeout=240)[0] for p in procs]
        finally:
            for p in procs:                  # never leave a plugin running behind a failure
                if p.poll() is None:
                    p.kill()
                    p.wait()

    procs = launch("ADD")
    outs = finish(procs)
    assert [p.returncode for p in procs] == [0] * n, [o for o in outs if '"code"' in o][:3]
    addrs = [json.loads(o)["ips"][0]["address"] for o in outs]
    assert len(set(addrs)) == n
    assert not {"10.244.1.0/24", "10.244.1.1/24", "10.244.1.255/24"} & set(addrs)
    assert sorted(pod_addr(p)[0] for p in pods) == sorted(addrs)
    assert len(node.allocations()) == n
    ports = [link for link in node.links().values() if link.get("master") == BRIDGE]
    assert len(ports) == n
    assert len(node.masq_comments()) == 1                 # one rule, not fifty

    procs = launch("DEL")
    finish(procs)
    assert [p.returncode for p in procs] == [0] * n
    assert node.allocations() == {}
    assert not [link for link in node.links().values() if link.get("master") == BRIDGE]
    assert node.masq_comments() == []


# --- every error code through the real executables --------------------------------------

def test_error_codes_env_and_config(node):
    pod = node.pod()
    good = node.conf()
    cases = [
        (spec.ERR_INCOMPATIBLE_VERSION, dict(good, cniVersion="0.3.1"), {}),
        (spec.ERR_UNSUPPORTED_FIELD, dict(good, vlan=7), {}),
        (spec.ERR_UNKNOWN_CONTAINER, good, {"pod": "kl-cnp-doesnotexist"}),
        (spec.ERR_INVALID_ENV, good, {"ifname": ""}),
        (spec.ERR_DECODE, "{oops", {}),
        (spec.ERR_INVALID_CONFIG, dict(good, ipam={"subnet": "10.244.1.0/24"}), {}),
    ]
    for code, conf, kw in cases:
        kw = {"cid": "err-1", "pod": pod, **kw}
        rc, err = node.run("ADD", conf, **kw)
        assert rc == 1 and err["code"] == code, (code, err)
        assert err["msg"]
    assert node.allocations() == {}
    assert "eth0" not in {link["ifname"] for link in ns_json(pod, "link", "show")}


def test_error_code_io_and_try_again(node, tmp_path):
    pod = node.pod()
    blocker = tmp_path / "blocker"
    blocker.write_text("not a dir")
    rc, err = node.run("ADD", node.conf(ipam_extra={"dataDir": str(blocker / "x")}), cid="e5", pod=pod)
    assert rc == 1 and err["code"] == spec.ERR_IO
    assert bridge.host_veth_name("e5", "eth0") not in node.links()

    conf = node.conf(ipam_extra={"lockTimeoutSeconds": 0.2})
    store = node.data_dir / node.network
    store.mkdir(parents=True, exist_ok=True)
    fd = os.open(store / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rc, err = node.run("ADD", conf, cid="e11", pod=pod)
        assert rc == 1 and err["code"] == spec.ERR_TRY_AGAIN
    finally:
        os.close(fd)
    assert "eth0" not in {link["ifname"] for link in ns_json(pod, "link", "show")}
    node.add(conf, "e11", pod)                           # works once the lock is free


def test_error_codes_plugin_specific(node, tmp_path):
    conf = node.conf(subnet="10.244.9.0/30")                 # exactly one usable address
    p1, p2, p3 = node.pod(), node.pod(), node.pod()
    res = node.add(conf, "p1", p1)

    rc, err = node.run("ADD", conf, cid="p2", pod=p2)
    assert err["code"] == spec.ERR_NO_FREE_ADDRESS                         # 101
    assert "eth0" not in {link["ifname"] for link in ns_json(p2, "link", "show")}
    rc, err = node.run("STATUS", conf)
    assert err["code"] == spec.ERR_NOT_AVAILABLE                           # 50 (range full)

    sh("ip", "-n", p3, "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
    rc, err = node.run("ADD", node.conf(), cid="p3", pod=p3)
    assert err["code"] == spec.ERR_INTERFACE_EXISTS                        # 102
    assert node.allocations() == {"10.244.9.2": "p1\r\neth0"}              # nothing leaked

    sh("ip", "-n", p1, "addr", "flush", "dev", "eth0")
    rc, err = node.run("CHECK", with_prev(conf, res), cid="p1", pod=p1)
    assert err["code"] == spec.ERR_CHECK_FAILED                            # 103

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    rc, err = node.run("ADD", node.conf(), cid="p2", pod=p2, cni_path=str(empty))
    assert err["code"] == spec.ERR_DELEGATE                                # 104
    rc, err = node.run("STATUS", node.conf(), cni_path=str(empty))
    assert err["code"] == spec.ERR_NOT_AVAILABLE                           # 50 (no IPAM)

    rc, err = node.run("ADD", conf, cid="p2", pod=p2, args="IgnoreUnknown=1;IP=10.244.9.2")
    assert err["code"] == spec.ERR_ADDRESS_UNAVAILABLE                     # 105


def test_version_and_help(node):
    proc = subprocess.run(node.argv(), input="", env=node.env("VERSION"), capture_output=True,
                          text=True, timeout=30)
    assert json.loads(proc.stdout)["supportedVersions"] == VERSIONS
    out = sh(sys.executable, "-m", "kubelab.cni", "--help", cwd=REPO).stdout
    assert "CNI_COMMAND" in out and "kubelab-bridge" in out
    out = sh(str(node.cni_bin / "kubelab-ipam"), "--help",
             env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert "host-local" in out


def test_timing_one_add_one_del(node, record_property):
    pod = node.pod()
    conf = node.conf()
    t0 = time.perf_counter()
    node.add(conf, "timed", pod)
    t_add = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert node.run("DEL", conf, cid="timed", pod=pod) == (0, None)
    t_del = time.perf_counter() - t0
    record_property("add_seconds", round(t_add, 3))
    record_property("del_seconds", round(t_del, 3))
    print(f"\nkubelab-bridge ADD {t_add * 1000:.0f} ms, DEL {t_del * 1000:.0f} ms")
    assert t_add < 10 and t_del < 10


PING = r"""
import os, socket, struct, sys
dst = sys.argv[1]
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(5)
ident = os.getpid() & 0xffff
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"kubelab"
s.sendto(struct.pack("!BBHHH", 8, 0, csum(body), ident, 1) + b"kubelab", (dst, 0))
while True:
    data, addr = s.recvfrom(2048)
    ihl = (data[0] & 15) * 4
    typ, _, _, i, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
    if typ == 0 and i == ident and addr[0] == dst:
        print("reply")
        break
"""

SERVER = r"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen()
s.settimeout(15)
print("ready", flush=True)
c, addr = s.accept()
data = c.recv(100)
c.sendall(b"echo:" + data + b" from " + addr[0].encode())
c.close()
"""

CLIENT = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], 8080), timeout=10)
c.sendall(b"hello")
c.shutdown(socket.SHUT_WR)
print(c.recv(100).decode())
"""
