"""The pod sandbox: a network namespace in /run/netns named after the pod's UID, held by a
pause process (also the pod's UTS and IPC namespaces and PID 1 of the pod's PID namespace,
reaping orphans), wired by the CNI plugin exactly as a container runtime calls it.

The pause program is a few lines of Perl (perl-base is in every Debian): ~5 MiB RSS, most of
it shared, where a Python one costs ~9 MiB. `unshare --fork` creates its namespaces and binds
the netns file (`--net=FILE`, what `ip netns add` does), then stays as its parent.

Pure helpers (`resolv_conf`, `hosts_file`, `node_conflist`) at the top; I/O below.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from kubelab.cni import invoke
from kubelab.cni.spec import CniError

from . import procs

NETNS_DIR = "/run/netns"
CONFLIST_NAME = "10-kubelab.conflist"
NETWORK_NAME = "kubelab"
CNI_PLUGINS = ("kubelab-bridge", "kubelab-ipam")

PAUSE_SCRIPT = r"""
$0 = "kubelab-pause";
$SIG{TERM} = $SIG{INT} = sub { exit 0 };
$SIG{CHLD} = sub { 1 while waitpid(-1, 1) > 0 };
if ($ARGV[0] ne "" && open(my $h, ">", "/proc/sys/kernel/hostname")) { print $h $ARGV[0]; close $h }
sleep while 1;
"""


# ---- pure ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DnsSettings:
    cluster_dns: str = "10.96.0.10"
    cluster_domain: str = "cluster.local"
    node_resolv: str = "/etc/resolv.conf"


def pod_hostname(pod: dict) -> str:
    spec = pod.get("spec") or {}
    return (spec.get("hostname") or pod["metadata"]["name"])[:63].rstrip("-.")


def resolv_conf(pod: dict, dns: DnsSettings, node_resolv_text: str) -> str:
    """/etc/resolv.conf for the pod's dnsPolicy (ClusterFirst, Default, None + dnsConfig)."""
    spec = pod.get("spec") or {}
    ns = pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirstWithHostNet" and not spec.get("hostNetwork"):
        policy = "ClusterFirst"
    elif policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"  # the kubelet's rule: host-network pods resolve like the node
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        d = dns.cluster_domain
        servers = [dns.cluster_dns]
        searches = [f"{ns}.svc.{d}", f"svc.{d}", d]
        options = ["ndots:5"]
    elif policy == "Default":
        for line in node_resolv_text.splitlines():
            words = line.split()
            if not words or words[0].startswith(("#", ";")):
                continue
            if words[0] == "nameserver" and len(words) > 1:
                servers.append(words[1])
            elif words[0] in ("search", "domain"):
                searches = words[1:]
            elif words[0] == "options":
                options.extend(words[1:])
    cfg = spec.get("dnsConfig") or {}
    for s in cfg.get("nameservers") or []:
        if s not in servers:
            servers.append(s)
    for s in cfg.get("searches") or []:
        if s not in searches:
            searches.append(s)
    for o in cfg.get("options") or []:
        name = o.get("name")
        if not name:
            continue
        options = [x for x in options if x.split(":", 1)[0] != name]
        options.append(f"{name}:{o['value']}" if o.get("value") is not None else name)
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: dict, pod_ip: str | None, cluster_domain: str) -> str:
    """/etc/hosts as the kubelet writes it (plus spec.hostAliases)."""
    spec = pod.get("spec") or {}
    lines = ["# Kubernetes-managed hosts file (kubelab).", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if pod_ip:
        host = pod_hostname(pod)
        sub = spec.get("subdomain")
        if sub:
            ns = pod["metadata"].get("namespace", "default")
            lines.append(f"{pod_ip}\t{host}.{sub}.{ns}.svc.{cluster_domain}\t{host}")
        else:
            lines.append(f"{pod_ip}\t{host}")
    for alias in spec.get("hostAliases") or []:
        if alias.get("ip") and alias.get("hostnames"):
            lines.append(f"{alias['ip']}\t" + "\t".join(alias["hostnames"]))
    return "\n".join(lines) + "\n"


def node_conflist(pod_cidr: str, *, data_dir: str, cluster_cidr: str | None = None,
                  bridge: str = "cni0", mtu: int | None = None) -> dict[str, Any]:
    """The node's CNI network configuration list (written when the conf dir has none)."""
    plugin: dict[str, Any] = {
        "type": "kubelab-bridge", "bridge": bridge, "isGateway": True, "isDefaultGateway": True,
        "ipMasq": True, "hairpinMode": True,
        "ipam": {"type": "kubelab-ipam", "ranges": [[{"subnet": pod_cidr}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }
    if cluster_cidr:
        plugin["clusterCIDR"] = cluster_cidr
    if mtu:
        plugin["mtu"] = mtu
    return {"cniVersion": "1.0.0", "name": NETWORK_NAME, "plugins": [plugin]}


def cni_args(pod: dict) -> str:
    m = pod["metadata"]
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={m.get('namespace', 'default')};K8S_POD_NAME={m['name']};"
            f"K8S_POD_INFRA_CONTAINER_ID={m['uid']};K8S_POD_UID={m['uid']}")


def pod_ip_of(result: dict | None) -> str | None:
    for ip in (result or {}).get("ips") or []:
        addr = ip.get("address", "")
        if addr:
            return addr.split("/", 1)[0]
    return None


# ---- I/O -------------------------------------------------------------------------------

@dataclass
class CniSettings:
    conf_dir: str
    bin_dir: str
    ifname: str = "eth0"

    def load_conflist(self) -> dict[str, Any]:
        """The first conflist (or single conf) in the conf dir, lexically, as runtimes do."""
        try:
            names = sorted(n for n in os.listdir(self.conf_dir) if n.endswith((".conflist", ".conf", ".json")))
        except FileNotFoundError:
            names = []
        if not names:
            raise CniError(7, f"no network configuration in {self.conf_dir}")
        with open(os.path.join(self.conf_dir, names[0])) as f:
            data = json.load(f)
        if "plugins" not in data:
            data = {"cniVersion": data.get("cniVersion", "1.0.0"), "name": data.get("name", NETWORK_NAME),
                    "plugins": [data]}
        return data

    def ensure(self, pod_cidr: str, *, data_dir: str, cluster_cidr: str | None) -> None:
        """Write the node's conflist (again, when the Node's podCIDR changed: a stale one
        would hand out addresses from the old range); a conflist someone else put there is
        left alone. Link the plugins into the bin dir if missing."""
        os.makedirs(self.conf_dir, exist_ok=True)
        others = [n for n in os.listdir(self.conf_dir)
                  if n.endswith((".conflist", ".conf")) and n != CONFLIST_NAME]
        want = node_conflist(pod_cidr, data_dir=data_dir, cluster_cidr=cluster_cidr)
        path = os.path.join(self.conf_dir, CONFLIST_NAME)
        if not others:
            try:
                with open(path) as f:
                    current = json.load(f)
            except (OSError, ValueError):
                current = None
            if current != want:
                tmp = path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(want, f, indent=2)
                os.replace(tmp, path)
        os.makedirs(self.bin_dir, exist_ok=True)
        for name in CNI_PLUGINS:
            dst = os.path.join(self.bin_dir, name)
            if os.path.exists(dst):
                continue
            src = os.path.join(os.path.dirname(sys.executable), name)
            src = src if os.path.exists(src) else shutil.which(name)
            if src:
                os.symlink(src, dst)


@dataclass
class Sandbox:
    """One pod's sandbox as saved under the root dir (sandbox.json), so a restarted agent
    finds it again."""
    uid: str
    namespace: str
    name: str
    netns: str                      # /run/netns/<prefix><uid>; "" for a hostNetwork pod
    holder_pid: int = 0             # `unshare` (parent of pause, in the host PID namespace)
    holder_start: int = 0
    pause_pid: int = 0              # the pause program, PID 1 of the pod's PID namespace
    pause_start: int = 0
    cni_result: dict[str, Any] | None = None
    host_ip: str = ""               # the node's IP: a hostNetwork pod's IP
    grace: float = 30.0             # terminationGracePeriodSeconds, for a pod deleted while we were down
    created: float = field(default_factory=time.time)

    @property
    def host_network(self) -> bool:
        return not self.netns

    @property
    def pod_ip(self) -> str | None:
        return self.host_ip if self.host_network else pod_ip_of(self.cni_result)

    @property
    def network_ready(self) -> bool:
        return self.host_network or self.cni_result is not None

    def alive(self) -> bool:
        return procs.alive(self.pause_pid, self.pause_start) and (self.host_network or os.path.exists(self.netns))

    def save(self, pod_dir: str) -> None:
        tmp = os.path.join(pod_dir, "sandbox.json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, os.path.join(pod_dir, "sandbox.json"))

    @classmethod
    def load(cls, pod_dir: str) -> "Sandbox | None":
        try:
            with open(os.path.join(pod_dir, "sandbox.json")) as f:
                return cls(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None


def write_pod_files(pod_dir: str, pod: dict, pod_ip: str | None, dns: DnsSettings) -> dict[str, str]:
    """resolv.conf, hosts, hostname under <pod dir>/etc; returns their paths by /etc name."""
    etc = os.path.join(pod_dir, "etc")
    os.makedirs(etc, exist_ok=True)
    try:
        with open(dns.node_resolv) as f:
            node_resolv = f.read()
    except OSError:
        node_resolv = ""
    if (pod.get("spec") or {}).get("hostNetwork"):
        try:
            with open("/etc/hosts") as f:
                hosts = f.read()
        except OSError:
            hosts = hosts_file(pod, None, dns.cluster_domain)
        hostname = socket.gethostname()
    else:
        hosts, hostname = hosts_file(pod, pod_ip, dns.cluster_domain), pod_hostname(pod)
    contents = {"resolv.conf": resolv_conf(pod, dns, node_resolv), "hosts": hosts, "hostname": hostname + "\n"}
    paths = {}
    for name, text in contents.items():
        path = os.path.join(etc, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        paths[name] = path
    return paths


async def _wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def start_pause(sb: Sandbox, *, hostname: str, log_path: str) -> None:
    """Create the pod's namespaces with the pause process in them; bind the netns file.
    A hostNetwork pod (no netns) keeps the node's network and UTS namespaces."""
    if sb.netns:
        os.makedirs(NETNS_DIR, exist_ok=True)
        if procs.is_nsfs(sb.netns):
            procs.umount(sb.netns)
        with open(sb.netns, "a"):
            pass
        spaces = [f"--net={sb.netns}", "--uts"]
    else:
        spaces, hostname = [], ""
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            ["unshare", *spaces, "--ipc", "--pid", "--fork", "--kill-child",
             "perl", "-e", PAUSE_SCRIPT, hostname],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True)
    finally:
        log.close()
    _reap_later(proc)
    sb.holder_pid = proc.pid
    sb.holder_start = procs.start_time(proc.pid) or 0

    def ready():
        if proc.poll() is not None:
            raise RuntimeError(f"pause exited with {proc.returncode} (see {log_path})")
        kids = procs.children(proc.pid)
        return kids[0] if kids and (not sb.netns or procs.is_nsfs(sb.netns)) else None
    sb.pause_pid = await _wait_for(ready, 10.0, "the pause process")
    sb.pause_start = procs.start_time(sb.pause_pid) or 0


_popens: set[subprocess.Popen] = set()


def _reap_later(p: subprocess.Popen) -> None:
    """Keep a reference so the child is reaped (poll) instead of lingering as a zombie."""
    _popens.add(p)
    for q in list(_popens):
        if q.poll() is not None:
            _popens.discard(q)


def reap_children() -> None:
    for q in list(_popens):
        if q.poll() is not None:
            _popens.discard(q)


async def cni_add(sb: Sandbox, pod: dict, cni: CniSettings) -> dict[str, Any]:
    conflist = cni.load_conflist()
    return await asyncio.to_thread(invoke.conflist_add, conflist, container_id=sb.uid, netns=sb.netns,
                                   ifname=cni.ifname, cni_path=[cni.bin_dir], args=cni_args(pod))


async def cni_del(sb: Sandbox, cni: CniSettings) -> None:
    conflist = cni.load_conflist()
    netns = sb.netns if os.path.exists(sb.netns) else ""
    pod = {"metadata": {"name": sb.name, "namespace": sb.namespace, "uid": sb.uid}}
    await asyncio.to_thread(invoke.conflist_del, conflist, container_id=sb.uid, netns=netns,
                            ifname=cni.ifname, cni_path=[cni.bin_dir], args=cni_args(pod),
                            prev_result=sb.cni_result)


async def cni_check(sb: Sandbox, pod: dict, cni: CniSettings) -> None:
    """CHECK the pod's network against the ADD result (what a runtime does for a sandbox it
    finds again); raises CniError with the plugin's complaint."""
    conflist = cni.load_conflist()
    await asyncio.to_thread(invoke.conflist_check, conflist, container_id=sb.uid, netns=sb.netns,
                            ifname=cni.ifname, cni_path=[cni.bin_dir], args=cni_args(pod),
                            prev_result=sb.cni_result or {})


async def stop_pause(sb: Sandbox, timeout: float = 5.0) -> None:
    """Stop the pause (the whole pod PID namespace goes with it) and release the netns file."""
    procs.kill(sb.pause_pid, signal.SIGTERM, sb.pause_start)
    deadline = time.monotonic() + timeout
    while procs.alive(sb.holder_pid, sb.holder_start) or procs.alive(sb.pause_pid, sb.pause_start):
        if time.monotonic() > deadline:
            procs.kill(sb.pause_pid, signal.SIGKILL, sb.pause_start)
            procs.kill(sb.holder_pid, signal.SIGKILL, sb.holder_start)
        if time.monotonic() > deadline + timeout:
            break
        reap_children()
        await asyncio.sleep(0.01)
    reap_children()
    if sb.netns:
        release_netns(sb.netns)


def release_netns(path: str) -> None:
    for _ in range(3):  # a file may carry more than one stacked mount
        if not procs.is_nsfs(path):
            break
        procs.umount(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
