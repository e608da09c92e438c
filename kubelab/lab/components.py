"""Which processes run on which node, with which flags: the same command lines as on VMs.

Pure: plan in, component specs out. `available()` is the one probe: a component whose
`python -m kubelab.<x>` does not exist yet is left out (and `up` says so) so the lab grows as
the components land. Optional flags are passed only if the component's `--help` lists them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from .topology import API_PORT, LabPlan, NodePlan

# stage: components of a stage start together once every earlier stage is healthy
ETCD_STAGE, API_STAGE, CONTROL_STAGE, NODE_STAGE = 0, 1, 2, 3

MODULES = {
    "apiserver": "kubelab.apiserver",
    "controllers": "kubelab.controllers",
    "scheduler": "kubelab.scheduler",
    "nodeagent": "kubelab.nodeagent",
    "proxy": "kubelab.proxy",
}


@dataclass(frozen=True)
class ComponentSpec:
    name: str                 # etcd, apiserver, controllers, scheduler, nodeagent, proxy
    node: str                 # node name (control-plane, worker-1, ...)
    netns: str
    argv: tuple[str, ...]
    stage: int
    health: str | None = None  # URL answered 200 when healthy (reached from the host via the bridge)
    env: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.node}/{self.name}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["argv"] = list(self.argv)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ComponentSpec":
        return cls(**{**d, "argv": tuple(d["argv"])})


def module_available(module: str) -> bool:
    """`python -m <module>` would run: the package has a __main__."""
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        return False


def help_text(module: str) -> str:
    try:
        p = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def kubeconfig_path(plan: LabPlan) -> str:
    return os.path.join(plan.lab_dir, "kubeconfig")


def node_dir(plan: LabPlan, node: NodePlan) -> str:
    return os.path.join(plan.lab_dir, node.name)


def node_resolv_conf(plan: LabPlan, node: NodePlan) -> str:
    return os.path.join(node_dir(plan, node), "resolv.conf")


NODE_RESOLV_CONF = """# kubelab: the node's resolv.conf. Nothing in the lab resolves through the machine's
# real resolvers; names outside the cluster do not resolve (no upstream).
nameserver 127.0.0.1
options ndots:1
"""


def _optional(flags: dict[str, list[str]], text: str) -> list[str]:
    """The argv of each flag that `text` (a --help output or the component's source) mentions."""
    out: list[str] = []
    for flag, argv in flags.items():
        if re.search(rf"{re.escape(flag)}(?![\w-])", text):
            out += argv
    return out


def control_plane_specs(plan: LabPlan, *, helps: dict[str, str] | None = None,
                        present: set[str] | None = None) -> list[ComponentSpec]:
    helps = helps or {}
    present = set(MODULES) if present is None else present
    cp = plan.control_plane
    py = sys.executable
    kc = kubeconfig_path(plan)
    etcd_dir = os.path.join(node_dir(plan, cp), "etcd")
    specs = [ComponentSpec(
        name="etcd", node=cp.name, netns=cp.netns, stage=ETCD_STAGE,
        argv=(shutil.which("etcd") or "/usr/bin/etcd", "--name", cp.name, "--data-dir", etcd_dir,
              "--listen-client-urls", f"http://{cp.ip}:2379,http://127.0.0.1:2379",
              "--advertise-client-urls", f"http://{cp.ip}:2379",
              "--listen-peer-urls", "http://127.0.0.1:2380",
              "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
              "--initial-cluster", f"{cp.name}=http://127.0.0.1:2380",
              "--log-level", "warn"),
        health=f"http://{cp.ip}:2379/health")]
    if "apiserver" in present:
        specs.append(ComponentSpec(
            name="apiserver", node=cp.name, netns=cp.netns, stage=API_STAGE,
            argv=(py, "-m", MODULES["apiserver"], "--etcd-servers", "http://127.0.0.1:2379",
                  "--bind-address", cp.ip, "--port", str(API_PORT), "--advertise-address", cp.ip,
                  "--service-cluster-ip-range", plan.service_cidr, "--cluster-cidr", plan.pod_cidr,
                  "--cluster-domain", plan.cluster_domain,
                  # plain HTTP on the node network until the lab issues certificates (kubelab.pki)
                  *_optional({"--allow-insecure-http": ["--allow-insecure-http"]}, helps.get("apiserver", ""))),
            health=f"http://{cp.ip}:{API_PORT}/readyz"))
    if "controllers" in present:
        specs.append(ComponentSpec(
            name="controllers", node=cp.name, netns=cp.netns, stage=CONTROL_STAGE,
            argv=(py, "-m", MODULES["controllers"], "--kubeconfig", kc,
                  "--cluster-cidr", plan.pod_cidr, "--node-cidr-mask-size", "24")))
    if "scheduler" in present:
        specs.append(ComponentSpec(
            name="scheduler", node=cp.name, netns=cp.netns, stage=CONTROL_STAGE,
            argv=(py, "-m", MODULES["scheduler"], "--kubeconfig", kc)))
    return specs


def worker_specs(plan: LabPlan, node: NodePlan, *, helps: dict[str, str] | None = None,
                 present: set[str] | None = None) -> list[ComponentSpec]:
    helps = helps or {}
    present = set(MODULES) if present is None else present
    py = sys.executable
    kc = kubeconfig_path(plan)
    specs = []
    if "nodeagent" in present:
        specs.append(ComponentSpec(
            name="nodeagent", node=node.name, netns=node.netns, stage=NODE_STAGE,
            argv=(py, "-m", MODULES["nodeagent"], "--kubeconfig", kc, "--node-name", node.name,
                  "--node-ip", node.ip, "--root-dir", os.path.join(node_dir(plan, node), "nodeagent"),
                  *_optional({"--cluster-dns": ["--cluster-dns", plan.dns_ip],
                              "--cluster-domain": ["--cluster-domain", plan.cluster_domain],
                              "--cluster-cidr": ["--cluster-cidr", plan.pod_cidr],
                              # pod namespaces carry the lab's name too: kl-<lab>-<node>-<pod uid>
                              "--netns-prefix": ["--netns-prefix", f"{node.netns}-"],
                              # dnsPolicy Default must not reach the machine's real resolvers
                              "--resolv-conf": ["--resolv-conf", node_resolv_conf(plan, node)]},
                             helps.get("nodeagent", ""))),
            health=f"http://{node.ip}:10250/healthz"))
    if "proxy" in present:
        specs.append(proxy_spec(plan, node))
    return specs


def proxy_spec(plan: LabPlan, node: NodePlan) -> ComponentSpec:
    return ComponentSpec(
        name="proxy", node=node.name, netns=node.netns, stage=NODE_STAGE,
        argv=(sys.executable, "-m", MODULES["proxy"], "--kubeconfig", kubeconfig_path(plan), "--node-name", node.name,
              "--mode", plan.proxy_mode, "--cluster-cidr", plan.pod_cidr, "--service-cidr", plan.service_cidr),
        health=f"http://{node.ip}:10256/healthz")


def lab_specs(plan: LabPlan, *, helps: dict[str, str] | None = None,
              present: set[str] | None = None) -> list[ComponentSpec]:
    """Control plane first; it also runs a proxy (as kube-proxy's DaemonSet does on kubeadm
    control planes) so NodePorts answer on every node IP and ClusterIPs work from it."""
    present = set(MODULES) if present is None else present
    specs = control_plane_specs(plan, helps=helps, present=present)
    if "proxy" in present:
        specs.append(proxy_spec(plan, plan.control_plane))
    for w in plan.workers:
        specs += worker_specs(plan, w, helps=helps, present=present)
    return specs


def source_text(module: str) -> str:
    """The component package's source: where its command-line flags are defined. Reading it
    tells which optional flags a component accepts without starting a Python for `--help`."""
    spec = importlib.util.find_spec(module)
    d = os.path.dirname(spec.origin) if spec and spec.origin else ""
    parts = []
    for f in sorted(os.listdir(d)) if d else []:
        if f.endswith(".py"):
            try:
                with open(os.path.join(d, f), errors="replace") as fh:
                    parts.append(fh.read())
            except OSError:
                continue
    return "\n".join(parts)


def probe() -> tuple[set[str], dict[str, str]]:
    """Which component modules exist, and the source of those whose optional flags we use."""
    present = {c for c, m in MODULES.items() if module_available(m)}
    return present, {c: source_text(MODULES[c]) for c in ("apiserver", "nodeagent") if c in present}


def nsenter_argv(spec: ComponentSpec) -> list[str]:
    """Run in the node's network namespace only (not a new mount namespace, unlike
    `ip netns exec`), so namespaces the node agent creates stay visible to the host."""
    return ["nsenter", f"--net=/run/netns/{spec.netns}", "--", *spec.argv]
