"""A container's root filesystem: the node's files, read-only, minus the node's secrets.

There are no images to unpack (the catalogue runs the node's own programs), so a container's
`/` is built in its private mount namespace, just before its command runs:

    tmpfs (the container's own /, size-capped)
      /bin /etc /usr /var ...   the node's top-level directories, bind-mounted READ-ONLY,
                                nosuid, nodev (a container can neither change nor exploit them)
      /proc                     a fresh procfs of the container's PID namespace, with
                                sysrq-trigger, kcore, keys ... masked and /proc/sys read-only
      /sys                      the node's, read-only
      /dev                      a tmpfs with null zero full random urandom tty, a private
                                devpts and /dev/shm: never the node's disks
      /tmp /run                 fresh tmpfs (the node's /run holds netns files and sockets)
      hidden                    every HIDE path (the lab's directory: PKI, kubeconfigs, etcd's
                                data, the node agent's and other pods' state; /root, /home,
                                /etc/kubelab ...): an empty read-only tmpfs over each
      mounts                    the pod's /etc/hosts, resolv.conf, hostname, the
                                service-account token, volumes: bound at their mountPath

then `pivot_root` into it (the node's / is detached, so `..` leads nowhere), and the command
runs through `setpriv` with Docker's default capability set (no CAP_SYS_ADMIN: a container
cannot unmount what hides the node's files, nor mount a disk) and the securityContext's
user and group.

A mountPath that does not exist on the node (`/cfg`, `/etc/config`) is created in the
container's root tmpfs or, below a read-only node directory, in a tmpfs that "mimics" that
directory (its entries bound back one by one): nothing is ever created on the node's disk.

Pure (`plan`, `resolve_in`, `setpriv_argv`) at the top; `main` runs inside the container's
new mount namespace (`python -m kubelab.nodeagent.rootfs SPEC -- ARGV`) and execs ARGV.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import stat
import sys
from dataclasses import asdict, dataclass

# the node's directories no container sees, whatever the lab's layout
DEFAULT_HIDE = ("/root", "/home", "/etc/kubelab", "/etc/kubernetes", "/var/lib/kubelab", "/var/lib/kubelet",
                "/var/lib/etcd", "/etc/ssh", "/var/log")
# replaced with fresh filesystems, never bound from the node
FRESH_TOP = ("proc", "sys", "dev", "tmp", "run", "lost+found")
# Docker's default capability set (moby's oci/caps/defaults.go), as `setpriv` names them
DEFAULT_CAPS = ("chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid", "setfcap",
                "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write")
MASKED_PROC = ("kcore", "keys", "timer_list", "sysrq-trigger", "latency_stats", "sched_debug", "kallsyms")
READONLY_PROC = ("sys", "irq", "bus", "fs")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
ROOT_TMPFS_SIZE = "64m"
TMP_SIZE = "256m"


@dataclass(frozen=True)
class Mount:
    """One bind of a node path (`source`) onto `target` inside the container."""
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class RootSpec:
    """Everything `main` needs, as JSON on its command line (paths only: no secrets)."""
    root: str                                  # an empty directory of the pod's (the tmpfs goes there)
    hide: tuple[str, ...] = ()                 # node paths replaced by an empty read-only tmpfs
    expose: tuple[str, ...] = ()               # node paths bound back (read-only) below a hidden one
    mounts: tuple[Mount, ...] = ()
    workdir: str = "/"
    read_only_root: bool = False
    fresh: tuple[str, ...] = ()                # extra tmpfs mounts
    env_file: str = ""                         # the container's environment (JSON), read then removed

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RootSpec":
        d = json.loads(text)
        d["mounts"] = tuple(Mount(**m) for m in d.get("mounts") or ())
        for k in ("hide", "expose", "fresh"):
            d[k] = tuple(d.get(k) or ())
        return cls(**d)


# ---- pure ------------------------------------------------------------------------------

def resolve_in(root: str, path: str, *, readlink=os.readlink, is_link=os.path.islink) -> str:
    """`path` (absolute, inside the container) as a node path under `root`, every symlink on the
    way resolved as the container would see it (relative to `root`, `..` never above it):
    `/var/run/secrets` with /var/run → /run gives ROOT/run/secrets, never the node's /run."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if done:
                done.pop()
            continue
        cand = os.path.join(root, *done, p)
        if is_link(cand):
            hops += 1
            if hops > 40:
                raise OSError(40, "too many levels of symbolic links", path)
            target = readlink(cand)
            if target.startswith("/"):
                done = []
            parts = [x for x in target.split("/") if x and x != "."] + parts
            continue
        done.append(p)
    return os.path.join(root, *done)


def setpriv_argv(*, uid: int | None, gid: int | None, groups: list[int] | None = None,
                 add_caps: list[str] | None = None, drop_caps: list[str] | None = None,
                 no_new_privs: bool = False, setpriv: str = "/usr/bin/setpriv") -> list[str]:
    """`setpriv` with the capability bounding set of a default container (± securityContext
    capabilities, upstream's upper-case names without CAP_) and the user to run as."""
    caps = set(DEFAULT_CAPS)
    norm = lambda c: c.lower().removeprefix("cap_")  # noqa: E731
    drops = {norm(c) for c in drop_caps or []}
    if "all" in drops:
        caps = set()
    caps -= drops
    caps |= {norm(c) for c in add_caps or [] if norm(c) != "all"}
    bounding = "-all" + "".join(f",+{c}" for c in sorted(caps))
    argv = [setpriv, "--bounding-set", bounding, "--inh-caps", "-all"]
    if uid is not None:
        argv += ["--reuid", str(uid)]
    if gid is not None:
        argv += ["--regid", str(gid)]
    if groups:
        argv += ["--groups", ",".join(str(g) for g in groups)]
    elif uid is not None or gid is not None:
        argv += ["--clear-groups"]
    if no_new_privs:
        argv += ["--no-new-privs"]
    return argv + ["--"]


# ---- I/O (inside the container's mount namespace) ----------------------------------------

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
MNT_DETACH = 2
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442   # x86_64 and arm64 alike (the unified syscall table)
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(rc: int, what: str, path: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), "mount", target)


def set_attr(path: str, attrs: int) -> None:
    """mount_setattr(AT_RECURSIVE): read-only etc. for a mount and every mount below it."""
    a = MountAttr(attr_set=attrs)
    rc = _libc.syscall(SYS_MOUNT_SETATTR, -100, os.fsencode(path), AT_RECURSIVE, ctypes.byref(a),
                       ctypes.sizeof(a))
    _check(rc, "mount_setattr", path)


def bind(source: str, target: str, *, read_only: bool) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    set_attr(target, (MOUNT_ATTR_RDONLY if read_only else 0) | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)


def make_mount_point(root: str, path: str, *, is_dir: bool) -> str:
    """The node path of `path` inside `root`, created (with its missing parents) if need be.
    Where a parent is a read-only directory, it is first replaced by a mimic (module doc)."""
    parts = [p for p in path.split("/") if p and p != "."]
    for i in range(1, len(parts) + 1):
        t = resolve_in(root, "/" + "/".join(parts[:i]))
        if not t.startswith(root + "/"):
            raise OSError(22, "mount path leaves the container", path)
        if os.path.lexists(t):
            continue
        want_dir = is_dir or i < len(parts)
        try:
            _create(t, want_dir)
        except OSError as e:
            if e.errno != 30:  # EROFS: a read-only node directory
                raise
            mimic(root, os.path.dirname(t))
            _create(t, want_dir)
    return resolve_in(root, path)


def _create(target: str, is_dir: bool) -> None:
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


_stages = [0]


def mimic(root: str, directory: str) -> None:
    """Replace `directory` (inside the container) by a tmpfs holding the same entries: each
    subdirectory and file bound back read-only, each symlink copied. Staged in the root's
    own /run (a fresh tmpfs), then moved over the directory."""
    _stages[0] += 1
    stage = os.path.join(root, "run", f".kubelab-mimic-{_stages[0]}")
    os.mkdir(stage, 0o755)
    mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for name in os.listdir(directory):
        src, dst = os.path.join(directory, name), os.path.join(stage, name)
        st = os.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            continue
        _create(dst, stat.S_ISDIR(st.st_mode))
        bind(src, dst, read_only=True)
    os.chmod(stage, stat.S_IMODE(os.stat(directory).st_mode))
    mount(stage, directory, None, MS_MOVE)
    os.rmdir(stage)
    _mimics.append(directory)


_mimics: list[str] = []   # made read-only once every mount point below them exists


def pivot_root(new_root: str) -> None:
    import platform
    os.chdir(new_root)
    nr = SYS_PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise OSError(38, "pivot_root: unknown architecture")
    _check(_libc.syscall(nr, b".", b"."), "pivot_root", new_root)
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root", "/")
    os.chdir("/")


def build(spec: RootSpec) -> None:
    """Build the container's root at spec.root and pivot into it (see the module doc)."""
    R = spec.root
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", R, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0755,size={ROOT_TMPFS_SIZE}")
    for name in sorted(os.listdir("/")):
        if name in FRESH_TOP:
            continue
        src, dst = os.path.join("/", name), os.path.join(R, name)
        try:
            st = os.lstat(src)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(dst, stat.S_IMODE(st.st_mode))
            bind(src, dst, read_only=True)
    # fresh filesystems
    for name, fs, data, flags in (("tmp", "tmpfs", f"mode=1777,size={TMP_SIZE}", MS_NOSUID | MS_NODEV),
                                  ("run", "tmpfs", "mode=0755,size=64m", MS_NOSUID | MS_NODEV),
                                  ("proc", "proc", None, MS_NOSUID | MS_NODEV | MS_NOEXEC),
                                  ("dev", "tmpfs", "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC)):
        os.mkdir(os.path.join(R, name), 0o1777 if name == "tmp" else 0o755)
        mount(fs, os.path.join(R, name), fs, flags, data)
    os.chmod(os.path.join(R, "tmp"), 0o1777)
    os.mkdir(os.path.join(R, "sys"), 0o555)
    bind("/sys", os.path.join(R, "sys"), read_only=True)
    for name in MASKED_PROC:
        p = os.path.join(R, "proc", name)
        if os.path.exists(p):
            mount("/dev/null", p, None, MS_BIND)
    for name in READONLY_PROC:
        p = os.path.join(R, "proc", name)
        if os.path.isdir(p):
            bind(p, p, read_only=True)
    dev = os.path.join(R, "dev")
    for name in DEVICES:
        _create(os.path.join(dev, name), False)
        mount(os.path.join("/dev", name), os.path.join(dev, name), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
        os.symlink(target, os.path.join(dev, name))
    os.mkdir(os.path.join(dev, "pts"))
    mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.mkdir(os.path.join(dev, "shm"), 0o1777)
    mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    os.mkdir(os.path.join(dev, "mqueue"))
    # the node's secrets: an empty tmpfs over each (read-only once the exposed paths are back)
    hidden: list[str] = []
    for h in spec.hide:
        t = resolve_in(R, h)
        if not t.startswith(R + "/") or t in hidden or any(t.startswith(x + "/") for x in hidden):
            continue
        if os.path.isdir(t):
            mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16k")
            hidden.append(t)
        elif os.path.exists(t):
            mount("/dev/null", t, None, MS_BIND)
    for e in spec.expose:
        if os.path.isdir(e):
            t = resolve_in(R, e)
            if any(t == x or t.startswith(x + "/") for x in hidden):
                os.makedirs(t, exist_ok=True)
                bind(e, t, read_only=True)
    for t in hidden:
        mount(None, t, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for f in spec.fresh:
        t = make_mount_point(R, f, is_dir=True)
        mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m")
    # the pod's own files and volumes
    for m in spec.mounts:
        t = make_mount_point(R, m.target, is_dir=os.path.isdir(m.source))
        bind(m.source, t, read_only=m.read_only)
    wd = make_mount_point(R, spec.workdir or "/", is_dir=True)
    for t in _mimics:
        mount(None, t, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if spec.read_only_root:
        for p in (R, os.path.join(R, "tmp"), os.path.join(R, "run")):
            mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    pivot_root(R)
    os.chdir("/" + os.path.relpath(wd, R) if wd != R else "/")


def main(argv: list[str]) -> int:
    """`rootfs SPEC_JSON -- ARGV...`: build the root, then exec ARGV (found on the new root)."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m kubelab.nodeagent.rootfs SPEC_JSON -- ARGV...", file=sys.stderr)
        return 2
    # PID 1 of a PID namespace gets from outside only the signals it handles: a SIGTERM sent
    # while the root is being built would be lost, and the command would wait for SIGKILL
    import signal
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(143))
    signal.signal(signal.SIGINT, lambda *_: stop.append(130))
    try:
        spec = RootSpec.from_json(argv[0])
        env = dict(os.environ)
        if spec.env_file:
            # the container's variables reach only its command, never this root process
            # (no LD_PRELOAD for code that runs before the pivot), and never its argv
            with open(spec.env_file) as f:
                env = json.load(f)
            os.unlink(spec.env_file)
        build(spec)
    except (OSError, ValueError, TypeError) as e:
        print(f"kubelab: failed to set up the container's filesystem: {e}", file=sys.stderr)
        return 128
    cmd = argv[2:]
    if stop:
        return stop[0]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as e:
        print(f"kubelab: exec {cmd[0]!r}: {e.strerror}", file=sys.stderr)
        return 127 if e.errno == 2 else 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
