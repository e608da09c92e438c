"""kubelab-ipam: the pure allocator, config parsing, and the plugin on a temp store."""

from __future__ import annotations

import fcntl
import io
import ipaddress
import json
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubelab.cni import ipam, spec
from kubelab.cni.ipam import Range, next_free, next_free_in_set, parse_range
from kubelab.cni.spec import CniError

ip = ipaddress.ip_address


# --- pure allocator ----------------------------------------------------------------------

def test_first_address_skips_network_and_gateway():
    assert next_free(subnet="10.244.1.0/24") == ip("10.244.1.2")      # .0 network, .1 gateway


def test_gateway_elsewhere_frees_dot_one():
    assert next_free(subnet="10.244.1.0/24", gateway="10.244.1.254") == ip("10.244.1.1")


def test_round_robin_after_last_reserved():
    assert next_free(subnet="10.244.1.0/24", last_reserved="10.244.1.7") == ip("10.244.1.8")
    # released addresses below the pointer are not reused until the range wraps
    assert next_free(subnet="10.244.1.0/24", allocated=["10.244.1.8"],
                     last_reserved="10.244.1.7") == ip("10.244.1.9")


def test_wraps_around_and_never_gives_broadcast():
    assert next_free(subnet="10.244.1.0/24", last_reserved="10.244.1.254") == ip("10.244.1.2")
    # rangeEnd explicitly at the broadcast: still skipped
    assert next_free(subnet="10.0.0.0/30", range_end="10.0.0.3",
                     last_reserved="10.0.0.2") == ip("10.0.0.2")


def test_range_start_end_respected():
    got = next_free(subnet="10.244.1.0/24", range_start="10.244.1.100", range_end="10.244.1.101",
                    allocated=["10.244.1.100"])
    assert got == ip("10.244.1.101")
    assert next_free(subnet="10.244.1.0/24", range_start="10.244.1.100",
                     range_end="10.244.1.101",
                     allocated=["10.244.1.100", "10.244.1.101"]) is None


def test_exhausted_returns_none():
    # /30: .0 network, .1 gateway, .3 broadcast -> only .2
    assert next_free(subnet="10.0.0.0/30") == ip("10.0.0.2")
    assert next_free(subnet="10.0.0.0/30", allocated=["10.0.0.2"]) is None


def test_last_reserved_outside_range_starts_from_the_beginning():
    assert next_free(subnet="10.244.1.0/24", last_reserved="192.168.0.9") == ip("10.244.1.2")


def test_range_set_moves_to_next_range():
    rs = [parse_range({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.11"}),
          parse_range({"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.10", "rangeEnd": "10.0.1.11"})]
    got = next_free_in_set(rs, allocated=[], last_reserved=ip("10.0.0.11"))
    assert got is not None and got[0] == ip("10.0.1.10") and got[1] is rs[1]
    got = next_free_in_set(rs, allocated=[ip("10.0.0.10")], last_reserved=ip("10.0.1.11"))
    assert got[0] == ip("10.0.0.11")                  # wrapped to the first range


def test_ipv6_range():
    r = parse_range({"subnet": "fd00::/120"})
    assert r.gateway == ip("fd00::1") and r.range_end == ip("fd00::ff")
    assert next_free(subnet="fd00::/120") == ip("fd00::2")


@settings(max_examples=200, deadline=None)
@given(prefix=st.integers(min_value=24, max_value=30),
       taken=st.sets(st.integers(min_value=0, max_value=255), max_size=300),
       last=st.one_of(st.none(), st.integers(min_value=0, max_value=255)))
def test_property_never_network_gateway_broadcast_or_taken(prefix, taken, last):
    subnet = ipaddress.ip_network(f"10.9.8.0/{prefix}")
    allocated = [subnet.network_address + (t % subnet.num_addresses) for t in taken]
    lr = None if last is None else subnet.network_address + (last % subnet.num_addresses)
    got = next_free(subnet=subnet, allocated=allocated, last_reserved=lr)
    usable = [a for a in subnet.hosts() if a != subnet.network_address + 1 and a not in allocated]
    if got is None:
        assert usable == []
    else:
        assert got in usable
        assert got not in (subnet.network_address, subnet.broadcast_address,
                           subnet.network_address + 1)


# --- config ------------------------------------------------------------------------------

def test_parse_range_defaults():
    r = parse_range({"subnet": "10.244.1.0/24"})
    assert r == Range(subnet=ipaddress.ip_network("10.244.1.0/24"), range_start=ip("10.244.1.1"),
                      range_end=ip("10.244.1.254"), gateway=ip("10.244.1.1"))


@pytest.mark.parametrize("r", [
    {},
    {"subnet": "bogus"},
    {"subnet": "10.0.0.0/31"},
    {"subnet": "10.0.0.0/24", "gateway": "10.0.1.1"},
    {"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.5"},
    {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.50", "rangeEnd": "10.0.0.10"},
    {"subnet": "10.0.0.0/24", "rangeEnd": "fd00::1"},
])
def test_parse_range_errors(r):
    with pytest.raises(CniError) as e:
        parse_range(r)
    assert e.value.code == spec.ERR_INVALID_CONFIG


def _conf(tmp_path, **ipam_extra):
    ipam_conf = {"type": "kubelab-ipam", "subnet": "10.244.3.0/24", "dataDir": str(tmp_path)}
    ipam_conf.update(ipam_extra)
    return {"cniVersion": "1.1.0", "name": "testnet", "type": "kubelab-bridge", "ipam": ipam_conf}


def test_parse_ipam_config_old_and_new_style(tmp_path):
    conf = _conf(tmp_path, ranges=[[{"subnet": "10.244.4.0/24"}]],
                 routes=[{"dst": "0.0.0.0/0"}])
    cfg = ipam.parse_ipam_config(conf, {"IP": "10.244.3.9"})
    assert [str(rs[0].subnet) for rs in cfg.ranges] == ["10.244.3.0/24", "10.244.4.0/24"]
    assert cfg.routes[0].dst == "0.0.0.0/0"
    assert cfg.store_dir == os.path.join(str(tmp_path), "testnet")
    assert cfg.requested == [ip("10.244.3.9")]


@pytest.mark.parametrize("extra", [
    {"subnet": None},                                              # no ranges at all
    {"ranges": [[{"subnet": "10.244.3.0/25"}]]},                   # overlaps the subnet
    {"ranges": [[{"subnet": "10.9.0.0/24"}, {"subnet": "fd00::/64"}]]},
    {"routes": [{"dst": "nope"}]},
    {"dataDir": "relative/dir"},
    {"lockTimeoutSeconds": -1},
])
def test_parse_ipam_config_errors(tmp_path, extra):
    with pytest.raises(CniError) as e:
        ipam.parse_ipam_config(_conf(tmp_path, **extra))
    assert e.value.code == spec.ERR_INVALID_CONFIG


def test_parse_resolv_conf():
    dns = ipam.parse_resolv_conf("# c\nnameserver 10.96.0.10\nsearch a.svc b.svc\n"
                                 "options ndots:5\ndomain cluster.local\n")
    assert dns.nameservers == ["10.96.0.10"] and dns.search == ["a.svc", "b.svc"]
    assert dns.options == ["ndots:5"] and dns.domain == "cluster.local"


# --- the plugin in-process, on a temp data dir --------------------------------------------

def call(command: str, conf: dict, *, cid: str = "c1", ifname: str = "eth0",
         args: str = "") -> tuple[int, dict | None]:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/run/netns/none",
           "CNI_IFNAME": ifname, "CNI_PATH": "/nonexistent", "CNI_ARGS": args}
    out = io.StringIO()
    rc = spec.plugin_main(ipam.PLUGIN, argv=[], environ=env, stdin=json.dumps(conf).encode(),
                          stdout=out)
    text = out.getvalue().strip()
    return rc, json.loads(text) if text else None


def test_add_writes_store_files_as_host_local(tmp_path):
    conf = _conf(tmp_path, routes=[{"dst": "0.0.0.0/0"}])
    rc, res = call("ADD", conf, cid="pod-a")
    assert rc == 0, res
    assert res == {"cniVersion": "1.1.0",
                   "ips": [{"address": "10.244.3.2/24", "gateway": "10.244.3.1"}],
                   "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}
    store = tmp_path / "testnet"
    with open(store / "10.244.3.2", newline="") as f:
        assert f.read() == "pod-a\r\neth0"
    assert (store / "last_reserved_ip.0").read_text() == "10.244.3.2"


def test_add_version_040_result(tmp_path):
    rc, res = call("ADD", dict(_conf(tmp_path), cniVersion="0.4.0"))
    assert res["cniVersion"] == "0.4.0" and res["ips"][0]["version"] == "4"


def test_add_del_check_cycle(tmp_path):
    conf = _conf(tmp_path)
    assert call("ADD", conf, cid="a")[0] == 0
    rc, res = call("ADD", conf, cid="b")
    assert res["ips"][0]["address"] == "10.244.3.3/24"
    assert call("CHECK", conf, cid="a") == (0, None)
    assert call("DEL", conf, cid="a") == (0, None)
    assert call("DEL", conf, cid="a") == (0, None)                 # idempotent
    rc, err = call("CHECK", conf, cid="a")
    assert rc == 1 and err["code"] == spec.ERR_CHECK_FAILED
    # round robin: the freed .2 is not handed out next
    assert call("ADD", conf, cid="c")[1]["ips"][0]["address"] == "10.244.3.4/24"
    assert not (tmp_path / "testnet" / "10.244.3.2").exists()


def test_del_on_missing_store_is_success(tmp_path):
    assert call("DEL", _conf(tmp_path / "never")) == (0, None)
    assert not (tmp_path / "never").exists()


def test_del_matches_ifname(tmp_path):
    conf = _conf(tmp_path)
    call("ADD", conf, cid="a", ifname="eth0")
    call("ADD", conf, cid="a", ifname="net1")
    call("DEL", conf, cid="a", ifname="net1")
    assert sorted(os.listdir(tmp_path / "testnet")) == ["10.244.3.2", "last_reserved_ip.0", "lock"]


def test_duplicate_add_refused(tmp_path):
    conf = _conf(tmp_path)
    call("ADD", conf)
    rc, err = call("ADD", conf)
    assert rc == 1 and err["code"] == spec.ERR_ADDRESS_UNAVAILABLE


def test_exhausted_range_is_code_101_and_status_50(tmp_path):
    conf = _conf(tmp_path, subnet="10.0.0.0/30")
    assert call("STATUS", conf) == (0, None)
    assert call("ADD", conf, cid="a")[1]["ips"][0]["address"] == "10.0.0.2/30"
    rc, err = call("ADD", conf, cid="b")
    assert rc == 1 and err["code"] == spec.ERR_NO_FREE_ADDRESS
    rc, err = call("STATUS", conf)
    assert rc == 1 and err["code"] == spec.ERR_NOT_AVAILABLE


def test_requested_ip(tmp_path):
    conf = _conf(tmp_path)
    assert call("ADD", conf, cid="a", args="IgnoreUnknown=1;IP=10.244.3.77")[1]["ips"][0][
        "address"] == "10.244.3.77/24"
    rc, err = call("ADD", conf, cid="b", args="IP=10.244.3.77")         # taken
    assert err["code"] == spec.ERR_ADDRESS_UNAVAILABLE
    rc, err = call("ADD", conf, cid="c", args="IP=10.244.3.1")          # the gateway
    assert err["code"] == spec.ERR_ADDRESS_UNAVAILABLE
    rc, err = call("ADD", conf, cid="d", args="IP=10.99.0.1")           # outside
    assert err["code"] == spec.ERR_ADDRESS_UNAVAILABLE
    assert sorted(p for p in os.listdir(tmp_path / "testnet") if p[0].isdigit()) == ["10.244.3.77"]


def test_data_dir_not_creatable_is_code_5(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = call("ADD", _conf(blocker))
    assert rc == 1 and err["code"] == spec.ERR_IO
    rc, err = call("STATUS", _conf(blocker))
    assert err["code"] == spec.ERR_NOT_AVAILABLE


def test_busy_lock_is_code_11(tmp_path):
    conf = _conf(tmp_path, lockTimeoutSeconds=0.05)
    os.makedirs(tmp_path / "testnet")
    fd = os.open(tmp_path / "testnet" / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rc, err = call("ADD", conf)
        assert rc == 1 and err["code"] == spec.ERR_TRY_AGAIN
    finally:
        os.close(fd)
    assert call("ADD", conf)[0] == 0                     # free again


def test_gc_releases_unlisted(tmp_path):
    conf = _conf(tmp_path)
    for cid in ("keep", "drop1", "drop2"):
        call("ADD", conf, cid=cid)
    gc_conf = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]})
    assert call("GC", gc_conf) == (0, None)
    left = {p.name: p.read_bytes().decode() for p in (tmp_path / "testnet").iterdir() if p.name[0].isdigit()}
    assert list(left.values()) == ["keep\r\neth0"]


def test_concurrent_adds_distinct(tmp_path):
    """Threads each take the flock through their own fd: no address handed out twice."""
    conf = _conf(tmp_path, subnet="10.50.0.0/26")
    results: dict[int, dict] = {}

    def worker(i: int) -> None:
        results[i] = call("ADD", conf, cid=f"p{i}")[1]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    addrs = [results[i]["ips"][0]["address"] for i in range(40)]
    assert len(set(addrs)) == 40
    assert "10.50.0.1/26" not in addrs and "10.50.0.0/26" not in addrs
