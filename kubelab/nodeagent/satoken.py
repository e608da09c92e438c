"""The pod's service-account files, as the kubelet's projected volume
`kube-api-access-*` at /var/run/secrets/kubernetes.io/serviceaccount:

  token      a TokenRequest for the pod's account, bound to the pod (dies with it)
  ca.crt     the CA the API server's certificate chains to (only when the API is HTTPS,
             so `kubelab.client.kubeconfig.in_cluster()` picks http or https correctly)
  namespace  the pod's namespace

They live in <pod dir>/serviceaccount; `containers.start` bind-mounts that directory
(read-only) in the container's mount namespace. Nothing is written when the pod opts out
(`automountServiceAccountToken: false`) or the API server does not serve TokenRequest (no
signing key): the pod then runs without them, as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil

import httpx

from kubelab.client import ApiClient, ApiError

log = logging.getLogger("kubelab.nodeagent")

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
EXPIRATION = 48 * 3600  # the server's cap; the lab's pods live shorter than that


def wants_token(pod: dict) -> bool:
    return (pod.get("spec") or {}).get("automountServiceAccountToken") is not False


def token_request(pod: dict, *, expiration: int = EXPIRATION) -> dict:
    meta = pod.get("metadata") or {}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta.get("name", ""),
                                        "uid": meta.get("uid", "")}}}


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


async def write_files(client: ApiClient, pod: dict, pod_dir: str) -> str | None:
    """The directory to mount, or None (opted out, or no TokenRequest on this server)."""
    if not wants_token(pod):
        return None
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    ns = meta.get("namespace", "default")
    account = spec.get("serviceAccountName") or "default"
    path = client.path("serviceaccounts", account, namespace=ns, subresource="token")
    for attempt in range(4):
        try:
            out = await client.request("POST", path, json_body=token_request(pod))
            token = out["status"]["token"]
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
    _write(os.path.join(d, "token"), token.encode(), 0o600)
    _write(os.path.join(d, "namespace"), ns.encode())
    ca = client.connection.ca_file if client.server.startswith("https://") else None
    if ca:
        shutil.copyfile(ca, os.path.join(d, "ca.crt.tmp"))
        os.replace(os.path.join(d, "ca.crt.tmp"), os.path.join(d, "ca.crt"))
    return d


def existing(pod_dir: str) -> str | None:
    """The files a previous agent wrote (re-adopting a running pod)."""
    d = os.path.join(pod_dir, "serviceaccount")
    return d if os.path.exists(os.path.join(d, "token")) else None
