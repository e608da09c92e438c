"""The lab's entries in the user's kubeconfig, as kind does it.

`kubelab up` merges one cluster, one user and one context, all named `kubelab-<lab>`, into
the user's kubeconfig (the first file of $KUBECONFIG, else ~/.kube/config of the user who ran
sudo) and makes that context current; `kubelab down` removes exactly those three entries and,
when the lab's context is still current, switches back to the context that was current before
(kind leaves it empty; going back is what a student expects). Everything else in the file
stays: other clusters, users, contexts, preferences, extensions.

Why the file I/O is careful: `up` and `down` run as root, but the file sits in a directory its
user controls. Root writing through a link the user planted (`~/.kube/config ->
/etc/shadow`) would overwrite any file on the machine, and root reading through one
(`-> /root/.kube/config`) would copy root's credentials into the user's file. kubectl and
kind follow links because they run with the user's own rights; kubelab does not have that
excuse, so it never follows one: the directory is opened with O_NOFOLLOW and pinned by its
descriptor, the file is opened with O_NOFOLLOW relative to it, and the new content is written
to a fresh file (O_EXCL) in that directory and renamed over the old one. A link at either
place is refused with a one-line error before `up` changes anything (docs/security.md).

Pure core (`merge`, `remove`) over plain dicts; the I/O is `read`/`write`/`unlink`.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from dataclasses import dataclass

import yaml

_MAPS = ("clusters", "users", "contexts")


class UserConfigError(Exception):
    """The user's kubeconfig cannot be read or written safely: one line for the user."""


@dataclass(frozen=True)
class Target:
    path: str
    uid: int | None = None  # owner for the files and directory `up` creates (the sudo user)
    gid: int | None = None


def target(environ: dict | None = None) -> Target:
    """The first file of $KUBECONFIG, else ~/.kube/config of the user who ran sudo (not root's)."""
    env = os.environ if environ is None else environ
    uid = gid = None
    home = os.path.expanduser("~")
    user = env.get("SUDO_USER")
    if user and user != "root":
        try:
            pw = pwd.getpwnam(user)
            home, uid, gid = pw.pw_dir, pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
    first = [p for p in (env.get("KUBECONFIG") or "").split(os.pathsep) if p]
    path = os.path.abspath(first[0]) if first else os.path.join(home, ".kube", "config")
    return Target(path, uid, gid)


# ---- pure ---------------------------------------------------------------------------------------

def entries_of(lab_cfg: dict, name: str) -> dict[str, dict]:
    """The lab kubeconfig's current cluster, user and context, each renamed to `name`."""
    ctx_name = lab_cfg.get("current-context")
    ctx = next(c for c in lab_cfg["contexts"] if c["name"] == ctx_name)["context"]
    cluster = next(c for c in lab_cfg["clusters"] if c["name"] == ctx["cluster"])["cluster"]
    user = next(u for u in lab_cfg["users"] if u["name"] == ctx["user"])["user"]
    return {"clusters": {"name": name, "cluster": dict(cluster)},
            "users": {"name": name, "user": dict(user)},
            "contexts": {"name": name, "context": {**ctx, "cluster": name, "user": name}}}


def merge(cfg: dict | None, lab_cfg: dict, name: str) -> dict:
    """`cfg` with the lab's three entries added (replacing same-named ones) and made current."""
    out = dict(cfg or {})
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    for key, entry in entries_of(lab_cfg, name).items():
        out[key] = [e for e in (out.get(key) or []) if e.get("name") != name] + [entry]
    out["current-context"] = name
    return out


def remove(cfg: dict, name: str, previous_context: str | None = None) -> dict:
    """`cfg` without the entries named `name`; if that context was current, `previous_context`
    is current again when it still exists (else none is)."""
    out = dict(cfg)
    for key in _MAPS:
        if key in out:
            out[key] = [e for e in (out.get(key) or []) if e.get("name") != name]
    if out.get("current-context") == name:
        names = {c.get("name") for c in out.get("contexts") or []}
        if previous_context and previous_context in names:
            out["current-context"] = previous_context
        else:
            out.pop("current-context", None)
    return out


def is_empty(cfg: dict) -> bool:
    return not any(cfg.get(k) for k in _MAPS) and not cfg.get("current-context")


# ---- I/O (no link is ever followed) -------------------------------------------------------------

def _open_dir(t: Target, *, create: bool) -> int:
    d = os.path.dirname(t.path)
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(d, 0o700)  # the parent (the home) is the user's or root's; mkdir never follows
        except OSError as e:
            raise UserConfigError(f"cannot create {d}: {e.strerror}") from None
        if t.uid is not None:
            os.lchown(d, t.uid, t.gid)
        st = os.lstat(d)
    if stat.S_ISLNK(st.st_mode):
        raise UserConfigError(f"{d} is a symbolic link: kubelab (running as root) does not write through links "
                              f"into a user's kubeconfig; make it a directory, or use --no-kubeconfig and "
                              f"`kubelab get-kubeconfig`")
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise UserConfigError(f"cannot open {d}: {e.strerror}") from None
    owner = os.fstat(fd).st_uid
    if owner not in (0, os.geteuid()) and (t.uid is None or owner != t.uid):
        os.close(fd)
        raise UserConfigError(f"{d} belongs to another user (uid {owner}): not writing a kubeconfig there")
    return fd


def _open_file(dfd: int, t: Target) -> int | None:
    base = os.path.basename(t.path)
    try:
        fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UserConfigError(f"{t.path} is a symbolic link: kubelab (running as root) does not write through "
                                  f"links into a user's kubeconfig; replace it with a file, or use --no-kubeconfig "
                                  f"and `kubelab get-kubeconfig`") from None
        raise UserConfigError(f"cannot read {t.path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserConfigError(f"{t.path} is not a regular file")
    return fd


def read(t: Target) -> dict | None:
    """The kubeconfig at `t` (None when there is none); UserConfigError when it is a link, not a
    file, or not a kubeconfig."""
    try:
        dfd = _open_dir(t, create=False)
    except FileNotFoundError:
        return None
    try:
        fd = _open_file(dfd, t)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    finally:
        os.close(dfd)
    try:
        cfg = yaml.safe_load(data) or {}
    except yaml.YAMLError as e:
        raise UserConfigError(f"{t.path} is not valid YAML ({str(e).splitlines()[0]}): fix it or use "
                              f"--no-kubeconfig") from None
    if not isinstance(cfg, dict) or any(not isinstance(cfg.get(k) or [], list) for k in _MAPS):
        raise UserConfigError(f"{t.path} is not a kubeconfig (a mapping with lists of clusters, users, contexts)")
    return cfg


def write(t: Target, cfg: dict) -> None:
    """Replace the file at `t` with `cfg`: a new file in the same (pinned) directory, renamed
    over the old one. It keeps the old file's owner and mode; a new one is 0600, the user's."""
    dfd = _open_dir(t, create=True)
    base = os.path.basename(t.path)
    tmp = f".{base}.kubelab-{os.getpid()}.tmp"
    try:
        old = _open_file(dfd, t)
        if old is not None:
            st = os.fstat(old)
            os.close(old)
            uid, gid, mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        else:
            uid, gid, mode = t.uid, t.gid, 0o600
        try:
            os.unlink(tmp, dir_fd=dfd)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
        try:
            with os.fdopen(fd, "w") as f:
                if uid is not None:
                    os.fchown(f.fileno(), uid, gid if gid is not None else -1)
                os.fchmod(f.fileno(), mode)
                f.write(yaml.safe_dump(cfg, sort_keys=False))
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, base, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
    finally:
        os.close(dfd)


def unlink(t: Target) -> None:
    dfd = _open_dir(t, create=False)
    try:
        os.unlink(os.path.basename(t.path), dir_fd=dfd)  # removes a link itself, never its target
    finally:
        os.close(dfd)


# ---- what up and down do ------------------------------------------------------------------------

def install(lab_text: str, name: str, t: Target | None = None) -> tuple[dict, str]:
    """Merge the lab's entries into the user's kubeconfig and make them current. Returns the
    record `uninstall` needs (no secrets in it) and a line for the user."""
    t = t or target()
    cfg = read(t)
    previous = (cfg or {}).get("current-context")
    write(t, merge(cfg, yaml.safe_load(lab_text), name))
    record = {"path": t.path, "name": name, "previous_context": previous if previous != name else None,
              "created_file": cfg is None, "uid": t.uid, "gid": t.gid}
    line = f"merged cluster, user and context {name} into {t.path} and made it current"
    if previous and previous != name:
        line += f" (was {previous}: `kubectl config use-context {previous}` to switch back)"
    return record, line


def uninstall(record: dict | None) -> str | None:
    """Remove exactly the entries `install` added. A line for the user, or None (nothing to do)."""
    if not record or not record.get("name"):
        return None
    t = Target(record["path"], record.get("uid"), record.get("gid"))
    name = record["name"]
    try:
        cfg = read(t)
    except UserConfigError as e:
        return f"{e}; left as it is"
    if cfg is None:
        return None
    if not any(e.get("name") == name for k in _MAPS for e in cfg.get(k) or []):
        return None
    out = remove(cfg, name, record.get("previous_context"))
    if record.get("created_file") and is_empty(out):
        unlink(t)
        return f"removed {t.path} (created by `up`; nothing else was in it)"
    write(t, out)
    back = f"; current context: {out['current-context']}" if out.get("current-context") else ""
    return f"removed cluster, user and context {name} from {t.path}{back}"
