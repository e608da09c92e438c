"""Kubeconfig loading as kubectl does it: every file of $KUBECONFIG merged (first file wins per
name, current-context from the first file that sets it), relative paths against their own
file, embedded `*-data` kept in memory (issues 13 and 22)."""

from __future__ import annotations

import base64
import os
import ssl

import pytest
import yaml

from kubelab.client.kubeconfig import (Connection, KubeconfigError, default_path, default_paths, load,
                                       load_config, merge_configs, ssl_context)
from kubelab.pki import ca as pki


def write(path, cfg: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def cfg(*, current=None, clusters=(), users=(), contexts=()) -> dict:
    c = {"apiVersion": "v1", "kind": "Config",
         "clusters": [{"name": n, "cluster": v} for n, v in clusters],
         "users": [{"name": n, "user": v} for n, v in users],
         "contexts": [{"name": n, "context": v} for n, v in contexts]}
    if current:
        c["current-context"] = current
    return c


def test_first_file_wins_per_name_and_sets_current_context(tmp_path, monkeypatch):
    a = write(tmp_path / "a" / "config", cfg(
        clusters=[("shared", {"server": "https://a:6443"})],
        contexts=[("ctx-a", {"cluster": "shared", "user": "u", "namespace": "team-a"})]))
    b = write(tmp_path / "b" / "config", cfg(
        current="ctx-a",
        clusters=[("shared", {"server": "https://b:6443", "certificate-authority": "ca.crt"}),
                  ("only-b", {"server": "https://onlyb:6443"})],
        users=[("u", {"token": "from-b", "client-certificate": "u.crt", "client-key": "/abs/u.key"})],
        contexts=[("ctx-a", {"cluster": "only-b", "user": "u"}), ("ctx-b", {"cluster": "only-b", "user": "u"})]))
    c = write(tmp_path / "c" / "config", cfg(current="ctx-b"))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([a, str(tmp_path / "missing"), b, c, a]))
    assert default_paths() == [a, str(tmp_path / "missing"), b, c]  # repeats dropped, order kept
    assert default_path() == a  # where kubectl writes a new entry
    conn = load()
    # the whole `shared` cluster comes from a (no field-by-field mix with b's CA), the context
    # from a, the user from b, current-context from b (the first file that sets one)
    assert conn.server == "https://a:6443" and conn.ca_file is None
    assert conn.namespace == "team-a" and conn.token == "from-b"
    assert conn.client_cert == str(tmp_path / "b" / "u.crt") and conn.client_key == "/abs/u.key"
    merged, where = load_config()
    assert [x["name"] for x in merged["clusters"]] == ["shared", "only-b"]
    assert [x["name"] for x in merged["contexts"]] == ["ctx-a", "ctx-b"]
    assert load(context="ctx-b").server == "https://onlyb:6443"


def test_relative_paths_resolve_against_their_own_file(tmp_path):
    a = (tmp_path / "a" / "config", cfg(clusters=[("x", {"server": "https://x", "certificate-authority": "ca.crt"})]))
    merged = merge_configs([(str(a[0]), a[1])])
    assert merged["clusters"][0]["cluster"]["certificate-authority"] == str(tmp_path / "a" / "ca.crt")


def test_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "nope1"), str(tmp_path / "nope2")]))
    with pytest.raises(KubeconfigError, match="kubeconfig not found"):
        load()
    with pytest.raises(KubeconfigError, match="kubeconfig not found: .*explicit"):
        load(str(tmp_path / "explicit"))  # --kubeconfig must exist, as kubectl's
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_paths() == [str(tmp_path / ".kube" / "config")]


@pytest.mark.parametrize("bad,msg", [
    ("[1, 2]", "not a mapping"), ("a: [", "not valid YAML"), ("clusters: {x: 1}", "clusters must be a list"),
    ("users: [{user: {}}]", "users must be a list of entries with a name")])
def test_bad_files_are_one_line_errors(tmp_path, bad, msg):
    p = tmp_path / "kc"
    p.write_text(bad)
    with pytest.raises(KubeconfigError, match=msg):
        load(str(p))


def embedded(tmp_path) -> tuple[str, pki.KeyPair, pki.KeyPair]:
    ca = pki.create_ca("test-ca")
    user = pki.issue(ca, cn="jane")
    text = cfg(current="c", clusters=[("k", {"server": "https://127.0.0.1:1", "certificate-authority-data":
                                             base64.b64encode(pki.cert_pem(ca.cert)).decode()})],
               users=[("jane", {"client-certificate-data": base64.b64encode(pki.cert_pem(user.cert)).decode(),
                                "client-key-data": base64.b64encode(pki.key_pem(user.key)).decode()})],
               contexts=[("c", {"cluster": "k", "user": "jane"})])
    return write(tmp_path / "kc", text), ca, user


def test_embedded_data_stays_in_memory_and_builds_a_tls_context(tmp_path, monkeypatch):
    path, ca, user = embedded(tmp_path)
    spill = tmp_path / "tmpdir"
    spill.mkdir()
    monkeypatch.setenv("TMPDIR", str(spill))  # where tempfile would have written the key
    conn = load(path)
    assert conn.ca_data == pki.cert_pem(ca.cert) and conn.client_key_data == pki.key_pem(user.key)
    assert conn.client_cert is None and conn.client_key is None and conn.ca_file is None
    assert "PRIVATE" not in repr(conn) and conn.ca_pem() == pki.cert_pem(ca.cert)
    fds_before = set(os.listdir("/proc/self/fd"))
    ctx = ssl_context(conn)
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "test-ca"),),)]
    assert not list(spill.iterdir())
    assert set(os.listdir("/proc/self/fd")) <= fds_before  # the memory file is closed again


def test_a_bad_embedded_key_is_a_clear_error(tmp_path):
    path, ca, user = embedded(tmp_path)
    other = pki.new_key()
    c = yaml.safe_load(open(path))
    c["users"][0]["user"]["client-key-data"] = base64.b64encode(pki.key_pem(other)).decode()
    (tmp_path / "kc").write_text(yaml.safe_dump(c))
    with pytest.raises(KubeconfigError, match="not usable"):
        ssl_context(load(path))
    c["users"][0]["user"]["client-key-data"] = "%%% not base64"
    (tmp_path / "kc").write_text(yaml.safe_dump(c))
    with pytest.raises(KubeconfigError, match="client-key-data .* not valid base64"):
        load(path)


def test_file_credentials_still_work(tmp_path):
    ca = pki.create_ca("file-ca")
    user = pki.issue(ca, cn="bob")
    pki.write_pair(str(tmp_path), "ca", ca)
    crt, key = pki.write_pair(str(tmp_path), "bob", user)
    ctx = ssl_context(Connection(server="https://x", ca_file=str(tmp_path / "ca.crt"), client_cert=crt,
                                 client_key=key))
    assert ctx.get_ca_certs()[0]["subject"] == ((("commonName", "file-ca"),),)
