"""Service-account tokens: compact JWTs signed RS256 (RSA key) or ES256 (EC P-256 key).

Written on `cryptography` alone (a JWT is three base64url parts; the only subtle bit is
ES256's raw r||s signature). Claims follow Kubernetes' bound tokens: `iss`, `sub`
(`system:serviceaccount:<ns>:<name>`), `aud`, `exp`/`iat`/`nbf` and the `kubernetes.io`
claim with namespace, service account name and uid (so a deleted-and-recreated account's
old tokens stop working).
"""

from __future__ import annotations

import base64
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


class TokenError(ValueError):
    """Not a valid token for this server (bad shape, signature, issuer, audience, time)."""


def _b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _b64d(s: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (ValueError, TypeError):
        raise TokenError("malformed token") from None


def load_signing_key(path: str):
    with open(path, "rb") as f:
        data = f.read()
    return serialization.load_pem_private_key(data, password=None)


def load_verify_key(path: str):
    """A public key, or the public half of a private key file (Kubernetes accepts both)."""
    with open(path, "rb") as f:
        data = f.read()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def _alg(key) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ES256"
    raise TokenError("unsupported key type for service-account tokens")


def sign(claims: dict, key) -> str:
    alg = _alg(key)
    head = _b64e(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64e(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode()
    if alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{head}.{body}.{_b64e(sig)}"


def verify(token: str, public_key, *, issuers: tuple[str, ...] = (DEFAULT_ISSUER,),
           audiences: tuple[str, ...] | None = None, now: float | None = None, leeway: float = 60.0) -> dict:
    """The claims of a token this key signed; TokenError otherwise. The algorithm comes
    from the key, never from the token's header (no `alg: none`, no HS256 confusion)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    try:
        header = json.loads(_b64d(parts[0]))
        claims = json.loads(_b64d(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed token")
    alg = _alg(public_key)
    if header.get("alg") != alg:
        raise TokenError(f"unexpected signing algorithm {header.get('alg')!r}")
    sig, signing_input = _b64d(parts[2]), f"{parts[0]}.{parts[1]}".encode()
    try:
        if alg == "RS256":
            public_key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(sig) != 64:
                raise TokenError("bad signature")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenError("invalid signature") from None
    now = time.time() if now is None else now
    if claims.get("iss") not in issuers:
        raise TokenError("unknown issuer")
    if audiences is not None:
        aud = claims.get("aud")
        aud = [aud] if isinstance(aud, str) else (aud or [])
        if not set(aud) & set(audiences):
            raise TokenError("token audience is not this server")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, (int, float)) and now > exp + leeway:
        raise TokenError("token has expired")
    if isinstance(nbf, (int, float)) and now + leeway < nbf:
        raise TokenError("token is not valid yet")
    return claims


def service_account_claims(*, namespace: str, name: str, uid: str, issuer: str = DEFAULT_ISSUER,
                           audience: str = DEFAULT_AUDIENCE, ttl: int = 3600 * 24 * 365,
                           now: float | None = None) -> dict:
    now = int(time.time() if now is None else now)
    return {"iss": issuer, "aud": [audience], "sub": f"system:serviceaccount:{namespace}:{name}",
            "iat": now, "nbf": now, "exp": now + ttl,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}}


def service_account_token(key, *, namespace: str, name: str, uid: str, **kw) -> str:
    return sign(service_account_claims(namespace=namespace, name=name, uid=uid, **kw), key)


def service_account_of(claims: dict) -> tuple[str, str, str | None]:
    """(namespace, name, uid) from a token's claims (bound or legacy form)."""
    k = claims.get("kubernetes.io")
    if isinstance(k, dict) and isinstance(k.get("serviceaccount"), dict):
        ns, sa = k.get("namespace"), k["serviceaccount"]
        if isinstance(ns, str) and isinstance(sa.get("name"), str):
            return ns, sa["name"], sa.get("uid") if isinstance(sa.get("uid"), str) else None
    ns = claims.get("kubernetes.io/serviceaccount/namespace")
    name = claims.get("kubernetes.io/serviceaccount/service-account.name")
    uid = claims.get("kubernetes.io/serviceaccount/service-account.uid")
    if isinstance(ns, str) and isinstance(name, str):
        return ns, name, uid if isinstance(uid, str) else None
    sub = claims.get("sub")
    if isinstance(sub, str) and sub.startswith("system:serviceaccount:") and sub.count(":") == 3:
        _, _, ns, name = sub.split(":")
        return ns, name, None
    raise TokenError("not a service-account token")
