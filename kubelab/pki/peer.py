"""The verified TLS client certificate: handed to the app, and read as a user.

Shared by every HTTPS server of the cluster that authenticates callers by certificate (the
API server, the node agent's 10250): it lives in `kubelab.pki` because no component package
may import another.

uvicorn does not put the peer certificate in the ASGI scope. Its HTTP protocol copies a
per-connection `app_state` dict into every request's `scope["state"]` (and hands it to the
websocket protocol on upgrade), so this subclass adds the certificate there once the
handshake is done (asyncio calls `connection_made` after it). The certificate was verified
against `--client-ca-file` by OpenSSL; an invalid one fails the handshake and never arrives.
"""

from __future__ import annotations

import asyncio
import ssl

from uvicorn.protocols.http.h11_impl import H11Protocol

# The TLS peer, put in the ASGI scope's per-connection state by `PeerCertProtocol`: the
# verified certificate as `ssl.getpeercert()` returns it (None without a client certificate).
PEER_CERT = "kubelab.peer_cert"


def subject_of(peercert: dict) -> tuple[str, tuple[str, ...]] | None:
    """(CN, O values) of a verified peer certificate, as Kubernetes reads a user and its groups
    from it; None without a CN."""
    cn, orgs = None, []
    for rdn in peercert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return (cn, tuple(orgs)) if cn else None


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is optional for uvicorn
    _Base = H11Protocol


def _with_peer(state: dict, transport: asyncio.Transport) -> dict:
    ssl_object = transport.get_extra_info("ssl_object")
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    return {**state, PEER_CERT: cert or None}


def flush_handshake_alerts() -> bool:
    """Make asyncio send the TLS alert when it rejects a client certificate.

    CPython's asyncio (3.11+) drops the alert OpenSSL wrote when the handshake fails, so
    the client sees only EOF; with the alert, kubectl says `remote error: tls: unknown
    certificate authority` / `expired certificate`. Patches `SSLProtocol._do_handshake` to
    write pending output first (idempotent; skipped if asyncio's internals differ). The
    server runs on the asyncio loop when TLS is on (uvloop's TLS has the same gap, unpatchable).
    """
    try:
        from asyncio import sslproto
    except ImportError:  # pragma: no cover
        return False
    cls = getattr(sslproto, "SSLProtocol", None)
    if cls is None or getattr(cls, "_kubelab_alerts", False):
        return bool(cls)
    if not all(hasattr(cls, a) for a in ("_do_handshake", "_process_outgoing", "_on_handshake_complete")) \
            or not hasattr(sslproto, "SSLAgainErrors"):
        return False

    def _do_handshake(self):
        try:
            self._sslobj.do_handshake()
        except sslproto.SSLAgainErrors:
            self._process_outgoing()
        except ssl.SSLError as exc:
            try:
                self._process_outgoing()  # the alert saying why
            except Exception:  # the peer may be gone already
                pass
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    cls._do_handshake = _do_handshake
    cls._kubelab_alerts = True
    return True


class PeerCertProtocol(_Base):  # type: ignore[misc, valid-type]
    def __init__(self, *args, **kwargs) -> None:
        flush_handshake_alerts()  # here, so `--workers N` processes patch their own asyncio
        super().__init__(*args, **kwargs)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = _with_peer(self.app_state, transport)


def server_ssl_context(*, cert_file: str, key_file: str, client_ca_file: str | None) -> ssl.SSLContext:
    """TLS 1.2+; client certificates optional (tokens work without one) but verified when
    sent, so an expired or foreign-CA certificate fails the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        ctx.load_verify_locations(client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
