"""TLS on the node agent's API (10250), as the kubelet's `--tls-cert-file`,
`--tls-private-key-file` and `--client-ca-file`.

A client certificate signed by the client CA is required at the handshake (no certificate,
an expired one or a foreign one: the connection never reaches the app). Then only the API
server's kubelet-client identity (or `system:masters`) may use the API: logs and exec run
commands inside pods, so a node or a student's certificate gets 403. `/healthz` stays open
to every verified client. The peer certificate reaches the app through
`kubelab.pki.peer.PeerCertProtocol`, the same protocol class the API server uses.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from kubelab.pki.peer import PEER_CERT, subject_of
from kubelab.pki.certs import COMPONENTS

APISERVER_CLIENT_CN = next(i.cn for i in COMPONENTS if i.name == "apiserver-kubelet-client")
MASTERS = "system:masters"
OPEN_PATHS = ("/healthz",)


@dataclass(frozen=True)
class ServingTLS:
    cert_file: str
    key_file: str
    client_ca_file: str


def from_flags(cert_file: str | None, key_file: str | None, client_ca_file: str | None) -> ServingTLS | None:
    """None (plain HTTP) when no flag is given; ValueError with a one-line reason when the set
    is incomplete or a file is unreadable or unusable."""
    if not (cert_file or key_file or client_ca_file):
        return None
    if not (cert_file and key_file):
        raise ValueError("--tls-cert-file and --tls-private-key-file go together")
    if not client_ca_file:
        raise ValueError("--client-ca-file is required with TLS (only the API server's client certificate "
                         "may call logs/exec)")
    for flag, path in (("--tls-cert-file", cert_file), ("--tls-private-key-file", key_file),
                       ("--client-ca-file", client_ca_file)):
        if not os.access(path, os.R_OK):
            raise ValueError(f"{flag} {path}: file not found or not readable")
    tls = ServingTLS(os.path.abspath(cert_file), os.path.abspath(key_file), os.path.abspath(client_ca_file))
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        ctx.load_verify_locations(tls.client_ca_file)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(f"cannot load the TLS files: {e}") from None
    return tls


def uvicorn_options(tls: ServingTLS) -> dict:
    """uvicorn.Config keyword arguments: HTTPS, client certificate required, peer cert in scope."""
    from kubelab.pki.peer import PeerCertProtocol
    return {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file, "ssl_ca_certs": tls.client_ca_file,
            "ssl_cert_reqs": ssl.CERT_REQUIRED, "http": PeerCertProtocol}


def caller(peercert: dict | None) -> tuple[str, bool]:
    """(user name, may call logs/exec) for a verified peer certificate."""
    subject = subject_of(peercert or {})
    if subject is None:
        return "system:anonymous", False
    name, groups = subject
    return name, name == APISERVER_CLIENT_CN or MASTERS in groups


class RequireApiServer:
    """ASGI middleware: 403 for every caller but the API server, except OPEN_PATHS."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        name, allowed = caller((scope.get("state") or {}).get(PEER_CERT))
        if allowed:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        verb = "get" if scope.get("method") in ("GET", "HEAD") else "create"
        body = f"Forbidden (user={name}, verb={verb}, resource=nodes, subresource=proxy)\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
