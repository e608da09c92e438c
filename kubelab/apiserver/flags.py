"""The API server's security flags (Kubernetes' names) and what they turn into: the
`Settings.security` dict the app reads and the uvicorn TLS options."""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl

from .authz import parse_modes

LOOPBACK_NAMES = ("localhost",)


def is_loopback(address: str) -> bool:
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def add_security_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("security (as kube-apiserver)")
    g.add_argument("--tls-cert-file", default=None, help="serving certificate (PEM); enables HTTPS")
    g.add_argument("--tls-private-key-file", default=None, help="its private key (PEM)")
    g.add_argument("--client-ca-file", default=None,
                   help="CA whose client certificates authenticate users (CN = user, O = groups)")
    g.add_argument("--token-auth-file", default=None, help='static tokens, CSV: token,user,uid,"group1,group2"')
    g.add_argument("--service-account-key-file", default=None,
                   help="key (public, or the private signing key) verifying service-account tokens")
    g.add_argument("--service-account-signing-key-file", default=None,
                   help="private key signing TokenRequest tokens (default: --service-account-key-file when it "
                        "is a private key); also verifies tokens when --service-account-key-file is not given")
    g.add_argument("--service-account-issuer", default=None,
                   help="the `iss` service-account tokens must carry "
                        "(default: https://kubernetes.default.svc.cluster.local)")
    g.add_argument("--api-audiences", default=None,
                   help="comma-separated audiences a service-account token must name one of to authenticate "
                        "here; the first is what a TokenRequest without audiences gets (default: the issuer)")
    g.add_argument("--authorization-mode", default=None,
                   help="comma-separated: RBAC, Node, AlwaysAllow, AlwaysDeny (default: AlwaysAllow for plain "
                        "HTTP on loopback without authentication, else Node,RBAC)")
    g.add_argument("--etcd-cafile", default=None, help="CA of etcd's serving certificate")
    g.add_argument("--etcd-certfile", default=None, help="client certificate for etcd")
    g.add_argument("--etcd-keyfile", default=None, help="its key")
    g.add_argument("--max-requests-per-client", type=int, default=None,
                   help="requests in flight per user before 429 (default: 200 when secured, else no cap)")
    g.add_argument("--max-watches-per-client", type=int, default=None,
                   help="open watches per user before 429 (default: 100 when secured, else no cap)")
    g.add_argument("--request-body-timeout", type=float, default=60.0,
                   help="seconds to wait for each chunk of a request body before 408 (default: %(default)s)")
    g.add_argument("--allow-insecure-http", action="store_true",
                   help="serve plain HTTP on a non-loopback address (unsafe: anyone on the network is admin)")


def _readable(path: str | None, flag: str) -> None:
    if path and not os.access(path, os.R_OK):
        raise ValueError(f"{flag} {path}: file not found or not readable")


def security_settings(args: argparse.Namespace) -> tuple[dict, dict]:
    """(Settings.security, uvicorn keyword arguments); ValueError with a one-line reason."""
    for flag in ("tls_cert_file", "tls_private_key_file", "client_ca_file", "token_auth_file",
                 "service_account_key_file", "service_account_signing_key_file", "etcd_cafile", "etcd_certfile",
                 "etcd_keyfile"):
        _readable(getattr(args, flag), "--" + flag.replace("_", "-"))
    signing = getattr(args, "service_account_signing_key_file", None)
    if signing:
        with open(signing, "rb") as f:
            if b"PRIVATE KEY" not in f.read():
                raise ValueError(f"--service-account-signing-key-file {signing}: not a private key (PEM)")
        if not args.service_account_key_file:
            args.service_account_key_file = signing  # a private key verifies what it signs
    tls = bool(args.tls_cert_file)
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        raise ValueError("--tls-cert-file and --tls-private-key-file go together")
    if args.client_ca_file and not tls:
        raise ValueError("--client-ca-file needs --tls-cert-file/--tls-private-key-file (client certificates "
                         "only exist over TLS)")
    if not tls and not is_loopback(args.bind_address) and not args.allow_insecure_http:
        raise ValueError(f"refusing to serve plain HTTP on {args.bind_address}: give --tls-cert-file and "
                         f"--tls-private-key-file (plain HTTP only on loopback)")
    authn = bool(args.client_ca_file or args.token_auth_file or args.service_account_key_file)
    secured = tls or authn
    mode = args.authorization_mode or ("Node,RBAC" if secured else "AlwaysAllow")
    parse_modes(mode)
    if authn is False and tls and mode != "AlwaysAllow":
        raise ValueError("TLS without any authentication (--client-ca-file, --token-auth-file, "
                         "--service-account-key-file) would refuse everyone; add one, or --authorization-mode AlwaysAllow")
    etcd = {k: v for k, v in (("ca_file", args.etcd_cafile), ("cert_file", args.etcd_certfile),
                              ("key_file", args.etcd_keyfile)) if v}
    if bool(args.etcd_certfile) != bool(args.etcd_keyfile):
        raise ValueError("--etcd-certfile and --etcd-keyfile go together")
    security = {
        "client_ca_file": os.path.abspath(args.client_ca_file) if args.client_ca_file else None,
        "token_auth_file": os.path.abspath(args.token_auth_file) if args.token_auth_file else None,
        "service_account_key_file": os.path.abspath(args.service_account_key_file)
        if args.service_account_key_file else None,
        "service_account_signing_key_file": os.path.abspath(signing) if signing else None,
        "service_account_issuer": args.service_account_issuer,
        "api_audiences": [a.strip() for a in args.api_audiences.split(",") if a.strip()]
        if args.api_audiences else None,
        "authorization_mode": mode,
        "max_requests_per_client": args.max_requests_per_client if args.max_requests_per_client is not None
        else (200 if secured else 0),
        "max_watches_per_client": args.max_watches_per_client if args.max_watches_per_client is not None
        else (100 if secured else 0),
        "body_timeout": args.request_body_timeout,
        "etcd": {k: os.path.abspath(v) for k, v in etcd.items()},
    }
    if args.token_auth_file:  # fail at start, not at the first request
        from .authn import parse_token_file
        with open(args.token_auth_file) as f:
            parse_token_file(f.read())
    if args.service_account_key_file:
        from kubelab.pki import tokens
        tokens.load_verify_key(args.service_account_key_file)
    uv: dict = {}
    if tls:
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert_file, args.tls_private_key_file)
            if args.client_ca_file:
                ctx.load_verify_locations(args.client_ca_file)
        except (ssl.SSLError, OSError) as e:
            raise ValueError(f"cannot load the TLS files: {e}") from None
        from kubelab.pki.peer import PeerCertProtocol
        uv = {"ssl_certfile": args.tls_cert_file, "ssl_keyfile": args.tls_private_key_file,
              "http": PeerCertProtocol, "loop": "asyncio"}  # asyncio: see kubelab.pki.peer.flush_handshake_alerts
        if args.client_ca_file:
            uv.update(ssl_ca_certs=args.client_ca_file, ssl_cert_reqs=ssl.CERT_OPTIONAL)
    return security, uv
