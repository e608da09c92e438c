"""A lab certificate authority and the certificates it signs (the `cryptography` package).

Pure where it can be: keys and certificates are made in memory; only `write_key`/`write_cert`
touch the disk. Private keys are written 0600 from the first byte (never chmod'ed after) and
never logged or printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class KeyPair:
    cert: x509.Certificate
    key: PrivateKey


def new_key(kind: str = "ec") -> PrivateKey:
    """EC P-256 by default: fast to make, accepted by Go (kubectl, etcd) and OpenSSL."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r} (ec or rsa)")


def _name(cn: str, orgs: tuple[str, ...] | list[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_ca(common_name: str = "kubelab-ca", *, days: int = 3650, key: PrivateKey | None = None) -> KeyPair:
    key = key or new_key()
    name = _name(common_name)
    start = _now() - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert, key)


def issue(ca: KeyPair, *, cn: str, orgs: tuple[str, ...] | list[str] = (), dns: tuple[str, ...] | list[str] = (),
          ips: tuple[str, ...] | list[str] = (), server: bool = False, client: bool = True, days: int = 365,
          not_before: dt.datetime | None = None, key: PrivateKey | None = None) -> KeyPair:
    """A leaf certificate signed by `ca`. Kubernetes reads the user from CN and the groups
    from O; servers need their names and addresses as SANs (Go ignores the CN)."""
    key = key or new_key()
    start = not_before or (_now() - dt.timedelta(minutes=5))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    if not usages:
        raise ValueError("a certificate must be for a server, a client, or both")
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn, orgs)).issuer_name(ca.cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                                      content_commitment=False, data_encipherment=False, key_agreement=False,
                                      key_cert_sign=False, crl_sign=False, encipher_only=False,
                                      decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns)]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in dict.fromkeys(ips)]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return KeyPair(b.sign(ca.key, hashes.SHA256()), key)


# ---- PEM ------------------------------------------------------------------------------------

def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key) -> bytes:
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_key(path: str, key) -> None:
    """0600 from creation: the key is never readable by others, not even for an instant."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem(key))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_cert(path: str, cert: x509.Certificate) -> None:
    with open(path, "wb") as f:
        f.write(cert_pem(cert))


def write_pair(directory: str, name: str, pair: KeyPair) -> tuple[str, str]:
    crt, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    write_key(key, pair.key)
    write_cert(crt, pair.cert)
    return crt, key


def load_cert(path: str) -> x509.Certificate:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def load_key(path: str) -> PrivateKey:
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def load_pair(directory: str, name: str) -> KeyPair:
    return KeyPair(load_cert(os.path.join(directory, f"{name}.crt")), load_key(os.path.join(directory, f"{name}.key")))


def describe(cert: x509.Certificate) -> dict:
    """What `kubelab pki show` prints: who, for what, until when (no key material)."""
    subj = cert.subject
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_list = [str(v) for v in sans.get_values_for_type(x509.DNSName)] + \
                   [str(v) for v in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        san_list = []
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usages = sorted({"server" if u == ExtendedKeyUsageOID.SERVER_AUTH else
                         "client" if u == ExtendedKeyUsageOID.CLIENT_AUTH else u.dotted_string for u in eku})
    except x509.ExtensionNotFound:
        usages = []
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {
        "subject": {"CN": [a.value for a in subj.get_attributes_for_oid(NameOID.COMMON_NAME)],
                    "O": [a.value for a in subj.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]},
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": cert.not_valid_after_utc.isoformat(),
        "ca": is_ca,
        "usages": usages,
        "sans": san_list,
    }
