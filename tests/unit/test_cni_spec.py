"""CNI protocol: env parsing, config loading, error JSON, result versions (no kernel)."""

from __future__ import annotations

import io
import json

import pytest

from kubelab.cni import spec
from kubelab.cni.spec import CniError, Result

BASE_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
CONF = {"cniVersion": "1.0.0", "name": "net1", "type": "noop"}


def _noop_plugin(calls: list) -> spec.Plugin:
    def handler(env, conf, stdin):
        calls.append((env, conf))
        if env.command == "ADD":
            return Result(ips=[spec.IPConfig(address="10.0.0.2/24", gateway="10.0.0.1")])
        return None
    return spec.Plugin(name="noop", about="noop plugin\nhelp text", add=handler, delete=handler,
                       check=handler, status=handler, gc=handler)


def run(env: dict, stdin: bytes | str, calls: list | None = None) -> tuple[int, dict | None]:
    out = io.StringIO()
    rc = spec.plugin_main(_noop_plugin(calls if calls is not None else []), argv=[], environ=env,
                          stdin=stdin.encode() if isinstance(stdin, str) else stdin, stdout=out)
    text = out.getvalue().strip()
    return rc, (json.loads(text) if text else None)


# --- environment: code 4 ---------------------------------------------------------------

@pytest.mark.parametrize("change, needle", [
    ({"CNI_COMMAND": None}, "CNI_COMMAND"),
    ({"CNI_COMMAND": "FROB"}, "unknown CNI_COMMAND"),
    ({"CNI_CONTAINERID": None}, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "-starts-with-dash"}, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "has space"}, "CNI_CONTAINERID"),
    ({"CNI_NETNS": None}, "CNI_NETNS"),
    ({"CNI_NETNS": "relative/path"}, "absolute"),
    ({"CNI_IFNAME": None}, "CNI_IFNAME"),
    ({"CNI_IFNAME": "a" * 16}, "CNI_IFNAME"),
    ({"CNI_IFNAME": ".."}, "CNI_IFNAME"),
    ({"CNI_IFNAME": "et/h0"}, "CNI_IFNAME"),
    ({"CNI_IFNAME": "eth 0"}, "CNI_IFNAME"),
    ({"CNI_PATH": None}, "CNI_PATH"),
    ({"CNI_ARGS": "IgnoreUnknown=1;BROKEN"}, "CNI_ARGS"),
])
def test_bad_env_is_code_4(change, needle):
    env = dict(BASE_ENV)
    for k, v in change.items():
        if v is None:
            env.pop(k)
        else:
            env[k] = v
    calls: list = []
    rc, out = run(env, json.dumps(CONF), calls)
    assert rc == 1 and out["code"] == spec.ERR_INVALID_ENV
    assert needle in out["msg"]
    assert calls == []                  # the handler never ran
    assert out["cniVersion"] == "1.0.0"  # errors speak the config's version


def test_del_without_netns_is_allowed_and_args_parsed():
    env = dict(BASE_ENV, CNI_COMMAND="DEL", CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=web-0")
    env.pop("CNI_NETNS")
    calls: list = []
    rc, out = run(env, json.dumps(CONF), calls)
    assert rc == 0 and out is None      # DEL prints nothing
    assert calls[0][0].netns == "" and calls[0][0].args["K8S_POD_NAME"] == "web-0"
    assert calls[0][0].environ["CNI_COMMAND"] == "DEL"


def test_status_and_gc_need_only_cni_path():
    conf = dict(CONF, cniVersion="1.1.0")
    for cmd in ("STATUS", "GC"):
        rc, out = run({"CNI_COMMAND": cmd, "CNI_PATH": "/x"}, json.dumps(conf))
        assert (rc, out) == (0, None)
        rc, out = run({"CNI_COMMAND": cmd}, json.dumps(conf))
        assert out["code"] == spec.ERR_INVALID_ENV


# --- config: codes 6, 7, 1 ---------------------------------------------------------------

def test_bad_json_is_code_6():
    rc, out = run(BASE_ENV, b"{not json")
    assert rc == 1 and out["code"] == spec.ERR_DECODE


def test_non_utf8_is_code_6():
    rc, out = run(BASE_ENV, b"\xff\xfe")
    assert out["code"] == spec.ERR_DECODE


@pytest.mark.parametrize("conf", [
    [1, 2],
    {"cniVersion": "1.0.0", "type": "noop"},                       # no name
    {"cniVersion": "1.0.0", "name": "bad name!", "type": "noop"},
    {"cniVersion": "1.0.0", "name": "n"},                          # no type
    {"name": "n", "type": "noop"},                                  # no cniVersion
    {"cniVersion": "1.0.0", "name": "n", "plugins": []},            # empty conflist
])
def test_bad_config_is_code_7(conf):
    rc, out = run(BASE_ENV, json.dumps(conf))
    assert rc == 1 and out["code"] == spec.ERR_INVALID_CONFIG, out


@pytest.mark.parametrize("version", ["0.3.1", "0.2.0", "2.0.0", "1.0", "banana"])
def test_unsupported_version_is_code_1(version):
    rc, out = run(BASE_ENV, json.dumps(dict(CONF, cniVersion=version)))
    assert rc == 1 and out["code"] == spec.ERR_INCOMPATIBLE_VERSION
    assert out["cniVersion"] == spec.LATEST_VERSION


@pytest.mark.parametrize("cmd", ["STATUS", "GC"])
def test_status_gc_need_1_1(cmd):
    rc, out = run({"CNI_COMMAND": cmd, "CNI_PATH": "/x"}, json.dumps(CONF))   # 1.0.0
    assert out["code"] == spec.ERR_INCOMPATIBLE_VERSION and cmd in out["msg"]


def test_version_command():
    rc, out = run({"CNI_COMMAND": "VERSION"}, b"")
    assert rc == 0 and out == {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}
    rc, out = run({"CNI_COMMAND": "VERSION"}, json.dumps({"cniVersion": "0.4.0"}))
    assert out["cniVersion"] == "0.4.0"
    rc, out = run({"CNI_COMMAND": "VERSION"}, json.dumps({"cniVersion": "9.9.9"}))
    assert rc == 1 and out["code"] == spec.ERR_INCOMPATIBLE_VERSION


@pytest.mark.parametrize("version", spec.SUPPORTED_VERSIONS)
def test_add_prints_result_in_config_version(version):
    rc, out = run(BASE_ENV, json.dumps(dict(CONF, cniVersion=version)))
    assert rc == 0 and out["cniVersion"] == version
    assert ("version" in out["ips"][0]) == (version == "0.4.0")


def test_handler_crash_is_json_not_traceback():
    def boom(env, conf, stdin):
        raise ZeroDivisionError("oops")
    plugin = spec.Plugin(name="x", about="", add=boom, delete=boom, check=boom, status=boom, gc=boom)
    out = io.StringIO()
    rc = spec.plugin_main(plugin, argv=[], environ=BASE_ENV, stdin=json.dumps(CONF).encode(),
                          stdout=out)
    data = json.loads(out.getvalue())
    assert rc == 1 and data["code"] == spec.ERR_INTERNAL and "ZeroDivisionError" in data["details"]


def test_help_flag():
    out = io.StringIO()
    assert spec.plugin_main(_noop_plugin([]), argv=["--help"], environ={}, stdout=out) == 0
    assert "noop plugin" in out.getvalue()


def test_error_json_shape():
    e = CniError(7, "bad", "very bad")
    assert e.to_dict("0.4.0") == {"cniVersion": "0.4.0", "code": 7, "msg": "bad", "details": "very bad"}
    assert CniError.from_dict({"code": 11, "msg": "later"}).code == 11


# --- conflists ---------------------------------------------------------------------------

def test_conflist_injects_name_and_version():
    conflist = {"cniVersion": "1.0.0", "name": "kubelab",
                "plugins": [{"type": "kubelab-bridge", "bridge": "cni0"}, {"type": "portmap"}]}
    confs = spec.plugin_configs(conflist)
    assert [c["type"] for c in confs] == ["kubelab-bridge", "portmap"]
    assert all(c["name"] == "kubelab" and c["cniVersion"] == "1.0.0" for c in confs)
    assert confs[0]["bridge"] == "cni0"


def test_conflist_cni_versions_picks_highest_common():
    conflist = {"cniVersion": "0.4.0", "cniVersions": ["0.4.0", "1.1.0", "7.0.0"], "name": "n",
                "plugins": [{"type": "a"}]}
    assert spec.plugin_configs(conflist)[0]["cniVersion"] == "1.1.0"
    with pytest.raises(CniError) as e:
        spec.plugin_configs(dict(conflist, cniVersions=["7.0.0"]))
    assert e.value.code == spec.ERR_INCOMPATIBLE_VERSION


def test_load_config_accepts_conflist_picking_own_type():
    conflist = {"cniVersion": "1.1.0", "name": "n",
                "plugins": [{"type": "other"}, {"type": "noop", "x": 1}]}
    conf = spec.load_config(json.dumps(conflist), plugin_type="noop")
    assert conf == {"type": "noop", "x": 1, "name": "n", "cniVersion": "1.1.0"}


def test_valid_attachments():
    conf = {"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]}
    assert spec.valid_attachments(conf) == {("a", "eth0")}
    with pytest.raises(CniError) as e:
        spec.valid_attachments({"cni.dev/valid-attachments": "nope"})
    assert e.value.code == spec.ERR_INVALID_CONFIG


# --- result conversion -------------------------------------------------------------------

RESULT_11 = {
    "cniVersion": "1.1.0",
    "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:01", "mtu": 1500},
                   {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:02", "mtu": 1500},
                   {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "mtu": 1500,
                    "sandbox": "/run/netns/p"}],
    "ips": [{"interface": 2, "address": "10.244.1.5/24", "gateway": "10.244.1.1"}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1", "priority": 10}],
    "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]},
}


def test_convert_11_to_10_drops_new_fields():
    out = spec.convert_result(RESULT_11, "1.0.0")
    assert out["cniVersion"] == "1.0.0"
    assert all("mtu" not in i for i in out["interfaces"])
    assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]
    assert out["ips"] == RESULT_11["ips"]
    assert out["dns"] == RESULT_11["dns"]


def test_convert_to_040_adds_ip_version_and_back():
    old = spec.convert_result(RESULT_11, "0.4.0")
    assert old["ips"] == [{"version": "4", "interface": 2, "address": "10.244.1.5/24",
                           "gateway": "10.244.1.1"}]
    assert old["interfaces"][2] == {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03",
                                    "sandbox": "/run/netns/p"}
    new = spec.convert_result(old, "1.0.0")
    assert "version" not in new["ips"][0]
    assert new["ips"][0]["address"] == "10.244.1.5/24"


def test_convert_ipv6_gets_version_6():
    r = {"cniVersion": "1.0.0", "ips": [{"address": "fd00::5/64"}]}
    assert spec.convert_result(r, "0.4.0")["ips"][0]["version"] == "6"


def test_roundtrip_11_is_identity():
    assert spec.convert_result(RESULT_11, "1.1.0") == RESULT_11


@pytest.mark.parametrize("bad", [
    {"cniVersion": "1.0.0", "ips": [{"address": "not-an-ip"}]},
    {"ips": []},
    "string",
])
def test_bad_result_rejected(bad):
    with pytest.raises(CniError):
        spec.convert_result(bad, "1.0.0")


def test_convert_to_unsupported_version_is_code_1():
    with pytest.raises(CniError) as e:
        spec.convert_result(RESULT_11, "0.1.0")
    assert e.value.code == spec.ERR_INCOMPATIBLE_VERSION
