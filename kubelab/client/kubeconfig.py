"""Kubeconfig files, and the connection flags every component shares.

Every kubelab component takes `--kubeconfig PATH` or `--server URL` like the Kubernetes
binaries do, so a student can boot a cluster by hand, component by component.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml


class KubeconfigError(ValueError):
    pass


@dataclass
class Connection:
    """Where and how to reach the API server."""

    server: str
    token: str | None = None
    client_cert: str | None = None  # path to a PEM file
    client_key: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    token_file: str | None = None  # re-read when it changes (rotated service-account tokens), see rest.py


def default_path() -> str:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return str(Path.home() / ".kube" / "config")


def _materialize(data_b64: str, suffix: str) -> str:
    """kubeconfigs may embed certs as base64 data; httpx wants files."""
    fd, path = tempfile.mkstemp(prefix="kubelab-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(data_b64))
    os.chmod(path, 0o600)
    return path


def read_token_file(path: str) -> str:
    """The bearer token in `path`, stripped; OSError/ValueError when unreadable or empty."""
    with open(path) as f:
        token = f.read().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


def load(path: str | None = None, *, context: str | None = None) -> Connection:
    path = path or default_path()
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise KubeconfigError(f"kubeconfig not found: {path}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    name = context or cfg.get("current-context")
    contexts = {c["name"]: c.get("context", {}) for c in cfg.get("contexts") or []}
    if name not in contexts:
        raise KubeconfigError(f"context {name!r} not found in {path}")
    ctx = contexts[name]
    clusters = {c["name"]: c.get("cluster", {}) for c in cfg.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) for u in cfg.get("users") or []}
    cluster = clusters.get(ctx.get("cluster"))
    if not cluster or not cluster.get("server"):
        raise KubeconfigError(f"cluster {ctx.get('cluster')!r} of context {name!r} has no server in {path}")
    user = users.get(ctx.get("user")) or {}
    base = os.path.dirname(os.path.abspath(path))

    def rel(p: str | None) -> str | None:
        return p if not p or os.path.isabs(p) else os.path.join(base, p)

    conn = Connection(server=cluster["server"].rstrip("/"), insecure=bool(cluster.get("insecure-skip-tls-verify")))
    conn.ca_file = rel(cluster.get("certificate-authority"))
    if cluster.get("certificate-authority-data"):
        conn.ca_file = _materialize(cluster["certificate-authority-data"], ".crt")
    conn.client_cert = rel(user.get("client-certificate"))
    if user.get("client-certificate-data"):
        conn.client_cert = _materialize(user["client-certificate-data"], ".crt")
    conn.client_key = rel(user.get("client-key"))
    if user.get("client-key-data"):
        conn.client_key = _materialize(user["client-key-data"], ".key")
    conn.token = user.get("token")
    if user.get("tokenFile"):
        # as client-go: the file is re-read while running, and its last good value wins over `token`
        conn.token_file = rel(user["tokenFile"])
        try:
            conn.token = read_token_file(conn.token_file)
        except (OSError, ValueError) as e:
            if not conn.token:
                raise KubeconfigError(f"user {ctx.get('user')!r} in {path}: cannot read tokenFile: {e}") from None
    return conn


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
