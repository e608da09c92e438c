"""A real lab for tests and benchmarks: `kubelab up` under a unique name and its own root dir,
and a `down` that always runs and then proves nothing is left.

Each lab gets a random name (`t` + 5 hex) and its own node subnet (by default one of
10.213.x.0/24, picked free) so a test lab never collides with a student's `lab` on
192.168.56.0/24 nor with another run.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from kubelab.testing import kubectl as run_kubectl

from . import components, state, topology
from .topology import LabPlan


# Parallel test workers (pytest-xdist: PYTEST_XDIST_WORKER=gw0, gw1, ...) draw from disjoint
# residues of the third octet, so two labs starting at the same moment never pick one subnet:
# the check for a free route below sees only labs that are already up.
SUBNET_SLOTS = 8


def _worker_slot() -> int | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) % SUBNET_SLOTS if worker.startswith("gw") and worker[2:].isdigit() else None


def free_subnet() -> str:
    used = []
    for r in topology.host_routes():
        try:
            used.append(ipaddress.ip_network(r.get("dst", ""), strict=False))
        except ValueError:
            continue
    slot = _worker_slot()
    for _ in range(1, 250):
        third = secrets.randbelow(250) + 1
        if slot is not None:
            third = third - third % SUBNET_SLOTS + slot or SUBNET_SLOTS  # 0 is not used: 10.213.8.0
            if third > 250:
                continue
        net = ipaddress.ip_network(f"10.213.{third}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return str(net)
    raise RuntimeError("no free 10.213.x.0/24 subnet for a test lab")


def now_ticks() -> int:
    """Now, in the unit of /proc/PID/stat's start time (clock ticks since boot)."""
    with open("/proc/uptime") as f:
        return int(float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


def _netns_inode_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def kubelab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kubelab.cli", *args]


@dataclass
class Lab:
    name: str
    root_dir: str
    subnet: str
    workers: int = 2
    proxy_mode: str = "nftables"
    home: str = ""
    up_output: str = ""
    up_seconds: float = 0.0
    plan: LabPlan | None = None
    inodes: set[int] = field(default_factory=set)
    down_ticks: int | None = None

    @classmethod
    def create(cls, *, workers: int = 2, proxy_mode: str = "nftables", subnet: str | None = None) -> "Lab":
        root = tempfile.mkdtemp(prefix="kubelab-lab-")
        home = os.path.join(root, "home")
        os.makedirs(home)
        return cls(name="t" + secrets.token_hex(3)[:5], root_dir=os.path.join(root, "root"),
                   subnet=subnet or free_subnet(), workers=workers, proxy_mode=proxy_mode, home=home)

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "KUBECONFIG")}
        env["HOME"] = self.home  # the lab's ~/.kube/config goes to a throwaway home
        return env

    def run(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(kubelab_cmd(*args), capture_output=True, text=True, timeout=timeout, env=self.env,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"kubelab {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def lab_args(self) -> list[str]:
        return ["--name", self.name, "--root-dir", self.root_dir]

    def up(self, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        try:
            p = self.run("up", *self.lab_args(), "--workers", str(self.workers), "--proxy-mode", self.proxy_mode,
                         "--node-subnet", self.subnet, *extra, timeout=timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- diagnostics ---\n{self.diagnostics()}") from None
        self.up_seconds = time.monotonic() - t0
        self.up_output = p.stdout
        self.plan = LabPlan.from_dict(state.load_record(os.path.join(self.root_dir, self.name))["plan"])
        self.remember_namespaces()
        return p

    def diagnostics(self) -> str:
        """What a failed `up` leaves to look at: status, pods, events, the ends of the logs."""
        out = [self.run("status", *self.lab_args(), check=False).stdout]
        kc = os.path.join(self.root_dir, self.name, "kubeconfig")
        for args in (["get", "pods", "-A", "-o", "wide"], ["get", "events", "-A"]):
            p = run_kubectl(kc, *args, request_timeout="10s", timeout=30, check=False)
            out.append(p.stdout[-3000:] + p.stderr[-500:])
        logs = os.path.join(self.root_dir, self.name, "logs")
        for node in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            for f in sorted(os.listdir(os.path.join(logs, node))):
                with open(os.path.join(logs, node, f), errors="replace") as fh:
                    lines = [line for line in fh.read().splitlines() if "HTTP Request" not in line]
                out.append(f"== {node}/{f} ==\n" + "\n".join(lines[-15:]))
        return "\n".join(out)

    def remember_namespaces(self) -> None:
        """Inodes of every node and pod netns now, to look for processes left in them later."""
        if not self.plan:
            return
        for n in self.plan.nodes:
            ino = topology.netns_inode(n.netns)
            if ino:
                self.inodes.add(ino)
                for pod in topology.pod_netns_of_node(n.netns):
                    pino = topology.netns_inode(pod)
                    if pino:
                        self.inodes.add(pino)
        for pod in topology.lab_pod_netns(self.name, topology.existing_netns()):  # also pods mid-creation
            pino = topology.netns_inode(pod)
            if pino:
                self.inodes.add(pino)

    @property
    def kubeconfig(self) -> str:
        return components.kubeconfig_path(self.plan)

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        return run_kubectl(self.kubeconfig, *args, timeout=timeout, check=check)

    def down(self) -> subprocess.CompletedProcess:
        self.remember_namespaces()
        self.down_ticks = now_ticks()
        return self.run("down", *self.lab_args(), timeout=120, check=False)

    def residue(self) -> list[str]:
        """What of this lab is still on the machine: netns, links, routes, nft tables (in netns that
        would still exist), processes in the lab's namespaces, mounts, the state dir."""
        plan = self.plan or topology.plan_lab(name=self.name, workers=self.workers, root_dir=self.root_dir,
                                              node_subnet=self.subnet)
        from .lab import residue
        left = residue(plan)
        # a namespace inode is reused after the namespace is gone: only processes older than our
        # `down` can be ours, and none in a namespace another lab now holds (labs of parallel test
        # workers come and go meanwhile: our deleted pod's inode may be theirs by now)
        foreign = self._foreign_netns_inodes()
        for pid in state.pids_in_netns(self.inodes):
            start = state.proc_start(pid)
            if start is None or self.down_ticks is None or start >= self.down_ticks:
                continue
            if _netns_inode_of(pid) in foreign or self._names_other_lab(_comm(pid)):
                continue
            left.append(f"process {pid} ({_comm(pid)})")
        left += [f"netns {n}" for n in topology.existing_netns() if n.startswith(f"kl-{self.name}-")]
        left += [f"link {link}" for link in topology.existing_links() if link.startswith(f"kl-{self.name}")]
        left += [f"mount {m}" for m in state.mounts_under(self.root_dir)]
        net = ipaddress.ip_network(self.subnet)
        for r in topology.host_routes():
            try:
                if ipaddress.ip_network(r.get("dst", ""), strict=False).overlaps(net):
                    left.append(f"route {r.get('dst')} dev {r.get('dev')}")
            except ValueError:
                continue
        return sorted(set(left))

    def _foreign_netns_inodes(self) -> set[int]:
        """Inodes of the named network namespaces that are not this lab's."""
        out = set()
        for n in topology.existing_netns():
            if not n.startswith(f"kl-{self.name}-"):
                ino = topology.netns_inode(n)
                if ino:
                    out.add(ino)
        return out

    def _names_other_lab(self, cmdline: str) -> bool:
        """A pod's netns holder names its netns (`unshare --net=/run/netns/kl-LAB-...`)."""
        marker = "/run/netns/kl-"
        i = cmdline.find(marker)
        return i >= 0 and not cmdline.startswith(f"kl-{self.name}-", i + len("/run/netns/"))

    def cleanup(self) -> list[str]:
        """Always-run teardown: `kubelab down`, then the residue list (empty when clean)."""
        p = self.down()
        left = self.residue()
        if left:  # make sure the machine is clean even when the test fails
            from .lab import teardown
            plan = self.plan or topology.plan_lab(name=self.name, workers=self.workers, root_dir=self.root_dir,
                                                  node_subnet=self.subnet)
            teardown(plan, state.load_record(plan.lab_dir), keep_data=False, write=lambda s: None)
            left.append(f"(down said: {p.stdout.strip()} {p.stderr.strip()})")
        shutil.rmtree(os.path.dirname(self.root_dir), ignore_errors=True)
        return left


def pod_netns(lab: Lab, pod: dict) -> str | None:
    from .trace import pod_netns_with_ip
    node = lab.plan.node(pod["spec"]["nodeName"])
    return pod_netns_with_ip(node.netns, pod["status"]["podIP"])


def pod_exec(lab: Lab, pod: dict, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """What `kubectl exec` does, done from the host: enter the container's network and mount
    namespaces (so its /etc/resolv.conf applies) and run `cmd`."""
    ns = pod_netns(lab, pod)
    pid = state.container_pid(ns) if ns else None
    if not pid:
        raise AssertionError(f"no container process for pod {pod['metadata']['name']} (netns {ns})")
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *cmd], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
