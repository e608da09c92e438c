"""The lab's address plan and the commands that build it (pure)."""

from __future__ import annotations

import pytest

from kubelab.lab import components, topology
from kubelab.lab.topology import LabPlan, PlanError, plan_lab


def test_default_plan_addresses_and_names():
    plan = plan_lab(name="lab", workers=2, root_dir="/var/lib/kubelab")
    assert plan.bridge == "kl-lab" and plan.bridge_ip == "192.168.56.1" and plan.prefixlen == 24
    assert [(n.name, n.ip, n.netns, n.host_veth) for n in plan.nodes] == [
        ("control-plane", "192.168.56.10", "kl-lab-control-plane", "kl-lab-cp"),
        ("worker-1", "192.168.56.11", "kl-lab-worker-1", "kl-lab-w1"),
        ("worker-2", "192.168.56.12", "kl-lab-worker-2", "kl-lab-w2"),
    ]
    assert plan.api_url == "http://192.168.56.10:6443"
    assert plan.lab_dir == "/var/lib/kubelab/lab"
    assert [w.name for w in plan.workers] == ["worker-1", "worker-2"]


def test_every_link_name_fits_ifnamsiz_and_carries_the_lab_name():
    plan = plan_lab(name="abcdefgh", workers=20, root_dir="/x")
    for name in [plan.bridge, *(n.host_veth for n in plan.nodes)]:
        assert len(name) <= 15 and name.startswith("kl-abcdefgh")
    assert all("abcdefgh" in n.netns for n in plan.nodes)


@pytest.mark.parametrize("name", ["", "Lab", "9lab", "lab-1", "toolongname", "a b"])
def test_bad_lab_names_are_refused(name):
    with pytest.raises(PlanError, match="invalid lab name"):
        plan_lab(name=name)


def test_bad_inputs_are_refused():
    with pytest.raises(PlanError, match="--workers"):
        plan_lab(workers=-1)
    with pytest.raises(PlanError, match="proxy-mode"):
        plan_lab(proxy_mode="ipvs")
    with pytest.raises(PlanError, match="too small"):
        plan_lab(node_subnet="10.0.0.0/30")
    with pytest.raises(PlanError, match="invalid node subnet"):
        plan_lab(node_subnet="nope")


def test_other_subnet():
    plan = plan_lab(name="t", workers=1, node_subnet="10.77.0.0/24")
    assert (plan.bridge_ip, plan.nodes[0].ip, plan.nodes[1].ip) == ("10.77.0.1", "10.77.0.10", "10.77.0.11")


def test_plan_round_trips_through_the_state_file_format():
    plan = plan_lab(name="rt", workers=3, root_dir="/r", proxy_mode="iptables")
    assert LabPlan.from_dict(plan.to_dict()) == plan


def test_node_commands_never_route_out_of_the_lab():
    plan = plan_lab(workers=2)
    cmds = [topology.shell(c) for n in plan.nodes for c in topology.node_commands(plan, n)]
    cmds += [topology.shell(c) for c in topology.bridge_commands(plan)]
    assert not any("default" in c or "MASQUERADE" in c or "masquerade" in c for c in cmds)
    # forwarding is switched on inside the node namespaces only, never on the host
    fwd = [c for c in cmds if "ip_forward" in c]
    assert fwd and all(c.startswith("ip netns exec kl-lab-") for c in fwd)
    w1 = topology.node_commands(plan, plan.nodes[1])
    assert ["ip", "link", "add", "kl-lab-w1", "type", "veth", "peer", "name", "eth0", "netns",
            "kl-lab-worker-1"] in w1
    assert ["ip", "-n", "kl-lab-worker-1", "addr", "add", "192.168.56.11/24", "dev", "eth0"] in w1
    assert ["ip", "link", "set", "kl-lab-w1", "master", "kl-lab", "up"] in w1
    assert ["ip", "-n", "kl-lab-worker-1", "route", "add", "10.96.0.0/12", "dev", "eth0"] in w1


def test_pod_cidr_routes_go_to_the_other_nodes_only():
    plan = plan_lab(workers=2)
    cmds = topology.pod_cidr_route_commands(plan, {"worker-1": "10.244.1.0/24", "worker-2": "10.244.2.0/24"})
    text = sorted(topology.shell(c) for c in cmds)
    assert text == [
        "ip -n kl-lab-control-plane route replace 10.244.1.0/24 via 192.168.56.11 dev eth0",
        "ip -n kl-lab-control-plane route replace 10.244.2.0/24 via 192.168.56.12 dev eth0",
        "ip -n kl-lab-worker-1 route replace 10.244.2.0/24 via 192.168.56.12 dev eth0",
        "ip -n kl-lab-worker-2 route replace 10.244.1.0/24 via 192.168.56.11 dev eth0",
    ]


def test_component_specs_follow_the_vm_layout():
    plan = plan_lab(workers=2, root_dir="/var/lib/kubelab")
    specs = components.lab_specs(plan)
    where = [(s.node, s.name, s.stage) for s in specs]
    assert where == [
        ("control-plane", "etcd", 0), ("control-plane", "apiserver", 1),
        ("control-plane", "controllers", 2), ("control-plane", "scheduler", 2),
        ("control-plane", "loadbalancer", 2), ("control-plane", "proxy", 3),
        ("worker-1", "nodeagent", 3), ("worker-1", "proxy", 3), ("worker-1", "netpol", 3), ("worker-1", "speaker", 3),
        ("worker-2", "nodeagent", 3), ("worker-2", "proxy", 3), ("worker-2", "netpol", 3), ("worker-2", "speaker", 3),
    ]
    lbc = list(next(s for s in specs if s.name == "loadbalancer").argv)
    assert lbc[lbc.index("--pool") + 1] == "192.168.56.200-192.168.56.250"  # the lab default
    assert "--node-monitor-grace-period" not in next(s for s in specs if s.name == "controllers").argv
    api = next(s for s in specs if s.name == "apiserver")
    a = list(api.argv)
    assert a[a.index("--bind-address") + 1] == "192.168.56.10"
    assert a[a.index("--advertise-address") + 1] == "192.168.56.10"
    assert a[a.index("--etcd-servers") + 1] == "http://127.0.0.1:2379"
    etcd = next(s for s in specs if s.name == "etcd")
    assert "http://192.168.56.10:2379,http://127.0.0.1:2379" in etcd.argv
    assert "/var/lib/kubelab/lab/control-plane/etcd" in etcd.argv
    agent = next(s for s in specs if s.name == "nodeagent" and s.node == "worker-2")
    b = list(agent.argv)
    assert b[b.index("--node-ip") + 1] == "192.168.56.12"
    assert b[b.index("--root-dir") + 1] == "/var/lib/kubelab/lab/worker-2/nodeagent"
    proxy = next(s for s in specs if s.name == "proxy" and s.node == "worker-1")
    assert proxy.health == "http://192.168.56.11:10256/healthz"
    assert components.nsenter_argv(proxy)[:3] == ["nsenter", "--net=/run/netns/kl-lab-worker-1", "--"]
    netpol = next(s for s in specs if s.name == "netpol" and s.node == "worker-2")
    c = list(netpol.argv)
    assert c[c.index("-m") + 1] == "kubelab.netpol" and c[c.index("--node-name") + 1] == "worker-2"
    assert "--netns" not in c  # it runs inside the node's namespace


def test_node_agent_flags_keep_pods_inside_the_lab():
    plan = plan_lab(workers=1)
    agent = components.worker_specs(plan, plan.workers[0])[0]
    a = list(agent.argv)
    assert a[a.index("--cluster-dns") + 1] == "10.96.0.10"
    assert a[a.index("--netns-prefix") + 1] == "kl-lab-worker-1-"  # pod netns carry the lab's name
    assert a[a.index("--resolv-conf") + 1].endswith("/worker-1/resolv.conf")  # never the machine's resolvers


def test_pod_namespaces_are_found_by_name_and_only_this_labs():
    from kubelab.lab.topology import lab_pod_netns
    uid = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
    names = {f"kl-lab-worker-1-{uid}", f"kl-lab-control-plane-{uid}", f"kl-lab-worker-12-{uid}",
             "kl-lab-worker-1", "kl-lab-worker-12",            # node namespaces, not pods
             f"kl-lab2-worker-1-{uid}", f"kl-la-worker-1-{uid}",  # other labs
             f"kl-lab-worker-1-{uid}x", "kl-lab-worker-1-notauid", f"cni-{uid}"}
    assert lab_pod_netns("lab", names) == [f"kl-lab-control-plane-{uid}", f"kl-lab-worker-1-{uid}",
                                           f"kl-lab-worker-12-{uid}"]
    assert lab_pod_netns("lab2", names) == [f"kl-lab2-worker-1-{uid}"]


def test_lb_pool_defaults_inside_the_node_network_and_is_checked():
    from kubelab.lab.topology import PlanError
    assert plan_lab(node_subnet="10.213.7.0/24").lb_pool == "10.213.7.200-10.213.7.250"
    assert plan_lab(node_subnet="10.1.0.0/26", workers=1).lb_pool == "10.1.0.31-10.1.0.62"
    assert plan_lab(lb_pool="192.168.56.100-192.168.56.101").lb_pool == "192.168.56.100-192.168.56.101"
    with pytest.raises(PlanError, match="not inside the node network"):
        plan_lab(lb_pool="10.0.0.1-10.0.0.2")
    with pytest.raises(PlanError, match="--lb-pool: invalid pool range"):
        plan_lab(lb_pool="x-y")
    grace = plan_lab(node_monitor_grace_period="8s")
    ctl = list(next(s for s in components.lab_specs(grace) if s.name == "controllers").argv)
    assert ctl[ctl.index("--node-monitor-grace-period") + 1] == "8s"


def test_up_flags_for_the_load_balancer():
    from kubelab.cli.main import build_parser
    p = build_parser()
    a = p.parse_args(["up"])
    assert (a.lb_pool, a.node_monitor_grace_period) == ("", "")  # defaults: the plan picks them
    assert p.parse_args(["up", "--node-monitor-grace-period", "20s"]).node_monitor_grace_period == "20s"
    with pytest.raises(SystemExit):
        p.parse_args(["up", "--node-monitor-grace-period", "soon"])
