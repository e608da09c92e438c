"""Real VMs for `make test-vm`: a Debian image from Debian packages only, qemu VMs, their networks.

Facts this is built on (see ../shared/reference/vms.md): KVM here does not boot stock kernels,
so the VMs run under TCG (`tb-size=256` keeps each translation cache small); no cloud image can
be downloaded, so mmdebstrap builds the root filesystem and the kernel is booted directly.

Networks stay inside the machine:
- management NIC: qemu user-mode networking with `restrict=on` (the guest reaches nothing
  outside) plus `hostfwd` for SSH (and the API server on the control plane) and `guestfwd`
  10.0.2.100:80 -> the host's loopback package server (apt repo + wheelhouse);
- node NIC: a tap per VM on one bridge with no uplink and no host address (192.168.56.0/24
  lives only between the VMs).

Everything this module starts is recorded (qemu pidfiles, the repo server's PID, link names)
and `VMLab.teardown()` removes exactly that.

CLI (for poking at it by hand):  python tests/vm/vmlab.py image | up [--workers N] | down DIR
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
ANSIBLE_DIR = os.path.join(REPO_ROOT, "ansible")

SUITE = "bookworm"
# In the image: what Ansible needs to reach and drive the VM (sshd, python3, python3-apt, sudo).
IMAGE_PACKAGES = [
    "systemd-sysv", "udev", "dbus", "openssh-server", "python3", "python3-apt", "sudo", "iproute2",
    "iputils-ping", "libnss-myhostname", "linux-image-amd64", "initramfs-tools", "ca-certificates",
]
# Installed in the image AND served by the offline apt repo: what the `common`/`etcd` roles
# install (this list must cover the roles' package defaults). The roles keep their install
# tasks (a plain Vagrant box needs them) and find the packages present: under TCG an apt
# transaction costs minutes, natively in mmdebstrap seconds.
REPO_PACKAGES = [
    "nftables", "iproute2", "conntrack", "nginx-light", "python3-venv", "etcd-server", "etcd-client",
    "curl", "dnsutils", "procps", "kmod",
]
# Services those packages enable that the roles turn off (nginx: pods run their own) or on
# only where they belong (etcd: the `etcd` group). Disabled in the image, so a worker never
# runs an etcd and the roles' first run finds nginx as it leaves it.
IMAGE_DISABLED_UNITS = ["nginx", "etcd"]
VENV = "/opt/kubelab/venv"          # = kubelab_venv (ansible/roles/kubelab/defaults/main.yml)
USER = "kubelab"
GUEST_REPO = "10.0.2.100"           # guestfwd address of the host's package server
NODE_NET = "192.168.56"             # node network /24; control plane .10, workers .11, .12 ...
TIMES: dict[str, float] = {}       # phase -> seconds, printed by tests/vm/conftest.py
CACHE_DIR = os.environ.get("KUBELAB_VM_CACHE", "/var/tmp/kubelab-vm")


# ansible-playbook lines `make test-vm` shows as they come (the rest is only in the log file)
ANSIBLE_STREAMED = ("PLAY [", "TASK [", "RUNNING HANDLER [", "PLAY RECAP", "fatal:", "failed:", "ERROR!",
                    "[WARNING]")


def log(msg: str) -> None:
    print(f"[vmlab {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd: list[str], *, check: bool = True, timeout: float | None = None, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(*tools: str) -> list[str]:
    """The host tools that are missing (the harness skips with this list)."""
    return [t for t in tools if not shutil.which(t)]


HOST_TOOLS = ("mmdebstrap", "qemu-system-x86_64", "qemu-img", "mkfs.ext4", "apt-ftparchive", "nc",
              "ssh", "ssh-keygen", "ip")


# ---------------------------------------------------------------- pure: names, addresses, files

@dataclass(frozen=True)
class VM:
    name: str
    index: int            # 0 = control plane
    ssh_port: int
    api_port: int | None = None   # hostfwd to 6443 (control plane only)

    @property
    def node_ip(self) -> str:
        return f"{NODE_NET}.{10 + self.index}"

    @property
    def mgmt_mac(self) -> str:
        return f"52:54:00:aa:00:{10 + self.index:02x}"

    @property
    def node_mac(self) -> str:
        return f"52:54:00:bb:00:{10 + self.index:02x}"


def vm_names(workers: int) -> list[str]:
    return ["control-plane"] + [f"worker-{i}" for i in range(1, workers + 1)]


MAX_VMS = 8


def image_files(pubkey: str) -> dict[str, str]:
    """Files synced into the image: SSH access, sudo, networkd for both NICs of up to MAX_VMS
    VMs (matched on MAC, so one image serves every VM), no resolver (nothing to resolve with)."""
    names = vm_names(MAX_VMS - 1)
    files = {
        f"home/{USER}/.ssh/authorized_keys": pubkey,
        f"etc/sudoers.d/{USER}": f"{USER} ALL=(ALL) NOPASSWD: ALL\n",
        "etc/resolv.conf": "# no resolver: the VMs reach nothing by name outside /etc/hosts\n",
        "etc/hosts": "127.0.0.1 localhost\n" + "".join(f"{NODE_NET}.{10 + i} {n}\n" for i, n in enumerate(names)),
        # the management NIC: DHCP from qemu, but no DNS and no default route beyond slirp
        "etc/systemd/network/10-mgmt.network": (
            "[Match]\nMACAddress=" + " ".join(f"52:54:00:aa:00:{10 + i:02x}" for i in range(MAX_VMS)) + "\n\n"
            "[Network]\nDHCP=ipv4\n\n[DHCPv4]\nUseDNS=no\nUseDomains=no\n"),
        "etc/apt/sources.list": "# offline: Ansible adds the kubelab repo (kubelab_apt_repo_url)\n",
        "etc/ssh/sshd_config.d/kubelab.conf": "UseDNS no\nPasswordAuthentication no\n",
    }
    for i in range(MAX_VMS):
        files[f"etc/systemd/network/20-node-{i}.network"] = (
            f"[Match]\nMACAddress=52:54:00:bb:00:{10 + i:02x}\n\n[Network]\nAddress={NODE_NET}.{10 + i}/24\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
    return files


def mmdebstrap_argv(*, rootfs: str, files_dir: str, debs_out: str, wheels_dir: str) -> list[str]:
    """`wheels_dir` holds kubelab's dependency wheels (not kubelab's own: that one changes with
    every commit and is installed by Ansible, a single pure-Python wheel)."""
    hooks = [
        f'chroot "$1" useradd -m -s /bin/bash {USER}',
        # the roles' packages, installed natively; their .debs also make the offline repo
        'chroot "$1" apt-get install -y -q --no-install-recommends ' + " ".join(REPO_PACKAGES),
        f'mkdir -p {debs_out} && cp "$1"/var/cache/apt/archives/*.deb {debs_out}/',
        'chroot "$1" apt-get clean',
        'chroot "$1" systemctl disable ' + " ".join(IMAGE_DISABLED_UNITS),
        # kubelab's venv with every dependency, bytecode compiled (pip's default), as the
        # `common` role would make it: the role then installs only kubelab's wheel into it
        f'mkdir -p "$1/tmp/kubelab-wheels" && cp {wheels_dir}/*.whl "$1/tmp/kubelab-wheels/"',
        f'chroot "$1" python3 -m venv {VENV}',
        f'chroot "$1" sh -c "{VENV}/bin/pip install -q --no-index --no-deps --disable-pip-version-check'
        ' /tmp/kubelab-wheels/*.whl"',
        'rm -rf "$1/tmp/kubelab-wheels"',
        f'sync-in {files_dir} /',
        f'chroot "$1" chown -R {USER}:{USER} /home/{USER}',
        f'chmod 700 "$1/home/{USER}/.ssh"; chmod 440 "$1/etc/sudoers.d/{USER}"',
        'chroot "$1" systemctl enable systemd-networkd ssh',
        'chroot "$1" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer',
        'rm -f "$1"/etc/apt/sources.list.d/*; printf "# offline\\n" > "$1/etc/apt/sources.list"',
        'echo -n > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"',
    ]
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(IMAGE_PACKAGES)]
    for h in hooks:
        argv += ["--customize-hook", h]
    return argv + [SUITE, rootfs, "http://deb.debian.org/debian"]


def dependency_wheels(wheelhouse: str) -> list[str]:
    """The wheelhouse's wheels that go into the image: all but kubelab's own."""
    return sorted(w for w in glob.glob(os.path.join(wheelhouse, "*.whl"))
                  if not os.path.basename(w).startswith("kubelab-"))


def image_key(wheels: dict[str, str]) -> str:
    """Image cache key: changes when what goes into the image changes (`wheels`: each
    dependency wheel's file name -> its sha256)."""
    h = hashlib.sha256(json.dumps([SUITE, "raw ext4", IMAGE_PACKAGES, REPO_PACKAGES, IMAGE_DISABLED_UNITS, image_files("KEY"),
                                   mmdebstrap_argv(rootfs="R", files_dir="F", debs_out="D", wheels_dir="W"),
                                   sorted(wheels.items())]).encode())
    return h.hexdigest()[:12]


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inventory_ini(vms: list[VM], *, key: str, repo_url: str) -> str:
    """Ansible inventory for the VMs: SSH through the hostfwd ports, node_ip on the bridge NIC."""
    ssh_args = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=600s"
    lines = ["[control_plane]"]
    for vm in vms[:1]:
        lines.append(f"{vm.name} ansible_host=127.0.0.1 ansible_port={vm.ssh_port} node_ip={vm.node_ip}")
    lines += ["", "[workers]"]
    for vm in vms[1:]:
        lines.append(f"{vm.name} ansible_host=127.0.0.1 ansible_port={vm.ssh_port} node_ip={vm.node_ip}")
    lines += ["", "[etcd:children]", "control_plane", "", "[all:vars]", f"ansible_user={USER}",
              f"ansible_ssh_private_key_file={key}", f"ansible_ssh_common_args='{ssh_args}'",
              "ansible_python_interpreter=/usr/bin/python3",
              f"kubelab_apt_repo_url=http://{GUEST_REPO}/",
              f"kubelab_wheelhouse_url=http://{GUEST_REPO}/wheels/", ""]
    return "\n".join(lines)


def proc_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None
    when it is gone: with the PID it names one process, never a later one that reused the PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def proc_cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def owns(cmdline: bytes, *needles: str) -> bool:
    """Whether a process (by its NUL-separated cmdline) is one this run started: it names
    each of `needles` (the program and a path inside the run dir)."""
    return bool(cmdline) and all(n.encode() in cmdline for n in needles)


def is_stale(state: dict, alive: Callable[[dict], bool]) -> bool:
    """Whether a run's recorded state (lab.json) belongs to a run that is over: not detached
    (`vmlab.py up` leaves VMs for the user, who runs `down`) and its owner process is gone.
    A state without an owner comes from a run older than the owner record: stale too."""
    if state.get("detached"):
        return False
    owner = state.get("owner")
    return not (owner and alive(owner))


def owner_alive(owner: dict) -> bool:
    return proc_start_time(int(owner["pid"])) == owner.get("start")


def reap_stale_runs(cache_dir: str = CACHE_DIR, *, keep: str = "") -> list[str]:
    """Tear down what runs stopped midway (SIGKILL, a lost terminal) left behind: their qemu
    processes and package servers (each by its recorded PID, if its command line is still
    that run's), taps and bridge (by recorded name), run dir. Returns the run dirs removed."""
    reaped = []
    for state_file in sorted(glob.glob(os.path.join(cache_dir, "run-*", "lab.json"))):
        run_dir = os.path.dirname(state_file)
        if run_dir == keep:
            continue
        try:
            with open(state_file) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if not is_stale(state, owner_alive):
            continue
        left = VMLab.load(run_dir).teardown()
        log(f"removed the stale VM run {run_dir}" + (f" (still there: {left})" if left else ""))
        reaped.append(run_dir)
    return reaped


def mitogen_env(setting: str = "1") -> dict[str, str]:
    """Ansible settings for Mitogen's strategy, unless `setting` is "0" (KUBELAB_VM_MITOGEN).

    Why: under TCG every task is a fresh Python on the VM that imports Ansible's module code
    again, seconds each; Mitogen keeps one Python per VM for the whole run and sends module
    code once. The playbook is the same either way (a classroom's Ansible needs no Mitogen)."""
    if setting == "0":
        return {}
    try:
        import ansible_mitogen
    except ImportError as e:
        raise RuntimeError("mitogen is not installed (pip install -e '.[test]'; KUBELAB_VM_MITOGEN=0 runs "
                           "without it)") from e
    return {"ANSIBLE_STRATEGY_PLUGINS": os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear",
            # Mitogen's connection timeout covers its bootstrap on the VM (a Python start and
            # its first stage: over Ansible's default 10 s under TCG on a busy machine)
            "ANSIBLE_TIMEOUT": "120"}


# ---------------------------------------------------------------- the image

def build_image(wheelhouse: str, cache_dir: str = CACHE_DIR, *, force: bool = False) -> dict:
    """Build (or reuse) root.ext4 (the VMs' backing file) + kernel + initrd + the offline repo's .debs + an SSH key.

    The image has the roles' Debian packages installed and kubelab's venv with the
    wheelhouse's dependency wheels (`wheelhouse`: built for the VMs' Python, which is the
    chroot's); cached by a key over all of that, wheel contents included."""
    wheels = dependency_wheels(wheelhouse)
    if not wheels:
        raise RuntimeError(f"{wheelhouse}: no dependency wheels (build_wheelhouse first)")
    key = image_key({os.path.basename(w): file_sha256(w) for w in wheels})
    out = os.path.join(cache_dir, f"image-{key}")
    os.makedirs(cache_dir, exist_ok=True)
    # one builder per key: `make test` starts the build in the background while the host
    # suite runs, and the VM suite's build of the same key waits here for it instead of
    # building again (the lock goes with the process, so a killed builder blocks no one)
    with open(os.path.join(cache_dir, f"image-{key}.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for the image build already under way ({out})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        done = os.path.join(out, "done.json")
        if os.path.exists(done) and not force:
            with open(done) as f:
                info = json.load(f)
            info["cached"] = True
            return info
        return _build_image(out, wheels)


def _build_image(out: str, wheels: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    t0 = time.monotonic()
    ssh_key = os.path.join(out, "id_ed25519")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubelab-vm", "-f", ssh_key])
    with open(ssh_key + ".pub") as f:
        pub = f.read()
    files_dir = os.path.join(out, "files")
    for rel, text in image_files(pub).items():
        path = os.path.join(files_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    rootfs = os.path.join(out, "rootfs")
    debs = os.path.join(out, "repo")
    wheels_dir = os.path.join(out, "wheels")
    os.makedirs(wheels_dir)
    for w in wheels:
        shutil.copy(w, wheels_dir)
    log(f"mmdebstrap {SUITE} -> {rootfs} (packages: {' '.join(REPO_PACKAGES)}; {VENV}: {len(wheels)} wheels)")
    run(mmdebstrap_argv(rootfs=rootfs, files_dir=files_dir, debs_out=debs, wheels_dir=wheels_dir), timeout=1800)
    shutil.rmtree(wheels_dir)
    log(f"mmdebstrap done ({round(time.monotonic() - t0)} s); mkfs.ext4")
    kernel = sorted(glob.glob(os.path.join(rootfs, "boot", "vmlinuz-*")))[-1]
    initrd = sorted(glob.glob(os.path.join(rootfs, "boot", "initrd.img-*")))[-1]
    shutil.copy(kernel, os.path.join(out, "vmlinuz"))
    shutil.copy(initrd, os.path.join(out, "initrd.img"))
    raw = os.path.join(out, "root.ext4")
    run(["mkfs.ext4", "-q", "-L", "root", "-d", rootfs, raw, "3G"], timeout=900)
    # the ext4 file (sparse) is the VMs' backing file as it is: each VM writes to its own
    # qcow2 overlay, and a conversion to qcow2 would only cost another pass over the disk
    shutil.rmtree(rootfs)
    run(["apt-ftparchive", "packages", "."], cwd=debs)  # fail early if apt-utils is missing
    info = {"dir": out, "base": raw, "base_format": "raw", "kernel": os.path.join(out, "vmlinuz"),
            "initrd": os.path.join(out, "initrd.img"), "key": ssh_key, "debs": debs,
            "seconds": round(time.monotonic() - t0, 1), "cached": False}
    with open(os.path.join(out, "done.json"), "w") as f:
        json.dump(info, f)
    return info


def build_wheelhouse(dest: str, *, source: str = "") -> float:
    """kubelab's wheel plus every dependency's, for pip on the VMs (no index there).

    `source` "" builds the working tree; a git revision (e.g. HEAD) builds that commit, from
    `git archive` into a temp dir (the shared checkout is never touched)."""
    t0 = time.monotonic()
    os.makedirs(dest, exist_ok=True)
    for old in glob.glob(os.path.join(dest, "kubelab-*.whl")):
        os.unlink(old)
    src = REPO_ROOT
    tmp = None
    if source:
        tmp = os.path.join(os.path.dirname(dest), "src")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        archive = subprocess.run(["git", "-C", REPO_ROOT, "archive", "--format=tar", source],
                                 capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        src = tmp
    # pip builds in the source tree; setuptools would pack modules deleted since the last build
    shutil.rmtree(os.path.join(src, "build"), ignore_errors=True)
    # the versions the suite ran with (constraints.txt), as site.yml's own wheelhouse build does
    run([sys.executable, "-m", "pip", "wheel", "-q", src, "-c", os.path.join(src, "constraints.txt"), "-w", dest],
        timeout=900,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return time.monotonic() - t0


# ---------------------------------------------------------------- running VMs

@dataclass
class VMLab:
    workers: int = 2
    cache_dir: str = CACHE_DIR
    smp: int = 1
    memory_mb: int = 1024
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    run_dir: str = ""
    image: dict = field(default_factory=dict)
    vms: list[VM] = field(default_factory=list)
    bridge: str = ""
    taps: list[str] = field(default_factory=list)
    repo_pid: int | None = None
    repo_port: int = 0
    times: dict[str, float] = field(default_factory=dict)
    # the process this run belongs to (pid + start time): once it is gone, the next run
    # removes what this one left (reap_stale_runs); `detached` runs (`vmlab.py up`) are kept
    owner: dict | None = None
    detached: bool = False

    def __post_init__(self) -> None:
        self.run_dir = self.run_dir or os.path.join(self.cache_dir, f"run-{self.tag}")
        self.bridge = self.bridge or f"klvm{self.tag}"
        self.owner = self.owner or {"pid": os.getpid(), "start": proc_start_time(os.getpid())}

    # -- state file, so `down` works from another process
    def save(self) -> None:
        os.makedirs(self.run_dir, exist_ok=True)
        with open(os.path.join(self.run_dir, "lab.json"), "w") as f:
            json.dump({"workers": self.workers, "tag": self.tag, "bridge": self.bridge, "taps": self.taps,
                       "repo_pid": self.repo_pid, "repo_port": self.repo_port, "image": self.image,
                       "vms": [vm.__dict__ for vm in self.vms], "cache_dir": self.cache_dir,
                       "owner": self.owner, "detached": self.detached}, f)

    @classmethod
    def load(cls, run_dir: str) -> "VMLab":
        with open(os.path.join(run_dir, "lab.json")) as f:
            d = json.load(f)
        lab = cls(workers=d["workers"], cache_dir=d["cache_dir"], tag=d["tag"], run_dir=run_dir,
                  image=d["image"], bridge=d["bridge"], taps=d["taps"], repo_pid=d["repo_pid"],
                  repo_port=d["repo_port"], detached=d.get("detached", False))
        lab.owner = d.get("owner")  # as recorded (None: a run older than the owner record)
        lab.vms = [VM(**v) for v in d["vms"]]
        return lab

    def adopt(self) -> None:
        """This process owns the run from now on (attaching to a `vmlab.py up` run)."""
        self.owner = {"pid": os.getpid(), "start": proc_start_time(os.getpid())}
        self.detached = False
        self.save()

    @property
    def repo_dir(self) -> str:
        return os.path.join(self.run_dir, "repo")

    @property
    def wheelhouse(self) -> str:
        return os.path.join(self.repo_dir, "wheels")

    def phase(self, name: str, t0: float) -> None:
        self.times[name] = round(time.monotonic() - t0, 1)
        log(f"phase {name}: {self.times[name]} s")

    def prepare(self) -> None:
        """The wheelhouse first (the image's venv is made from its dependency wheels), then the
        image, then the offline repo: the image's .debs plus the wheelhouse."""
        reap_stale_runs(self.cache_dir, keep=self.run_dir)
        t0 = time.monotonic()
        self.save()
        os.makedirs(self.repo_dir, exist_ok=True)
        build_wheelhouse(self.wheelhouse, source=os.environ.get("KUBELAB_VM_SOURCE", ""))
        self.phase("wheels", t0)
        t0 = time.monotonic()
        self.image = build_image(self.wheelhouse, self.cache_dir)
        self.save()
        self.phase("image" + (" (cached)" if self.image.get("cached") else ""), t0)
        t0 = time.monotonic()
        for deb in glob.glob(os.path.join(self.image["debs"], "*.deb")):
            dst = os.path.join(self.repo_dir, os.path.basename(deb))
            if not os.path.exists(dst):
                os.link(deb, dst) if os.stat(deb).st_dev == os.stat(self.repo_dir).st_dev else shutil.copy(deb, dst)
        pk = run(["apt-ftparchive", "packages", "."], cwd=self.repo_dir).stdout
        with open(os.path.join(self.repo_dir, "Packages"), "w") as f:
            f.write(pk)
        rel = run(["apt-ftparchive", "release", "."], cwd=self.repo_dir).stdout
        with open(os.path.join(self.repo_dir, "Release"), "w") as f:
            f.write(rel)
        self.phase("repo", t0)

    def start_repo_server(self) -> None:
        self.repo_port = free_port()
        logf = open(os.path.join(self.run_dir, "repo-server.log"), "w")
        p = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                              self.repo_dir, str(self.repo_port)], stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.repo_pid = p.pid
        self.save()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.repo_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the package server did not start")

    def net_up(self) -> None:
        """One bridge, no uplink, no host address: the node network exists only between taps."""
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self.save()
        run(["ip", "link", "set", self.bridge, "up"])
        for i, _ in enumerate(self.vms):
            tap = f"klvm{self.tag}t{i}"
            run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
            self.taps.append(tap)
            self.save()
            run(["ip", "link", "set", tap, "master", self.bridge, "up"])

    def qemu_argv(self, vm: VM, tap: str) -> list[str]:
        d = os.path.join(self.run_dir, vm.name)
        fwd = f"hostfwd=tcp:127.0.0.1:{vm.ssh_port}-:22"
        if vm.api_port:
            fwd += f",hostfwd=tcp:127.0.0.1:{vm.api_port}-:6443"
        fwd += f",guestfwd=tcp:{GUEST_REPO}:80-cmd:nc 127.0.0.1 {self.repo_port}"
        return ["qemu-system-x86_64", "-name", vm.name, "-machine", "pc",
                "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max",
                "-smp", str(self.smp), "-m", str(self.memory_mb),
                "-kernel", self.image["kernel"], "-initrd", self.image["initrd"],
                "-append", f"root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.hostname={vm.name}",
                "-drive", f"file={os.path.join(d, 'disk.qcow2')},if=virtio,format=qcow2",
                "-netdev", f"user,id=mgmt,restrict=on,{fwd}",
                "-device", f"virtio-net-pci,netdev=mgmt,mac={vm.mgmt_mac}",
                "-netdev", f"tap,id=node,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=node,mac={vm.node_mac}",
                "-display", "none", "-serial", f"file:{os.path.join(d, 'console.log')}",
                "-daemonize", "-pidfile", os.path.join(d, "qemu.pid")]

    def boot(self) -> None:
        t0 = time.monotonic()
        names = vm_names(self.workers)
        self.vms = [VM(name=n, index=i, ssh_port=free_port(), api_port=free_port() if i == 0 else None)
                    for i, n in enumerate(names)]
        self.save()
        self.start_repo_server()
        self.net_up()
        for vm, tap in zip(self.vms, self.taps):
            d = os.path.join(self.run_dir, vm.name)
            os.makedirs(d, exist_ok=True)
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", self.image.get("base_format", "qcow2"),
                 "-b", self.image["base"],
                 os.path.join(d, "disk.qcow2")])
            run(self.qemu_argv(vm, tap), timeout=60)
            log(f"{vm.name}: qemu pid {self.qemu_pid(vm)}, ssh 127.0.0.1:{vm.ssh_port}, node ip {vm.node_ip}")
        for vm in self.vms:
            self.wait_ssh(vm, timeout=600)
        self.phase("boot", t0)

    def qemu_pid(self, vm: VM) -> int | None:
        try:
            with open(os.path.join(self.run_dir, vm.name, "qemu.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def ssh_argv(self, vm: VM, *cmd: str) -> list[str]:
        return ["ssh", "-q", "-i", self.image["key"], "-p", str(vm.ssh_port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
                f"{USER}@127.0.0.1", *cmd]

    def ssh(self, vm: VM | str, *cmd: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        vm = self.vm(vm) if isinstance(vm, str) else vm
        return run(self.ssh_argv(vm, *cmd), timeout=timeout, check=check)

    def vm(self, name: str) -> VM:
        return next(v for v in self.vms if v.name == name)

    def wait_ssh(self, vm: VM, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.qemu_pid(vm)
            if not pid or not os.path.exists(f"/proc/{pid}"):
                raise RuntimeError(f"{vm.name}: qemu exited; console:\n{self.console(vm)[-3000:]}")
            try:
                if self.ssh(vm, "true", timeout=30, check=False).returncode == 0:
                    log(f"{vm.name}: ssh up")
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        raise TimeoutError(f"{vm.name}: no SSH after {timeout}s; console:\n{self.console(vm)[-3000:]}")

    def console(self, vm: VM) -> str:
        try:
            with open(os.path.join(self.run_dir, vm.name, "console.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def write_inventory(self) -> str:
        path = os.path.join(self.run_dir, "inventory.ini")
        with open(path, "w") as f:
            f.write(inventory_ini(self.vms, key=self.image["key"], repo_url=f"http://{GUEST_REPO}/"))
        return path

    def ansible_env(self) -> dict:
        env = {**os.environ, "ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "0",
               "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(self.run_dir, "cp"),
               "ANSIBLE_LOCAL_TEMP": os.path.join(self.run_dir, "ansible-tmp"),
               "ANSIBLE_CONFIG": os.path.join(ANSIBLE_DIR, "ansible.cfg")}
        return {**env, **mitogen_env(os.environ.get("KUBELAB_VM_MITOGEN", "1"))}

    def ansible_playbook(self, *extra: str, timeout: float = 2400) -> subprocess.CompletedProcess:
        inv = self.write_inventory()
        exe = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable) + os.pathsep
                           + os.environ.get("PATH", ""))
        if not exe:
            raise RuntimeError("ansible-playbook not found (pip install ansible-core)")
        argv = [exe, "-i", inv, os.path.join(ANSIBLE_DIR, "site.yml"),
                "-e", f"kubelab_wheelhouse_dir={self.wheelhouse}",
                "-e", f"kubelab_fetch_dir={os.path.join(self.run_dir, 'fetched')}",
                # the instructor's view of the API server: the control plane's hostfwd port
                "-e", json.dumps({"kubelab_pki_controller_dir": self.pki_dir,
                                  "control_plane_admin_kubeconfig_server": f"https://127.0.0.1:{self.vms[0].api_port}",
                                  "pki_kubelab_command": f"{sys.executable} -m kubelab.cli",
                                  "kubelab_controller_python": sys.executable}), *extra]
        log(" ".join(argv))
        logpath = os.path.join(self.run_dir, f"ansible-{int(time.time())}.log")
        log(f"ansible-playbook's full output: {logpath} (its PLAY/TASK lines and failures follow)")
        with open(logpath, "w") as f:
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env=self.ansible_env(), cwd=ANSIBLE_DIR, stdin=subprocess.DEVNULL)
            timed_out = threading.Event()

            def expire() -> None:  # what subprocess.run(timeout=) did
                timed_out.set()
                p.kill()
            timer = threading.Timer(timeout, expire)
            timer.start()
            try:
                recap = False
                for line in p.stdout:
                    f.write(line)
                    f.flush()
                    recap = recap or line.startswith("PLAY RECAP")
                    if line.startswith(ANSIBLE_STREAMED) or (recap and line.strip()):
                        print(f"[ansible {time.strftime('%H:%M:%S')}] {line.rstrip()}", flush=True)
                rc = p.wait()
            finally:
                timer.cancel()
                if p.poll() is None:
                    p.kill()
                    p.wait()
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(argv, timeout, output=f"see {logpath}")
        with open(logpath) as f:
            out = f.read()
        return subprocess.CompletedProcess(argv, rc, out, "")

    @property
    def pki_dir(self) -> str:
        return os.path.join(self.run_dir, "pki")

    def kubeconfig(self) -> str:
        """The admin kubeconfig Ansible wrote for the controller, used as it is (certificates
        embedded; its server is the control plane's hostfwd port, set by ansible_playbook)."""
        return os.path.join(self.run_dir, "fetched", "admin.kubeconfig")

    # -- teardown: exactly what we started
    def stop_vm(self, vm: VM) -> None:
        pid = self.qemu_pid(vm)
        if not pid:
            return
        if not owns(proc_cmdline(pid), "qemu-system", self.run_dir):
            return  # gone, or the PID now names another process
        try:
            os.kill(pid, signal.SIGTERM)
        except (OSError, ProcessLookupError):
            return
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)
        if os.path.exists(f"/proc/{pid}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def teardown(self) -> list[str]:
        """Stop qemu (by pidfile PID) and the repo server (by PID), delete taps, bridge, overlays.
        Returns what is still there afterwards (empty when clean)."""
        for vm in self.vms:
            self.stop_vm(vm)
        if self.repo_pid and owns(proc_cmdline(self.repo_pid), "http.server", self.repo_dir):
            try:
                os.kill(self.repo_pid, signal.SIGTERM)
                os.waitpid(self.repo_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass  # not our child (a stale run's): gone with SIGTERM
        for tap in self.taps:
            run(["ip", "link", "del", tap], check=False)
        if self.bridge:
            run(["ip", "link", "del", self.bridge], check=False)
        left = []
        for vm in self.vms:
            pid = self.qemu_pid(vm)
            if pid and owns(proc_cmdline(pid), "qemu-system", self.run_dir):
                left.append(f"qemu {vm.name} pid {pid}")
        links = run(["ip", "-o", "link", "show"], check=False).stdout
        left += [f"link {x}" for x in [*self.taps, self.bridge] if x and (f" {x}:" in links or f" {x}@" in links)]
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return left


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vmlab", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("image", help="build (or reuse) the VM image")
    up = sub.add_parser("up", help="boot VMs and run site.yml; prints the run dir")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--no-ansible", action="store_true")
    down = sub.add_parser("down", help="tear down a run dir made by `up`")
    down.add_argument("run_dir")
    a = ap.parse_args(argv)
    if a.cmd == "image":
        with tempfile.TemporaryDirectory() as wheels:
            build_wheelhouse(wheels, source=os.environ.get("KUBELAB_VM_SOURCE", ""))
            print(json.dumps(build_image(wheels), indent=2))
        return 0
    if a.cmd == "down":
        left = VMLab.load(a.run_dir).teardown()
        print("left:", left or "nothing")
        return 1 if left else 0
    lab = VMLab(workers=a.workers)
    try:
        lab.prepare()
        lab.boot()
        if not a.no_ansible:
            p = lab.ansible_playbook()
            print(p.stdout[-5000:])
        lab.detached = True  # the user's now: kept until `down` (never reaped as stale)
        lab.save()
        print(f"run dir: {lab.run_dir}  (python tests/vm/vmlab.py down {lab.run_dir})")
        return 0
    except BaseException:
        print("left:", lab.teardown())
        raise


if __name__ == "__main__":
    sys.exit(main())
