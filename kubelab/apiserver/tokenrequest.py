"""TokenRequest: `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`.

What the node agent calls to get the token it mounts into a pod (and what `kubectl create
token` calls). The API server signs a bound service-account JWT with the private key given
as `--service-account-key-file`; the token names the account's uid (so deleting the
account revokes it, see authn) and, when `spec.boundObjectRef` names a pod, that pod.

`build_response` is pure (request body + account in, TokenRequest out); the app does the I/O.
"""

from __future__ import annotations

import time

from kubelab.pki import tokens
from kubelab.timestamps import format_time

from .status import StatusError, bad_request

API_VERSION = "authentication.k8s.io/v1"
KIND = "TokenRequest"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600              # Kubernetes' minimum (10 minutes)
MAX_EXPIRATION = 48 * 3600        # a lab cap, as --service-account-max-token-expiration


def load_signing_key(path: str | None):
    """The private key to sign with, or None when `path` is unset or only a public key
    (then the server verifies tokens but cannot issue them)."""
    if not path:
        return None
    with open(path, "rb") as f:
        if b"PRIVATE KEY" not in f.read():
            return None
    return tokens.load_signing_key(path)


def parse_spec(body: dict, *, default_audience: str) -> dict:
    """The request's spec with defaults; StatusError(400/422) on a bad one."""
    if body.get("kind") not in (None, KIND) or body.get("apiVersion") not in (None, API_VERSION):
        raise bad_request(f"expected {API_VERSION} {KIND}, got {body.get('apiVersion')} {body.get('kind')}")
    spec = body.get("spec") if body.get("spec") is not None else {}
    if not isinstance(spec, dict):
        raise bad_request("spec must be an object")
    aud = spec.get("audiences") or [default_audience]
    if not isinstance(aud, list) or not all(isinstance(a, str) and a for a in aud):
        raise StatusError(422, "TokenRequest.authentication.k8s.io is invalid: spec.audiences: must be a list of "
                               "non-empty strings", reason="Invalid")
    exp = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
    if isinstance(exp, bool) or not isinstance(exp, int) or exp < MIN_EXPIRATION:
        raise StatusError(422, f"TokenRequest.authentication.k8s.io is invalid: spec.expirationSeconds: Invalid "
                               f"value: {exp!r}: may not specify a duration less than {MIN_EXPIRATION} seconds",
                          reason="Invalid")
    ref = spec.get("boundObjectRef")
    if ref is not None:
        if not isinstance(ref, dict) or ref.get("kind") not in ("Pod", "Secret") or not ref.get("name"):
            raise StatusError(422, "TokenRequest.authentication.k8s.io is invalid: spec.boundObjectRef: must name "
                                   "a Pod or a Secret", reason="Invalid")
    return {"audiences": list(aud), "expirationSeconds": min(exp, MAX_EXPIRATION), "boundObjectRef": ref}


def build_response(body: dict, *, account: dict, key, issuer: str = tokens.DEFAULT_ISSUER,
                   default_audience: str = tokens.DEFAULT_AUDIENCE, bound: dict | None = None,
                   now: float | None = None) -> dict:
    """The TokenRequest answer for `account` (the ServiceAccount object). `bound` is the
    object spec.boundObjectRef names, already read by the caller (its uid goes in the token)."""
    spec = parse_spec(body, default_audience=default_audience)
    meta = account["metadata"]
    now = int(time.time() if now is None else now)
    claims = tokens.service_account_claims(namespace=meta["namespace"], name=meta["name"], uid=meta.get("uid", ""),
                                           issuer=issuer, ttl=spec["expirationSeconds"], now=now)
    claims["aud"] = spec["audiences"]
    ref = spec["boundObjectRef"]
    if ref is not None:
        uid = ((bound or {}).get("metadata") or {}).get("uid", "")
        if ref.get("uid") and ref["uid"] != uid:
            raise StatusError(409, f'the UID in the bound object reference ({ref["uid"]}) does not match the UID '
                                   f'in record ({uid}). The object might have been deleted and then recreated',
                              reason="Conflict")
        claims["kubernetes.io"][ref["kind"].lower()] = {"name": ref["name"], "uid": uid}
        ref = {**ref, "uid": uid, "apiVersion": ref.get("apiVersion") or "v1"}
    out_spec = {"audiences": spec["audiences"], "expirationSeconds": spec["expirationSeconds"],
                "boundObjectRef": ref}
    return {"kind": KIND, "apiVersion": API_VERSION,
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": None},
            "spec": out_spec,
            "status": {"token": tokens.sign(claims, key), "expirationTimestamp": format_time(claims["exp"])}}


class Signer:
    """The app's TokenRequest endpoint: the signing key and issuer from Settings.security."""

    def __init__(self, key, issuer: str | None = None, audiences: list[str] | None = None) -> None:
        self.key = key
        self.issuer = issuer or tokens.DEFAULT_ISSUER
        # A TokenRequest without audiences gets the API server's first one, so the token it
        # returns authenticates here (upstream: --api-audiences, defaulting to the issuer).
        self.default_audience = (audiences or [self.issuer])[0]

    @classmethod
    def from_security(cls, security: dict | None) -> "Signer":
        security = security or {}
        key_file = security.get("service_account_signing_key_file") or security.get("service_account_key_file")
        return cls(load_signing_key(key_file), security.get("service_account_issuer"), security.get("api_audiences"))

    async def issue(self, body: dict, *, namespace: str, name: str, get_object) -> dict:
        """`get_object(plural, namespace, name)` reads the account and the bound object."""
        if self.key is None:
            raise StatusError(404, "TokenRequest is not served: start the API server with --service-account-key-file "
                                   "naming the private signing key")
        account = await get_object("serviceaccounts", namespace, name)
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        ref = spec.get("boundObjectRef")
        bound = None
        if isinstance(ref, dict) and ref.get("kind") in ("Pod", "Secret") and isinstance(ref.get("name"), str):
            bound = await get_object("pods" if ref["kind"] == "Pod" else "secrets", namespace, ref["name"])
        if bound is not None and ref.get("kind") == "Pod":
            pod_account = (bound.get("spec") or {}).get("serviceAccountName") or "default"
            if pod_account != name:  # upstream's TokenRequest REST check
                raise StatusError(400, f'cannot bind token for serviceaccount "{name}" to pod running with '
                                       f'different serviceaccount name.', reason="BadRequest")
        return build_response(body, account=account, key=self.key, issuer=self.issuer, bound=bound,
                              default_audience=self.default_audience)
