"""The one client library: every component talks to the API server through it.

- `ApiClient`: async REST (httpx), typed errors from Status bodies.
- `Informer`: list + watch into a local indexed cache, with handlers; relists on 410.
- `WorkQueue`: de-duplicating queue; one key is never processed twice at once.

Modules: `rest` (ApiClient), `errors`, `kubeconfig` (files and the shared connection flags),
`informer` (Informer, Store), `workqueue`, `clock` (injectable time: RealClock, FakeClock),
`syncrunner` (rate-limited "sync now"), `record` (EventRecorder), `leaderelection` (Lease
locks), `metrics` (workqueue metrics), `podio` (logs and exec through the API server).
"""

from .errors import AlreadyExists, ApiError, Conflict, Gone, Invalid, NotFound
from .informer import Informer, Store, key_of
from .kubeconfig import Connection, KubeconfigError, add_connection_args, connection_from_args
from .rest import ApiClient
from .workqueue import ShutDown, WorkQueue


async def connect(args, *, user_agent: str = "kubelab") -> ApiClient:
    """An ApiClient from a component's `--kubeconfig`/`--server` flags."""
    return ApiClient(connection=connection_from_args(args), user_agent=user_agent)


__all__ = ["AlreadyExists", "ApiClient", "ApiError", "Conflict", "Connection", "Gone", "Informer", "Invalid",
           "KubeconfigError", "NotFound", "ShutDown", "Store", "WorkQueue", "add_connection_args", "connect",
           "connection_from_args", "key_of"]
