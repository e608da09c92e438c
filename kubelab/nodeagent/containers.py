"""Containers as processes in the pod's namespaces.

A container is this chain of processes (all from util-linux and sh, nothing to compile):

    sh -c '"$@"; echo $? > EXIT'                 records the exit code, so a restarted agent
      nsenter --net=NETNS --uts --ipc            that is not its parent still learns it
        unshare --mount --pid --fork --mount-proc --kill-child
          sh -c 'mount --bind ...; cd WD; exec "$@"'   → the command, PID 1 of its own PID namespace

so the container has the pod's network/UTS/IPC namespaces, its own mount namespace with the
pod's resolv.conf, hosts and hostname bind-mounted over /etc, and its own PID namespace: a
`kill 1` in it reaches only its own PID 1. With `shareProcessNamespace: true` it joins the
pod's PID namespace instead (nsenter --pid), where the pause is PID 1 and reaps orphans.
stdout and stderr go to a log file per attempt.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from kubelab.timestamps import format_time

from . import images, procs
from .podstatus import ContainerView

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECORD_SCRIPT = 'f=$1; shift; "$@"; echo $? > "$f"'
INIT_SCRIPT = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && '
               'mount --bind "$3" /etc/hostname && cd "$4" && shift 4 && exec "$@"')
# with the pod's service-account files ($5, see satoken): also bound, read-only, where client-go looks
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
INIT_SCRIPT_SA = INIT_SCRIPT.replace(
    '&& cd "$4" && shift 4', f'&& mkdir -p {SA_MOUNT} && mount --bind -o ro "$5" {SA_MOUNT} && cd "$4" && shift 5')


# ---- pure ------------------------------------------------------------------------------

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined names replaced, `$$` → `$`, others kept."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _REF.sub(sub, text)


def field_ref(pod: dict, path: str, *, pod_ip: str | None, host_ip: str | None) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    return {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip or "", "status.podIPs": pod_ip or "", "status.hostIP": host_ip or "",
        "status.hostIPs": host_ip or "",
    }.get(path, "")


def container_env(pod: dict, container: dict, *, pod_ip: str | None, host_ip: str | None,
                  hostname: str) -> dict[str, str]:
    """The process environment: the runtime's defaults, the `kubernetes` Service variables,
    then the container's `env` in order (later entries may refer to earlier ones)."""
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": hostname,
           "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
           "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
           "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
           "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}
    if container.get("tty"):
        env["TERM"] = "xterm"
    for e in container.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        if "value" in e:
            env[name] = expand(str(e.get("value") or ""), env)
        elif (e.get("valueFrom") or {}).get("fieldRef"):
            env[name] = field_ref(pod, e["valueFrom"]["fieldRef"].get("fieldPath", ""),
                                  pod_ip=pod_ip, host_ip=host_ip)
        else:
            env.setdefault(name, "")
    return env


def nginx_config(prefix: str) -> str:
    """Debian's default site, with every per-process path under the pod's own prefix."""
    return f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 80 default_server;
        root /var/www/html;
        index index.html index.htm index.nginx-debian.html;
        server_name _;
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


def argv_for(container: dict, env: dict[str, str], *, nginx_prefix: str) -> list[str]:
    """The command line: catalogue + command/args, `$(VAR)` expanded. Raises ImageError."""
    argv = images.resolve(container.get("image", ""), container.get("command"), container.get("args"))
    out: list[str] = []
    for a in argv:
        if a == images.NGINX_MARKER:
            out += ["nginx", "-p", nginx_prefix, "-e", "stderr", "-c", f"{nginx_prefix}/nginx.conf",
                    "-g", "daemon off;"]
        else:
            out.append(expand(a, env))
    return out


def backoff_delay(restarts: int, *, base: float, cap: float = 300.0) -> float:
    """CrashLoopBackOff: the first restart is immediate, then base, 2·base, 4·base … ≤ cap."""
    if restarts <= 0:
        return 0.0
    return min(base * (2 ** (restarts - 1)), cap)


# ---- the record of one container (saved per container under the pod dir) ----------------

@dataclass
class Container:
    name: str
    image: str
    restart_count: int = 0
    container_id: str = ""
    state: str = "waiting"                 # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    wrapper_pid: int = 0
    wrapper_start: int = 0
    init_pid: int = 0                      # host pid of the container's PID 1
    init_start: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    last_terminated: dict[str, Any] | None = None
    next_start: float = 0.0                # CrashLoopBackOff: not before this time
    ready: bool = False
    started: bool = False                  # startup probe passed (or none)
    env: dict[str, str] = field(default_factory=dict)
    stopping: bool = False

    @property
    def running(self) -> bool:
        return self.state == "running"

    def view(self) -> ContainerView:
        if self.state == "running":
            state: dict[str, Any] = {"running": {"startedAt": format_time(self.started_at)}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated()}
        else:
            w: dict[str, Any] = {"reason": self.reason}
            if self.message:
                w["message"] = self.message
            state = {"waiting": w}
        last = {"terminated": self.last_terminated} if self.last_terminated else {}
        return ContainerView(name=self.name, image=self.image, image_id=images.image_id(self.image),
                             container_id=self.container_id, restart_count=self.restart_count,
                             ready=self.ready and self.running, started=self.running and self.started,
                             state=state, last_state=last)

    def terminated(self) -> dict[str, Any]:
        code = self.exit_code if self.exit_code is not None else 137
        t: dict[str, Any] = {"exitCode": code, "reason": self.reason or ("Completed" if code == 0 else "Error"),
                             "startedAt": format_time(self.started_at) if self.started_at is not None else None,
                             "finishedAt": format_time(self.finished_at) if self.finished_at is not None else None}
        if self.message:
            t["message"] = self.message
        if self.container_id:
            t["containerID"] = self.container_id
        return t

    def save(self, pod_dir: str) -> None:
        d = os.path.join(pod_dir, "containers")
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f"{self.name}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, os.path.join(d, f"{self.name}.json"))

    @classmethod
    def load(cls, pod_dir: str, name: str) -> "Container | None":
        try:
            with open(os.path.join(pod_dir, "containers", f"{name}.json")) as f:
                return cls(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None


def log_path(pod_dir: str, name: str, restart_count: int) -> str:
    return os.path.join(pod_dir, "logs", name, f"{restart_count}.log")


def exit_path(pod_dir: str, name: str) -> str:
    return os.path.join(pod_dir, "containers", f"{name}.exit")


# ---- I/O -------------------------------------------------------------------------------

_popens: set[subprocess.Popen] = set()


def reap() -> None:
    for p in list(_popens):
        if p.poll() is not None:
            _popens.discard(p)


def start(c: Container, spec: dict, *, pod: dict, pod_dir: str, netns: str, pause_pid: int,
          etc: dict[str, str], env: dict[str, str]) -> None:
    """Start one attempt of container `c` (raises images.ImageError for an unknown image)."""
    prefix = os.path.join(pod_dir, "nginx", c.name)
    argv = argv_for(spec, env, nginx_prefix=prefix)
    if argv and argv[0] == "nginx":
        os.makedirs(prefix, exist_ok=True)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(nginx_config(prefix))
    lp = log_path(pod_dir, c.name, c.restart_count)
    os.makedirs(os.path.dirname(lp), exist_ok=True)
    for old in os.listdir(os.path.dirname(lp)):   # keep this attempt and the previous one
        try:
            if int(old.split(".")[0]) < c.restart_count - 1:
                os.unlink(os.path.join(os.path.dirname(lp), old))
        except ValueError:
            pass
    ep = exit_path(pod_dir, c.name)
    os.makedirs(os.path.dirname(ep), exist_ok=True)
    try:
        os.unlink(ep)
    except FileNotFoundError:
        pass
    workdir = spec.get("workingDir") or "/"
    enter = ["nsenter", f"--ipc=/proc/{pause_pid}/ns/ipc"]
    if netns:  # not a hostNetwork pod: the pod's own network and UTS namespaces
        enter += [f"--net={netns}", f"--uts=/proc/{pause_pid}/ns/uts"]
    if (pod.get("spec") or {}).get("shareProcessNamespace"):
        # the pod's PID namespace: the pause is PID 1 there and reaps every orphan
        isolate = [*enter, f"--pid=/proc/{pause_pid}/ns/pid", "--", "unshare", "--mount", "--mount-proc", "--"]
    else:
        isolate = [*enter, "--", "unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "--"]
    sa = [etc["serviceaccount"]] if etc.get("serviceaccount") else []
    cmd = ["sh", "-c", RECORD_SCRIPT, "kubelab-container", ep, *isolate,
           "sh", "-c", INIT_SCRIPT_SA if sa else INIT_SCRIPT, "kubelab-init", etc["resolv.conf"], etc["hosts"],
           etc["hostname"], workdir, *sa, *argv]
    fd = os.open(lp, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env,
                             start_new_session=True, close_fds=True, cwd="/")
    finally:
        os.close(fd)
    _popens.add(p)
    c.container_id = "kubelab://" + uuid.uuid4().hex
    c.wrapper_pid, c.wrapper_start = p.pid, procs.start_time(p.pid) or 0
    c.init_pid = c.init_start = 0
    c.state, c.reason, c.message = "running", "", ""
    c.started_at, c.finished_at, c.exit_code = time.time(), None, None
    c.ready = False
    c.started = False
    c.stopping = False
    c.env = env


def find_init(c: Container) -> int:
    """The host pid of the container's PID 1 (wrapper → unshare → init), once it exists."""
    if c.init_pid and procs.alive(c.init_pid, c.init_start):
        return c.init_pid
    for u in procs.children(c.wrapper_pid):
        kids = procs.children(u)
        if kids:
            c.init_pid, c.init_start = kids[0], procs.start_time(kids[0]) or 0
            return c.init_pid
    return 0


def poll_exit(c: Container, pod_dir: str) -> bool:
    """If the running attempt has ended, record how (exit code from the recorder's file)."""
    if c.state != "running":
        return False
    if procs.alive(c.wrapper_pid, c.wrapper_start):
        return False
    reap()
    code: int | None = None
    try:
        with open(exit_path(pod_dir, c.name)) as f:
            code = int(f.read().strip())
    except (OSError, ValueError):
        code = None
    c.state = "terminated"
    c.exit_code = code if code is not None else 137
    c.finished_at = time.time()
    if c.reason not in ("Error", "Completed", "OOMKilled"):
        c.reason = ""
    if not c.reason:
        c.reason = "Completed" if c.exit_code == 0 else "Error"
    c.ready = False
    c.init_pid = 0
    return True


def signal_container(c: Container, sig: int) -> bool:
    """Signal the container's PID 1 (never the host's: its pid is a host pid > 1 we started).

    SIGKILL goes first to the `unshare` parent, whose --kill-child then takes PID 1 down:
    killed that way the recorder sees 137, whereas unshare reports a PID 1 killed under it
    as exit 1 (util-linux fails to re-raise the signal)."""
    sent = False
    if sig == signal.SIGKILL:
        for u in procs.children(c.wrapper_pid):
            sent = procs.kill(u, signal.SIGKILL) or sent
    pid = find_init(c)
    if pid:
        sent = procs.kill(pid, sig, c.init_start) or sent
    return sent


def exec_argv(c: Container, command: list[str]) -> list[str]:
    """`nsenter` into a running container (all its namespaces, its cwd) to run `command`."""
    pid = find_init(c)
    if not pid:
        raise RuntimeError(f"container {c.name} is not running")
    return ["nsenter", "-t", str(pid), "--net", "--uts", "--ipc", "--mount", "--pid", "-w", "--", *command]
