"""`kubelab up`, `down`, `status`, `logs`: the lab's life cycle.

`up` builds the node network (topology.py), records every step in lab.json *before* doing it
(so a crash half-way leaves a record `down` can act on), writes the kubeconfig, starts the
supervisor daemon and follows its events as progress, then waits for what the user cares
about: nodes Ready, DNS answering, the demo running.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx
import yaml

from kubelab.client import AlreadyExists, ApiClient, ApiError
from kubelab.resources import for_object

from . import components, state, topology, userconfig
from .components import ComponentSpec
from .topology import LabPlan

DEFAULT_ROOT = os.environ.get("KUBELAB_ROOT", "/var/lib/kubelab")
DEMO_NAMESPACE = "demo"
DEMO_NODEPORT = 30080

Write = Callable[[str], None]


class LabError(Exception):
    """A failure shown to the user as one line (no traceback)."""


def _stdout(line: str) -> None:
    print(line, flush=True)


def require_root(verb: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"kubelab {verb} needs root (network namespaces, links): run `sudo kubelab {verb}`")


def lab_dir(name: str, root_dir: str) -> str:
    return os.path.join(os.path.abspath(root_dir), topology.check_name(name))


def load_plan(name: str, root_dir: str) -> tuple[LabPlan, dict]:
    d = lab_dir(name, root_dir)
    record = state.load_record(d)
    if not record:
        raise LabError(f"no lab named {name!r} under {root_dir} (start one with `sudo kubelab up --name {name}`)")
    return LabPlan.from_dict(record["plan"]), record


def supervisor_record(plan: LabPlan) -> dict:
    return state.read_json(os.path.join(plan.lab_dir, state.SUPERVISOR_FILE)) or {}


# --- up ------------------------------------------------------------------------------------------

@dataclass
class UpOptions:
    name: str = "lab"
    workers: int = 2
    proxy_mode: str = "nftables"
    root_dir: str = DEFAULT_ROOT
    demo: bool = False
    write_kubeconfig: bool = True
    node_subnet: str = topology.DEFAULT_NODE_SUBNET
    timeout: float = 120.0
    dns: bool = True
    etcd_storage: str = "tmpfs"  # fsync on a busy shared disk can take seconds; memory never does
    tls: bool = False  # a lab PKI, HTTPS + client certificates, RBAC, each component its own identity
    ingress: bool = False  # the ingress add-on (kubelab/ingress/addon.yaml)
    lb_pool: str = ""  # LoadBalancer addresses; default .200-.250 of the node subnet
    node_monitor_grace_period: str = ""  # passed to the controller manager when set


@dataclass
class Progress:
    write: Write
    t0: float = field(default_factory=time.monotonic)

    def step(self, text: str, seconds: float | None = None) -> None:
        took = f"  ({seconds:.2f}s)" if seconds is not None else ""
        self.write(f"  [{time.monotonic() - self.t0:5.1f}s] {text}{took}")


def lab_health(plan: LabPlan, record: dict) -> tuple[bool, list[str]]:
    """Is a recorded lab whole? (supervisor alive, every netns present)"""
    problems = []
    sup = supervisor_record(plan).get("supervisor")
    if not state.alive(sup):
        problems.append("its supervisor is not running")
    have = topology.existing_netns()
    missing = [n.netns for n in plan.nodes if n.netns not in have]
    if missing:
        problems.append(f"namespaces missing: {', '.join(missing)}")
    if plan.bridge not in topology.existing_links():
        problems.append(f"bridge {plan.bridge} missing")
    if record.get("phase") not in ("running", "booting"):
        problems.append(f"it stopped while {record.get('phase')}")
    return not problems, problems


def pod_holders(plan: LabPlan) -> list[int]:
    """Live processes whose arguments name one of this lab's pod namespaces: a pod's
    `unshare --net=/run/netns/kl-<lab>-<node>-<uid>` holder (with its pause child) keeps the
    namespace alive even after the name was deleted, and says whose it is."""
    pattern = topology.pod_netns_re(plan.name)

    def ours(arg: str) -> bool:
        name = arg.removeprefix("--net=/run/netns/")
        return name != arg and bool(pattern.match(name))
    return [pid for pid in state.pids_with_arg(ours) if state.alive(state.proc_id(pid))]


def residue_by_name(plan: LabPlan) -> list[str]:
    """Things named after this lab that exist right now (node and pod netns, links, pod holders)."""
    have = topology.existing_netns()
    found = [f"netns {n.netns}" for n in plan.nodes if n.netns in have]
    found += [f"netns {p}" for p in topology.lab_pod_netns(plan.name, have)]
    found += [f"process {pid} (a pod's netns holder)" for pid in pod_holders(plan)]
    links = topology.existing_links()
    found += [f"link {link}" for link in [plan.bridge, *(n.host_veth for n in plan.nodes)] if link in links]
    return found


def user_kubeconfig_name(plan: LabPlan) -> str:
    """The cluster, user and context the lab adds to the user's kubeconfig (kind's `kind-<name>`)."""
    return f"kubelab-{plan.name}"


def install_user_kubeconfig(plan: LabPlan, text: str, write: Write) -> dict:
    """Merge the lab's entries into the user's kubeconfig (userconfig.py: never through a link)."""
    try:
        record, line = userconfig.install(text, user_kubeconfig_name(plan))
    except userconfig.UserConfigError as e:
        raise LabError(str(e)) from None
    write(f"  kubeconfig: {line}")
    return record


def lab_kubeconfig(name: str, root_dir: str) -> str:
    """The lab's admin kubeconfig (`kubelab get-kubeconfig`, as `kind get kubeconfig`)."""
    plan, _ = load_plan(name, root_dir)
    try:
        with open(components.kubeconfig_path(plan)) as f:
            return f.read()
    except PermissionError:
        raise LabError(f"{components.kubeconfig_path(plan)} is root's: run `sudo kubelab get-kubeconfig"
                       f"{_name_flag(plan)}`") from None
    except FileNotFoundError:
        raise LabError(f"lab {name!r} has no kubeconfig yet (is it up? `kubelab status{_name_flag(plan)}`)") from None


def export_kubeconfig(name: str, root_dir: str, write: Write = _stdout) -> int:
    """`kubelab kubeconfig --export`: merge the lab's entries into the user's kubeconfig again
    and make them current (as `kind export kubeconfig`); `down` removes them."""
    plan, record = load_plan(name, root_dir)
    text = lab_kubeconfig(name, root_dir)
    info = install_user_kubeconfig(plan, text, write)
    old = record.get("kubeconfig") or {}
    if old.get("name") == info["name"] and old.get("path") == info["path"]:
        info["previous_context"] = old.get("previous_context")
        info["created_file"] = old.get("created_file", info["created_file"])
    record["kubeconfig"] = info
    state.save_record(plan.lab_dir, record)
    return 0


def restore_user_kubeconfig(info: dict | None, write: Write) -> None:
    """Remove exactly the entries `up` merged (an old record, from before merging, is ignored)."""
    try:
        line = userconfig.uninstall(info)
    except (userconfig.UserConfigError, OSError) as e:
        line = f"could not remove the lab from your kubeconfig: {e}"
    if line:
        write(f"  {line}")


def build_topology(plan: LabPlan, record: dict, progress: Progress) -> None:
    t = time.monotonic()
    record["created"]["links"].append(plan.bridge)
    state.save_record(plan.lab_dir, record)
    for cmd in topology.bridge_commands(plan):
        topology.run(cmd)
    progress.step(f"host bridge {plan.bridge} {plan.bridge_ip}/{plan.prefixlen}", time.monotonic() - t)
    for node in plan.nodes:
        t = time.monotonic()
        record["created"]["netns"].append(node.netns)
        record["created"]["links"].append(node.host_veth)
        state.save_record(plan.lab_dir, record)
        for cmd in topology.node_commands(plan, node):
            topology.run(cmd)
        progress.step(f"node {node.name}: netns {node.netns}, eth0 {node.ip} <-> {node.host_veth} on "
                      f"{plan.bridge}", time.monotonic() - t)


def start_supervisor(plan: LabPlan) -> state.ProcId:
    log = state.log_path(plan.lab_dir, "lab", "supervisor")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen([sys.executable, "-m", "kubelab.lab.supervisor", "--lab-dir", plan.lab_dir],
                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=plan.lab_dir)
    pid = state.proc_id(p.pid)
    assert pid is not None
    return pid


def log_tail(path: str, n: int) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [line.rstrip() for line in f.read().splitlines() if "HTTP Request:" not in line]
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-n:])


def describe_event(ev: dict) -> str | None:
    where = f"{ev.get('node')}: {ev.get('component')}"
    kind = ev.get("event")
    if kind == "started":
        return f"{where} started (pid {ev.get('pid')}) in netns {ev.get('netns')}"
    if kind == "healthy":
        return f"{where} healthy after {ev.get('seconds')}s"
    if kind == "exited":
        return f"{where} exited (code {ev.get('code')}); see `kubelab logs {ev.get('component')} --node {ev.get('node')}`"
    if kind == "restarted":
        return f"{where} restarted (#{ev.get('restarts')}, pid {ev.get('pid')})"
    if kind == "unhealthy":
        return f"{where} NOT healthy after {ev.get('seconds')}s; see `kubelab logs {ev.get('component')} --node {ev.get('node')}`"
    return None


async def follow_boot(plan: LabPlan, sup: state.ProcId, progress: Progress, *, timeout: float) -> None:
    offset, deadline = 0, time.monotonic() + timeout
    while True:
        events, offset = state.read_events(plan.lab_dir, offset)
        for ev in events:
            text = describe_event(ev)
            if text:
                progress.step(text)
            if ev.get("event") == "ready":
                return
            if ev.get("event") == "crashloop":
                log = state.log_path(plan.lab_dir, ev["node"], ev["component"])
                raise LabError(f"{ev['node']}/{ev['component']} keeps exiting (code {ev.get('code')}, "
                               f"{ev.get('restarts')} restarts); the end of {log}:\n" + log_tail(log, 12))
        if not state.alive(sup):
            raise LabError(f"the lab supervisor died during boot; see {state.log_path(plan.lab_dir, 'lab', 'supervisor')}")
        if time.monotonic() > deadline:
            raise LabError(f"the components were not healthy within {timeout:.0f}s; see `kubelab status`")
        await asyncio.sleep(0.1)


def _ready(node: dict) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


async def wait_for(cond, *, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = await cond()
        except (ApiError, httpx.HTTPError, OSError) as e:
            value, last = None, e
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last})" if last else ""))
        await asyncio.sleep(interval)


async def wait_nodes_ready(api: ApiClient, plan: LabPlan, names: list[str], *, timeout: float) -> dict[str, dict]:
    async def ready():
        nodes = {n["metadata"]["name"]: n for n in (await api.list("nodes"))["items"]}
        if all(n in nodes and _ready(nodes[n]) for n in names):
            return nodes
        return None
    return await wait_for(ready, timeout=timeout, what=f"nodes Ready: {', '.join(names)}")


def missing_pod_routes(plan: LabPlan, nodes: dict[str, dict]) -> list[list[str]]:
    cidrs = {name: (n.get("spec") or {}).get("podCIDR") for name, n in nodes.items()}
    missing = []
    for cmd in topology.pod_cidr_route_commands(plan, {k: v for k, v in cidrs.items() if v}):
        ns, cidr = cmd[2], cmd[5]
        if not topology.run(["ip", "-n", ns, "route", "show", cidr], check=False).stdout.strip():
            missing.append(cmd)
    return missing


async def ensure_pod_routes(plan: LabPlan, nodes: dict[str, dict], *, wait: float = 10.0) -> list[str]:
    """Routes to other nodes' pod CIDRs (host-gw style). The node agent adds them itself; the lab
    only fills in what is still missing after `wait` seconds (e.g. on the control plane, which
    runs no node agent)."""
    deadline = time.monotonic() + wait
    while True:
        missing = missing_pod_routes(plan, nodes)
        workers_missing = [c for c in missing if c[2] != plan.control_plane.netns]
        if not workers_missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    added = []
    for cmd in missing:
        topology.run(cmd)
        added.append(topology.shell(cmd))
    return added


def addon_objects(plan: LabPlan) -> list[dict]:
    """The DNS add-on manifest, with the upstream pinned to 'none': the lab never forwards
    queries to the machine's real resolvers."""
    path = os.path.join(os.path.dirname(components.__file__), "..", "dns", "addon.yaml")
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for d in docs:
        if d.get("kind") == "Deployment":
            for c in d["spec"]["template"]["spec"].get("containers", []):
                if "kubelab.dns" in " ".join(c.get("command", []) + c.get("args", [])) or c.get("image") == "kubelab/dns":
                    args = [a for a in c.get("args", []) if not a.startswith("--upstream")]
                    c["args"] = args + ["--upstream=none"]
        if d.get("kind") == "Service" and d["metadata"]["name"] == "kube-dns":
            d["spec"]["clusterIP"] = plan.dns_ip
    return docs


def ingress_objects() -> list[dict]:
    """The ingress add-on manifest (kubelab/ingress/addon.yaml), as `kubectl apply -f` would send it."""
    path = os.path.join(os.path.dirname(components.__file__), "..", "ingress", "addon.yaml")
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def demo_objects() -> list[dict]:
    labels = {"app": "nginx"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "nginx", "namespace": DEMO_NAMESPACE, "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                        "ports": [{"containerPort": 80}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": DEMO_NAMESPACE},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-nodeport", "namespace": DEMO_NAMESPACE},
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"port": 80, "targetPort": 80, "nodePort": DEMO_NODEPORT, "protocol": "TCP"}]}},
    ]


async def apply_objects(api: ApiClient, objs: list[dict]) -> list[str]:
    """Create each object; one that already exists is left alone (up is idempotent)."""
    done = []
    for obj in objs:
        rt = for_object(obj)
        ns = obj["metadata"].get("namespace") if rt.namespaced else None
        try:
            await api.create(rt.plural, obj, namespace=ns)
            done.append(f"{rt.singular}/{obj['metadata']['name']} created")
        except AlreadyExists:
            done.append(f"{rt.singular}/{obj['metadata']['name']} unchanged")
    return done


def dig(netns: str, server: str, name: str, *, rtype: str = "A", timeout: float = 2.0) -> list[str]:
    p = topology.run(["ip", "netns", "exec", netns, "dig", "+short", f"+time={max(1, int(timeout))}", "+tries=1",
                      f"@{server}", name, rtype], check=False, timeout=timeout + 3)
    if p.returncode != 0:
        return []
    return [line for line in p.stdout.split() if line and not line.startswith(";")]


async def ready_endpoints(api: ApiClient, namespace: str, service: str) -> list[str]:
    slices = await api.list("endpointslices", namespace=namespace,
                            label_selector=f"kubernetes.io/service-name={service}")
    ips = []
    for s in slices["items"]:
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready", True):
                ips += ep.get("addresses") or []
    return ips


async def up(opts: UpOptions, write: Write = _stdout) -> int:
    require_root("up")
    plan = topology.plan_lab(name=opts.name, workers=opts.workers, root_dir=opts.root_dir,
                             proxy_mode=opts.proxy_mode, node_subnet=opts.node_subnet, tls=opts.tls,
                             lb_pool=opts.lb_pool, node_monitor_grace_period=opts.node_monitor_grace_period)
    for tool in ("ip", "nsenter", "etcd"):
        if not shutil.which(tool):
            raise LabError(f"`{tool}` is not installed (apt-get install iproute2 util-linux etcd-server)")
    progress = Progress(write)
    if opts.write_kubeconfig:
        try:  # before anything is made: a kubeconfig that cannot be merged safely changes nothing
            userconfig.read(userconfig.target())
        except userconfig.UserConfigError as e:
            raise LabError(f"{e}") from None
    existing = state.load_record(plan.lab_dir)
    root_was_ours = bool((existing or {}).get("created_root_dir"))
    if existing and existing.get("phase") == "down" and not residue_by_name(plan):
        existing = None  # stopped with --keep-data: start again on its data
    if existing:
        old = LabPlan.from_dict(existing["plan"])
        whole, problems = lab_health(old, existing)
        if whole:
            write(f"lab {plan.name!r} is already running ({len(old.nodes)} nodes, proxy mode {old.proxy_mode}, "
                  f"API {old.api_url}); `kubelab status` shows its health, `sudo kubelab down` stops it.")
            if (len(old.workers), old.proxy_mode) != (len(plan.workers), plan.proxy_mode):
                write(f"  (it was started with --workers {len(old.workers)} --proxy-mode {old.proxy_mode}: "
                      f"`sudo kubelab down` first to change them)")
            return 0
        write(f"lab {plan.name!r} was half-started ({'; '.join(problems)}): tearing it down first (keeping its data)")
        await down(name=plan.name, root_dir=plan.root_dir, keep_data=True, write=write)
    elif residue_by_name(plan):
        write(f"found leftovers of a lab named {plan.name!r} without a record ({', '.join(residue_by_name(plan))}): removing them")
        teardown(plan, None, keep_data=True, write=write)

    conflict = topology.subnet_conflict(plan)
    if conflict:
        raise LabError(f"cannot create the node network: {conflict} (another lab? `kubelab status --name ...`; "
                       f"or choose another --node-subnet)")
    write(f"kubelab up: lab {plan.name!r}, {len(plan.workers)} worker(s), proxy mode {plan.proxy_mode}, "
          f"state in {plan.lab_dir}")
    created_root = not os.path.exists(plan.root_dir)
    os.makedirs(plan.lab_dir, exist_ok=True)
    try:
        os.unlink(os.path.join(plan.lab_dir, state.EVENTS_FILE))
    except FileNotFoundError:
        pass
    record = state.new_record(plan, argv=sys.argv)
    record["created_root_dir"] = created_root or root_was_ours
    state.save_record(plan.lab_dir, record)
    state.append_event(plan.lab_dir, {"source": "up", "event": "up-started", "lab": plan.name})
    try:
        build_topology(plan, record, progress)
        state.append_event(plan.lab_dir, {"source": "up", "event": "topology-ready"})

        if opts.etcd_storage == "tmpfs":
            etcd_dir = os.path.join(plan.lab_dir, plan.control_plane.name, "etcd")
            os.makedirs(etcd_dir, exist_ok=True)
            record["created"].setdefault("mounts", []).append(etcd_dir)
            state.save_record(plan.lab_dir, record)
            if etcd_dir not in state.mounts_under(etcd_dir):
                topology.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0700", "kubelab-etcd", etcd_dir])
            progress.step(f"etcd data on tmpfs at {etcd_dir} (--etcd-storage disk keeps it on disk)")
        if plan.tls:
            t = time.monotonic()
            components.init_pki(plan)
            progress.step(f"PKI: lab CA, a certificate and kubeconfig per component in {components.pki_dir(plan)}",
                          time.monotonic() - t)
        specs = components.lab_specs(plan)
        for node in plan.nodes:
            os.makedirs(components.node_dir(plan, node), exist_ok=True)
            with open(components.node_resolv_conf(plan, node), "w") as f:
                f.write(components.NODE_RESOLV_CONF)
        kc_text = components.admin_kubeconfig(plan)
        kc_path = components.kubeconfig_path(plan)
        with open(kc_path, "w") as f:
            f.write(kc_text)
        os.chmod(kc_path, 0o600 if plan.tls else 0o644)  # plain http: nothing secret in it
        record.update(components=[s.to_dict() for s in specs], phase="booting")
        state.save_record(plan.lab_dir, record)

        sup = start_supervisor(plan)
        record["supervisor"] = sup.to_dict()
        state.save_record(plan.lab_dir, record)
        progress.step(f"supervisor started (pid {sup.pid}); logs in {os.path.join(plan.lab_dir, 'logs')}")
        await follow_boot(plan, sup, progress, timeout=opts.timeout)
        record["phase"] = "running"
        state.save_record(plan.lab_dir, record)

        if opts.write_kubeconfig:
            record["kubeconfig"] = install_user_kubeconfig(plan, kc_text, write)
            state.save_record(plan.lab_dir, record)

        api = components.api_client(plan)
        try:
            notes = await settle(api, plan, opts, progress)
        finally:
            await api.aclose()
        state.append_event(plan.lab_dir, {"source": "up", "event": "up-done",
                                          "seconds": round(time.monotonic() - progress.t0, 2)})
    except BaseException:
        record["phase"] = "failed"
        state.save_record(plan.lab_dir, record)
        write(f"kubelab up failed after {time.monotonic() - progress.t0:.1f}s: the half-started lab stays for "
              f"inspection (`kubelab status`, `kubelab logs ...`); `sudo kubelab down --name {plan.name}` removes it, "
              f"`sudo kubelab up` repairs it")
        raise
    write(summary(plan, specs, record, notes, seconds=time.monotonic() - progress.t0))
    return 0


async def settle(api: ApiClient, plan: LabPlan, opts: UpOptions, progress: Progress) -> list[str]:
    """After the processes are healthy: nodes Ready, pod routes, DNS add-on, demo."""
    notes = []
    workers = [w.name for w in plan.workers]
    if workers:
        t = time.monotonic()
        nodes = await wait_nodes_ready(api, plan, workers, timeout=opts.timeout)
        progress.step(f"nodes Ready: {', '.join(workers)}", time.monotonic() - t)
        state.append_event(plan.lab_dir, {"source": "up", "event": "nodes-ready", "nodes": workers})
        t = time.monotonic()

        async def have_cidrs():
            ns = {n["metadata"]["name"]: n for n in (await api.list("nodes"))["items"]}
            return ns if all((ns[w].get("spec") or {}).get("podCIDR") for w in workers) else None
        nodes = await wait_for(have_cidrs, timeout=opts.timeout, what="pod CIDRs on every worker")
        for line in await ensure_pod_routes(plan, nodes):
            progress.step(f"route added: {line}")
        progress.step("pod CIDRs: " + ", ".join(f"{w} {nodes[w]['spec']['podCIDR']}" for w in workers),
                      time.monotonic() - t)
    else:
        notes.append("no workers (--workers 0): pods have nowhere to run")
    if opts.dns and workers:
        t = time.monotonic()
        for line in await apply_objects(api, addon_objects(plan)):
            progress.step(f"DNS add-on: {line}")
        await wait_for(lambda: ready_endpoints(api, "kube-system", "kube-dns"), timeout=opts.timeout,
                       what="a ready kube-dns pod")
        node = plan.workers[0].netns
        fqdn = f"kubernetes.default.svc.{plan.cluster_domain}"

        async def answers():
            return await asyncio.to_thread(dig, node, plan.dns_ip, fqdn)
        got = await wait_for(answers, timeout=opts.timeout, what=f"DNS answer for {fqdn} from {plan.dns_ip}")
        progress.step(f"DNS serving: {fqdn} -> {', '.join(got)} (asked {plan.dns_ip} from {plan.workers[0].name})",
                      time.monotonic() - t)
        state.append_event(plan.lab_dir, {"source": "up", "event": "dns-ready"})
    elif opts.dns:
        notes.append("DNS add-on not applied: it needs a worker to run on")
    if opts.ingress and workers:
        t = time.monotonic()
        for line in await apply_objects(api, ingress_objects()):
            progress.step(f"ingress add-on: {line}")
        await wait_for(lambda: ready_endpoints(api, "ingress-nginx", "ingress-nginx-controller"),
                       timeout=opts.timeout, what="a ready ingress-nginx controller pod")
        progress.step("ingress add-on: controller ready behind Service ingress-nginx/ingress-nginx-controller",
                      time.monotonic() - t)
    elif opts.ingress:
        notes.append("ingress add-on not applied: it needs a worker to run on")
    if opts.demo:
        if not workers:
            notes.append("--demo skipped: no worker to run its pods")
        else:
            t = time.monotonic()
            for line in await apply_objects(api, demo_objects()):
                progress.step(f"demo: {line}")

            async def two():
                return len(await ready_endpoints(api, DEMO_NAMESPACE, "nginx")) >= 2
            await wait_for(two, timeout=opts.timeout, what="2 ready nginx pods in namespace demo")
            progress.step("demo: nginx running behind Services nginx (ClusterIP) and nginx-nodeport "
                          f"(NodePort {DEMO_NODEPORT})", time.monotonic() - t)
    return notes


def summary(plan: LabPlan, specs: list[ComponentSpec], record: dict, notes: list[str],
            *, seconds: float) -> str:
    by_node: dict[str, list[str]] = {}
    for s in specs:
        by_node.setdefault(s.node, []).append(s.name)
    lines = [f"\nLab {plan.name!r} is up in {seconds:.1f}s.", "  nodes:"]
    for n in plan.nodes:
        lines.append(f"    {n.name:<14} {n.ip:<15} netns {n.netns:<24} {', '.join(by_node.get(n.name, [])) or '-'}")
    lines.append(f"  API server:  {plan.api_url}")
    kc = components.kubeconfig_path(plan)
    user_kc = (record.get("kubeconfig") or {}).get("path")
    lines.append(f"  kubeconfig:  {kc}" + (f" (also {user_kc}, context {user_kubeconfig_name(plan)})"
                                           if user_kc else ""))
    for note in notes:
        lines.append(f"  note: {note}")
    w = plan.workers[0].netns if plan.workers else plan.control_plane.netns
    kflag = "" if user_kc else f" --kubeconfig {kc}"
    sudo = "sudo " if os.environ.get("SUDO_USER") else ""  # root on a fresh Debian has no sudo
    lines += ["", "Next:",
              f"  kubectl{kflag} get nodes -o wide",
              f"  kubectl{kflag} get pods -A -o wide",
              f"  kubelab status{_name_flag(plan)}                  # each component's health",
              f"  kubelab logs apiserver{_name_flag(plan)}          # any component: etcd, controllers, nodeagent --node worker-1 ...",
              f"  {sudo}ip netns exec {w} nft list ruleset",
              f"  kubelab timeline{_name_flag(plan)}",
              f"  {sudo}kubelab ui{_name_flag(plan)}                 # the web view: http://127.0.0.1:8001/",
              f"  {sudo}kubelab down{_name_flag(plan)}"]
    return "\n".join(lines)


def _name_flag(plan: LabPlan) -> str:
    return "" if plan.name == "lab" else f" --name {plan.name}"


# --- down ----------------------------------------------------------------------------------------

def teardown(plan: LabPlan, record: dict | None, *, keep_data: bool, write: Write) -> list[str]:
    """Remove what `up` made for this plan, in the order that leaves nothing half-attached.
    Returns the residue still found afterwards (empty when clean)."""
    sup_file = supervisor_record(plan)
    sup = sup_file.get("supervisor") or (record or {}).get("supervisor")
    if state.alive(sup):
        state.stop_proc(sup, timeout=30.0)  # it stops the components in reverse order
        write(f"  stopped the supervisor (pid {sup['pid']}) and its components")
    for comp in sup_file.get("components", []):
        pid = comp.get("pid")
        if state.alive(pid):
            state.stop_proc(pid, timeout=5.0)
            write(f"  stopped {comp['spec']['node']}/{comp['spec']['name']} (pid {pid['pid']})")
    node_ns, pod_ns, inodes = stop_lab_processes(plan, write)
    for m in state.mounts_under(plan.lab_dir):
        topology.run(["umount", "-l", m], check=False)
        write(f"  unmounted {m}")
    for ns in pod_ns:
        topology.run(["ip", "netns", "del", ns], check=False)
    if pod_ns:
        write(f"  removed {len(pod_ns)} pod namespace(s): {', '.join(pod_ns)}")
    for ns in node_ns:
        topology.run(["ip", "netns", "del", ns], check=False)  # takes eth0, cni0, routes, nft tables
    if node_ns:
        write(f"  removed node namespaces: {', '.join(node_ns)}")
    links = topology.existing_links()
    for link in [*(n.host_veth for n in plan.nodes), plan.bridge]:
        if link in links:
            topology.run(["ip", "link", "del", link], check=False)
    write(f"  removed bridge {plan.bridge}")
    restore_user_kubeconfig((record or {}).get("kubeconfig"), write)
    if keep_data:
        for f in (state.SUPERVISOR_FILE,):
            try:
                os.unlink(os.path.join(plan.lab_dir, f))
            except FileNotFoundError:
                pass
        if record is not None:
            record["phase"] = "down"
            record["supervisor"] = None
            record["kubeconfig"] = None
            state.save_record(plan.lab_dir, record)
        on_tmpfs = any(m.endswith("/etcd") for m in (record or {}).get("created", {}).get("mounts", []))
        if on_tmpfs:
            # the cluster's state was in memory and is gone: node state (IPAM leases, CNI config
            # with the old pod CIDR, pod records) would contradict the next cluster, so it goes too
            for n in plan.nodes:
                shutil.rmtree(components.node_dir(plan, n), ignore_errors=True)
            write(f"  kept {plan.lab_dir}/logs; etcd's data was on tmpfs, so the nodes' state went with it")
        else:
            write(f"  kept {plan.lab_dir} (etcd data, node state, logs)")
    elif os.path.isdir(plan.lab_dir):
        shutil.rmtree(plan.lab_dir, ignore_errors=True)
        write(f"  removed {plan.lab_dir}")
        if (record or {}).get("created_root_dir"):
            try:
                os.rmdir(plan.root_dir)  # only if empty: other labs may live there
                write(f"  removed {plan.root_dir} (created by `up`, now empty)")
            except OSError:
                pass
    return residue(plan, pod_ns=pod_ns, inodes=inodes, keep_data=keep_data)


def lab_namespaces(plan: LabPlan) -> tuple[list[str], list[str]]:
    """The lab's node namespaces and its pods' namespaces: those a node's veth leads to, and
    those named kl-<lab>-<node>-<uid> (a pod mid-creation has its netns and pause process
    before the CNI plugin gives it a veth; a pod whose node namespace is gone has none)."""
    have = topology.existing_netns()
    node_ns = [n.netns for n in plan.nodes if n.netns in have]
    pod_ns = {p for ns in node_ns for p in topology.pod_netns_of_node(ns)}
    pod_ns.update(topology.lab_pod_netns(plan.name, have))
    return node_ns, sorted(pod_ns)


def stop_lab_processes(plan: LabPlan, write: Write, *, rounds: int = 5) -> tuple[list[str], list[str], set[int]]:
    """Stop every process in the lab's namespaces (a pod's `unshare` holder and pause live in
    the pod's netns, not the node's). Looks again after each round: a node agent not yet
    stopped may have created one more pod netns while the last round ran."""
    node_ns: list[str] = []
    pod_ns: list[str] = []
    inodes: set[int] = set()
    for _ in range(rounds):
        node_ns, pod_ns = lab_namespaces(plan)
        inodes |= {i for i in (topology.netns_inode(n) for n in node_ns + pod_ns) if i}
        pids = set(state.pids_in_netns(inodes)) | set(pod_holders(plan))
        running = [p for p in (state.proc_id(pid) for pid in sorted(pids)) if p and state.alive(p)]
        if not running:
            break
        state.stop_many(running, timeout=3.0)
        write(f"  stopped {len(running)} process(es) left in the lab's namespaces (pods): "
              f"{', '.join(str(p.pid) for p in running)}")
    return node_ns, pod_ns, inodes


def residue(plan: LabPlan, *, pod_ns: list[str] = (), inodes: set[int] = frozenset(),
            keep_data: bool = False) -> list[str]:
    """Anything of this lab still present: netns, links, routes, processes, mounts, dir."""
    left = residue_by_name(plan)
    have = topology.existing_netns()
    left += [f"netns {p}" for p in pod_ns if p in have and f"netns {p}" not in left]
    for r in topology.host_routes():
        if r.get("dev") == plan.bridge:
            left.append(f"route {r.get('dst')} dev {plan.bridge}")
    left += [f"process {pid}" for pid in state.pids_in_netns(set(inodes))] if inodes else []
    left += [f"mount {m}" for m in state.mounts_under(plan.lab_dir)]
    if not keep_data and os.path.exists(plan.lab_dir):
        left.append(f"dir {plan.lab_dir}")
    return left


async def down(*, name: str, root_dir: str, keep_data: bool = False, write: Write = _stdout) -> int:
    require_root("down")
    d = lab_dir(name, root_dir)
    record = state.load_record(d)
    if record:
        plan = LabPlan.from_dict(record["plan"])
    else:
        plan = topology.plan_lab(name=name, workers=20, root_dir=root_dir)
        if not residue_by_name(plan) and not os.path.exists(d):
            write(f"no lab named {name!r} under {root_dir}: nothing to do")
            return 0
    t0 = time.monotonic()
    write(f"kubelab down: lab {name!r}")
    left = await asyncio.to_thread(teardown, plan, record, keep_data=keep_data, write=write)
    if left:
        write(f"lab {name!r} is down but these remain: {', '.join(left)}")
        return 1
    write(f"lab {name!r} is down ({time.monotonic() - t0:.1f}s); nothing of it is left"
          + (" but its data" if keep_data else ""))
    return 0


# --- status and logs -----------------------------------------------------------------------------

async def component_health(plan: LabPlan) -> list[dict]:
    """One row per component: alive (same PID + start time), health endpoint, restarts."""
    sup = supervisor_record(plan)
    rows = []
    async with httpx.AsyncClient(trust_env=False, verify=components.health_verify(plan)) as http, \
            httpx.AsyncClient(trust_env=False, verify=components.health_verify(plan, etcd=True)) as etcd_http:
        for c in sup.get("components", []):
            spec = ComponentSpec.from_dict(c["spec"])
            is_alive = state.alive(c.get("pid"))
            health = None
            if is_alive and spec.health:
                try:
                    r = await (etcd_http if spec.name == "etcd" else http).get(spec.health, timeout=2.0)
                    health = "ok" if r.status_code == 200 else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    health = f"unreachable ({type(e).__name__})"
            rows.append({"node": spec.node, "component": spec.name,
                         "pid": (c.get("pid") or {}).get("pid") if is_alive else None,
                         "alive": is_alive, "health": health, "health_url": spec.health,
                         "restarts": c.get("restarts", 0), "started_at": c.get("started_at"),
                         "log": c.get("log")})
    return rows


def render_status(plan: LabPlan, *, supervisor_alive: bool, rows: list[dict], nodes: list[dict] | None,
                  now: float, api_error: str | None = None) -> str:
    """Pure: the `kubelab status` text."""
    out = [f"lab {plan.name!r}: supervisor {'running' if supervisor_alive else 'NOT running'}, "
           f"API {plan.api_url}, state {plan.lab_dir}"]
    header = f"{'NODE':<14} {'COMPONENT':<12} {'PID':>7} {'STATE':<8} {'HEALTH':<22} {'RESTARTS':>8} {'UP':>7}"
    out.append(header)
    for r in rows:
        st = "running" if r["alive"] else "DEAD"
        health = r["health"] or ("-" if r["alive"] and not r["health_url"] else ("n/a" if not r["alive"] else "-"))
        up_for = f"{now - r['started_at']:.0f}s" if r["alive"] and r.get("started_at") else "-"
        out.append(f"{r['node']:<14} {r['component']:<12} {str(r['pid'] or '-'):>7} {st:<8} {health:<22} "
                   f"{r['restarts']:>8} {up_for:>7}")
    if nodes is not None:
        out.append("")
        out.append(f"{'NODE':<14} {'READY':<6} {'POD CIDR':<16} ADDRESS")
        for n in nodes:
            addr = ((n.get("status") or {}).get("addresses") or [{}])[0].get("address", "")
            out.append(f"{n['metadata']['name']:<14} {str(_ready(n)):<6} "
                       f"{(n.get('spec') or {}).get('podCIDR') or '-':<16} {addr}")
    elif api_error:
        out.append(f"API server not answering: {api_error}")
    return "\n".join(out)


async def status(*, name: str, root_dir: str, write: Write = _stdout, as_json: bool = False) -> int:
    plan, record = load_plan(name, root_dir)
    rows = await component_health(plan)
    sup_alive = state.alive(supervisor_record(plan).get("supervisor"))
    nodes, api_error = None, None
    api = components.api_client(plan)
    try:
        nodes = (await asyncio.wait_for(api.list("nodes"), 3))["items"]
    except (ApiError, httpx.HTTPError, OSError, asyncio.TimeoutError) as e:
        api_error = str(e) or type(e).__name__
    finally:
        await api.aclose()
    if as_json:
        write(json.dumps({"lab": plan.name, "supervisor": sup_alive, "components": rows,
                          "nodes": nodes, "phase": record.get("phase")}, indent=2))
    else:
        write(render_status(plan, supervisor_alive=sup_alive, rows=rows, nodes=nodes, now=time.time(),
                            api_error=api_error))
    healthy = sup_alive and rows and all(r["alive"] and r["health"] in (None, "ok") for r in rows)
    return 0 if healthy else 1


def log_files(plan: LabPlan, component: str, node: str | None) -> list[tuple[str, str]]:
    if component == "supervisor":
        return [("lab", state.log_path(plan.lab_dir, "lab", "supervisor"))]
    found = []
    for n in plan.nodes:
        if node and node not in (n.name, n.netns):
            continue
        p = state.log_path(plan.lab_dir, n.name, component)
        if os.path.exists(p):
            found.append((n.name, p))
    return found


async def logs(*, name: str, root_dir: str, component: str, node: str | None = None, tail: int | None = None,
               follow: bool = False, write: Write = _stdout) -> int:
    plan, _ = load_plan(name, root_dir)
    files = log_files(plan, component, node)
    if not files:
        known = sorted({f[:-4] for n in plan.nodes
                        for f in (os.listdir(os.path.join(plan.lab_dir, "logs", n.name))
                                  if os.path.isdir(os.path.join(plan.lab_dir, "logs", n.name)) else [])})
        raise LabError(f"no log for {component!r}" + (f" on node {node!r}" if node else "")
                       + f"; components with logs: {', '.join(known + ['supervisor']) or 'none'}")
    if follow and len(files) > 1:
        raise LabError(f"{component} runs on {', '.join(n for n, _ in files)}: pick one with --node to follow it")
    for n, path in files:
        if len(files) > 1:
            write(f"==> {n}/{component} ({path}) <==")
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        for line in lines[-tail:] if tail else lines:
            write(line)
    if follow:
        path = files[0][1]
        with open(path, errors="replace") as f:
            f.seek(0, os.SEEK_END)
            while True:
                line = f.readline()
                if line:
                    write(line.rstrip("\n"))
                else:
                    await asyncio.sleep(0.2)
    return 0
