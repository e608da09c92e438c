"""Which processes run on which node, with which flags: the same command lines as on VMs.

Pure: plan in, component specs out (`kubelab up` starts them; ansible/'s systemd units carry
the same flags).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict, dataclass, field

from .topology import API_PORT, LabPlan, NodePlan

# klog verbosity every component gets, as a Hard Way guide passes it (2: info, not debug)
VERBOSITY = "--v=2"

# stage: components of a stage start together once every earlier stage is healthy
ETCD_STAGE, API_STAGE, CONTROL_STAGE, NODE_STAGE = 0, 1, 2, 3

MODULES = {
    "apiserver": "kubelab.apiserver",
    "controllers": "kubelab.controllers",
    "scheduler": "kubelab.scheduler",
    "nodeagent": "kubelab.nodeagent",
    "proxy": "kubelab.proxy",
    "netpol": "kubelab.netpol",
    "loadbalancer": "kubelab.loadbalancer",
}


@dataclass(frozen=True)
class ComponentSpec:
    name: str                 # etcd, apiserver, controllers, scheduler, nodeagent, proxy, netpol
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


def kubeconfig_path(plan: LabPlan) -> str:
    return os.path.join(plan.lab_dir, "kubeconfig")


def pki_dir(plan: LabPlan) -> str:
    """`kubelab up --tls`: the lab's CA, certificates and per-component kubeconfigs (kubelab.pki)."""
    return os.path.join(plan.lab_dir, "pki")


def component_kubeconfig(plan: LabPlan, identity: str) -> str:
    """Each component's own credentials with --tls (`kube-scheduler`, `node-worker-1`, ...);
    without TLS everyone shares the lab's plain kubeconfig."""
    return os.path.join(pki_dir(plan), f"{identity}.kubeconfig") if plan.tls else kubeconfig_path(plan)


def _scheme(plan: LabPlan) -> str:
    return "https" if plan.tls else "http"


def node_dir(plan: LabPlan, node: NodePlan) -> str:
    return os.path.join(plan.lab_dir, node.name)


def node_resolv_conf(plan: LabPlan, node: NodePlan) -> str:
    return os.path.join(node_dir(plan, node), "resolv.conf")


NODE_RESOLV_CONF = """# kubelab: the node's resolv.conf. Nothing in the lab resolves through the machine's
# real resolvers; names outside the cluster do not resolve (no upstream).
nameserver 127.0.0.1
options ndots:1
"""


def control_plane_specs(plan: LabPlan) -> list[ComponentSpec]:
    cp = plan.control_plane
    py = sys.executable
    etcd_dir = os.path.join(node_dir(plan, cp), "etcd")
    e = _scheme(plan)
    if plan.tls:
        from kubelab.pki import certs
        d = pki_dir(plan)
        etcd_tls = certs.etcd_flags(d)  # trusts the etcd CA only
        # the API server: HTTPS, client certs + service-account tokens, RBAC+Node, etcd over mutual TLS
        # (its etcd client certificate is the etcd CA's),
        # and its kubelet-client certificate towards the node agents (verified against the lab CA)
        api_security = [*certs.apiserver_flags(d), "--kubelet-client-certificate", f"{d}/apiserver-kubelet-client.crt",
                        "--kubelet-client-key", f"{d}/apiserver-kubelet-client.key",
                        "--kubelet-certificate-authority", f"{d}/ca.crt"]
    else:
        etcd_tls = []
        # plain HTTP on the node network (`kubelab up --tls` issues certificates instead)
        api_security = ["--allow-insecure-http"]
    return [ComponentSpec(
        name="etcd", node=cp.name, netns=cp.netns, stage=ETCD_STAGE,
        argv=(shutil.which("etcd") or "/usr/bin/etcd", "--name", cp.name, "--data-dir", etcd_dir,
              "--listen-client-urls", f"{e}://{cp.ip}:2379,{e}://127.0.0.1:2379",
              "--advertise-client-urls", f"{e}://{cp.ip}:2379",
              "--listen-peer-urls", f"{e}://127.0.0.1:2380",
              "--initial-advertise-peer-urls", f"{e}://127.0.0.1:2380",
              "--initial-cluster", f"{cp.name}={e}://127.0.0.1:2380",
              "--log-level", "warn", *etcd_tls),
        health=f"{e}://{cp.ip}:2379/health"),
        ComponentSpec(
            name="apiserver", node=cp.name, netns=cp.netns, stage=API_STAGE,
            argv=(py, "-m", MODULES["apiserver"], "--etcd-servers", f"{e}://127.0.0.1:2379",
                  "--bind-address", cp.ip, "--port", str(API_PORT), "--advertise-address", cp.ip,
                  "--service-cluster-ip-range", plan.service_cidr, "--cluster-cidr", plan.pod_cidr,
                  "--cluster-domain", plan.cluster_domain, *api_security, VERBOSITY),
            health=f"{e}://{cp.ip}:{API_PORT}/readyz"),
        ComponentSpec(
            name="controllers", node=cp.name, netns=cp.netns, stage=CONTROL_STAGE,
            argv=(py, "-m", MODULES["controllers"], "--kubeconfig",
                  component_kubeconfig(plan, "kube-controller-manager"),
                  "--cluster-cidr", plan.pod_cidr, "--node-cidr-mask-size", "24",
                  *(("--node-monitor-grace-period", plan.node_monitor_grace_period)
                    if plan.node_monitor_grace_period else ()),
                  *status_port_flags(plan, "kube-controller-manager", CONTROLLER_MANAGER_PORT), VERBOSITY),
            health=f"{_scheme(plan)}://{cp.ip}:{CONTROLLER_MANAGER_PORT}/healthz"),
        ComponentSpec(
            name="scheduler", node=cp.name, netns=cp.netns, stage=CONTROL_STAGE,
            argv=(py, "-m", MODULES["scheduler"], "--kubeconfig", component_kubeconfig(plan, "kube-scheduler"),
                  *status_port_flags(plan, "kube-scheduler", SCHEDULER_PORT), VERBOSITY),
            health=f"{_scheme(plan)}://{cp.ip}:{SCHEDULER_PORT}/healthz")]


CONTROLLER_MANAGER_PORT, SCHEDULER_PORT = 10257, 10259  # upstream's secure ports
LB_CONTROLLER_PORT, LB_SPEAKER_PORT = 7472, 7473  # MetalLB's metrics ports


def lb_controller_spec(plan: LabPlan) -> ComponentSpec:
    """The LoadBalancer address controller (kubelab.loadbalancer), beside the controller manager."""
    cp = plan.control_plane
    return ComponentSpec(
        name="loadbalancer", node=cp.name, netns=cp.netns, stage=CONTROL_STAGE,
        argv=(sys.executable, "-m", MODULES["loadbalancer"], "controller", "--kubeconfig",
              component_kubeconfig(plan, "kubelab-lb-controller"), "--pool", plan.lb_pool,
              *status_port_flags(plan, "kubelab-lb-controller", LB_CONTROLLER_PORT), VERBOSITY),
        health=f"{_scheme(plan)}://{cp.ip}:{LB_CONTROLLER_PORT}/healthz")


def speaker_spec(plan: LabPlan, node: NodePlan) -> ComponentSpec:
    """The speaker of a worker: its addresses on the node's eth0, gratuitous ARP on taking one.
    It runs in the node's namespace (no --netns) and removes its addresses on SIGTERM."""
    return ComponentSpec(
        name="speaker", node=node.name, netns=node.netns, stage=NODE_STAGE,
        argv=(sys.executable, "-m", MODULES["loadbalancer"], "speaker", "--kubeconfig",
              component_kubeconfig(plan, "kubelab-lb-speaker"), "--node-name", node.name, "--interface", "eth0",
              "--pool", plan.lb_pool,
              "--bind-address", node.ip, "--secure-port", str(LB_SPEAKER_PORT), VERBOSITY),
        health=f"http://{node.ip}:{LB_SPEAKER_PORT}/healthz")


def status_port_flags(plan: LabPlan, identity: str, port: int) -> list[str]:
    """/metrics and /healthz,/readyz,/livez on the control plane's address: HTTPS with the
    component's serving certificate and the lab CA's client certificates when the lab is
    secured, plain HTTP otherwise (as every other endpoint of an unsecured lab)."""
    flags = ["--bind-address", plan.control_plane.ip, "--secure-port", str(port)]
    if plan.tls:
        d = pki_dir(plan)
        flags += ["--tls-cert-file", f"{d}/{identity}-server.crt", "--tls-private-key-file",
                  f"{d}/{identity}-server.key", "--client-ca-file", f"{d}/ca.crt"]
    return flags


def worker_specs(plan: LabPlan, node: NodePlan) -> list[ComponentSpec]:
    kc = component_kubeconfig(plan, f"node-{node.name}")
    d = pki_dir(plan)
    serving = ["--tls-cert-file", f"{d}/node-{node.name}.crt", "--tls-private-key-file", f"{d}/node-{node.name}.key",
               "--client-ca-file", f"{d}/ca.crt"] if plan.tls else ["--insecure"]
    agent = ComponentSpec(
        name="nodeagent", node=node.name, netns=node.netns, stage=NODE_STAGE,
        argv=(sys.executable, "-m", MODULES["nodeagent"], "--kubeconfig", kc, *serving, "--node-name", node.name,
              "--node-ip", node.ip, "--root-dir", os.path.join(node_dir(plan, node), "nodeagent"),
              "--cluster-dns", plan.dns_ip, "--cluster-domain", plan.cluster_domain, "--cluster-cidr", plan.pod_cidr,
              # pod namespaces carry the lab's name too: kl-<lab>-<node>-<pod uid>
              "--netns-prefix", f"{node.netns}-",
              # dnsPolicy Default must not reach the machine's real resolvers
              "--resolv-conf", node_resolv_conf(plan, node),
              # no container sees the lab's directory (PKI, kubeconfigs, etcd, every node's state)
              "--hide-path", plan.root_dir, VERBOSITY),
        health=f"{_scheme(plan)}://{node.ip}:10250/healthz")
    return [agent, proxy_spec(plan, node), netpol_spec(plan, node), speaker_spec(plan, node)]


def netpol_spec(plan: LabPlan, node: NodePlan) -> ComponentSpec:
    """The NetworkPolicy agent on a node that runs pods: table inet kubelab-netpol in the node's
    namespace (it runs there, so no --netns); removed on SIGTERM."""
    return ComponentSpec(
        name="netpol", node=node.name, netns=node.netns, stage=NODE_STAGE,
        argv=(sys.executable, "-m", MODULES["netpol"], "--kubeconfig", component_kubeconfig(plan, "kubelab-netpol"),
              "--node-name", node.name, VERBOSITY))


def proxy_spec(plan: LabPlan, node: NodePlan) -> ComponentSpec:
    return ComponentSpec(
        name="proxy", node=node.name, netns=node.netns, stage=NODE_STAGE,
        argv=(sys.executable, "-m", MODULES["proxy"], "--kubeconfig", component_kubeconfig(plan, "kube-proxy"),
              "--node-name", node.name,
              "--mode", plan.proxy_mode, "--cluster-cidr", plan.pod_cidr, "--service-cidr", plan.service_cidr,
              # on the node's address (upstream's default is loopback) so `kubelab` and tests scrape it
              "--metrics-bind-address", f"{node.ip}:10249", VERBOSITY),
        health=f"http://{node.ip}:10256/healthz")


def lab_specs(plan: LabPlan) -> list[ComponentSpec]:
    """Control plane first; it also runs a proxy (as kube-proxy's DaemonSet does on kubeadm
    control planes) so NodePorts answer on every node IP and ClusterIPs work from it."""
    specs = [*control_plane_specs(plan), lb_controller_spec(plan), proxy_spec(plan, plan.control_plane)]
    for w in plan.workers:
        specs += worker_specs(plan, w)
    return specs


def nsenter_argv(spec: ComponentSpec) -> list[str]:
    """Run in the node's network namespace only (not a new mount namespace, unlike
    `ip netns exec`), so namespaces the node agent creates stay visible to the host."""
    return ["nsenter", f"--net=/run/netns/{spec.netns}", "--", *spec.argv]


def admin_kubeconfig(plan: LabPlan) -> str:
    """The student's kubeconfig: plain with no TLS; with --tls the admin's certificate, key and
    the lab CA embedded (the pki dir is root's: kubectl run as the student must not need it)."""
    from kubelab.client.kubeconfig import render
    # cluster, user and context all `kubelab-<lab>` (kind's `kind-<name>`): what `up` merges
    text = render(server=plan.api_url, name=f"kubelab-{plan.name}", user=f"kubelab-{plan.name}")
    if not plan.tls:
        return text
    import base64

    import yaml

    def b64(name: str) -> str:
        with open(os.path.join(pki_dir(plan), name), "rb") as f:
            return base64.b64encode(f.read()).decode()
    cfg = yaml.safe_load(text)
    cfg["clusters"][0]["cluster"]["certificate-authority-data"] = b64("ca.crt")
    cfg["users"][0]["user"] = {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}
    return yaml.safe_dump(cfg, sort_keys=False)


def init_pki(plan: LabPlan) -> list[str]:
    """`kubelab pki init` for this lab: the API server's SANs hold the control plane's IP, each
    node's serving certificate its node IP, etcd's the control plane's; kubeconfigs point at
    the lab's API URL. Re-running keeps the CA (a restarted lab still trusts its old certs)."""
    from kubelab.pki import certs
    cp = plan.control_plane
    return certs.init(pki_dir(plan), apiserver_ips=[cp.ip], nodes=[n.name for n in plan.nodes],
                      node_ips={n.name: n.ip for n in plan.nodes}, etcd_ips=[cp.ip], etcd_names=[cp.name],
                      server_url=plan.api_url, dns_domain=plan.cluster_domain)


def api_client(plan: LabPlan):
    """An admin ApiClient for the lab (`kubelab status`, `up`, timeline, trace)."""
    from kubelab.client import ApiClient, KubeconfigError
    if plan.tls:
        # the lab's copy is root's; the student's ~/.kube/config (written by `up`) otherwise
        for path in (kubeconfig_path(plan), None):
            try:
                return ApiClient.from_kubeconfig(path)
            except (OSError, KubeconfigError):
                continue
    return ApiClient(server=plan.api_url)


def health_verify(plan: LabPlan, *, etcd: bool = False):
    """httpx `verify` for the health URLs (etcd's, or everyone else's): see `health_tls`."""
    if not plan.tls:
        return True
    return health_tls(pki_dir(plan), etcd=etcd)


def health_tls(directory: str, *, etcd: bool = False):
    """The TLS context for health probes with --tls: etcd trusts only its own CA, so its probe
    presents the etcd health-check client (etcd CA); everything else the admin certificate
    (the node agents ask for a client certificate of the cluster CA). Unverified when the
    files are not readable (e.g. `kubelab status` as a student)."""
    import ssl
    ca, cert = ("etcd-ca", "etcd-healthcheck-client") if etcd else ("ca", "admin")
    try:
        ctx = ssl.create_default_context(cafile=os.path.join(directory, f"{ca}.crt"))
        ctx.load_cert_chain(os.path.join(directory, f"{cert}.crt"), os.path.join(directory, f"{cert}.key"))
        return ctx
    except (OSError, ssl.SSLError):
        return ssl._create_unverified_context()
