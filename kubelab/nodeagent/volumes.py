"""Pod volumes, as the kubelet's volume plugins lay them out on the node, under
<pod dir>/volumes/<name>, then bound into each container at its mountPath (see rootfs).

  emptyDir              a directory (mode 0777); `medium: Memory` a tmpfs of `sizeLimit`
                        (or half the node's memory, as tmpfs), mounted on the node for the
                        pod's life, so every container of the pod shares it
  hostPath              the node's path itself (type checked: Directory, FileOrCreate ...)
  configMap, secret,    files written by an atomic writer like the kubelet's: the payload
  downwardAPI,          lives in a timestamped `..<time>` directory, `..data` is a symlink to
  projected             it and each top-level name a symlink through `..data`; an update writes
                        a new directory and swaps `..data` with one rename, so a reader sees
                        the old set or the new one, never a mix. Re-synced every
                        RESYNC_SECONDS. A subPath mount binds the file the symlink resolved to
                        at start, so it never updates (as upstream)

Pure: `project_*` build {relative path: (bytes, mode)} from API objects; `validate_subpath`.
I/O: `AtomicWriter`, `Volumes` (prepare, resync, teardown).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from . import procs, rootfs

log = logging.getLogger("kubelab.nodeagent")

RESYNC_SECONDS = 10.0    # the kubelet's configMapAndSecretChangeDetectionStrategy Watch + sync ≈ 60 s max
DEFAULT_MODE = 0o644
ATOMIC_KINDS = ("configMap", "secret", "downwardAPI", "projected")
READ_ONLY_KINDS = ATOMIC_KINDS   # upstream mounts these read-only whatever volumeMounts say

Files = dict[str, tuple[bytes, int]]


class VolumeError(Exception):
    """A volume that cannot be set up (yet): the pod stays ContainerCreating with a
    FailedMount event, as with the kubelet."""


# ---- pure ------------------------------------------------------------------------------

def volume_kind(v: dict) -> str:
    for k in ("emptyDir", "hostPath", *ATOMIC_KINDS):
        if k in v:
            return k
    return ""


def _safe_rel(path: str) -> bool:
    return bool(path) and not path.startswith("/") and ".." not in path.split("/")


def _items(data: dict[str, bytes], items: list[dict] | None, default_mode: int, what: str,
           optional: bool) -> Files:
    out: Files = {}
    if not items:
        for k, b in data.items():
            out[k] = (b, default_mode)
        return out
    for it in items:
        key, path = it.get("key", ""), it.get("path", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"configmap references non-existent config key: {key}" if what == "configMap"
                              else f"references non-existent secret key: {key}")
        out[path] = (data[key], it.get("mode") if it.get("mode") is not None else default_mode)
    return out


def configmap_data(cm: dict) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v)
    return data


def secret_data(sec: dict) -> dict[str, bytes]:
    data = {}
    for k, v in (sec.get("data") or {}).items():
        try:
            data[k] = base64.b64decode(v)
        except (binascii.Error, TypeError):
            data[k] = b""
    for k, v in (sec.get("stringData") or {}).items():
        data[k] = str(v).encode()
    return data


def project_configmap(src: dict, cm: dict | None, default_mode: int) -> Files:
    if cm is None:
        if src.get("optional"):
            return {}
        raise VolumeError(f'configmap "{src.get("name", "")}" not found')
    return _items(configmap_data(cm), src.get("items"), default_mode, "configMap", bool(src.get("optional")))


def project_secret(src: dict, sec: dict | None, default_mode: int) -> Files:
    if sec is None:
        if src.get("optional"):
            return {}
        raise VolumeError(f'secret "{src.get("secretName") or src.get("name", "")}" not found')
    return _items(secret_data(sec), src.get("items"), default_mode, "secret", bool(src.get("optional")))


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
           "Ti": 2**40}


def quantity(q: Any) -> float:
    m = _QUANTITY.match(str(q))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"bad quantity {q!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def resource_value(pod: dict, ref: dict, *, node_cpus: int, node_memory: int, default_container: str = "") -> str:
    """resourceFieldRef: a container's request or limit (limits default to the node's
    allocatable, as upstream), divided by `divisor`, rounded up."""
    name = ref.get("containerName") or default_container
    res = ref.get("resource", "")
    c = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), {})
    kind, _, what = res.partition(".")
    r = (c.get("resources") or {})
    v = (r.get(kind) or {}).get(what)
    if v is None and kind == "requests":
        v = (r.get("limits") or {}).get(what)
    if v is None:
        v = {"cpu": node_cpus, "memory": node_memory}.get(what, 0) if kind == "limits" else 0
    divisor = quantity(ref.get("divisor") or "1")
    value = quantity(v) / divisor if divisor else 0
    import math
    return str(math.ceil(value - 1e-9))


def project_downward(src: dict, pod: dict, field_value: Callable[[str], str],
                     resource: Callable[[dict], str], default_mode: int) -> Files:
    out: Files = {}
    for it in src.get("items") or []:
        mode = it.get("mode") if it.get("mode") is not None else default_mode
        if it.get("fieldRef"):
            out[it["path"]] = (field_value(it["fieldRef"].get("fieldPath", "")).encode(), mode)
        elif it.get("resourceFieldRef"):
            out[it["path"]] = (resource(it["resourceFieldRef"]).encode(), mode)
    return out


def labels_text(d: dict | None) -> str:
    """The downward API's format for metadata.labels/annotations: key="value" per line, sorted."""
    return "\n".join(f'{k}="{v}"' for k, v in sorted((d or {}).items()))


def validate_subpath(sub: str) -> str | None:
    if sub.startswith("/"):
        return "must be a relative path"
    if ".." in sub.split("/"):
        return "must not contain '..'"
    return None


# ---- the atomic writer -------------------------------------------------------------------

class AtomicWriter:
    """The kubelet's atomic writer (pkg/volume/util/atomic_writer.go's layout, rewritten):
    `..data` → `..<timestamp>` holding the payload; user-visible names are symlinks through
    `..data`. `write` is a no-op when the payload is unchanged."""

    def __init__(self, directory: str, *, gid: int | None = None) -> None:
        self.dir = directory
        self.gid = gid

    def current(self) -> Files | None:
        data = os.path.join(self.dir, "..data")
        if not os.path.islink(data):
            return None
        out: Files = {}
        base = os.path.join(self.dir, os.readlink(data))
        for dirpath, _, files in os.walk(base):
            for f in files:
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, base)] = (fh.read(), stat.S_IMODE(os.lstat(p).st_mode))
        return out

    def write(self, files: Files) -> bool:
        for p in files:
            if not _safe_rel(p):
                raise VolumeError(f"invalid path {p!r}")
        if self.current() == files:
            return False
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        ts = "..%s.%06d" % (time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()), int(time.time() * 1e6) % 10**6)
        new = os.path.join(self.dir, ts)
        os.mkdir(new, 0o755)
        for rel, (data, mode) in files.items():
            p = os.path.join(new, rel)
            os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                os.fchmod(f.fileno(), mode)
                if self.gid is not None:
                    os.fchown(f.fileno(), -1, self.gid)
        old = os.readlink(os.path.join(self.dir, "..data")) if os.path.islink(os.path.join(self.dir, "..data")) else None
        tmp = os.path.join(self.dir, "..data_tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(ts, tmp)
        os.replace(tmp, os.path.join(self.dir, "..data"))   # the one atomic step
        tops = {rel.split("/", 1)[0] for rel in files}
        for name in os.listdir(self.dir):
            if name.startswith(".."):
                continue
            if name not in tops:
                os.unlink(os.path.join(self.dir, name))
        for t in tops:
            link = os.path.join(self.dir, t)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", t), link)
        if old and old != ts:
            shutil.rmtree(os.path.join(self.dir, old), ignore_errors=True)
        return True


# ---- a pod's volumes (I/O) ---------------------------------------------------------------

@dataclass
class Prepared:
    name: str
    kind: str
    path: str                 # the node path to bind


Fetch = Callable[[str, str, str], Awaitable[dict | None]]   # (resource, namespace, name) → object or None
Token = Callable[[dict], Awaitable[tuple[str, float]]]       # serviceAccountToken source → (token, expiry)


class Volumes:
    """One pod's volumes: prepared before its first container starts, re-synced while it runs,
    torn down (tmpfs unmounted) with the pod."""

    def __init__(self, pod_dir: str, *, fetch: Fetch, token: Token, field_value: Callable[[str], str],
                 resource: Callable[[dict], str], ca_file: str | None = None) -> None:
        self.dir = os.path.join(pod_dir, "volumes")
        self.fetch, self.token, self.field_value, self.resource = fetch, token, field_value, resource
        self.ca_file = ca_file
        self.prepared: dict[str, Prepared] = {}
        self.token_expiry: dict[str, float] = {}
        self.next_sync = 0.0

    async def prepare(self, pod: dict) -> dict[str, Prepared]:
        """Set up every volume (raises VolumeError, naming the volume, for the first that fails)."""
        for v in (pod.get("spec") or {}).get("volumes") or []:
            name, kind = v.get("name", ""), volume_kind(v)
            try:
                if name not in self.prepared or kind in ATOMIC_KINDS:
                    self.prepared[name] = await self._one(pod, v, kind)
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
        self.next_sync = time.time() + RESYNC_SECONDS
        return self.prepared

    async def resync(self, pod: dict) -> None:
        if time.time() < self.next_sync or not self.prepared:
            return
        try:
            await self.prepare(pod)
        except VolumeError as e:
            log.info("volume resync: %s", e)
            self.next_sync = time.time() + RESYNC_SECONDS

    async def _one(self, pod: dict, v: dict, kind: str) -> Prepared:
        name = v["name"]
        path = os.path.join(self.dir, kind, name)
        psc = (pod.get("spec") or {}).get("securityContext") or {}
        fs_group = psc.get("fsGroup")
        if kind == "emptyDir":
            ed = v.get("emptyDir") or {}
            if not os.path.isdir(path):
                os.makedirs(path, mode=0o777)
            if ed.get("medium") == "Memory" and not _is_mount(path):
                opts = "mode=0777"
                if ed.get("sizeLimit"):
                    opts += f",size={int(quantity(ed['sizeLimit']))}"
                rootfs.mount("tmpfs", path, "tmpfs", rootfs.MS_NOSUID | rootfs.MS_NODEV, opts)
            os.chmod(path, 0o777)
            if fs_group is not None:
                os.chown(path, -1, int(fs_group))
                os.chmod(path, 0o2777)
            return Prepared(name, kind, path)
        if kind == "hostPath":
            hp = v["hostPath"]
            return Prepared(name, kind, host_path(hp.get("path", ""), hp.get("type") or ""))
        ns = pod["metadata"].get("namespace", "default")
        files: Files = {}
        if kind == "configMap":
            src = v["configMap"]
            mode = src.get("defaultMode", DEFAULT_MODE)
            files = project_configmap(src, await self.fetch("configmaps", ns, src.get("name", "")), mode)
        elif kind == "secret":
            src = v["secret"]
            mode = src.get("defaultMode", DEFAULT_MODE)
            files = project_secret(src, await self.fetch("secrets", ns, src.get("secretName", "")), mode)
        elif kind == "downwardAPI":
            src = v["downwardAPI"]
            files = project_downward(src, pod, self.field_value, self.resource, src.get("defaultMode", DEFAULT_MODE))
        elif kind == "projected":
            pj = v["projected"]
            mode = pj.get("defaultMode", DEFAULT_MODE)
            for s in pj.get("sources") or []:
                if "configMap" in s:
                    files.update(project_configmap(s["configMap"], await self.fetch(
                        "configmaps", ns, s["configMap"].get("name", "")), mode))
                elif "secret" in s:
                    files.update(project_secret(s["secret"], await self.fetch(
                        "secrets", ns, s["secret"].get("name", "")), mode))
                elif "downwardAPI" in s:
                    files.update(project_downward(s["downwardAPI"], pod, self.field_value, self.resource, mode))
                elif "serviceAccountToken" in s:
                    files.update(await self._token(name, s["serviceAccountToken"], path, mode))
                elif "clusterTrustBundle" in s:
                    raise VolumeError("clusterTrustBundle projections are not supported by kubelab")
        AtomicWriter(path, gid=int(fs_group) if fs_group is not None else None).write(files)
        return Prepared(name, kind, path)

    async def _token(self, vol: str, src: dict, path: str, mode: int) -> Files:
        """Keep the current token until 80% of its life (the kubelet's rule), else ask anew."""
        key = f"{vol}/{src.get('path', 'token')}"
        cur = AtomicWriter(path).current() or {}
        rel = src.get("path", "token")
        if rel in cur and time.time() < self.token_expiry.get(key, 0):
            return {rel: cur[rel]}
        token, expires_at = await self.token(src)
        ttl = max(expires_at - time.time(), 0)
        self.token_expiry[key] = time.time() + ttl * 0.8
        return {rel: (token.encode(), mode)}

    def teardown(self) -> None:
        """Unmount memory-backed emptyDirs (the caller removes the directory)."""
        ed = os.path.join(self.dir, "emptyDir")
        if os.path.isdir(ed):
            for n in os.listdir(ed):
                procs.umount(os.path.join(ed, n))


def teardown_dir(pod_dir: str) -> None:
    """The same for a pod found again after a restart (no Volumes object)."""
    ed = os.path.join(pod_dir, "volumes", "emptyDir")
    if os.path.isdir(ed):
        for n in os.listdir(ed):
            procs.umount(os.path.join(ed, n))


def _is_mount(path: str) -> bool:
    return os.path.ismount(path)


def host_path(path: str, kind: str) -> str:
    """hostPath's type checks and *OrCreate (upstream's hostPathTypeChecker)."""
    if not path.startswith("/"):
        raise VolumeError(f"hostPath {path!r} is not absolute")
    exists = os.path.lexists(path)
    if kind == "DirectoryOrCreate" and not exists:
        os.makedirs(path, mode=0o755)
    elif kind == "FileOrCreate" and not exists:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    checks = {"Directory": os.path.isdir, "DirectoryOrCreate": os.path.isdir, "File": os.path.isfile,
              "FileOrCreate": os.path.isfile,
              "Socket": lambda p: stat.S_ISSOCK(os.stat(p).st_mode),
              "CharDevice": lambda p: stat.S_ISCHR(os.stat(p).st_mode),
              "BlockDevice": lambda p: stat.S_ISBLK(os.stat(p).st_mode)}
    if kind in checks:
        if not os.path.exists(path):
            raise VolumeError(f"hostPath type check failed: {path} does not exist")
        if not checks[kind](path):
            raise VolumeError(f"hostPath type check failed: {path} is not a {kind}")
    elif not exists:
        # type "": no check; the runtime creates a missing directory (as Docker's bind does)
        os.makedirs(path, mode=0o755)
    return path


def container_mounts(container: dict, prepared: dict[str, Prepared], expand: Callable[[str], str]) -> list[rootfs.Mount]:
    """The binds for one container's volumeMounts (raises VolumeError for a bad subPath)."""
    out: list[rootfs.Mount] = []
    for vm in container.get("volumeMounts") or []:
        p = prepared.get(vm.get("name", ""))
        if p is None:
            raise VolumeError(f'volume "{vm.get("name", "")}" is not prepared')
        ro = bool(vm.get("readOnly")) or p.kind in READ_ONLY_KINDS
        src = p.path
        sub = vm.get("subPath") or (expand(vm["subPathExpr"]) if vm.get("subPathExpr") else "")
        if sub:
            err = validate_subpath(sub)
            if err:
                raise VolumeError(f"subPath {sub!r} {err}")
            # resolved now: for an atomic volume that is the file in the current ..<time>
            # directory, which is why a subPath mount never sees updates (as upstream)
            real = os.path.realpath(os.path.join(src, sub))
            base = os.path.realpath(src)
            if real != base and not real.startswith(base + "/"):
                raise VolumeError(f"subPath {sub!r} leaves the volume")
            if not os.path.lexists(real):
                if p.kind in ATOMIC_KINDS:
                    raise VolumeError(f"subPath {sub!r} does not exist in volume {p.name!r}")
                os.makedirs(real, mode=0o777, exist_ok=True)
            src = real
        out.append(rootfs.Mount(src, vm.get("mountPath", ""), read_only=ro))
    return out
