"""What every verb needs: the connection, the namespace, type resolution, and kubectl's
error lines. Kept apart from the verbs so each verb module stays about its own job."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit


from kubelab.client import ApiClient, ApiError, Connection, KubeconfigError
from kubelab.client.kubeconfig import default_paths, load
from kubelab.resources import RESOURCES, ResourceType, lookup

DEFAULT_SERVER = "http://127.0.0.1:6443"


class CliError(Exception):
    """A user-facing failure: printed as one `error: ...` line (unless `raw`), exit `code`."""

    def __init__(self, message: str, code: int = 1, *, raw: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.raw = raw

    def line(self) -> str:
        return self.message if self.raw else f"error: {self.message}"


def resolve_type(name: str) -> ResourceType:
    """`po`, `pods`, `deploy`, `deployment.apps` → the ResourceType, or kubectl's error."""
    try:
        return lookup(name)
    except KeyError:
        pass
    base, _, group = name.lower().partition(".")
    if group:
        for r in RESOURCES:
            if r.group == group and base in (r.plural, r.singular, *r.short_names):
                return r
    raise CliError(f'the server doesn\'t have a resource type "{name}"')


class WarningPrinter:
    """kubectl's warning writer: each server warning as `Warning: TEXT` on stderr, once per run."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, text: str) -> None:
        if text not in self._seen:
            self._seen.add(text)
            sys.stderr.write(f"Warning: {text}\n")
            sys.stderr.flush()


class Context:
    """Per-invocation state: parsed args, a lazily opened ApiClient, output streams."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._client: ApiClient | None = None
        self._conn: Connection | None = None
        self.failed = False  # set by verbs that report some errors and carry on (exit 1)

    # --- connection ---------------------------------------------------------------------------
    def kubeconfig_path(self) -> str | None:
        """--kubeconfig, else None: the merged $KUBECONFIG files (or ~/.kube/config) apply."""
        return getattr(self.args, "kubeconfig", None) or None

    def _have_kubeconfig(self) -> bool:
        return bool(self.kubeconfig_path()) or any(os.path.exists(p) for p in default_paths())

    def connection(self) -> Connection:
        if self._conn is None:
            server = getattr(self.args, "server", None)
            if not self._have_kubeconfig() or (server and not self.kubeconfig_path()):
                self._conn = Connection(server=(server or DEFAULT_SERVER).rstrip("/"))
            else:
                try:
                    conn = load(self.kubeconfig_path(), context=getattr(self.args, "context", None))
                except KubeconfigError as e:
                    raise CliError(str(e)) from None
                if server:
                    conn.server = server.rstrip("/")
                self._conn = conn
        return self._conn

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(connection=self.connection(), user_agent="kubelab-cli",
                                     warning_handler=WarningPrinter())
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # --- namespace ----------------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        ns = getattr(self.args, "namespace", None)
        if ns:
            return ns
        try:
            ns = self.connection().namespace  # the context's namespace (None with --server alone)
        except CliError:
            ns = None
        return ns or "default"

    @property
    def explicit_namespace(self) -> bool:
        return bool(getattr(self.args, "namespace", None))

    @property
    def all_namespaces(self) -> bool:
        return bool(getattr(self.args, "all_namespaces", False))

    def ns_for(self, rt: ResourceType) -> str | None:
        """The namespace a request about `rt` goes to (None: cluster-scoped or -A)."""
        if not rt.namespaced or self.all_namespaces:
            return None
        return self.namespace

    # --- output -------------------------------------------------------------------------------
    @staticmethod
    def out(text: str) -> None:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()

    @staticmethod
    def line(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        """Report one failure and carry on; the run exits 1."""
        self.failed = True
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


# --- error lines, as kubectl prints them ------------------------------------------------------

def api_error_line(e: ApiError) -> str:
    details = e.status.get("details") or {}
    if e.reason == "Invalid" or e.code == 422:
        causes = details.get("causes") or []
        head = "The request is invalid"
        if details.get("kind") or details.get("name"):
            head = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
        if not causes:
            return f"{head}: {e.message}" if e.message else head
        errs = [f'{c["field"]}: {c.get("message", "")}' if c.get("field") else c.get("message", "")
                for c in causes]
        if len(errs) == 1:
            return f"{head}: {errs[0]}"
        return f"{head}: \n" + "\n".join(f"* {x}" for x in errs)
    if e.reason:
        return f"Error from server ({e.reason}): {e.message}"
    return f"Error from server: {e.message}"


def connection_error_line(e: Exception, server: str) -> str:
    parts = urlsplit(server)
    hostport = parts.netloc or server
    if _refused(e):
        return f"The connection to the server {hostport} was refused - did you specify the right host or port?"
    return f"Unable to connect to the server: {e or type(e).__name__}"


def _refused(e: BaseException | None) -> bool:
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() or "errno 111" in str(e).lower():
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False
