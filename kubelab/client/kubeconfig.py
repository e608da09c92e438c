"""Kubeconfig files, and the connection flags every component shares.

Every kubelab component takes `--kubeconfig PATH` or `--server URL` like the Kubernetes
binaries do, so a student can boot a cluster by hand, component by component.
"""

from __future__ import annotations

import argparse
import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class KubeconfigError(ValueError):
    pass


@dataclass
class Connection:
    """Where and how to reach the API server.

    Credentials are either paths (`*_file`, `client_cert`, `client_key`: read when the TLS
    context is built) or bytes held in memory (`*_data`: a kubeconfig's embedded
    `*-data`). Invariant: embedded private keys never touch a filesystem (see `ssl_context`).
    """

    server: str
    token: str | None = field(default=None, repr=False)  # secrets never in a repr or a log line
    client_cert: str | None = None  # path to a PEM file
    client_key: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    token_file: str | None = None  # re-read when it changes (rotated service-account tokens), see rest.py
    ca_data: bytes | None = field(default=None, repr=False)           # PEM, certificate-authority-data
    client_cert_data: bytes | None = field(default=None, repr=False)  # PEM, client-certificate-data
    client_key_data: bytes | None = field(default=None, repr=False)   # PEM, client-key-data (memory only)
    namespace: str | None = None           # the context's namespace, when it sets one

    def ca_pem(self) -> bytes | None:
        """The CA bundle as bytes, wherever it comes from (e.g. to copy into a pod)."""
        if self.ca_data:
            return self.ca_data
        if self.ca_file:
            with open(self.ca_file, "rb") as f:
                return f.read()
        return None

    @property
    def has_client_certificate(self) -> bool:
        return bool(self.client_cert or self.client_cert_data)


def default_path() -> str:
    """Where a kubeconfig is *written*: the first file of $KUBECONFIG, else ~/.kube/config
    (kubectl's rule for a new entry)."""
    paths = default_paths()
    return paths[0]


def default_paths() -> list[str]:
    """Every file kubectl reads: $KUBECONFIG's list (in order, empty entries and repeats
    dropped), else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG")
    if env:
        paths = list(dict.fromkeys(p for p in env.split(os.pathsep) if p))
        if paths:
            return paths
    return [str(Path.home() / ".kube" / "config")]


def read_token_file(path: str) -> str:
    """The bearer token in `path`, stripped; OSError/ValueError when unreadable or empty."""
    with open(path) as f:
        token = f.read().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


# Fields that name files, resolved against the directory of the file that holds the entry
# (as client-go's ResolvePaths does before merging).
_PATH_FIELDS = {"clusters": ("certificate-authority",),
                "users": ("client-certificate", "client-key", "tokenFile")}
_MAPS = ("clusters", "users", "contexts")


def read_config(path: str) -> dict:
    """One kubeconfig file as a mapping; KubeconfigError for bad YAML or shape, FileNotFoundError
    when it does not exist."""
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {e}") from None
    except IsADirectoryError:
        raise KubeconfigError(f"kubeconfig {path} is a directory") from None
    if not isinstance(cfg, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    for key in _MAPS:
        entries = cfg.get(key) or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                                    for e in entries):
            raise KubeconfigError(f"kubeconfig {path}: {key} must be a list of entries with a name")
    return cfg


def merge_configs(files: list[tuple[str, dict]]) -> dict:
    """kubectl's merge of several kubeconfig files (pure): for clusters, users and contexts the
    first file that defines a name wins (the whole entry, never a field-by-field mix);
    `current-context` comes from the first file that sets it. Relative paths are made absolute
    against their own file's directory first, so an entry means the same after the merge."""
    merged: dict = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {k: set() for k in _MAPS}
    for path, cfg in files:
        base = os.path.dirname(os.path.abspath(path))
        if not merged.get("current-context") and cfg.get("current-context"):
            merged["current-context"] = cfg["current-context"]
        for key in _MAPS:
            for entry in cfg.get(key) or []:
                if entry["name"] in seen[key]:
                    continue
                seen[key].add(entry["name"])
                inner_key = key[:-1]
                inner = dict(entry.get(inner_key) or {})
                for path_field in _PATH_FIELDS.get(key, ()):
                    value = inner.get(path_field)
                    if isinstance(value, str) and value and not os.path.isabs(value):
                        inner[path_field] = os.path.join(base, value)
                merged[key].append({"name": entry["name"], inner_key: inner})
    return merged


def load_config(path: str | None = None) -> tuple[dict, str]:
    """The kubeconfig in effect and a description of where it came from: `path` alone when
    given (it must exist, as kubectl's --kubeconfig), else every file of $KUBECONFIG that
    exists, merged, else ~/.kube/config."""
    paths = [path] if path else default_paths()
    files = []
    for p in paths:
        try:
            files.append((p, read_config(p)))
        except FileNotFoundError:
            if path:
                raise KubeconfigError(f"kubeconfig not found: {p}") from None
    where = os.pathsep.join(paths)
    if not files:
        raise KubeconfigError(f"kubeconfig not found: {where}")
    return merge_configs(files), where


def _b64(value, what: str) -> bytes:
    try:  # Go's decoder (kubectl's) skips line breaks: so does this one
        return base64.b64decode("".join(str(value).split()), validate=True)
    except (ValueError, TypeError):
        raise KubeconfigError(f"{what} is not valid base64") from None


def connection_from_config(cfg: dict, *, context: str | None = None, where: str = "kubeconfig") -> Connection:
    """A Connection from a (merged) kubeconfig mapping; embedded data stays in memory."""
    name = context or cfg.get("current-context")
    contexts = {c["name"]: c.get("context") or {} for c in cfg.get("contexts") or []}
    if not name:
        raise KubeconfigError(f"no current-context in {where} (use --context)")
    if name not in contexts:
        raise KubeconfigError(f"context {name!r} not found in {where}")
    ctx = contexts[name]
    clusters = {c["name"]: c.get("cluster") or {} for c in cfg.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in cfg.get("users") or []}
    cluster = clusters.get(ctx.get("cluster"))
    if not cluster or not cluster.get("server"):
        raise KubeconfigError(f"cluster {ctx.get('cluster')!r} of context {name!r} has no server in {where}")
    user = users.get(ctx.get("user")) or {}
    who = f"user {ctx.get('user')!r} in {where}"
    conn = Connection(server=cluster["server"].rstrip("/"), insecure=bool(cluster.get("insecure-skip-tls-verify")),
                      namespace=ctx.get("namespace") or None)
    # as kubectl: *-data wins over the file of the same field
    if cluster.get("certificate-authority-data"):
        conn.ca_data = _b64(cluster["certificate-authority-data"], f"certificate-authority-data of cluster "
                                                                   f"{ctx.get('cluster')!r} in {where}")
    else:
        conn.ca_file = cluster.get("certificate-authority") or None
    if user.get("client-certificate-data"):
        conn.client_cert_data = _b64(user["client-certificate-data"], f"client-certificate-data of {who}")
    else:
        conn.client_cert = user.get("client-certificate") or None
    if user.get("client-key-data"):
        conn.client_key_data = _b64(user["client-key-data"], f"client-key-data of {who}")
    else:
        conn.client_key = user.get("client-key") or None
    conn.token = user.get("token")
    if user.get("tokenFile"):
        # as client-go: the file is re-read while running, and its last good value wins over `token`
        conn.token_file = user["tokenFile"]
        try:
            conn.token = read_token_file(conn.token_file)
        except (OSError, ValueError) as e:
            if not conn.token:
                raise KubeconfigError(f"{who}: cannot read tokenFile: {e}") from None
    return conn


def load(path: str | None = None, *, context: str | None = None) -> Connection:
    """The connection of `context` (default: current-context) in `path`, else in the merged
    $KUBECONFIG files, else in ~/.kube/config."""
    cfg, where = load_config(path)
    return connection_from_config(cfg, context=context, where=where)


def ssl_context(conn: Connection):
    """One SSLContext with the CA and the client certificate, from files or from memory.

    Python's `ssl` reads a CA from memory (`cadata`) but a certificate chain only from a
    path. An embedded key is therefore handed over through an anonymous memory file
    (`memfd_create`: it has no name in any filesystem and vanishes with its last
    descriptor), opened by OpenSSL as /proc/self/fd/N. Nothing is written to /tmp or
    anywhere else, and nothing is left behind (issue 13)."""
    import ssl
    if conn.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    elif conn.ca_data:
        try:
            ctx = ssl.create_default_context(cadata=conn.ca_data.decode("ascii", "replace"))
        except ssl.SSLError as e:
            raise KubeconfigError(f"certificate-authority-data is not a PEM certificate: {e}") from None
    else:
        ctx = ssl.create_default_context(cafile=conn.ca_file)
    if conn.client_cert_data or conn.client_key_data:
        cert = conn.client_cert_data or _read(conn.client_cert)
        key = conn.client_key_data or _read(conn.client_key)
        if not cert or not key:
            raise KubeconfigError("a client certificate needs both the certificate and its key")
        _load_chain_from_memory(ctx, cert, key)
    elif conn.client_cert:
        ctx.load_cert_chain(conn.client_cert, conn.client_key)
    return ctx


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def _load_chain_from_memory(ctx, cert_pem: bytes, key_pem: bytes) -> None:
    import ssl
    if not hasattr(os, "memfd_create"):
        raise KubeconfigError("embedded client keys (client-key-data) need Linux (memfd_create); "
                              "use client-key with a file path")
    fd = os.memfd_create("kubelab-client-cert", os.MFD_CLOEXEC)
    try:
        data = cert_pem.rstrip(b"\n") + b"\n" + key_pem
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        try:
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        except ssl.SSLError as e:
            raise KubeconfigError(f"the embedded client certificate or key is not usable: {e}") from None
    finally:
        os.close(fd)


def render(*, server: str, name: str = "kubelab", user: str = "admin", namespace: str | None = None,
           ca_file: str | None = None, client_cert: str | None = None, client_key: str | None = None,
           token: str | None = None) -> str:
    """A kubeconfig that the real kubectl and every kubelab component accept."""
    cluster: dict = {"server": server}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    u: dict = {}
    if client_cert:
        u["client-certificate"] = client_cert
    if client_key:
        u["client-key"] = client_key
    if token:
        u["token"] = token
    ctx: dict = {"cluster": name, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    cfg = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": name,
           "clusters": [{"name": name, "cluster": cluster}], "users": [{"name": user, "user": u}],
           "contexts": [{"name": name, "context": ctx}]}
    return yaml.safe_dump(cfg, sort_keys=False)


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connection to the API server")
    g.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    g.add_argument("--server", "--master", dest="server", default=None,
                   help="API server URL, e.g. http://127.0.0.1:6443 (overrides the kubeconfig's)")
    g.add_argument("--context", default=None, help="kubeconfig context to use")


SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def in_cluster(*, sa_dir: str = SA_DIR) -> Connection | None:
    """A pod's view of the API: the `kubernetes` Service from the env vars the node agent
    sets, plus the mounted service-account token when there is one (as client-go's). The
    token file is remembered: the node agent rotates it, and ApiClient re-reads it."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    token_file, ca_file = os.path.join(sa_dir, "token"), os.path.join(sa_dir, "ca.crt")
    secure = os.path.exists(ca_file)
    conn = Connection(server=f"{'https' if secure else 'http'}://{host}:{port}", ca_file=ca_file if secure else None)
    if os.path.exists(token_file):
        conn.token_file = token_file
        try:
            conn.token = read_token_file(token_file)
        except (OSError, ValueError):
            pass  # ApiClient keeps trying the file
    return conn


def connection_from_args(args: argparse.Namespace) -> Connection:
    """--server alone, else --kubeconfig (or $KUBECONFIG), else in-cluster, else ~/.kube/config."""
    if getattr(args, "server", None) and not getattr(args, "kubeconfig", None):
        return Connection(server=args.server.rstrip("/"))
    if not getattr(args, "kubeconfig", None) and not os.environ.get("KUBECONFIG"):
        conn = in_cluster()
        if conn is not None:
            return conn
    conn = load(getattr(args, "kubeconfig", None), context=getattr(args, "context", None))
    if getattr(args, "server", None):
        conn.server = args.server.rstrip("/")
    return conn
