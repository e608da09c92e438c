"""The node agent (kubelab's kubelet): registers its Node, renews its Lease, watches only its
own pods, and runs each one as a sandbox (netns + pause, wired by CNI) plus container
processes, writing pod status only when it changes.

One `PodWorker` task per pod UID drives that pod to its desired state (`sync`), woken by
informer events, container exits (one poll loop for all), probe results and back-off timers.
Everything the agent knows about a pod is also saved under <root>/pods/<uid>/, so a restarted
agent re-adopts running pods instead of restarting them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import platform
import shutil
import signal
import time
from dataclasses import dataclass, field

import httpx

from kubelab.client import AlreadyExists, ApiClient, ApiError, Conflict, Informer, NotFound
from kubelab.cni.bridge import host_veth_name
from kubelab.cni.spec import CniError
from kubelab import podfields
from kubelab.client.record import EventRecorder
from kubelab.timestamps import format_micro_time, format_time

from . import containers as ctr
from . import images, podstatus, procs, routes, sandbox, satoken, volumes
from .probes import ProbeWorker, probe_once
from .sandbox import CniSettings, DnsSettings, Sandbox
from .stdio import Stdio

log = logging.getLogger("kubelab.nodeagent")

KUBELET_VERSION = "v1.32.0"
RUNTIME_VERSION = "kubelab://0.1.0"
LEASE_NAMESPACE = "kube-node-lease"


@dataclass
class Config:
    node_name: str
    node_ip: str
    root_dir: str
    cni_conf_dir: str
    cni_bin_dir: str
    port: int = 10250
    address: str = "0.0.0.0"
    netns_prefix: str = ""
    cluster_cidr: str | None = "10.244.0.0/16"
    backoff_base: float = 10.0
    lease_seconds: float = 10.0
    dns: DnsSettings = field(default_factory=DnsSettings)
    pod_cidr_from_node: bool = True
    serve: bool = True
    tls: object | None = None  # tls.ServingTLS: the API on 10250 over HTTPS with client certificates
    hide_paths: tuple[str, ...] = ()  # node paths no container sees (besides rootfs.DEFAULT_HIDE)
    container_log_max_size: int = 10 * 1024 * 1024   # the kubelet's containerLogMaxSize (10Mi)
    container_log_max_files: int = 5                 # containerLogMaxFiles

    @property
    def pods_dir(self) -> str:
        return os.path.join(self.root_dir, "pods")

    @property
    def ipam_dir(self) -> str:
        return os.path.join(self.root_dir, "cni", "networks")


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def node_info(node_name: str) -> dict:
    """status.nodeInfo, every field filled (the official client requires them all)."""
    machine = _read("/etc/machine-id") or "0" * 32
    per_node = hashlib.sha256(f"{machine}/{node_name}".encode()).hexdigest()
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"machineID": per_node[:32],
            "systemUUID": f"{per_node[:8]}-{per_node[8:12]}-{per_node[12:16]}-{per_node[16:20]}-{per_node[20:32]}",
            "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
            "osImage": os_image, "containerRuntimeVersion": RUNTIME_VERSION, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": arch}


def capacity(root_dir: str) -> dict:
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    try:
        st = os.statvfs(root_dir)
        disk = st.f_blocks * st.f_frsize // 1024
    except OSError:
        disk = 0
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki", "pods": "110",
            "ephemeral-storage": f"{disk}Ki", "hugepages-2Mi": "0"}


def node_status(cfg: Config, *, now: str, ready: bool = True) -> dict:
    def cond(t: str, ok: bool, reason: str, msg: str) -> dict:
        return {"type": t, "status": "True" if ok else "False", "reason": reason, "message": msg,
                "lastHeartbeatTime": now, "lastTransitionTime": now}
    cap = capacity(cfg.root_dir)
    return {
        "addresses": [{"type": "InternalIP", "address": cfg.node_ip}, {"type": "Hostname", "address": cfg.node_name}],
        "capacity": cap, "allocatable": dict(cap),
        "conditions": [cond("MemoryPressure", False, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                       cond("DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                       cond("PIDPressure", False, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                       cond("Ready", ready, "KubeletReady", "kubelet is posting ready status")],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.port}},
        "nodeInfo": node_info(cfg.node_name),
    }


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


def gc_veths(keep: set[str], bridge: str = "cni0") -> list[str]:
    """Delete veths on `bridge` not named in `keep` (run in a thread: pyroute2 is sync)."""
    from pyroute2 import IPRoute
    removed = []
    with IPRoute() as ipr:
        br = ipr.link_lookup(ifname=bridge)
        if not br:
            return removed
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith("veth") and link.get_attr("IFLA_MASTER") == br[0] and name not in keep:
                ipr.link("del", index=link["index"])
                removed.append(name)
    return removed


HOOK_TIMEOUT = 30.0   # postStart: the kubelet gives a hook no fixed limit; kubelab bounds it


class PodWorker:
    """Drives one pod (one UID) to its desired state."""

    def __init__(self, agent: "NodeAgent", pod: dict, *, sb: Sandbox | None = None,
                 adopted: dict[str, ctr.Container] | None = None) -> None:
        self.agent = agent
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.key = f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"
        self.dir = os.path.join(agent.cfg.pods_dir, self.uid)
        self.sandbox = sb
        self.containers: dict[str, ctr.Container] = adopted or {}
        self.probes: dict[str, list[asyncio.Task]] = {}
        self.etc: dict[str, str] = {}
        self.gone = False              # the API object no longer exists
        self.last_status: dict | None = pod.get("status") or None
        self.error: str = ""
        self.last_ip: str | None = ((pod.get("status") or {}).get("podIP"))
        self.retry_at = 0.0
        self.done = False
        self.check_network = False     # CNI CHECK once, for a sandbox found again after a restart
        # next service-account token check: a new pod's token was just written; a re-adopted
        # pod's may have aged (or expired) while the agent was down, so it is checked at once
        self.token_check_at = 0.0 if sb is not None else time.time() + satoken.CHECK_INTERVAL
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.volumes = volumes.Volumes(self.dir, fetch=self.fetch_object, token=self.volume_token,
                                       field_value=self.field_value, resource=self.resource_value)
        self.volumes_ready = False
        self.volume_error = ""
        self.env_objects: dict[tuple[str, str], dict | None] = {}
        self.stdio: dict[str, Stdio] = {}     # container name -> its stdin/terminal (attach)

    def start(self) -> None:
        if not self.containers and not self.gone:
            # a new pod: say what in its spec is not run (the API server warned its author too)
            for text in podfields.warnings(self.pod.get("spec"), "spec"):
                self.event("Warning", "FieldIgnored", text)
        for c in self.containers.values():
            if c.running:
                self.start_probes(c)
        self.task = asyncio.create_task(self.run(), name=f"pod {self.key}")

    def update(self, pod: dict) -> None:
        self.pod = pod
        self.wake.set()

    def event(self, type_: str, reason: str, message: str) -> None:
        """An Event about this pod, as the kubelet records them (`kubectl describe pod`)."""
        if self.agent.recorder is not None and not self.gone:
            self.agent.recorder.event({"kind": "Pod", "apiVersion": "v1", **self.pod}, type_, reason, message)

    def deleted(self) -> None:
        self.gone = True
        self.wake.set()

    # ---- what volumes and env read from the API ---------------------------------------------

    async def fetch_object(self, resource: str, namespace: str, name: str) -> dict | None:
        try:
            return await self.agent.client.get(resource, name, namespace=namespace)
        except NotFound:
            return None

    async def volume_token(self, src: dict) -> tuple[str, float]:
        """A projected serviceAccountToken: a TokenRequest for the source's audience, bound to the pod."""
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        body = satoken.token_request(self.pod, expiration=int(src.get("expirationSeconds") or 3600))
        if src.get("audience"):
            body["spec"]["audiences"] = [src["audience"]]
        client = self.agent.client
        path = client.path("serviceaccounts", spec.get("serviceAccountName") or "default",
                           namespace=meta.get("namespace", "default"), subresource="token")
        try:
            tr = await client.request("POST", path, json_body=body)
        except ApiError as e:
            raise volumes.VolumeError(f"failed to fetch token: {e}") from None
        token = (tr.get("status") or {}).get("token")
        if not isinstance(token, str):
            raise volumes.VolumeError("failed to fetch token: no status.token")
        exp = satoken.times_from_response(tr, requested=int(src.get("expirationSeconds") or 3600), now=time.time())[1]
        return token, exp

    def field_value(self, path: str) -> str:
        meta = self.pod.get("metadata") or {}
        if path in ("metadata.labels", "metadata.annotations"):
            return volumes.labels_text(meta.get(path.split(".")[1]))
        sb = self.sandbox
        return ctr.field_ref(self.pod, path, pod_ip=sb.pod_ip if sb else self.last_ip, host_ip=self.agent.cfg.node_ip)

    def resource_value(self, ref: dict, container: str = "") -> str:
        cap = capacity(self.agent.cfg.root_dir)
        mem = int(cap["memory"][:-2]) * 1024
        return volumes.resource_value(self.pod, ref, node_cpus=int(cap["cpu"]), node_memory=mem,
                                      default_container=container)

    async def load_env_objects(self) -> None:
        """The ConfigMaps and Secrets the containers about to start read (env, envFrom)."""
        want: set[tuple[str, str]] = set()
        for cs in self.init_specs + self.spec_containers:
            c = self.containers.get(cs["name"])
            if c is None or not c.running:
                want |= ctr.env_sources(cs)
        ns = self.pod["metadata"].get("namespace", "default")
        objs: dict[tuple[str, str], dict | None] = {}
        for res, name in want:
            try:
                objs[(res, name)] = await self.fetch_object(res, ns, name)
            except ApiError as e:
                log.warning("pod %s: reading %s %s: %s", self.key, res, name, e)
                objs[(res, name)] = None
        self.env_objects = objs

    async def ensure_volumes(self) -> bool:
        """Every volume prepared (True), or a FailedMount event and a retry (False)."""
        if self.volumes_ready:
            return True
        try:
            await self.volumes.prepare(self.pod)
        except (volumes.VolumeError, OSError, ValueError, ApiError) as e:
            msg = str(e)
            if msg != self.volume_error:
                self.event("Warning", "FailedMount", msg)
            self.volume_error = msg
            self.retry_at = time.time() + 2.0
            return False
        self.volumes_ready, self.volume_error = True, ""
        return True

    @property
    def spec_containers(self) -> list[dict]:
        return (self.pod.get("spec") or {}).get("containers") or []

    @property
    def init_specs(self) -> list[dict]:
        return (self.pod.get("spec") or {}).get("initContainers") or []

    def container_spec(self, name: str) -> dict:
        for c in self.spec_containers + self.init_specs:
            if c.get("name") == name:
                return c
        return {}

    def init_state(self) -> str:
        """"done" when every init container exited 0, "failed" when one failed for good
        (restartPolicy Never), else "running"."""
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        for cs in self.init_specs:
            c = self.containers.get(cs["name"])
            if c is None or c.state != "terminated" or c.exit_code != 0:
                if c is not None and c.state == "terminated" and policy == "Never":
                    return "failed"
                return "running"
        return "done"

    def finished(self) -> bool:
        """Nothing will run in this pod again (its phase is Succeeded or Failed)."""
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        if self.init_state() == "failed":
            return True
        cs = [self.containers.get(c["name"]) for c in self.spec_containers]
        return bool(cs) and all(c is not None and c.state == "terminated" and not should_restart(policy, c.exit_code)
                                for c in cs)

    def step(self, c: ctr.Container, cs: dict, *, restart_policy: str, now: float) -> None:
        """Start, restart (after back-off) or leave one container, by its restart policy."""
        meta = self.pod["metadata"]
        if c.running:
            return
        restarting = c.state == "terminated" or c.last_terminated is not None or c.reason == "CrashLoopBackOff"
        if c.state == "terminated" and not should_restart(restart_policy, c.exit_code):
            return
        if c.state == "terminated":
            c.last_terminated = c.terminated()  # becomes lastState once the container restarts
        if restarting and now < c.next_start:
            if c.reason != "CrashLoopBackOff":
                self.event("Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod "
                                                 f"{meta['name']}_{meta.get('namespace')}({self.uid})")
            c.state, c.reason = "waiting", "CrashLoopBackOff"
            delay = c.next_start - c.finished_at if c.finished_at else 0
            c.message = (f"back-off {delay:.0f}s restarting failed container={c.name} "
                         f"pod={meta['name']}_{meta.get('namespace')}({self.uid})")
            return
        if c.reason in ("ErrImagePull", ctr.ConfigError.reason) and now < c.next_start:
            return
        self.start_container(c, cs)

    # ---- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        while not self.done:
            self.wake.clear()
            try:
                if await self.sync():
                    self.done = True
                    for io in self.stdio.values():
                        io.close()
                    break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("pod %s: sync failed", self.key)
                self.error = str(e)
                self.retry_at = time.time() + 1.0
            await self.refresh_token()
            delay = self.next_wakeup()
            try:
                await asyncio.wait_for(self.wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
        self.agent.forget(self)

    async def refresh_token(self, now: float | None = None) -> None:
        """At most every CHECK_INTERVAL (on the worker's own wake-ups, at least every 30 s):
        rotate the pod's service-account token as the kubelet does. Never raises: a failure
        keeps the old token and the next check retries."""
        now = time.time() if now is None else now
        if now < self.token_check_at:
            return
        self.token_check_at = now + satoken.CHECK_INTERVAL
        if self.gone or self.pod["metadata"].get("deletionTimestamp") or self.sandbox is None or self.finished():
            return
        try:
            await satoken.refresh(self.agent.client, self.pod, self.dir, now=now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s: service-account token check failed", self.key)

    def next_wakeup(self) -> float:
        now = time.time()
        times = [c.next_start for c in self.containers.values() if c.state != "running" and c.next_start > now]
        if self.retry_at > now:
            times.append(self.retry_at)
        if self.volumes_ready and self.volumes.next_sync > now and not self.finished():
            times.append(self.volumes.next_sync)
        return max(0.05, min(times) - now) if times else 30.0

    async def sync(self) -> bool:
        meta = self.pod["metadata"]
        if self.gone or meta.get("deletionTimestamp"):
            await self.terminate()
            return True
        now = time.time()
        if self.finished():
            # like the kubelet: a pod that will run nothing more gives back its sandbox (IP,
            # netns, pause) and keeps its logs and status until it is deleted
            if self.sandbox is not None:
                await self.teardown_sandbox()
            await self.write_status()
            return False
        if self.check_network and self.sandbox is not None and self.sandbox.alive() and not self.sandbox.host_network:
            self.check_network = False
            try:
                await sandbox.cni_check(self.sandbox, self.pod, self.agent.cni)
                log.info("pod %s: re-adopted, CNI CHECK passed", self.key)
            except (CniError, OSError) as e:
                log.warning("pod %s: re-adopted, CNI CHECK failed: %s", self.key, e)
        if self.sandbox is None or not self.sandbox.alive():
            if now < self.retry_at:
                return False
            if self.sandbox is not None:  # the pause died: start over, as the kubelet does
                log.warning("pod %s: sandbox gone, recreating", self.key)
                await self.kill_containers(0)
                await self.teardown_sandbox()
            try:
                await self.create_sandbox()
                self.error = ""
            except Exception as e:
                log.warning("pod %s: sandbox: %s", self.key, e)
                self.error = f"failed to create pod sandbox: {e}"
                self.event("Warning", "FailedCreatePodSandBox", self.error)
                self.retry_at = time.time() + 2.0
                for cs in self.spec_containers:
                    c = self.containers.setdefault(cs["name"], ctr.Container(cs["name"], cs.get("image", "")))
                    c.state, c.reason, c.message = "waiting", "ContainerCreating", self.error
                await self.write_status()
                return False
        if not await self.ensure_volumes():
            for cs in self.init_specs + self.spec_containers:
                c = self.containers.setdefault(cs["name"], ctr.Container(cs["name"], cs.get("image", "")))
                if not c.running and c.state != "terminated":
                    c.state, c.reason, c.message = "waiting", "ContainerCreating", ""
            await self.write_status()
            return False
        await self.volumes.resync(self.pod)
        await self.load_env_objects()
        policy = (self.pod.get("spec") or {}).get("restartPolicy", "Always")
        init = self.init_state()
        if init == "running":  # init containers one at a time, in order; each must exit 0
            for cs in self.init_specs:
                c = self.containers.get(cs["name"])
                if c is None:
                    c = self.containers[cs["name"]] = ctr.Container(cs["name"], cs.get("image", ""))
                if c.state == "terminated" and c.exit_code == 0:
                    continue
                self.step(c, cs, restart_policy="OnFailure" if policy == "Always" else policy, now=now)
                break
            for cs in self.spec_containers:
                c = self.containers.setdefault(cs["name"], ctr.Container(cs["name"], cs.get("image", "")))
                c.reason = "PodInitializing"
        elif init == "done":
            for cs in self.spec_containers:
                c = self.containers.get(cs["name"])
                if c is None:
                    c = self.containers[cs["name"]] = ctr.Container(cs["name"], cs.get("image", ""))
                self.step(c, cs, restart_policy=policy, now=now)
        await self.write_status()
        return False

    # ---- sandbox -------------------------------------------------------------------------

    async def create_sandbox(self) -> None:
        cfg = self.agent.cfg
        os.makedirs(self.dir, exist_ok=True)
        host_network = bool((self.pod.get("spec") or {}).get("hostNetwork"))
        sb = Sandbox(uid=self.uid, namespace=self.pod["metadata"].get("namespace", "default"),
                     name=self.pod["metadata"]["name"], host_ip=cfg.node_ip,
                     netns="" if host_network else os.path.join(sandbox.NETNS_DIR, cfg.netns_prefix + self.uid),
                     grace=float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)))
        t0 = time.perf_counter()
        await sandbox.start_pause(sb, hostname=sandbox.pod_hostname(self.pod),
                                  log_path=os.path.join(self.dir, "pause.log"))
        sb.save(self.dir)
        self.sandbox = sb
        t1 = time.perf_counter()
        try:
            if not sb.host_network:
                sb.cni_result = await sandbox.cni_add(sb, self.pod, self.agent.cni)
        except Exception:
            await self.teardown_sandbox()
            raise
        sb.save(self.dir)
        self.etc = sandbox.write_pod_files(self.dir, self.pod, sb.pod_ip, cfg.dns)
        sa_dir = await satoken.write_files(self.agent.client, self.pod, self.dir)
        if sa_dir:
            self.etc["serviceaccount"] = sa_dir
        log.info("pod %s: sandbox %s ready in %.0f ms (pause %.0f ms, CNI ADD %.0f ms), IP %s", self.key,
                 os.path.basename(sb.netns) or "(host network)", (time.perf_counter() - t0) * 1000, (t1 - t0) * 1000,
                 (time.perf_counter() - t1) * 1000, sb.pod_ip)

    async def teardown_sandbox(self) -> None:
        sb = self.sandbox
        if sb is None:
            return
        try:
            if not sb.host_network:
                await sandbox.cni_del(sb, self.agent.cni)
        except (CniError, OSError) as e:
            log.warning("pod %s: CNI DEL: %s", self.key, e)
        await sandbox.stop_pause(sb)
        self.last_ip = sb.pod_ip or self.last_ip
        self.sandbox = None
        try:
            os.unlink(os.path.join(self.dir, "sandbox.json"))
        except FileNotFoundError:
            pass

    # ---- containers ----------------------------------------------------------------------

    def start_container(self, c: ctr.Container, cs: dict) -> None:
        sb = self.sandbox
        assert sb is not None
        if not self.etc:
            self.etc = sandbox.write_pod_files(self.dir, self.pod, sb.pod_ip, self.agent.cfg.dns)
            if satoken.existing(self.dir):
                self.etc["serviceaccount"] = satoken.existing(self.dir)
        if c.state == "terminated" or c.reason == "CrashLoopBackOff":
            c.restart_count += 1
        c.image = cs.get("image", "")
        try:
            env = ctr.container_env(self.pod, cs, pod_ip=sb.pod_ip, host_ip=self.agent.cfg.node_ip,
                                    hostname=sandbox.pod_hostname(self.pod), objects=self.env_objects,
                                    resource=self.resource_value)
            mounts = volumes.container_mounts(cs, self.volumes.prepared, lambda t: ctr.expand(t, env))
            old = self.stdio.pop(c.name, None)
            if old is not None:
                old.close()
            io = None
            if cs.get("stdin") or cs.get("tty"):
                io = Stdio(tty=bool(cs.get("tty")), stdin=bool(cs.get("stdin")), stdin_once=bool(cs.get("stdinOnce")),
                           log_file=ctr.log_path(self.dir, c.name, c.restart_count))
            try:
                ctr.start(c, cs, pod=self.pod, pod_dir=self.dir, netns=sb.netns, pause_pid=sb.pause_pid,
                          etc=self.etc, env=env, hide=self.agent.cfg.hide_paths, mounts=tuple(mounts), stdio=io)
            except BaseException:
                if io is not None:
                    io.close()
                raise
            if io is not None:
                self.stdio[c.name] = io
        except images.ImageError as e:
            if c.reason != "ErrImagePull":
                self.event("Warning", "Failed", f'Failed to pull image "{cs.get("image", "")}": {e}')
            c.state, c.reason, c.message = "waiting", "ErrImagePull", str(e)
            c.next_start = time.time() + 5.0
            c.save(self.dir)
            return
        except volumes.VolumeError as e:
            if c.message != str(e):
                self.event("Warning", "Failed", f"Error: {e}")
            c.state, c.reason, c.message = "waiting", "CreateContainerConfigError", str(e)
            c.next_start = time.time() + 2.0
            c.save(self.dir)
            self.retry_at = c.next_start
            return
        except ctr.ConfigError as e:
            # as the kubelet: the container waits (never starts without what it asked for)
            if c.reason != ctr.ConfigError.reason or c.message != str(e):
                self.event("Warning", "Failed", f"Error: {e}")
            c.state, c.reason, c.message = "waiting", ctr.ConfigError.reason, str(e)
            c.next_start = time.time() + 2.0
            c.save(self.dir)
            self.retry_at = c.next_start
            return
        except OSError as e:
            c.state, c.reason, c.message = "waiting", "CreateContainerError", str(e)
            c.next_start = time.time() + 5.0
            c.save(self.dir)
            return
        c.started = "startupProbe" not in cs
        c.ready = c.started and "readinessProbe" not in cs
        c.save(self.dir)
        self.event("Normal", "Pulled", f'Container image "{c.image}" already present on machine')
        self.event("Normal", "Created", f"Created container {c.name}")
        self.event("Normal", "Started", f"Started container {c.name}")
        self.start_probes(c)
        if (cs.get("lifecycle") or {}).get("postStart"):
            asyncio.create_task(self.post_start(c, cs, c.restart_count), name=f"postStart {self.key}/{c.name}")

    # ---- lifecycle hooks ----------------------------------------------------------------

    async def run_hook(self, c: ctr.Container, cs: dict, which: str, timeout: float) -> tuple[bool, str]:
        """Run the container's `which` hook (exec, httpGet, tcpSocket or sleep) once, within
        `timeout`: (success, message). Exec runs inside the container, as a probe's."""
        handler = (cs.get("lifecycle") or {}).get(which) or {}
        if "sleep" in handler:
            await asyncio.sleep(max(0.0, min(float(handler["sleep"].get("seconds") or 0), timeout)))
            return True, ""
        deadline = time.monotonic() + timeout
        while ctr.in_setup(c) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)   # exec needs the container's own command running
        probe = {**handler, "timeoutSeconds": max(1, int(deadline - time.monotonic()))}
        pod_ip = self.sandbox.pod_ip if self.sandbox else None
        try:
            return await asyncio.wait_for(
                probe_once(probe, container=cs, pod_ip=pod_ip, exec_argv=lambda cmd: ctr.exec_argv(c, cmd),
                           env=c.env), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            return False, f"{which} hook timed out after {timeout:.0f}s"

    async def post_start(self, c: ctr.Container, cs: dict, attempt: int) -> None:
        """postStart, beside the container's command (as the kubelet runs it); a failure kills
        the attempt, which then restarts under the pod's restartPolicy."""
        ok, msg = await self.run_hook(c, cs, "postStart", HOOK_TIMEOUT)
        if ok or not c.running or c.restart_count != attempt:
            return
        self.event("Warning", "FailedPostStartHook", f"PostStartHook failed: {msg}".strip())
        ctr.signal_container(c, signal.SIGKILL)
        self.wake.set()

    def start_probes(self, c: ctr.Container) -> None:
        self.stop_probes(c.name)
        cs = self.container_spec(c.name)
        tasks = []
        for kind, key in (("startup", "startupProbe"), ("readiness", "readinessProbe"), ("liveness", "livenessProbe")):
            probe = cs.get(key)
            if not probe:
                continue
            pod_ip = self.sandbox.pod_ip if self.sandbox else None

            async def attempt(probe=probe, cs=cs, pod_ip=pod_ip):
                return await probe_once(probe, container=cs, pod_ip=pod_ip,
                                        exec_argv=lambda cmd: ctr.exec_argv(c, cmd), env=c.env)

            gate = (lambda: True) if kind == "startup" else (lambda: c.started)
            w = ProbeWorker(kind, probe, attempt=attempt, gate=gate,
                            on_change=lambda k, ok, msg, c=c: self.on_probe(c, k, ok, msg))
            tasks.append(asyncio.create_task(w.run(), name=f"{kind} probe {self.key}/{c.name}"))
        self.probes[c.name] = tasks

    def stop_probes(self, name: str) -> None:
        for t in self.probes.pop(name, []):
            t.cancel()

    def on_probe(self, c: ctr.Container, kind: str, ok: bool, message: str) -> None:
        if not c.running or c.stopping:
            return
        if not ok:
            self.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message.strip()}"[:1024])
        if kind == "readiness":
            c.ready = ok
        elif kind == "startup" and ok:
            c.started = True
            c.ready = "readinessProbe" not in self.container_spec(c.name)
        elif not ok:  # liveness or startup failed: restart the container
            log.info("pod %s: container %s failed %s probe (%s), restarting", self.key, c.name, kind, message.strip())
            c.ready = False
            self.event("Normal", "Killing", f"Container {c.name} failed {kind} probe, will be restarted")
            asyncio.create_task(self.stop_container(c, self.grace()))
        c.save(self.dir)
        self.wake.set()

    def on_exit(self, c: ctr.Container) -> None:
        """Called by the agent's poll loop once a running container has exited."""
        self.stop_probes(c.name)
        c.stopping = False
        ran = (c.finished_at or 0) - (c.started_at or 0)
        if ran >= 600:
            c.next_start = 0.0
        else:
            c.next_start = time.time() + ctr.backoff_delay(c.restart_count, base=self.agent.cfg.backoff_base)
        c.save(self.dir)
        self.wake.set()

    def grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod.get("spec") or {}
        g = meta.get("deletionGracePeriodSeconds")
        if g is None:
            g = spec.get("terminationGracePeriodSeconds", 30)
        return float(g)

    async def stop_container(self, c: ctr.Container, grace: float) -> None:
        if not c.running:
            return
        c.stopping = True
        self.stop_probes(c.name)
        deadline = time.monotonic() + grace
        cs = self.container_spec(c.name)
        if (cs.get("lifecycle") or {}).get("preStop") and grace > 0:
            # preStop runs inside the grace period, then SIGTERM; a hook that used it all up
            # leaves the kubelet's 2 s for the signal
            ok, msg = await self.run_hook(c, cs, "preStop", grace)
            if not ok:
                self.event("Warning", "FailedPreStopHook", f"PreStopHook failed: {msg}".strip())
            deadline = max(deadline, time.monotonic() + 2.0)
        while ctr.in_setup(c) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)   # a SIGTERM now would be lost (see ctr.in_setup)
        delivered = ctr.handles(c, signal.SIGTERM)
        ctr.signal_container(c, signal.SIGTERM)
        # a command that just started may install its SIGTERM handler a moment later: the
        # signal sent before was dropped (PID 1), so it is sent once more when the handler appears
        watch_until = time.monotonic() + 2.0
        while procs.alive(c.wrapper_pid, c.wrapper_start):
            if not delivered and time.monotonic() < watch_until and ctr.handles(c, signal.SIGTERM):
                delivered = True
                ctr.signal_container(c, signal.SIGTERM)
            if time.monotonic() >= deadline:
                ctr.signal_container(c, signal.SIGKILL)
                deadline = time.monotonic() + 5.0
            ctr.reap()
            await asyncio.sleep(0.02)

    async def kill_containers(self, grace: float) -> None:
        running = [c for c in self.containers.values() if c.running]
        for c in running:
            self.event("Normal", "Killing", f"Stopping container {c.name}")
        await asyncio.gather(*(self.stop_container(c, grace) for c in running))
        for c in running:
            if ctr.poll_exit(c, self.dir):
                c.last_terminated = None
                c.save(self.dir)

    async def terminate(self) -> None:
        """Graceful stop of every container, then CNI DEL, netns removal, and the final
        delete confirmation (grace 0) to the API server."""
        grace = self.grace()
        for name in list(self.probes):
            self.stop_probes(name)
        await self.kill_containers(grace)
        if self.sandbox is None:
            self.sandbox = Sandbox.load(self.dir)
        await self.teardown_sandbox()
        volumes.teardown_dir(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        if not self.gone:
            meta = self.pod["metadata"]
            try:
                await self.agent.client.delete("pods", meta["name"], namespace=meta.get("namespace"),
                                               grace_period_seconds=0, preconditions={"uid": self.uid})
            except (NotFound, Conflict):
                pass
        log.info("pod %s: terminated and cleaned up", self.key)

    # ---- status --------------------------------------------------------------------------

    def status(self) -> dict:
        sb = self.sandbox
        start = (self.last_status or {}).get("startTime") or (format_time(sb.created) if sb else None)
        view = podstatus.SandboxView(ready=sb is not None and sb.network_ready,
                                     pod_ip=sb.pod_ip if sb else self.last_ip, host_ip=self.agent.cfg.node_ip,
                                     start_time=start)
        def views(specs: list[dict]) -> list[podstatus.ContainerView]:
            return [(self.containers.get(cs["name"]) or ctr.Container(cs["name"], cs.get("image", ""))).view()
                    for cs in specs]
        prev = self.last_status or self.pod.get("status") or {}
        return podstatus.compute(self.pod, view, views(self.spec_containers), now=format_time(),
                                 previous=prev, init_containers=views(self.init_specs) if self.init_specs else None)

    async def write_status(self) -> None:
        st = self.status()
        if not podstatus.changed(self.last_status, st):
            return
        meta = self.pod["metadata"]
        try:
            await self.agent.client.patch("pods", meta["name"], {"status": st}, namespace=meta.get("namespace"),
                                          subresource="status", patch_type="merge")
            self.last_status = st
            self.agent.status_writes += 1
        except NotFound:
            pass


class NodeAgent:
    def __init__(self, client: ApiClient, cfg: Config) -> None:
        self.client = client
        self.cfg = cfg
        self.cni = CniSettings(conf_dir=cfg.cni_conf_dir, bin_dir=cfg.cni_bin_dir)
        self.workers: dict[str, PodWorker] = {}
        self.pod_informer = Informer(client, "pods", field_selector=f"spec.nodeName={cfg.node_name}")
        self.node_informer = Informer(client, "nodes")
        self.pod_cidr: str | None = None
        self.status_writes = 0
        self.ready = asyncio.Event()
        self._routes_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.server = None
        self.recorder: EventRecorder | None = EventRecorder(client, "kubelet", host=cfg.node_name)

    # ---- node ----------------------------------------------------------------------------

    async def register(self) -> dict:
        cfg = self.cfg
        arch = node_info(cfg.node_name)["architecture"]
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": cfg.node_name,
                             "labels": {"kubernetes.io/hostname": cfg.node_name, "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
                                        "beta.kubernetes.io/arch": arch}},
                "spec": {}, "status": node_status(cfg, now=format_time())}
        try:
            node = await self.client.create("nodes", body)
        except AlreadyExists:
            node = await self.client.get("nodes", cfg.node_name)
        return await self.client.patch("nodes", cfg.node_name, {"status": node_status(cfg, now=format_time())},
                                       subresource="status", patch_type="merge") or node

    async def wait_pod_cidr(self) -> str:
        delay = 0.1
        while True:
            node = await self.client.get("nodes", self.cfg.node_name)
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                return cidr
            log.info("waiting for node %s to get spec.podCIDR", self.cfg.node_name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def lease_loop(self) -> None:
        name = self.cfg.node_name
        while True:
            try:
                spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": format_micro_time()}
                try:
                    await self.client.patch("leases", name, {"spec": spec}, namespace=LEASE_NAMESPACE)
                except NotFound:
                    node = await self.client.get("nodes", name)
                    await self.client.create("leases", {
                        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": name, "namespace": LEASE_NAMESPACE,
                                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                          "uid": node["metadata"]["uid"]}]},
                        "spec": spec}, namespace=LEASE_NAMESPACE)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("lease renewal failed: %s", e)
            await asyncio.sleep(self.cfg.lease_seconds)

    async def node_status_loop(self) -> None:
        while True:
            await asyncio.sleep(300)
            try:
                await self.client.patch("nodes", self.cfg.node_name,
                                        {"status": node_status(self.cfg, now=format_time())},
                                        subresource="status", patch_type="merge")
            except Exception as e:
                log.warning("node status update failed: %s", e)

    def sync_routes(self) -> None:
        self._routes_dirty.set()

    async def routes_loop(self) -> None:
        """Debounced: informer events mark the routes dirty; pyroute2 works in a thread."""
        while True:
            await self._routes_dirty.wait()
            self._routes_dirty.clear()
            try:
                want = routes.desired_routes(self.node_informer.store.list(), self_name=self.cfg.node_name)
                added, removed = await asyncio.to_thread(routes.sync, want)
                if added or removed:
                    log.info("routes: +%s -%s", added, removed)
            except Exception as e:
                log.warning("route sync failed: %s", e)
                await asyncio.sleep(1.0)
                self._routes_dirty.set()

    # ---- pods ----------------------------------------------------------------------------

    def on_pod(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        w = self.workers.get(uid)
        if w is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and \
                    not os.path.isdir(os.path.join(self.cfg.pods_dir, uid)) and \
                    not pod["metadata"].get("deletionTimestamp"):
                return  # finished before we (re)started: nothing to run
            w = self.workers[uid] = PodWorker(self, pod)
            w.start()
        else:
            w.update(pod)

    def on_pod_deleted(self, pod: dict) -> None:
        w = self.workers.get(pod["metadata"]["uid"])
        if w is not None:
            w.deleted()

    def forget(self, w: PodWorker) -> None:
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]

    def find(self, namespace: str, name: str) -> PodWorker | None:
        for w in self.workers.values():
            m = w.pod["metadata"]
            if m["name"] == name and m.get("namespace", "default") == namespace and not w.done:
                return w
        return None

    def adopt(self) -> None:
        """Re-adopt what a previous agent left under the root dir: running pods keep running;
        pods deleted meanwhile are cleaned up."""
        os.makedirs(self.cfg.pods_dir, exist_ok=True)
        by_uid = {p["metadata"]["uid"]: p for p in self.pod_informer.store.list()}
        for uid in os.listdir(self.cfg.pods_dir):
            d = os.path.join(self.cfg.pods_dir, uid)
            sb = Sandbox.load(d)
            pod = by_uid.get(uid)
            stub = pod or {"metadata": {"uid": uid, "name": sb.name if sb else uid,
                                        "namespace": sb.namespace if sb else "default"},
                             "spec": {"terminationGracePeriodSeconds": sb.grace if sb else 30}}
            adopted = {}
            pspec = (pod or {}).get("spec") or {}
            for cs in (pspec.get("initContainers") or []) + (pspec.get("containers") or []):
                c = ctr.Container.load(d, cs["name"])
                if c is not None:
                    if c.running and ctr.poll_exit(c, d):
                        log.info("container %s of pod %s exited while the agent was down", c.name, uid)
                    adopted[c.name] = c
            if pod is None and os.path.isdir(os.path.join(d, "containers")):
                for fn in os.listdir(os.path.join(d, "containers")):
                    if fn.endswith(".json"):
                        c = ctr.Container.load(d, fn[:-5])
                        if c is not None:
                            adopted[c.name] = c
            w = PodWorker(self, stub, sb=sb if sb and sb.alive() else None, adopted=adopted)
            if sb is not None and w.sandbox is None:
                w.sandbox = sb  # dead sandbox: sync() recreates it, terminate() tears it down
            if w.sandbox is not None and w.sandbox.network_ready:
                w.etc = {n: os.path.join(d, "etc", n) for n in ("resolv.conf", "hosts", "hostname")}
                if satoken.existing(d):
                    w.etc["serviceaccount"] = satoken.existing(d)
                w.check_network = pod is not None
            if pod is None:
                w.gone = True
            self.workers[uid] = w
            log.info("re-adopted pod %s (%s)", w.key, "deleted meanwhile" if pod is None else "running")
            w.start()

    async def gc_orphans(self) -> None:
        """Netns files, veths and IP allocations of pods this node no longer knows."""
        known = set(self.workers)
        prefix = self.cfg.netns_prefix
        if prefix:
            try:
                names = os.listdir(sandbox.NETNS_DIR)
            except FileNotFoundError:
                names = []
            for n in names:
                if n.startswith(prefix) and n[len(prefix):] not in known:
                    uid = n[len(prefix):]
                    log.info("GC orphan netns %s", n)
                    sb = Sandbox(uid=uid, namespace="", name=uid, netns=os.path.join(sandbox.NETNS_DIR, n))
                    try:
                        await sandbox.cni_del(sb, self.cni)
                    except (CniError, OSError) as e:
                        log.warning("GC CNI DEL %s: %s", uid, e)
                    sandbox.release_netns(sb.netns)
        # IP allocations: host-local style files named by address, holding the container id.
        netdir = os.path.join(self.cfg.ipam_dir, sandbox.NETWORK_NAME)
        if os.path.isdir(netdir):
            for fn in os.listdir(netdir):
                if fn.startswith(("last_reserved", "lock")):
                    continue
                cid = _read(os.path.join(netdir, fn)).split("\n")[0].strip()
                if cid and cid not in known:
                    log.info("GC orphan IP allocation %s (%s)", fn, cid)
                    sb = Sandbox(uid=cid, namespace="", name=cid, netns="")
                    try:
                        await sandbox.cni_del(sb, self.cni)
                    except (CniError, OSError) as e:
                        log.warning("GC CNI DEL %s: %s", cid, e)
        # veths on the bridge that belong to no known pod
        try:
            want = {host_veth_name(uid, self.cni.ifname) for uid in known}
            for name in await asyncio.to_thread(gc_veths, want):
                log.info("GC orphan veth %s", name)
        except Exception as e:
            log.warning("veth GC: %s", e)

    def rotate_logs(self) -> None:
        cfg = self.cfg
        for w in list(self.workers.values()):
            for c in list(w.containers.values()):
                if c.running:
                    try:
                        ctr.rotate_log(ctr.log_path(w.dir, c.name, c.restart_count),
                                       max_size=cfg.container_log_max_size, max_files=cfg.container_log_max_files)
                    except OSError as e:
                        log.warning("pod %s: rotating the log of %s: %s", w.key, c.name, e)

    async def poll_loop(self) -> None:
        """One loop notices every container exit (children or re-adopted alike) and, every
        few seconds, rotates the logs that outgrew containerLogMaxSize."""
        ticks = 0
        while True:
            ticks += 1
            if ticks % 30 == 0:
                self.rotate_logs()
            ctr.reap()
            sandbox.reap_children()
            for w in list(self.workers.values()):
                for c in list(w.containers.values()):
                    if c.running and not c.init_pid and ctr.find_init(c):
                        c.save(w.dir)  # a restarted agent signals and execs by this pid
                    if c.running and ctr.poll_exit(c, w.dir):
                        w.on_exit(c)
            await asyncio.sleep(0.1)

    # ---- main ----------------------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.cfg
        os.makedirs(cfg.pods_dir, exist_ok=True)
        try:
            if os.readlink("/proc/self/ns/mnt") != os.readlink("/proc/1/ns/mnt"):
                log.warning("running in a private mount namespace (ip netns exec?): the pods' /run/netns "
                            "files will be invisible outside it; run under `nsenter --net=...` instead")
        except OSError:
            pass
        delay = 0.2
        while True:  # the API server may not be up yet (boot order is not guaranteed)
            try:
                await self.register()
                break
            except (ApiError, OSError, httpx.HTTPError) as e:
                log.warning("registering node %s failed: %s; retrying in %.1fs", cfg.node_name, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        log.info("node %s registered (InternalIP %s)", cfg.node_name, cfg.node_ip)
        self._tasks.append(asyncio.create_task(self.lease_loop(), name="lease"))
        self.pod_cidr = await self.wait_pod_cidr()
        self.cni.ensure(self.pod_cidr, data_dir=cfg.ipam_dir, cluster_cidr=cfg.cluster_cidr)
        log.info("pod CIDR %s; CNI conf dir %s", self.pod_cidr, cfg.cni_conf_dir)
        self.node_informer.add_handler(on_add=lambda n: self.sync_routes(),
                                       on_update=lambda o, n: self.sync_routes(),
                                       on_delete=lambda n: self.sync_routes())
        self._tasks.append(asyncio.create_task(self.routes_loop(), name="routes"))
        self._tasks.append(asyncio.create_task(self.node_informer.run(), name="node informer"))
        self._tasks.append(asyncio.create_task(self.pod_informer.run(), name="pod informer"))
        await self.pod_informer.wait_synced()
        self.adopt()
        await self.gc_orphans()
        self.pod_informer.add_handler(on_add=self.on_pod, on_update=lambda o, n: self.on_pod(n),
                                      on_delete=self.on_pod_deleted)
        self._tasks.append(asyncio.create_task(self.poll_loop(), name="poll"))
        self._tasks.append(asyncio.create_task(self.node_status_loop(), name="node status"))
        if cfg.serve:
            from .server import serve
            self._tasks.append(asyncio.create_task(serve(self), name="server"))
        self.ready.set()
        log.info("node agent %s ready", cfg.node_name)
        await asyncio.gather(*self._tasks)

    async def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        for t in self._tasks:
            t.cancel()
        for w in list(self.workers.values()):
            if w.task:
                w.task.cancel()
            for n in list(w.probes):
                w.stop_probes(n)
