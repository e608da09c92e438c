"""Containers as processes in the pod's namespaces.

A container is this chain of processes (all from util-linux and sh, nothing to compile):

    sh -c '"$@"; echo $? > EXIT'                 records the exit code, so a restarted agent
      nsenter --net=NETNS --uts --ipc            that is not its parent still learns it
        kubelab-init (perl: unshare --mount --pid --fork --kill-child, 128+signal)
          python -I -S -c ROOTFS_BOOT SPEC -- setpriv ... -- COMMAND
                                                 → the command, PID 1 of its own PID namespace

so the container has the pod's network/UTS/IPC namespaces, its own PID namespace (a `kill 1`
in it reaches only its own PID 1) and its own mount namespace, where `rootfs` builds its `/`:
the node's files read-only without the node's secrets, the pod's resolv.conf, hosts, hostname,
service-account token and volumes bound in, then pivots into it and runs the command with a
container's capabilities and the securityContext's user (see rootfs). With
`shareProcessNamespace: true` it joins the pod's PID namespace instead (nsenter --pid), where
the pause is PID 1 and reaps orphans. stdout and stderr go to a log file per attempt.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from kubelab.timestamps import format_time

from . import images, procs, rootfs
from .podstatus import ContainerView

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECORD_SCRIPT = 'f=$1; shift; "$@"; echo $? > "$f"'
# `unshare --mount --pid --fork --kill-child`, except that a PID 1 killed by a signal is
# reported as 128+signal (util-linux 2.38's unshare fails to re-raise it and exits 1, so a
# SIGKILLed container would show exit code 1 instead of 137). Perl: the pause's language.
FORK_SCRIPT = r"""
$0 = "kubelab-init";
syscall($ARGV[0], 0x20020000) == 0 or die "kubelab: unshare: $!\n";   # CLONE_NEWNS | CLONE_NEWPID
my $pid = fork() // die "kubelab: fork: $!\n";
if ($pid == 0) {
    syscall($ARGV[1], 1, 9);                          # PR_SET_PDEATHSIG SIGKILL (--kill-child)
    exec { $ARGV[2] } @ARGV[2 .. $#ARGV] or die "kubelab: exec: $!\n";
}
$SIG{$_} = "IGNORE" for qw(INT TERM HUP QUIT);
waitpid($pid, 0);
exit(($? & 127) ? 128 + ($? & 127) : $? >> 8);
"""
SYSCALLS = {"x86_64": (272, 157), "aarch64": (97, 167)}   # (unshare, prctl)
# the pod's service-account files (see satoken), bound read-only where client-go looks
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
NGINX_PREFIX = "/run/nginx"   # inside the container: the pod's nginx dir is bound there
KUBELAB_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the container's first process: isolated (-I: no PYTHON* variables), without `site` (-S:
# its .pth files cost more than the rest of the start-up); kubelab found by its own path
ROOTFS_BOOT = (f"import sys; sys.path.insert(0, {os.path.dirname(KUBELAB_PACKAGE)!r}); "
               "from kubelab.nodeagent.rootfs import main; sys.exit(main(sys.argv[1:]))")
# what the catalogue's Python images (agnhost, kubelab/dns) need, even below a hidden path
# (a venv and its interpreter under /root): the interpreter, its prefixes, this package
PYTHON_PATHS = tuple(dict.fromkeys((sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                                    KUBELAB_PACKAGE)))


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


def env_sources(container: dict) -> set[tuple[str, str]]:
    """The (resource, name) pairs a container's env and envFrom read."""
    out: set[tuple[str, str]] = set()
    for e in container.get("envFrom") or []:
        if e.get("configMapRef"):
            out.add(("configmaps", e["configMapRef"].get("name", "")))
        if e.get("secretRef"):
            out.add(("secrets", e["secretRef"].get("name", "")))
    for e in container.get("env") or []:
        vf = e.get("valueFrom") or {}
        if vf.get("configMapKeyRef"):
            out.add(("configmaps", vf["configMapKeyRef"].get("name", "")))
        if vf.get("secretKeyRef"):
            out.add(("secrets", vf["secretKeyRef"].get("name", "")))
    return out


_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _object_data(resource: str, obj: dict) -> dict[str, str]:
    import base64
    if resource == "configmaps":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    out = {}
    for k, v in (obj.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v).decode("utf-8", "replace")
        except ValueError:
            out[k] = ""
    return out


def container_env(pod: dict, container: dict, *, pod_ip: str | None, host_ip: str | None,
                  hostname: str, objects: dict[tuple[str, str], dict | None] | None = None,
                  resource=None) -> dict[str, str]:
    """The process environment, in the kubelet's order: the runtime's defaults and the
    `kubernetes` Service variables, then `envFrom` (with `prefix`), then `env` in order (later
    entries may refer to earlier ones with `$(VAR)`). `objects` holds the ConfigMaps and
    Secrets read (None: not found). A missing object or key that is not optional raises
    ConfigError with the kubelet's message: the container never starts without it."""
    objects = objects or {}
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": hostname,
           "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
           "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
           "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
           "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}
    if container.get("tty"):
        env["TERM"] = "xterm"
    kinds = {"configmaps": ("configmap", "ConfigMap"), "secrets": ("secret", "Secret")}
    for e in container.get("envFrom") or []:
        for ref_key, res in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = e.get(ref_key)
            if not ref:
                continue
            obj = objects.get((res, ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kinds[res][0]} "{ref.get("name", "")}" not found')
            for k, v in _object_data(res, obj).items():
                name = (e.get("prefix") or "") + k
                if _ENV_NAME.match(name):   # upstream skips invalid names (with an event)
                    env[name] = v
    for e in container.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        vf = e.get("valueFrom") or {}
        if "value" in e or not vf:
            env[name] = expand(str(e.get("value") or ""), env)
        elif vf.get("fieldRef"):
            env[name] = field_ref(pod, vf["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip)
        elif vf.get("resourceFieldRef"):
            env[name] = resource(vf["resourceFieldRef"], container.get("name", "")) if resource else ""
        else:
            for ref_key, res in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                ref = vf.get(ref_key)
                if not ref:
                    continue
                obj_name, key = ref.get("name", ""), ref.get("key", "")
                obj = objects.get((res, obj_name))
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f'{kinds[res][0]} "{obj_name}" not found')
                data = _object_data(res, obj)
                if key not in data:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f"couldn't find key {key} in {kinds[res][1]} {ns}/{obj_name}")
                env[name] = data[key]
    return env


class ConfigError(Exception):
    """The container cannot be started as specified (status: waiting, CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


@dataclass(frozen=True)
class Privileges:
    """Who the container's processes are, from the pod's and the container's securityContext
    (the container's wins, field by field, as upstream)."""
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    add_caps: tuple[str, ...] = ()
    drop_caps: tuple[str, ...] = ()
    no_new_privs: bool = False
    read_only_root: bool = False

    def setpriv(self) -> list[str]:
        return rootfs.setpriv_argv(uid=self.uid, gid=self.gid, groups=list(self.groups),
                                   add_caps=list(self.add_caps), drop_caps=list(self.drop_caps),
                                   no_new_privs=self.no_new_privs)


def format_pod(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', 'default')}({meta.get('uid', '')})"


def privileges(pod: dict, container: dict) -> Privileges:
    """Raises ConfigError with the kubelet's message when runAsNonRoot cannot hold (every
    catalogue image runs as root unless runAsUser says otherwise)."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    pick = lambda k: csc.get(k) if csc.get(k) is not None else psc.get(k)  # noqa: E731
    uid, gid, non_root = pick("runAsUser"), pick("runAsGroup"), pick("runAsNonRoot")
    if non_root:
        if uid == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy (pod: \"{format_pod(pod)}\", "
                              f"container: {container.get('name', '')})")
        if uid is None:
            raise ConfigError(f"container has runAsNonRoot and image will run as root (pod: \"{format_pod(pod)}\", "
                              f"container: {container.get('name', '')})")
    groups = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups.append(int(psc["fsGroup"]))
    caps = csc.get("capabilities") or {}
    return Privileges(uid=uid, gid=gid,   # no runAsGroup: group 0, as a runtime does for a bare uid
                      groups=tuple(dict.fromkeys(groups)),
                      add_caps=tuple(caps.get("add") or ()), drop_caps=tuple(caps.get("drop") or ()),
                      no_new_privs=csc.get("allowPrivilegeEscalation") is False,
                      read_only_root=bool(csc.get("readOnlyRootFilesystem")))


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
    setpriv: list[str] = field(default_factory=list)   # exec and probes run as the container does

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


def rotate_log(path: str, *, max_size: int, max_files: int) -> bool:
    """The kubelet's containerLogMaxSize/containerLogMaxFiles: once the attempt's log is over
    `max_size`, it is copied to `<path>.1` (older copies shift to .2 …, at most `max_files`
    files in all) and emptied in place. The container keeps its O_APPEND descriptor, so it
    simply writes at the start of the emptied file (copy-and-truncate: what arrives between
    the copy and the truncation is lost, a few bytes at most)."""
    try:
        if os.path.getsize(path) <= max_size:
            return False
    except OSError:
        return False
    keep = max(max_files - 1, 1)
    for k in range(keep, 0, -1):
        src = f"{path}.{k}"
        if os.path.exists(src):
            if k >= keep:
                os.unlink(src)
            else:
                os.replace(src, f"{path}.{k + 1}")
    import shutil
    with open(path, "rb") as fin, open(f"{path}.1", "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 16)
    os.truncate(path, 0)
    return True


def exit_path(pod_dir: str, name: str) -> str:
    return os.path.join(pod_dir, "containers", f"{name}.exit")


# ---- I/O -------------------------------------------------------------------------------

_popens: set[subprocess.Popen] = set()


def reap() -> None:
    for p in list(_popens):
        if p.poll() is not None:
            _popens.discard(p)


def start(c: Container, spec: dict, *, pod: dict, pod_dir: str, netns: str, pause_pid: int,
          etc: dict[str, str], env: dict[str, str], hide: tuple[str, ...] = (),
          mounts: tuple[rootfs.Mount, ...] = (), stdio: Any = None) -> None:
    """Start one attempt of container `c` (raises images.ImageError for an unknown image,
    ConfigError for a securityContext that cannot hold). `stdio` (a kubelab.nodeagent.stdio.Stdio
    for this attempt's log file) gives the container a stdin pipe or a terminal."""
    privs = privileges(pod, spec)
    argv = argv_for(spec, env, nginx_prefix=NGINX_PREFIX)
    extra: list[rootfs.Mount] = []
    if argv and argv[0] == "nginx":
        prefix = os.path.join(pod_dir, "nginx", c.name)
        os.makedirs(prefix, exist_ok=True)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(nginx_config(NGINX_PREFIX))
        extra.append(rootfs.Mount(prefix, NGINX_PREFIX, read_only=False))
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
    enter = ["nsenter", f"--ipc=/proc/{pause_pid}/ns/ipc"]
    if netns:  # not a hostNetwork pod: the pod's own network and UTS namespaces
        enter += [f"--net={netns}", f"--uts=/proc/{pause_pid}/ns/uts"]
    if (pod.get("spec") or {}).get("shareProcessNamespace"):
        # the pod's PID namespace: the pause is PID 1 there and reaps every orphan
        isolate = [*enter, f"--pid=/proc/{pause_pid}/ns/pid", "--", "unshare", "--mount", "--"]
    else:
        nr_unshare, nr_prctl = SYSCALLS[platform.machine()]
        isolate = [*enter, "--", "perl", "-e", FORK_SCRIPT, str(nr_unshare), str(nr_prctl)]
    root = os.path.join(pod_dir, "rootfs", c.name)
    os.makedirs(root, exist_ok=True)
    env_file = os.path.join(pod_dir, "containers", f"{c.name}.env")
    fd = os.open(env_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(env, f)
    os.replace(env_file + ".tmp", env_file)
    pod_mounts = [rootfs.Mount(etc["resolv.conf"], "/etc/resolv.conf"), rootfs.Mount(etc["hosts"], "/etc/hosts"),
                  rootfs.Mount(etc["hostname"], "/etc/hostname")]
    if etc.get("serviceaccount"):
        pod_mounts.append(rootfs.Mount(etc["serviceaccount"], SA_MOUNT))
    rs = rootfs.RootSpec(root=root, hide=tuple(dict.fromkeys((*rootfs.DEFAULT_HIDE, *hide))),
                         expose=PYTHON_PATHS, mounts=(*pod_mounts, *extra, *mounts),
                         workdir=spec.get("workingDir") or "/", read_only_root=privs.read_only_root,
                         env_file=env_file)
    c.setpriv = privs.setpriv()
    prefix = stdio.command_prefix() if stdio is not None else []
    cmd = ["sh", "-c", RECORD_SCRIPT, "kubelab-container", ep, *isolate,
           sys.executable, "-I", "-S", "-c", ROOTFS_BOOT, rs.to_json(), "--", *c.setpriv, *prefix, *argv]
    fd = os.open(lp, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    io: dict = {"stdin": subprocess.DEVNULL, "stdout": fd, "stderr": fd}
    if stdio is not None:
        io.update({k: v for k, v in stdio.popen_kwargs().items() if v is not None})
    try:
        p = subprocess.Popen(cmd, **io, env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"},
                             start_new_session=True, close_fds=True, cwd="/")
    finally:
        os.close(fd)
        if stdio is not None:
            stdio.started()
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


def in_setup(c: Container) -> bool:
    """Whether the container's PID 1 is still building its root (rootfs, then setpriv): a
    signal it does not handle would be dropped, so the agent waits for the command itself."""
    pid = find_init(c)
    if not pid:
        return procs.alive(c.wrapper_pid, c.wrapper_start)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(b"kubelab.nodeagent.rootfs" in a for a in argv) or os.path.basename(argv[0]) == b"setpriv"


def handles(c: Container, sig: int) -> bool:
    """Whether the container's PID 1 has a handler for `sig` (SigCgt): as PID 1 of its
    namespace, a signal it does not handle is dropped, not delivered."""
    pid = find_init(c)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def signal_container(c: Container, sig: int) -> bool:
    """Signal the container's PID 1 (never the host's: its pid is a host pid > 1 we started).

    SIGKILL goes first to PID 1's parent (kubelab-init, or nsenter with a shared PID
    namespace), whose death takes PID 1 down (PDEATHSIG): the recorder then sees 137 from
    the parent itself, whatever that parent makes of its child's signal."""
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
    return ["nsenter", "-t", str(pid), "--net", "--uts", "--ipc", "--mount", "--pid", "-w", "--",
            *(c.setpriv or rootfs.setpriv_argv(uid=None, gid=None)), *command]
