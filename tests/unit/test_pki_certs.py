"""The lab PKI: who each certificate says it is, what it may be used for, key file modes,
and service-account tokens (signing, verification, forgeries)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelab.pki import ca as pki
from kubelab.pki import certs, tokens


@pytest.fixture(scope="module")
def pkidir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    certs.init(d, apiserver_ips=["192.168.56.10"], nodes=["worker-1"], node_ips={"worker-1": "192.168.56.11"},
               etcd_names=["etcd-0"], etcd_ips=["192.168.56.10"], server_url="https://192.168.56.10:6443")
    return d


def _subject(cert):
    return ([a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
            [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])


def test_apiserver_certificate_has_every_name_pods_and_students_use(pkidir):
    cert = pki.load_cert(os.path.join(pkidir, "apiserver.crt"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    assert {"kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "localhost"} <= dns
    assert {"192.168.56.10", "10.96.0.1", "127.0.0.1"} <= ips
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


@pytest.mark.parametrize("name,cn,orgs", [
    ("admin", "admin", ["system:masters"]),
    ("kube-controller-manager", "system:kube-controller-manager", []),
    ("kube-scheduler", "system:kube-scheduler", []),
    ("kube-proxy", "system:kube-proxy", []),
    ("node-worker-1", "system:node:worker-1", ["system:nodes"]),
])
def test_component_identities_are_cn_and_o(pkidir, name, cn, orgs):
    cert = pki.load_cert(os.path.join(pkidir, f"{name}.crt"))
    assert _subject(cert) == ([cn], orgs)
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    ca = pki.load_cert(os.path.join(pkidir, "ca.crt"))
    cert.verify_directly_issued_by(ca)  # raises if not signed by the lab CA


def test_every_private_key_is_0600_and_kubeconfigs_point_at_files(pkidir):
    keys = [f for f in os.listdir(pkidir) if f.endswith(".key")]
    assert {"ca.key", "admin.key", "apiserver.key", "etcd-server.key", "etcd-peer.key", "etcd-ca.key",
            "apiserver-etcd-client.key", "etcd-healthcheck-client.key", "sa.key"} <= set(keys)
    for f in keys:
        assert stat.S_IMODE(os.stat(os.path.join(pkidir, f)).st_mode) == 0o600, f
    with open(os.path.join(pkidir, "admin.kubeconfig")) as f:
        cfg = yaml.safe_load(f)
    assert cfg["clusters"][0]["cluster"]["server"] == "https://192.168.56.10:6443"
    user = cfg["users"][0]["user"]
    assert os.path.exists(user["client-certificate"]) and os.path.exists(user["client-key"])
    assert stat.S_IMODE(os.stat(os.path.join(pkidir, "admin.kubeconfig")).st_mode) == 0o600


def test_etcd_certs_serve_and_authenticate_peers(pkidir):
    for name in ("etcd-server", "etcd-peer"):
        cert = pki.load_cert(os.path.join(pkidir, f"{name}.crt"))
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "etcd-0" in san.get_values_for_type(x509.DNSName)


def test_etcd_has_its_own_ca_and_trusts_nothing_of_the_cluster_ca(pkidir):
    """Issue 13: etcd's CA signs etcd's certificates and its two clients, nothing else; the
    cluster CA signs none of them, and etcd's flags name only the etcd CA."""
    cluster_ca = pki.load_cert(os.path.join(pkidir, "ca.crt"))
    etcd_ca = pki.load_cert(os.path.join(pkidir, "etcd-ca.crt"))
    assert etcd_ca.subject != cluster_ca.subject and etcd_ca.public_key() != cluster_ca.public_key()
    for name in ("etcd-server", "etcd-peer", "apiserver-etcd-client", "etcd-healthcheck-client"):
        cert = pki.load_cert(os.path.join(pkidir, f"{name}.crt"))
        cert.verify_directly_issued_by(etcd_ca)
        with pytest.raises((ValueError, InvalidSignature)):
            cert.verify_directly_issued_by(cluster_ca)
    for name in ("admin", "kube-controller-manager", "apiserver-kubelet-client", "apiserver"):
        with pytest.raises((ValueError, InvalidSignature)):
            pki.load_cert(os.path.join(pkidir, f"{name}.crt")).verify_directly_issued_by(etcd_ca)
    flags = certs.etcd_flags(pkidir)
    for flag in ("--trusted-ca-file", "--peer-trusted-ca-file"):
        assert flags[flags.index(flag) + 1].endswith("/etcd-ca.crt")
    api = certs.apiserver_flags(pkidir)
    assert api[api.index("--etcd-cafile") + 1].endswith("/etcd-ca.crt")
    assert api[api.index("--client-ca-file") + 1].endswith("/ca.crt")


def test_pki_issue_refuses_etcd_clients_from_the_cluster_ca(pkidir):
    p = subprocess.run([sys.executable, "-m", "kubelab.cli", "pki", "issue", "component", "apiserver-etcd-client",
                        "--dir", pkidir], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "etcd CA" in p.stderr and "Traceback" not in p.stderr


def test_init_on_a_pki_without_an_etcd_ca_adds_one_and_keeps_the_cluster_ca(tmp_path):
    d = str(tmp_path)
    certs.init(d, nodes=[])
    with open(os.path.join(d, "ca.crt")) as f:
        ca1 = f.read()
    for f in ("etcd-ca.crt", "etcd-ca.key"):
        os.unlink(os.path.join(d, f))  # a PKI made before etcd had its own CA
    written = certs.init(d, nodes=[])
    assert os.path.join(d, "etcd-ca.crt") in written
    with open(os.path.join(d, "ca.crt")) as f:
        assert f.read() == ca1
    pki.load_cert(os.path.join(d, "apiserver-etcd-client.crt")).verify_directly_issued_by(
        pki.load_cert(os.path.join(d, "etcd-ca.crt")))


def test_init_again_keeps_the_ca_and_reissues_leaves(pkidir, tmp_path):
    d = str(tmp_path)
    def read(name):
        with open(os.path.join(d, name)) as f:
            return f.read()
    certs.init(d, nodes=[])
    ca1, admin1 = read("ca.crt"), read("admin.crt")
    certs.init(d, nodes=[])
    assert read("ca.crt") == ca1
    assert read("admin.crt") != admin1


def test_describe_prints_no_key_material(pkidir):
    d = pki.describe(pki.load_cert(os.path.join(pkidir, "node-worker-1.crt")))
    assert d["subject"] == {"CN": ["system:node:worker-1"], "O": ["system:nodes"]}
    assert "192.168.56.11" in d["sans"]
    assert "PRIVATE" not in json.dumps(d)


def test_expired_certificates_can_be_made_for_tests():
    ca = pki.create_ca()
    old = pki.issue(ca, cn="x", not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10), days=1)
    assert old.cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc)


# ---- service-account tokens ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_token_round_trip(kind):
    key = pki.new_key(kind)
    t = tokens.service_account_token(key, namespace="default", name="builder", uid="u-1")
    claims = tokens.verify(t, key.public_key())
    assert claims["sub"] == "system:serviceaccount:default:builder"
    assert tokens.service_account_of(claims) == ("default", "builder", "u-1")


def _parts(t):
    return t.split(".")


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_forged_tokens_are_rejected():
    key, other = pki.new_key("rsa"), pki.new_key("rsa")
    good = tokens.service_account_token(key, namespace="default", name="a", uid="u")
    # signed by another key
    with pytest.raises(tokens.TokenError):
        tokens.verify(tokens.service_account_token(other, namespace="default", name="a", uid="u"), key.public_key())
    # claims changed after signing
    h, _, s = _parts(good)
    claims = tokens.service_account_claims(namespace="kube-system", name="admin", uid="u")
    with pytest.raises(tokens.TokenError):
        tokens.verify(f"{h}.{_b64(claims)}.{s}", key.public_key())
    # alg none / HS256 with the public key as secret
    for alg in ("none", "HS256"):
        with pytest.raises(tokens.TokenError):
            tokens.verify(f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}.", key.public_key())
    # garbage
    for junk in ("", "a.b", "a.b.c", "....", "eyJ.eyJ.x"):
        with pytest.raises(tokens.TokenError):
            tokens.verify(junk, key.public_key())


def test_expired_and_foreign_issuer_tokens_are_rejected():
    key = pki.new_key("ec")
    t = tokens.service_account_token(key, namespace="d", name="a", uid="u", ttl=10, now=1000)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(t, key.public_key(), now=5000)
    t2 = tokens.service_account_token(key, namespace="d", name="a", uid="u", issuer="https://evil")
    with pytest.raises(tokens.TokenError, match="issuer"):
        tokens.verify(t2, key.public_key())
