"""Component command lines that read like upstream's: Go value grammars, `--v=N`, and a table
of upstream flags each component knows about but does not implement.

Why: students follow "Kubernetes the Hard Way"-style guides and paste upstream command lines
(`kube-proxy --proxy-mode=nftables --hostname-override=worker-1 --v=2 --conntrack-max-per-core=0`).
Each flag then lands in one of three places, and never silently:

- implemented: the component's own argparse argument, under the upstream name (aliases such
  as `--proxy-mode` for `--mode` are plain argparse option strings);
- known upstream, not implemented: listed in `UNIMPLEMENTED[component]` (plus the klog and
  component-base flags every component shares), accepted with one warning line on stderr
  and dropped before argparse sees it;
- unknown: argparse's error, exit 2 (what a Go component does too).

`parse_args(parser, argv, component)` is the single entry point each `__main__` uses. The
bool and duration argument types use Go's grammars (`strconv.ParseBool`,
`time.ParseDuration`) so `--leader-elect=false` and `--timeout=1m30s` mean what they mean
upstream.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from kubelab.durations import parse_flag_duration

# strconv.ParseBool, plus the yes/no/on/off spellings kubelab always accepted
_TRUE = {"1", "t", "true", "yes", "on"}
_FALSE = {"0", "f", "false", "no", "off"}

VALUE, BOOL = "value", "bool"  # does the flag take a value (`--x v`) or stand alone (`--x`)?

# klog and component-base flags on every Kubernetes binary (some gone in 1.26+, but old
# guides still pass them).
COMMON_UNIMPLEMENTED: Mapping[str, str] = {
    "vmodule": VALUE, "logging-format": VALUE, "log-flush-frequency": VALUE, "log-json-info-buffer-size": VALUE,
    "log-json-split-stream": BOOL, "log-text-info-buffer-size": VALUE, "log-text-split-stream": BOOL,
    "logtostderr": BOOL, "alsologtostderr": BOOL, "log-dir": VALUE, "log-file": VALUE,
    "log-file-max-size": VALUE, "stderrthreshold": VALUE, "skip-headers": BOOL, "skip-log-headers": BOOL,
    "one-output": BOOL, "add-dir-header": BOOL, "log-backtrace-at": VALUE,
    "feature-gates": VALUE, "profiling": BOOL, "contention-profiling": BOOL,
}

_CLIENT = {"kube-api-qps": VALUE, "kube-api-burst": VALUE, "kube-api-content-type": VALUE}
_DELEGATED_AUTH = {
    "authentication-kubeconfig": VALUE, "authorization-kubeconfig": VALUE,
    "authentication-skip-lookup": BOOL, "authentication-tolerate-lookup-failure": BOOL,
    "authorization-always-allow-paths": VALUE, "requestheader-client-ca-file": VALUE,
    "requestheader-allowed-names": VALUE, "requestheader-extra-headers-prefix": VALUE,
    "requestheader-group-headers": VALUE, "requestheader-username-headers": VALUE,
    "tls-cipher-suites": VALUE, "tls-min-version": VALUE, "tls-sni-cert-key": VALUE, "cert-dir": VALUE,
    "permit-address-sharing": BOOL, "permit-port-sharing": BOOL, "http2-max-streams-per-connection": VALUE,
}

# component → upstream flags it accepts with a warning (beyond COMMON_UNIMPLEMENTED)
UNIMPLEMENTED: Mapping[str, Mapping[str, str]] = {
    "kube-apiserver": {
        "admission-control-config-file": VALUE, "enable-admission-plugins": VALUE,
        "disable-admission-plugins": VALUE, "allow-privileged": BOOL, "apiserver-count": VALUE,
        "audit-log-path": VALUE, "audit-log-maxage": VALUE, "audit-log-maxbackup": VALUE,
        "audit-log-maxsize": VALUE, "audit-policy-file": VALUE, "enable-bootstrap-token-auth": BOOL,
        "encryption-provider-config": VALUE, "event-ttl": VALUE, "runtime-config": VALUE,
        "service-node-port-range": VALUE, "kubelet-https": BOOL, "kubelet-preferred-address-types": VALUE,
        "proxy-client-cert-file": VALUE, "proxy-client-key-file": VALUE, "requestheader-client-ca-file": VALUE,
        "requestheader-allowed-names": VALUE, "requestheader-extra-headers-prefix": VALUE,
        "requestheader-group-headers": VALUE, "requestheader-username-headers": VALUE,
        "enable-aggregator-routing": BOOL, "anonymous-auth": BOOL, "storage-backend": VALUE,
        "storage-media-type": VALUE, "max-requests-inflight": VALUE, "max-mutating-requests-inflight": VALUE,
        "tls-cipher-suites": VALUE, "tls-min-version": VALUE, "etcd-prefix": VALUE, "watch-cache": BOOL,
        "default-watch-cache-size": VALUE, "endpoint-reconciler-type": VALUE,
        "enable-priority-and-fairness": BOOL, "goaway-chance": VALUE, "shutdown-delay-duration": VALUE,
        **_CLIENT,
    },
    "kube-controller-manager": {
        "allocate-node-cidrs": BOOL, "cluster-name": VALUE, "cluster-signing-cert-file": VALUE,
        "cluster-signing-key-file": VALUE, "root-ca-file": VALUE, "service-account-private-key-file": VALUE,
        "service-cluster-ip-range": VALUE, "use-service-account-credentials": BOOL, "config": VALUE,
        "concurrent-deployment-syncs": VALUE, "concurrent-replicaset-syncs": VALUE,
        "concurrent-endpoint-syncs": VALUE, "concurrent-service-endpoint-syncs": VALUE,
        "concurrent-namespace-syncs": VALUE, "concurrent-gc-syncs": VALUE, "terminated-pod-gc-threshold": VALUE,
        "horizontal-pod-autoscaler-sync-period": VALUE, "configure-cloud-routes": BOOL, "cloud-provider": VALUE,
        "leader-elect-resource-lock": VALUE, "leader-elect-resource-namespace": VALUE,
        "node-startup-grace-period": VALUE, "large-cluster-size-threshold": VALUE,
        **_CLIENT, **_DELEGATED_AUTH,
    },
    "kube-scheduler": {
        "config": VALUE, "write-config-to": VALUE, "leader-elect-resource-lock": VALUE,
        "leader-elect-resource-name": VALUE, "leader-elect-resource-namespace": VALUE,
        "pod-max-in-unschedulable-pods-duration": VALUE, **_CLIENT, **_DELEGATED_AUTH,
    },
    "kubelet": {
        "config": VALUE, "bootstrap-kubeconfig": VALUE, "cert-dir": VALUE, "container-runtime-endpoint": VALUE,
        "image-service-endpoint": VALUE, "cgroup-driver": VALUE, "cgroup-root": VALUE, "fail-swap-on": BOOL,
        "register-node": BOOL, "register-with-taints": VALUE, "node-labels": VALUE, "max-pods": VALUE,
        "pod-cidr": VALUE, "pod-infra-container-image": VALUE, "read-only-port": VALUE, "healthz-port": VALUE,
        "healthz-bind-address": VALUE, "anonymous-auth": BOOL, "authorization-mode": VALUE,
        "authentication-token-webhook": BOOL, "rotate-certificates": BOOL, "rotate-server-certificates": BOOL,
        "serialize-image-pulls": BOOL, "runtime-request-timeout": VALUE, "container-runtime": VALUE,
        "network-plugin": VALUE, "image-gc-high-threshold": VALUE, "image-gc-low-threshold": VALUE,
        "eviction-hard": VALUE, "kube-reserved": VALUE, "system-reserved": VALUE, "provider-id": VALUE,
        "cloud-provider": VALUE, "node-status-update-frequency": VALUE, "sync-frequency": VALUE,
        "tls-cipher-suites": VALUE, "tls-min-version": VALUE, "volume-plugin-dir": VALUE,
        "seccomp-default": BOOL, "streaming-connection-idle-timeout": VALUE, "enforce-node-allocatable": VALUE,
        **_CLIENT,
    },
    "kube-proxy": {
        "config": VALUE, "write-config-to": VALUE, "bind-address": VALUE, "bind-address-hard-fail": BOOL,
        "masquerade-all": BOOL, "nodeport-addresses": VALUE, "detect-local-mode": VALUE,
        "pod-bridge-interface": VALUE, "pod-interface-name-prefix": VALUE, "proxy-port-range": VALUE,
        "oom-score-adj": VALUE, "conntrack-max-per-core": VALUE, "conntrack-min": VALUE,
        "conntrack-tcp-timeout-established": VALUE, "conntrack-tcp-timeout-close-wait": VALUE,
        "conntrack-tcp-be-liberal": BOOL, "conntrack-udp-timeout": VALUE, "conntrack-udp-timeout-stream": VALUE,
        "iptables-masquerade-bit": VALUE, "iptables-localhost-nodeports": BOOL, "nftables-masquerade-bit": VALUE,
        "ipvs-scheduler": VALUE, "ipvs-sync-period": VALUE, "ipvs-min-sync-period": VALUE,
        "ipvs-strict-arp": BOOL, "ipvs-exclude-cidrs": VALUE, "ipvs-tcp-timeout": VALUE,
        "ipvs-tcpfin-timeout": VALUE, "ipvs-udp-timeout": VALUE, "init-only": BOOL,
        "show-hidden-metrics-for-version": VALUE, "healthz-port": VALUE, "metrics-port": VALUE,
        **_CLIENT,
    },
    # the NetworkPolicy agent: no upstream binary of that name (kube-router and Calico take other
    # flag sets), so only the common klog/pflag flags are known-unimplemented
    "kubelab-netpol": {**_CLIENT},
    # the LoadBalancer controller and speakers (kubelab.loadbalancer): MetalLB's flags that have no
    # meaning without MetalLB's CRDs, webhooks and memberlist
    "metallb-controller": {"config-ns": VALUE, "namespace": VALUE, "log-level": VALUE, "webhook-mode": VALUE,
                           "disable-cert-rotation": BOOL, "cert-service-name": VALUE, "enable-pprof": BOOL,
                           "deployment": VALUE, "tls-min-version": VALUE, **_CLIENT},
    "metallb-speaker": {"host": VALUE, "ml-bindaddr": VALUE, "ml-bindport": VALUE, "ml-labels": VALUE,
                        "ml-namespace": VALUE, "ml-secret-key-path": VALUE, "namespace": VALUE, "log-level": VALUE,
                        "enable-pprof": BOOL, "ignore-exclude-lb": BOOL, **_CLIENT},
    # the cluster DNS: kube-dns's long flags (CoreDNS takes a Corefile instead)
    "ingress-nginx": {"election-id": VALUE, "ingress-class": VALUE, "watch-ingress-without-class": BOOL,
                      "enable-metrics": BOOL, "configmap": VALUE, "default-ssl-certificate": VALUE,
                      "default-backend-service": VALUE, "tcp-services-configmap": VALUE,
                      "udp-services-configmap": VALUE, "validating-webhook": VALUE,
                      "validating-webhook-certificate": VALUE, "validating-webhook-key": VALUE,
                      "annotations-prefix": VALUE, **_CLIENT},
    "kube-dns": {"config-dir": VALUE, "config-map": VALUE, "config-map-namespace": VALUE,
                 "config-period": VALUE, "dns-bind-address": VALUE, "initial-sync-timeout": VALUE,
                 "kube-master-url": VALUE, "federations": VALUE, "nameservers": VALUE, "conf": VALUE,
                 **_CLIENT},
}


def bool_flag(text: str) -> bool:
    """argparse type: Go's strconv.ParseBool (`true`, `F`, `1`, ...)."""
    t = str(text).strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


bool_flag.__name__ = "bool"  # argparse names the type in its error line


def duration_flag(text: str) -> float:
    """argparse type: a Go duration (`1m30s`) or a bare number of seconds → seconds."""
    try:
        return parse_flag_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


duration_flag.__name__ = "duration"


def add_verbosity_flag(parser: argparse.ArgumentParser, *, default: int = 0, extra: Sequence[str] = ()) -> None:
    """klog's `-v/--v=N` (log level for V-logs): `--v=2` is what upstream guides pass. A bare `-v`
    (kubelab's old `--verbose`) means 4, debug. `args.v` holds the number."""
    parser.add_argument("-v", "--v", *extra, dest="v", type=int, nargs="?", const=4, default=default,
                        metavar="N", help=f"log verbosity as klog's (0-2 info, 4+ debug; default {default})")


def log_level(v: int) -> int:
    """klog verbosity → Python logging level: V(0..3) are informational, V(4)+ debug."""
    return logging.DEBUG if v >= 4 else logging.INFO


def unimplemented_for(component: str) -> dict[str, str]:
    if component not in UNIMPLEMENTED:
        raise KeyError(f"no upstream flag table for {component!r}")
    return {**COMMON_UNIMPLEMENTED, **UNIMPLEMENTED[component]}


def split_unimplemented(argv: Sequence[str], table: Mapping[str, str],
                        implemented: set[str]) -> tuple[list[str], list[str]]:
    """(argv without the known-unimplemented flags, the names dropped). A flag the parser
    implements always wins over the table; `--` ends flag parsing as in pflag."""
    rest: list[str] = []
    dropped: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, _ = a[2:].partition("=")
            kind = table.get(name)
            if kind is not None and "--" + name not in implemented:
                dropped.append(name)
                if kind == VALUE and not eq and i + 1 < len(args):
                    i += 1  # `--flag value`
                i += 1
                continue
        rest.append(a)
        i += 1
    return rest, dropped


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None, component: str, *,
               stderr: TextIO | None = None) -> argparse.Namespace:
    """Parse a component's command line: known-unimplemented upstream flags are dropped with
    one warning line each; anything else unknown is argparse's usage error (exit 2)."""
    parser.allow_abbrev = False  # Go flags have no prefix matching: `--cluster` is not `--cluster-cidr`
    table = unimplemented_for(component)
    implemented = set(parser._option_string_actions)  # noqa: SLF001 - argparse has no public accessor
    rest, dropped = split_unimplemented(sys.argv[1:] if argv is None else argv, table, implemented)
    out = stderr or sys.stderr
    for name in dict.fromkeys(dropped):
        print(f"{parser.prog}: warning: --{name} is a {component} flag kubelab does not implement; ignored",
              file=out)
    return parser.parse_args(rest)
