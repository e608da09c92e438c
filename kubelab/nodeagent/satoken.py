"""The pod's service-account files, as the kubelet's projected volume
`kube-api-access-*` at /var/run/secrets/kubernetes.io/serviceaccount:

  token      a TokenRequest for the pod's account, bound to the pod by name and uid: the API
             server stops accepting it once that pod is deleted or replaced by another of the
             same name (it looks the pod up on every authentication, cached for 2 s), and the
             node may mint it only for a pod bound to itself (NodeRestriction)
  ca.crt     the CA the API server's certificate chains to (only when the API is HTTPS,
             so `kubelab.client.kubeconfig.in_cluster()` picks http or https correctly)
  namespace  the pod's namespace

They live in <pod dir>/serviceaccount; `containers.start` bind-mounts that directory
(read-only) in the container's mount namespace. Nothing is written when the pod opts out
(`automountServiceAccountToken: false`) or the API server does not serve TokenRequest (no
signing key): the pod then runs without them, as before.

The token expires (48 h), so the agent rotates it like the kubelet's token manager: once it
is older than 80% of its lifetime or older than 24 h (`requires_refresh`), a new TokenRequest
replaces the file atomically (a rename in the same directory: the bind mount is of the
directory, so containers see the new file at once). Clients re-read the file (client-go does;
so does `kubelab.client`). Issue and expiry times are kept in <pod dir>/satoken.json, outside
the mounted directory, so a restarted agent that re-adopts the pod can still decide.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import stat
import time

import httpx

from kubelab.client import ApiClient, ApiError
from kubelab.timestamps import parse_epoch

log = logging.getLogger("kubelab.nodeagent")

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
EXPIRATION = 48 * 3600  # the server's cap
MAX_TTL = 24 * 3600     # the kubelet refreshes any token older than this (token_manager.go maxTTL)
REFRESH_FRACTION = 0.2  # ... or within the last 20% of its lifetime
CHECK_INTERVAL = 60.0   # how often the pod worker asks `requires_refresh`
RECORD = "satoken.json"


def wants_token(pod: dict) -> bool:
    return (pod.get("spec") or {}).get("automountServiceAccountToken") is not False


def token_request(pod: dict, *, expiration: int = EXPIRATION) -> dict:
    meta = pod.get("metadata") or {}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta.get("name", ""),
                                        "uid": meta.get("uid", "")}}}


# ---- when to refresh (pure) ------------------------------------------------------------

def requires_refresh(*, issued_at: float, expires_at: float, now: float, jitter: float = 0.0) -> bool:
    """The kubelet's rule (pkg/kubelet/token/token_manager.go `requiresRefresh`): refresh a token
    older than 24 h, or past 80% of its lifetime, or issued "in the future" (the clock leapt
    back, so its age is unknowable). `jitter` (the kubelet draws 0-10 s) only moves both
    thresholds earlier."""
    ttl = expires_at - issued_at
    if now > issued_at + MAX_TTL - jitter:
        return True
    if now > expires_at - ttl * REFRESH_FRACTION - jitter:
        return True
    return now < issued_at


def times_from_response(tr: dict, *, requested: int, now: float) -> tuple[float, float]:
    """(issued_at, expires_at) of a TokenRequest answer: expiry from status.expirationTimestamp,
    issue time = expiry - spec.expirationSeconds (the server may have capped what we asked), as
    the kubelet computes it. Falls back to `now` and the requested lifetime."""
    ttl = (tr.get("spec") or {}).get("expirationSeconds")
    ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else requested
    exp = parse_epoch((tr.get("status") or {}).get("expirationTimestamp"))
    if exp is None:
        return now, now + ttl
    return exp - ttl, exp


def times_from_jwt(token: str) -> tuple[float, float] | None:
    """(iat, exp) read from the token itself, unverified: the fallback for a token written
    before this agent kept a record."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    iat, exp = (claims.get("iat"), claims.get("exp")) if isinstance(claims, dict) else (None, None)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (iat, exp)):
        return None
    return float(iat), float(exp)


# ---- files -----------------------------------------------------------------------------

def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write-then-rename in the same directory, so a reader sees the old file or the new one,
    never a partial one. The temporary name is hidden (dot) as it shows in the mount briefly."""
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.tmp")
    try:
        os.unlink(tmp)  # a leftover from a crash would keep its own mode under O_CREAT
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # not narrowed by the umask
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _save_record(pod_dir: str, *, issued_at: float, expires_at: float) -> None:
    _write(os.path.join(pod_dir, RECORD), json.dumps({"issuedAt": issued_at, "expiresAt": expires_at}).encode(),
           0o600)


def token_times(pod_dir: str) -> tuple[float, float] | None:
    """(issued_at, expires_at) of the pod's current token: the agent's record, else the
    token's own claims; None when neither can be read (then it is refreshed)."""
    try:
        with open(os.path.join(pod_dir, RECORD)) as f:
            rec = json.load(f)
        return float(rec["issuedAt"]), float(rec["expiresAt"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(pod_dir, "serviceaccount", "token")) as f:
            return times_from_jwt(f.read())
    except OSError:
        return None


async def _request(client: ApiClient, pod: dict, *, expiration: int) -> dict:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    account = spec.get("serviceAccountName") or "default"
    path = client.path("serviceaccounts", account, namespace=meta.get("namespace", "default"), subresource="token")
    return await client.request("POST", path, json_body=token_request(pod, expiration=expiration))


def _store_token(pod_dir: str, tr: dict, *, requested: int) -> None:
    token = tr["status"]["token"]
    if not isinstance(token, str) or not token:
        raise TypeError("TokenRequest answer without status.token")
    path = os.path.join(pod_dir, "serviceaccount", "token")
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)  # a rotation keeps the file's mode
    except FileNotFoundError:
        mode = 0o600
    issued_at, expires_at = times_from_response(tr, requested=requested, now=time.time())
    _write(path, token.encode(), mode)
    _save_record(pod_dir, issued_at=issued_at, expires_at=expires_at)


async def write_files(client: ApiClient, pod: dict, pod_dir: str, *, expiration: int = EXPIRATION) -> str | None:
    """The directory to mount, or None (opted out, or no TokenRequest on this server)."""
    if not wants_token(pod):
        return None
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    for attempt in range(4):
        try:
            tr = await _request(client, pod, expiration=expiration)
            if not isinstance(tr["status"]["token"], str):
                raise TypeError("status.token is not a string")
            break
        except ApiError as e:
            # 403 right after binding: the Node authorizer's view of this node's pods is cached
            # for a second; anything else (404: no signing key or no account) is final
            if e.code == 403 and attempt < 3:
                await asyncio.sleep(0.5)
                continue
            log.info("pod %s/%s: no service-account token (%s)", ns, meta.get("name"), e)
            return None
        except (httpx.HTTPError, KeyError, TypeError) as e:
            log.info("pod %s/%s: no service-account token (%s)", ns, meta.get("name"), e)
            return None
    d = os.path.join(pod_dir, "serviceaccount")
    os.makedirs(d, mode=0o755, exist_ok=True)
    _store_token(pod_dir, tr, requested=expiration)
    _write(os.path.join(d, "namespace"), ns.encode())
    # the CA the agent itself trusts, from a file or embedded in its kubeconfig
    ca = client.connection.ca_pem() if client.server.startswith("https://") else None
    if ca:
        _write(os.path.join(d, "ca.crt"), ca)
    return d


def existing(pod_dir: str) -> str | None:
    """The files a previous agent wrote (re-adopting a running pod)."""
    d = os.path.join(pod_dir, "serviceaccount")
    return d if os.path.exists(os.path.join(d, "token")) else None


async def refresh(client: ApiClient, pod: dict, pod_dir: str, *, now: float | None = None,
                  expiration: int = EXPIRATION) -> bool:
    """Replace the pod's token when `requires_refresh` says so. True when a new one was written.

    Only a pod that already has the files is refreshed (its containers mount that directory).
    Failures are logged and leave the old token in place: the next check tries again, and the
    old token keeps working until it expires, as with the kubelet."""
    if not wants_token(pod) or existing(pod_dir) is None:
        return False
    now = time.time() if now is None else now
    times = token_times(pod_dir)
    if times is not None and not requires_refresh(issued_at=times[0], expires_at=times[1], now=now):
        return False
    meta = pod.get("metadata") or {}
    key = f"{meta.get('namespace', 'default')}/{meta.get('name')}"
    try:
        tr = await _request(client, pod, expiration=expiration)
        _store_token(pod_dir, tr, requested=expiration)
    except (ApiError, httpx.HTTPError, OSError, KeyError, TypeError) as e:
        expired = times is not None and now >= times[1]
        log.warning("pod %s: service-account token refresh failed (%s)%s", key, e,
                    "; the current token has expired" if expired else "; keeping the current token")
        return False
    log.info("pod %s: service-account token refreshed", key)
    return True
