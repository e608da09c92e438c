"""Executing plugins (delegation / runtime side) with fake plugin executables."""

from __future__ import annotations

import sys

import pytest

from kubelab.cni import invoke, spec
from kubelab.cni.spec import CniError


def fake(dir_, name: str, body: str):
    p = dir_ / name
    p.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n")
    p.chmod(0o755)
    return p


def test_find_in_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "plug").write_text("not executable")
    want = fake(b, "plug", "")
    assert invoke.find_in_path("plug", [str(a), str(b)]) == str(want)
    with pytest.raises(CniError) as e:
        invoke.find_in_path("missing", [str(a)])
    assert e.value.code == spec.ERR_DELEGATE
    with pytest.raises(CniError) as e:
        invoke.find_in_path("../etc/passwd", [str(a)])
    assert e.value.code == spec.ERR_INVALID_CONFIG


def test_exec_passes_env_and_stdin(tmp_path):
    p = fake(tmp_path, "echo", "conf = json.load(sys.stdin)\n"
             "print(json.dumps({'cmd': os.environ['CNI_COMMAND'], 'name': conf['name']}))")
    out = invoke.exec_plugin(str(p), env={"CNI_COMMAND": "ADD"}, stdin=b'{"name": "n1"}')
    assert out == {"cmd": "ADD", "name": "n1"}


def test_error_json_is_propagated_with_its_code(tmp_path):
    p = fake(tmp_path, "fails", "print(json.dumps({'cniVersion': '1.0.0', 'code': 101, "
             "'msg': 'full', 'details': 'd'})); sys.exit(1)")
    with pytest.raises(CniError) as e:
        invoke.exec_plugin(str(p), env={}, stdin=b"")
    assert (e.value.code, e.value.msg, e.value.details) == (101, "full", "d")


def test_garbage_failure_is_delegate_error(tmp_path):
    p = fake(tmp_path, "crash", "sys.stderr.write('boom'); sys.exit(3)")
    with pytest.raises(CniError) as e:
        invoke.exec_plugin(str(p), env={}, stdin=b"")
    assert e.value.code == spec.ERR_DELEGATE and "boom" in e.value.details


def test_invalid_json_success_is_decode_error(tmp_path):
    p = fake(tmp_path, "bad", "print('{nope')")
    with pytest.raises(CniError) as e:
        invoke.exec_plugin(str(p), env={}, stdin=b"")
    assert e.value.code == spec.ERR_DECODE


def test_delegate_overrides_command(tmp_path):
    fake(tmp_path, "ipam", "print(json.dumps({'cmd': os.environ['CNI_COMMAND'], "
         "'keep': os.environ['CNI_CONTAINERID']}))")
    out = invoke.delegate("ipam", command="DEL", environ={"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x"},
                          stdin=b"{}", cni_path=(str(tmp_path),))
    assert out == {"cmd": "DEL", "keep": "x"}


def test_conflist_add_chains_prev_result(tmp_path):
    fake(tmp_path, "first", "print(json.dumps({'cniVersion': '1.0.0', 'ips': "
         "[{'address': '10.0.0.2/24'}]}))")
    fake(tmp_path, "second", "conf = json.load(sys.stdin)\n"
         "r = conf['prevResult']; r['dns'] = {'nameservers': [conf['name']]}\n"
         "print(json.dumps(r))")
    conflist = {"cniVersion": "1.0.0", "name": "chain", "plugins": [{"type": "first"}, {"type": "second"}]}
    res = invoke.conflist_add(conflist, container_id="c", netns="/run/netns/x",
                              cni_path=[str(tmp_path)])
    assert res["ips"][0]["address"] == "10.0.0.2/24" and res["dns"] == {"nameservers": ["chain"]}
    # DEL runs in reverse order, each told the previous result
    log = tmp_path / "log"
    for name in ("first", "second"):
        fake(tmp_path, name, f"conf = json.load(sys.stdin)\n"
             f"open({str(log)!r}, 'a').write('{name} ' + os.environ['CNI_COMMAND'] + ' ' + "
             f"str('prevResult' in conf) + '\\n')")
    invoke.conflist_del(conflist, container_id="c", netns="", cni_path=[str(tmp_path)],
                        prev_result=res)
    assert log.read_text() == "second DEL True\nfirst DEL True\n"
