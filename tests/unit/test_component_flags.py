"""kubelab.flags: every component takes upstream's flag names (`--v=2`, `--hostname-override`,
`--proxy-mode`, ...), warns once about a known upstream flag it does not implement, and
refuses an unknown one (exit 2); Go's bool grammar for bool flags."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest

from kubelab import flags
from kubelab.apiserver.__main__ import parse_args as apiserver_args
from kubelab.controllers.manager import build_parser as controllers_parser
from kubelab.dns.__main__ import build_parser as dns_parser
from kubelab.nodeagent.__main__ import parse_args as nodeagent_args
from kubelab.netpol.__main__ import build_parser as netpol_parser
from kubelab.proxy.__main__ import build_parser as proxy_parser
from kubelab.scheduler.main import build_parser as scheduler_parser

SERVER = ["--server", "http://127.0.0.1:1"]
REQUIRED = {"kubelab.nodeagent": ["--node-name", "n1", "--node-ip", "10.0.0.2"]}


def parse(component: str, argv: list[str]) -> tuple[argparse.Namespace, str]:
    """The component's parsed flags and what it wrote to stderr."""
    err = io.StringIO()
    if component == "kube-apiserver":
        old, sys.stderr = sys.stderr, err
        try:
            return apiserver_args(argv), err.getvalue()
        finally:
            sys.stderr = old
    if component == "kubelet":
        old, sys.stderr = sys.stderr, err
        try:
            return nodeagent_args(["--node-ip", "10.0.0.2", *argv]), err.getvalue()
        finally:
            sys.stderr = old
    parser = {"kube-controller-manager": controllers_parser, "kube-scheduler": scheduler_parser,
              "kube-proxy": proxy_parser, "kube-dns": dns_parser, "kubelab-netpol": netpol_parser}[component]()
    return flags.parse_args(parser, argv, component, stderr=err), err.getvalue()


COMPONENTS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kube-dns",
              "kubelab-netpol"]


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("v", ["--v=2", "-v=2", "--v", "-v"])
def test_every_component_accepts_klog_verbosity(component, v):
    argv = [v, "2"] if v in ("--v", "-v") else [v]
    extra = ["--node-name", "n1", "--address", "127.0.0.1"] if component == "kubelet" else []
    args, err = parse(component, [*argv, *extra])
    assert args.v == 2 and err == ""
    assert flags.log_level(args.v) == 20  # --v=2 is info, as klog's V(2)


@pytest.mark.parametrize("component", COMPONENTS)
def test_known_unimplemented_flags_warn_once_and_unknown_ones_fail(component):
    extra = ["--node-name", "n1", "--address", "127.0.0.1"] if component == "kubelet" else []
    args, err = parse(component, [*extra, "--logtostderr", "--vmodule", "x=2", "--profiling=false",
                                  "--feature-gates=A=true", "--vmodule=y=3"])
    lines = err.splitlines()
    assert len(lines) == 4 and all("does not implement; ignored" in line for line in lines), err
    assert f"--vmodule is a {component} flag" in err
    with pytest.raises(SystemExit) as e:
        parse(component, [*extra, "--no-such-flag"])
    assert e.value.code == 2  # the message itself: test_every_component_process_exits_2_on_an_unknown_flag


def test_upstream_names_for_implemented_flags():
    a, _ = parse("kube-proxy", ["--hostname-override", "w1", "--proxy-mode=iptables", "--cluster-cidr", "10.0.0.0/8",
                                "--healthz-bind-address", "0.0.0.0:1", "--metrics-bind-address=127.0.0.1:2",
                                "--iptables-sync-period", "1m30s", "--nftables-min-sync-period=500ms"])
    assert (a.node_name, a.mode, a.cluster_cidr, a.sync_period, a.min_sync_period) == \
        ("w1", "iptables", "10.0.0.0/8", 90.0, 0.5)
    a, _ = parse("kubelet", ["--hostname-override", "w2", "--address", "127.0.0.1"])
    assert a.node_name == "w2"
    a, _ = parse("kube-dns", ["--domain", "example.local"])
    assert a.zone == "example.local"
    a, _ = parse("kube-controller-manager", [*SERVER, "--bind-address", "127.0.0.1", "--secure-port", "0",
                                             "--leader-elect=F", "--node-monitor-grace-period=1m"])
    assert (a.bind_address, a.secure_port, a.leader_elect, a.node_monitor_grace_period) == ("127.0.0.1", 0, False, 60)
    a, _ = parse("kube-scheduler", [*SERVER, "--leader-elect", "--leader-elect-lease-duration=15s"])
    assert a.secure_port == 10259 and a.leader_elect is True and a.leader_elect_lease_duration == 15
    a, _ = parse("kube-apiserver", ["--secure-port", "6443", "--service-account-signing-key-file", "/x"])
    assert a.port == 6443 and a.service_account_signing_key_file == "/x"


def test_implemented_flags_are_never_in_the_ignore_table():
    """A flag a component implements must reach argparse, not be dropped as unimplemented."""
    parsers = {"kube-controller-manager": controllers_parser(), "kube-scheduler": scheduler_parser(),
               "kube-proxy": proxy_parser(), "kube-dns": dns_parser()}
    for component, parser in parsers.items():
        implemented = {o[2:] for o in parser._option_string_actions if o.startswith("--")}
        assert not implemented & set(flags.UNIMPLEMENTED[component]), component
    rest, dropped = flags.split_unimplemented(["--bind-address", "1.2.3.4", "--masquerade-all", "--x"],
                                              flags.unimplemented_for("kube-proxy"), {"--bind-address"})
    assert rest == ["--bind-address", "1.2.3.4", "--x"] and dropped == ["masquerade-all"]
    rest, _ = flags.split_unimplemented(["--", "--masquerade-all"], flags.unimplemented_for("kube-proxy"), set())
    assert rest == ["--", "--masquerade-all"]


@pytest.mark.parametrize("text,value", [("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True),
                                        ("True", True), ("0", False), ("f", False), ("F", False), ("FALSE", False),
                                        ("false", False), ("False", False), ("yes", True), ("off", False)])
def test_bool_flags_use_go_parse_bool(text, value):
    assert flags.bool_flag(text) is value


@pytest.mark.parametrize("text", ["", "maybe", "2", "tru"])
def test_bool_flags_refuse_the_rest(text):
    with pytest.raises(argparse.ArgumentTypeError):
        flags.bool_flag(text)


def test_duration_flags_take_go_durations_and_say_what_is_wrong():
    assert flags.duration_flag("1m30s") == 90 and flags.duration_flag("30") == 30
    with pytest.raises(argparse.ArgumentTypeError, match='unknown unit "d"'):
        flags.duration_flag("1d")


@pytest.mark.parametrize("module", ["kubelab.apiserver", "kubelab.controllers", "kubelab.scheduler",
                                    "kubelab.nodeagent", "kubelab.proxy", "kubelab.dns", "kubelab.netpol"])
def test_every_component_process_exits_2_on_an_unknown_flag(module):
    p = subprocess.run([sys.executable, "-m", module, "--v=2", *REQUIRED.get(module, []), "--no-such-flag"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "unrecognized arguments: --no-such-flag" in p.stderr
    assert "Traceback" not in p.stderr
