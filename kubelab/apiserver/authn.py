"""Authentication: who sent this request. Client certificate, bearer token, or nobody.

- Client certificates were already verified against `--client-ca-file` during the TLS
  handshake (an expired or foreign certificate never gets this far); the user is the
  subject's CN and the groups its O values, as in Kubernetes.
- Bearer tokens: first the static `--token-auth-file` (CSV `token,user,uid,"group1,group2"`),
  then service-account JWTs signed by `--service-account-key-file`. A service-account
  token only works while its ServiceAccount exists with the uid it was issued for (checked
  through an injected lookup, cached briefly), so deleting the account revokes its tokens.
  Its audience must be one of the server's (`--api-audiences`, by default the issuer), so a
  token minted for Vault or any other audience is not an API credential. A token bound to a
  pod or secret (TokenRequest's boundObjectRef) works only while that object exists with the
  uid in the token, and no longer than a minute past the pod's deletionTimestamp (upstream's
  leeway): deleting or replacing the pod revokes it.
- No credentials: None (the caller decides between 401 and a public path). Wrong
  credentials: AuthError (401), never a fall-back to anonymous.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Awaitable, Callable

from kubelab.pki import tokens
from kubelab.pki.peer import PEER_CERT, subject_of  # noqa: F401  (PEER_CERT: the scope key, re-exported)
from kubelab.timestamps import parse_epoch

from .rbac import UserInfo

AUTHENTICATED = "system:authenticated"
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


class AuthError(Exception):
    """Credentials were presented but are not valid (→ 401)."""


def parse_token_file(text: str) -> dict[str, UserInfo]:
    """Kubernetes' static token file: `token,user,uid[,"group1,group2"]` per line."""
    out: dict[str, UserInfo] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 3:
            raise ValueError(f"token file line {lineno}: want token,user,uid[,groups]")
        token, user, uid = (c.strip() for c in row[:3])
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        if not token or not user:
            raise ValueError(f"token file line {lineno}: empty token or user")
        out[token] = UserInfo(user, groups, uid)
    return out


def user_from_cert(peercert: dict) -> UserInfo | None:
    """CN → user, O → groups, from `ssl.SSLSocket.getpeercert()`'s dict."""
    subject = subject_of(peercert)
    return UserInfo(*subject) if subject else None


def with_authenticated(user: UserInfo) -> UserInfo:
    groups = user.groups if AUTHENTICATED in user.groups else (*user.groups, AUTHENTICATED)
    return UserInfo(user.name, groups, user.uid)


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(f"system:serviceaccount:{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED), uid)


SALookup = Callable[[str, str], Awaitable["dict | None"]]
ObjectLookup = Callable[[str, str, str], Awaitable["dict | None"]]  # (plural, namespace, name)
BOUND_KINDS = {"pod": "pods", "secret": "secrets"}  # the token's kubernetes.io claim → resource
DELETION_LEEWAY = 60.0  # seconds a pod-bound token outlives the pod's deletionTimestamp (upstream)


class Authenticator:
    def __init__(self, *, static_tokens: dict[str, UserInfo] | None = None, sa_public_key=None,
                 sa_lookup: SALookup | None = None, issuers: tuple[str, ...] = (tokens.DEFAULT_ISSUER,),
                 cache_ttl: float = 2.0, client_certs: bool = False, audiences: tuple[str, ...] | None = None,
                 object_lookup: ObjectLookup | None = None) -> None:
        self.static_tokens = static_tokens or {}
        self.sa_public_key = sa_public_key
        self.sa_lookup = sa_lookup
        self.issuers = issuers
        self.cache_ttl = cache_ttl
        self.client_certs = client_certs
        self._sa_cache: dict[tuple[str, str], tuple[float, str | None]] = {}
        # The audiences a token must name one of: --api-audiences, else the issuers (upstream).
        self.audiences = tuple(audiences) if audiences else tuple(issuers)
        self.object_lookup = object_lookup
        self._bound_cache: dict[tuple[str, str, str], tuple[float, dict | None]] = {}

    @property
    def enabled(self) -> bool:
        """Whether any way of authenticating is configured (else: the open loopback mode)."""
        return bool(self.static_tokens or self.sa_public_key is not None or self.client_certs)

    async def authenticate(self, *, authorization: str | None, peercert: dict | None) -> UserInfo | None:
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("invalid bearer token")
            return with_authenticated(await self._token(token.strip()))
        if peercert:
            user = user_from_cert(peercert)
            if user is None:
                raise AuthError("client certificate has no common name")
            return with_authenticated(user)
        return None

    async def _token(self, token: str) -> UserInfo:
        user = self.static_tokens.get(token)
        if user is not None:
            return user
        if self.sa_public_key is None or token.count(".") != 2:
            raise AuthError("invalid bearer token")
        try:
            claims = tokens.verify(token, self.sa_public_key, issuers=self.issuers, audiences=self.audiences)
            ns, name, uid = tokens.service_account_of(claims)
        except tokens.TokenError as e:
            raise AuthError(f"invalid bearer token, {e}") from None
        current_uid = await self._sa_uid(ns, name)
        if current_uid is None:
            raise AuthError(f"invalid bearer token, service account {ns}/{name} has been deleted")
        if uid and uid != current_uid:
            raise AuthError(f"invalid bearer token, service account {ns}/{name} was recreated "
                            f"(uid {current_uid}, token for {uid})")
        await self._check_bound_object(ns, claims)
        return service_account_user(ns, name, uid or current_uid)

    async def _check_bound_object(self, namespace: str, claims: dict) -> None:
        """AuthError unless the pod/secret the token is bound to still exists with its uid."""
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict) or self.object_lookup is None:
            return
        for claim, plural in BOUND_KINDS.items():
            ref = private.get(claim)
            if not isinstance(ref, dict):
                continue
            ref_name, ref_uid = ref.get("name"), ref.get("uid")
            if not isinstance(ref_name, str) or not ref_name:
                raise AuthError(f"invalid bearer token, malformed {claim} binding")
            obj = await self._bound(plural, namespace, ref_name)
            if obj is None:
                raise AuthError(f"invalid bearer token, {claim} {namespace}/{ref_name} it is bound to no longer exists")
            meta = obj.get("metadata") or {}
            if ref_uid and meta.get("uid") != ref_uid:
                raise AuthError(f"invalid bearer token, {claim} {namespace}/{ref_name} was replaced "
                                f"(uid {meta.get('uid')}, token for {ref_uid})")
            deleted = parse_epoch(meta.get("deletionTimestamp"))
            if deleted is not None and deleted + DELETION_LEEWAY < time.time():
                raise AuthError(f"invalid bearer token, {claim} {namespace}/{ref_name} has been deleted")

    async def _bound(self, plural: str, namespace: str, name: str) -> dict | None:
        key = (plural, namespace, name)
        now = time.monotonic()
        hit = self._bound_cache.get(key)
        if hit and now - hit[0] < self.cache_ttl:
            return hit[1]
        obj = await self.object_lookup(plural, namespace, name)
        if len(self._bound_cache) > 10000:
            self._bound_cache.clear()
        self._bound_cache[key] = (now, obj)
        return obj

    async def _sa_uid(self, namespace: str, name: str) -> str | None:
        key = (namespace, name)
        now = time.monotonic()
        hit = self._sa_cache.get(key)
        if hit and now - hit[0] < self.cache_ttl:
            return hit[1]
        obj = await self.sa_lookup(namespace, name) if self.sa_lookup else None
        uid = ((obj or {}).get("metadata") or {}).get("uid") if obj is not None else None
        uid = uid if obj is None else (uid or "")
        if len(self._sa_cache) > 10000:
            self._sa_cache.clear()
        self._sa_cache[key] = (now, uid)
        return uid
