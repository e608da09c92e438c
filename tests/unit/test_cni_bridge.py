"""kubelab-bridge without the kernel: config validation, the IP plan, nft rendering."""

from __future__ import annotations

import io
import json

import pytest

from kubelab.cni import bridge, nft, spec
from kubelab.cni.spec import CniError, DNS, IPConfig, Result, Route

CONF = {"cniVersion": "1.0.0", "name": "kubelab", "type": "kubelab-bridge",
        "ipam": {"type": "kubelab-ipam", "subnet": "10.244.1.0/24"}}


def call(command: str, conf: dict, **env_extra) -> tuple[int, dict | None]:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/kl-none-x",
           "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent", **env_extra}
    out = io.StringIO()
    rc = spec.plugin_main(bridge.PLUGIN, argv=[], environ=env, stdin=json.dumps(conf).encode(),
                          stdout=out)
    text = out.getvalue().strip()
    return rc, json.loads(text) if text else None


def test_defaults():
    cfg = bridge.parse_bridge_config(CONF)
    assert (cfg.bridge, cfg.hairpin, cfg.is_gateway, cfg.ip_masq, cfg.mtu) == ("cni0", True, False, False, 0)
    assert cfg.ipam_type == "kubelab-ipam"


def test_default_gateway_implies_gateway():
    cfg = bridge.parse_bridge_config(dict(CONF, isDefaultGateway=True, hairpinMode=False))
    assert cfg.is_gateway and cfg.is_default_gateway and not cfg.hairpin


@pytest.mark.parametrize("extra", [{"vlan": 10}, {"vlanTrunk": [{"id": 5}]}, {"macspoofchk": True},
                                   {"promiscMode": True}, {"ipMasqBackend": "iptables"}])
def test_unsupported_fields_code_2(extra):
    rc, err = call("ADD", dict(CONF, **extra))
    assert rc == 1 and err["code"] == spec.ERR_UNSUPPORTED_FIELD


@pytest.mark.parametrize("extra", [{"isGateway": "yes"}, {"mtu": 20}, {"mtu": "1500"},
                                   {"bridge": "a/b"}, {"ipam": {}}, {"ipam": None},
                                   {"clusterCIDR": "bogus"}])
def test_invalid_config_code_7(extra):
    rc, err = call("ADD", dict(CONF, **extra))
    assert rc == 1 and err["code"] == spec.ERR_INVALID_CONFIG


def test_check_without_prev_result_code_7():
    rc, err = call("CHECK", CONF)
    assert rc == 1 and err["code"] == spec.ERR_INVALID_CONFIG and "prevResult" in err["msg"]


def test_missing_netns_code_3():
    rc, err = call("ADD", CONF, CNI_NETNS="/run/netns/kl-does-not-exist-123")
    assert rc == 1 and err["code"] == spec.ERR_UNKNOWN_CONTAINER


def test_status_without_ipam_plugin_code_50():
    rc, err = call("STATUS", dict(CONF, cniVersion="1.1.0"))
    assert rc == 1 and err["code"] == spec.ERR_NOT_AVAILABLE


def test_host_veth_name():
    name = bridge.host_veth_name("abc", "eth0")
    assert name.startswith("veth") and len(name) == 12
    assert name == bridge.host_veth_name("abc", "eth0") != bridge.host_veth_name("abd", "eth0")
    assert bridge.host_veth_name("abc", "net1") != name


def test_plan_fills_gateway_interface_and_default_route():
    cfg = bridge.parse_bridge_config(dict(CONF, isDefaultGateway=True))
    plan = bridge.plan_ip_config(Result(ips=[IPConfig(address="10.244.1.5/24")]), cfg)
    assert plan.ips == [IPConfig(address="10.244.1.5/24", gateway="10.244.1.1", interface=2)]
    assert plan.routes == [Route(dst="0.0.0.0/0", gw="10.244.1.1")]


def test_plan_keeps_ipam_routes_and_dns_override():
    cfg = bridge.parse_bridge_config(dict(CONF, dns={"nameservers": ["10.96.0.10"]}))
    ipam_res = Result(ips=[IPConfig(address="10.244.1.5/24", gateway="10.244.1.1")],
                      routes=[Route(dst="0.0.0.0/0")], dns=DNS(nameservers=["1.1.1.1"]))
    plan = bridge.plan_ip_config(ipam_res, cfg)
    assert plan.routes == [Route(dst="0.0.0.0/0")]        # gw filled in when configuring
    assert plan.dns.nameservers == ["10.96.0.10"]


def test_plan_rejects_ipv6_and_empty():
    cfg = bridge.parse_bridge_config(CONF)
    with pytest.raises(CniError) as e:
        bridge.plan_ip_config(Result(ips=[IPConfig(address="fd00::5/64")]), cfg)
    assert e.value.code == spec.ERR_UNSUPPORTED_FIELD
    with pytest.raises(CniError) as e:
        bridge.plan_ip_config(Result(ips=[]), cfg)
    assert e.value.code == spec.ERR_DELEGATE


# --- nft rendering --------------------------------------------------------------------------

RULE = nft.MasqRule(network="kubelab", subnet="10.244.1.0/24", keep="10.244.0.0/16")


def test_desired_rules_default_keep_is_subnet():
    rules = nft.desired_rules(network="n", subnets=["10.244.1.7/24", "fd00::/64"])
    assert rules == [nft.MasqRule(network="n", subnet="10.244.1.0/24", keep="10.244.1.0/24")]


def test_render_add_into_empty():
    tx = nft.render_sync(network="kubelab", want=[RULE], have={})
    assert tx == (
        "add table ip kubelab-cni\n"
        "add chain ip kubelab-cni postrouting { type nat hook postrouting priority 100 ; }\n"
        "add rule ip kubelab-cni postrouting ip saddr 10.244.1.0/24 "
        "ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade comment "
        "\"kubelab-cni: network kubelab: masquerade 10.244.1.0/24 leaving 10.244.0.0/16\"\n")


def test_render_up_to_date_is_empty():
    assert nft.render_sync(network="kubelab", want=[RULE], have={4: RULE.comment}) == ""


def test_render_replaces_stale_and_dupes():
    old = nft.MasqRule(network="kubelab", subnet="10.244.1.0/24", keep="10.244.1.0/24").comment
    tx = nft.render_sync(network="kubelab", want=[RULE], have={3: old, 5: RULE.comment, 6: RULE.comment})
    assert "delete rule ip kubelab-cni postrouting handle 3" in tx
    assert "delete rule ip kubelab-cni postrouting handle 6" in tx
    assert "handle 5" not in tx and "add rule" not in tx


def test_render_remove_all():
    tx = nft.render_sync(network="kubelab", want=[], have={7: RULE.comment})
    assert tx.splitlines()[-1] == "delete rule ip kubelab-cni postrouting handle 7"


def test_rules_of_network_only_ours():
    listing = {"nftables": [
        {"metainfo": {}},
        {"chain": {"name": "postrouting"}},
        {"rule": {"chain": "postrouting", "handle": 3, "comment": RULE.comment}},
        {"rule": {"chain": "postrouting", "handle": 4,
                  "comment": "kubelab-cni: network kubelab2: masquerade x leaving y"}},
        {"rule": {"chain": "postrouting", "handle": 5}},
    ]}
    assert nft.rules_of_network(listing, "kubelab") == {3: RULE.comment}


def test_long_network_names_keep_comment_short():
    r = nft.MasqRule(network="n" * 100, subnet="10.244.1.0/24", keep="10.244.0.0/16")
    assert len(r.comment) <= 127 and r.comment.startswith(nft.network_prefix("n" * 100))
