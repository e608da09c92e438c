"""Simulated nodes for tests and benchmarks: node network namespaces on a bridge, each running
a real node agent, against an API server bound to the bridge (reachable from every node).

    root netns:  bridge klb<tag>  10.R.S.1/24   ← API server listens here
    node i:      netns kl-<tag>-n<i>, eth0 10.R.S.(11+i)/24, Node spec.podCIDR 10.244.(i+1).0/24
                 `nsenter --net=<node netns> python -m kubelab.nodeagent ...`

Everything created is named with a random tag and removed by `stop()`, even after a failure:
pods are deleted through the API first (the agents clean up), then whatever is left (pod
processes recorded under the agents' root dirs, netns files with the nodes' prefixes, links).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import httpx

from kubelab.testing import ApiServer, Proc, start_apiserver, wait_until

from . import procs, sandbox


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True)


@dataclass
class SimNode:
    name: str
    netns: str
    ip: str
    pod_cidr: str
    root_dir: str
    host_link: str
    proc: Proc | None = None

    @property
    def prefix(self) -> str:
        return f"{self.name}-"

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command inside this node's network namespace."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *cmd], check=check,
                              capture_output=True, text=True, timeout=timeout)


@dataclass
class SimCluster:
    etcd_url: str
    nodes_count: int = 2
    backoff_base: float = 1.0
    tag: str = field(default_factory=lambda: "%06x" % random.getrandbits(24))
    apiserver: ApiServer | None = None
    nodes: list[SimNode] = field(default_factory=list)
    workdir: str = ""
    bridge: str = ""
    subnet: str = ""
    # secured: a lab PKI in <workdir>/pki, the API server on HTTPS (client certs, RBAC+Node, the
    # service-account key), each agent with its node kubeconfig and a TLS logs/exec API
    tls: bool = False

    @property
    def pki_dir(self) -> str:
        return os.path.join(self.workdir, "pki")

    def http_kw(self) -> dict:
        """httpx keyword arguments for the admin's requests (nothing on plain HTTP)."""
        if not self.tls:
            return {}
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki_dir, "ca.crt"))
        ctx.load_cert_chain(os.path.join(self.pki_dir, "admin.crt"), os.path.join(self.pki_dir, "admin.key"))
        return {"verify": ctx}

    @property
    def url(self) -> str:
        assert self.apiserver is not None
        return self.apiserver.url

    def start(self) -> "SimCluster":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix=f"kubelab-sim-{self.tag}-")
        r = random.Random(self.tag)
        self.subnet = f"10.{r.randint(200, 249)}.{r.randint(0, 255)}"
        self.bridge = f"klb{self.tag}"
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(self.nodes_count):
            n = SimNode(name=f"kl-{self.tag}-n{i}", netns=f"kl-{self.tag}-n{i}", ip=f"{self.subnet}.{11 + i}",
                        pod_cidr=f"10.244.{i + 1}.0/24", root_dir=os.path.join(self.workdir, f"n{i}"),
                        host_link=f"kl{self.tag}h{i}")
            self.nodes.append(n)
            sh("ip", "netns", "add", n.netns)
            sh("ip", "link", "add", n.host_link, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
            sh("ip", "link", "set", n.host_link, "master", self.bridge, "up")
            n.run("ip", "link", "set", "lo", "up")
            n.run("ip", "addr", "add", f"{n.ip}/24", "dev", "eth0")
            n.run("ip", "link", "set", "eth0", "up")
        if self.tls:
            from kubelab.pki import certs
            d = self.pki_dir
            certs.init(d, apiserver_ips=[f"{self.subnet}.1"], nodes=[n.name for n in self.nodes],
                       node_ips={n.name: n.ip for n in self.nodes}, server_url=f"https://{self.subnet}.1:6443")
            flags = certs.apiserver_flags(d)
            args = [*flags[:flags.index("--etcd-cafile")],  # the test etcd is plain HTTP
                    "--kubelet-client-certificate", f"{d}/apiserver-kubelet-client.crt",
                    "--kubelet-client-key", f"{d}/apiserver-kubelet-client.key",
                    "--kubelet-certificate-authority", f"{d}/ca.crt"]
            self.apiserver = start_apiserver(self.etcd_url, bind_address=f"{self.subnet}.1", port=6443, args=args,
                                             ca_file=f"{d}/ca.crt", client_cert=f"{d}/admin.crt",
                                             client_key=f"{d}/admin.key")
        else:
            self.apiserver = start_apiserver(self.etcd_url, bind_address=f"{self.subnet}.1")
        for n in self.nodes:
            r = httpx.post(f"{self.url}/api/v1/nodes", **self.http_kw(), json={
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": n.name},
                "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]}}, timeout=10)
            r.raise_for_status()
        for n in self.nodes:
            self.start_agent(n)
        for n in self.nodes:
            self.wait_agent(n)

    def agent_cmd(self, n: SimNode) -> list[str]:
        d = self.pki_dir
        conn = ["--kubeconfig", f"{d}/node-{n.name}.kubeconfig", "--tls-cert-file", f"{d}/node-{n.name}.crt",
                "--tls-private-key-file", f"{d}/node-{n.name}.key", "--client-ca-file", f"{d}/ca.crt"] \
            if self.tls else ["--server", self.url, "--insecure"]
        return ["nsenter", f"--net=/run/netns/{n.netns}", sys.executable, "-m", "kubelab.nodeagent",
                *conn, "--node-name", n.name, "--node-ip", n.ip, "--root-dir", n.root_dir,
                "--backoff-base", str(self.backoff_base), "--resolv-conf", os.path.join(self.workdir, "resolv.conf")]

    def start_agent(self, n: SimNode) -> None:
        with open(os.path.join(self.workdir, "resolv.conf"), "w") as f:
            f.write("nameserver 192.0.2.53\nsearch lab.example\n")
        os.makedirs(n.root_dir, exist_ok=True)
        log = open(os.path.join(self.workdir, f"{n.name}.log"), "ab")
        p = subprocess.Popen(self.agent_cmd(n), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        n.proc = Proc(p, os.path.join(self.workdir, f"{n.name}.log"))

    def wait_agent(self, n: SimNode, timeout: float = 30) -> None:
        def ready() -> bool:
            if n.proc and n.proc.popen.poll() is not None:
                raise RuntimeError(f"node agent {n.name} exited: {n.proc.log()}")
            d = self.pki_dir
            tls = ["--cacert", f"{d}/ca.crt", "--cert", f"{d}/apiserver-kubelet-client.crt",
                   "--key", f"{d}/apiserver-kubelet-client.key"] if self.tls else []
            r = n.run("curl", "-sf", "--max-time", "1", *tls, f"{'https' if self.tls else 'http'}://{n.ip}:10250/healthz",
                      check=False)
            return r.returncode == 0
        wait_until(ready, timeout=timeout, interval=0.1, what=f"node agent {n.name}")

    def stop_agent(self, n: SimNode) -> None:
        if n.proc is not None:
            n.proc.stop()
            n.proc = None

    # ---- cleanup, even of a half-built cluster ------------------------------------------

    def _delete_all_pods(self, timeout: float = 30) -> None:
        if self.apiserver is None or not self.nodes:
            return
        names = {n.name for n in self.nodes}
        try:
            pods = httpx.get(f"{self.url}/api/v1/pods", timeout=5, **self.http_kw()).json().get("items") or []
            mine = [p for p in pods if (p.get("spec") or {}).get("nodeName") in names]
            for p in mine:
                m = p["metadata"]
                httpx.request("DELETE", f"{self.url}/api/v1/namespaces/{m['namespace']}/pods/{m['name']}",
                              json={"gracePeriodSeconds": 1}, timeout=5, **self.http_kw())
            if any(n.proc and n.proc.popen.poll() is None for n in self.nodes):
                def gone() -> bool:
                    items = httpx.get(f"{self.url}/api/v1/pods", timeout=5, **self.http_kw()).json().get("items") or []
                    return not [p for p in items if (p.get("spec") or {}).get("nodeName") in names]
                wait_until(gone, timeout=timeout, interval=0.2, what="pods deleted by their agents")
        except Exception as e:  # keep cleaning up
            print(f"simnodes: pod cleanup: {e}", file=sys.stderr)

    def _kill_leftovers(self, n: SimNode) -> None:
        pods_dir = os.path.join(n.root_dir, "pods")
        if os.path.isdir(pods_dir):
            for uid in os.listdir(pods_dir):
                d = os.path.join(pods_dir, uid)
                cdir = os.path.join(d, "containers")
                for fn in os.listdir(cdir) if os.path.isdir(cdir) else []:
                    if fn.endswith(".json"):
                        try:
                            with open(os.path.join(cdir, fn)) as f:
                                c = json.load(f)
                        except (OSError, ValueError):
                            continue
                        for u in procs.children(c.get("wrapper_pid") or 0):
                            procs.kill(u, signal.SIGKILL)
                        procs.kill(c.get("init_pid"), signal.SIGKILL, c.get("init_start"))
                sb = sandbox.Sandbox.load(d)
                if sb:
                    procs.kill(sb.pause_pid, signal.SIGKILL, sb.pause_start)
                    procs.kill(sb.holder_pid, signal.SIGKILL, sb.holder_start)
        try:
            for name in os.listdir(sandbox.NETNS_DIR):
                if name.startswith(n.prefix):
                    sandbox.release_netns(os.path.join(sandbox.NETNS_DIR, name))
        except FileNotFoundError:
            pass

    def stop(self) -> None:
        self._delete_all_pods()
        for n in self.nodes:
            self.stop_agent(n)
        for n in self.nodes:
            self._kill_leftovers(n)
        if self.apiserver is not None:
            self.apiserver.stop()
            self.apiserver = None
        for n in self.nodes:
            sh("ip", "link", "del", n.host_link, check=False)
            sh("ip", "netns", "del", n.netns, check=False)
        if self.bridge:
            sh("ip", "link", "del", self.bridge, check=False)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "SimCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def leftovers(cluster: SimCluster) -> dict[str, list[str]]:
    """What a deleted pod must not leave behind, per node: netns files, veths, IP files,
    pause/container processes."""
    out: dict[str, list[str]] = {}
    for n in cluster.nodes:
        items = [f"netns {x}" for x in os.listdir(sandbox.NETNS_DIR) if x.startswith(n.prefix)]
        links = n.run("ip", "-o", "link", "show", "type", "veth", check=False).stdout
        items += [f"link {line.split(':')[1].strip().split('@')[0]}" for line in links.splitlines()
                  if ": veth" in line]
        netdir = os.path.join(n.root_dir, "cni", "networks", sandbox.NETWORK_NAME)
        if os.path.isdir(netdir):
            items += [f"ip {f}" for f in os.listdir(netdir) if not f.startswith(("last_reserved", "lock"))]
        pods_dir = os.path.join(n.root_dir, "pods")
        if os.path.isdir(pods_dir):
            items += [f"pod dir {d}" for d in os.listdir(pods_dir)]
        out[n.name] = items
    return out
