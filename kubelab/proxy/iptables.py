"""Pure renderer: proxy state → `iptables-restore --noflush` input (the classic kube-proxy layout).

Chain names and rule text follow upstream kube-proxy's iptables mode
(kubernetes pkg/proxy/iptables/proxier.go), which is what the seed's walk-through shows:

    nat PREROUTING/OUTPUT → KUBE-SERVICES
        -d <clusterIP> --dport <port> -j KUBE-SVC-<hash>        (one rule per service port: O(n) scan)
        last rule: local destination → KUBE-NODEPORTS → KUBE-EXT-<hash>
    KUBE-SVC-<hash>: -m statistic --mode random --probability 1/(n-i) -j KUBE-SEP-<hash>
    KUBE-SEP-<hash>: hairpin -s <ep> -j KUBE-MARK-MASQ, then -j DNAT --to-destination ip:port
    nat POSTROUTING → KUBE-POSTROUTING: MASQUERADE packets with the 0x4000 mark
    filter INPUT/FORWARD/OUTPUT (ctstate NEW) → KUBE-SERVICES: REJECT services without endpoints

Only our own chains appear in the restore input, and `--noflush` leaves every other chain
alone; the jumps from the built-in chains are added once, idempotently (JUMP_RULES).
Hash: base32(sha256(servicePortName + protocol [+ endpoint]))[:16], as upstream, so
`KUBE-SVC-XPGD46QRK7WJZT7O` is ns1/svc1:p80/tcp here too.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Iterable, Mapping

from kubelab.proxy.model import Endpoint, ProxyConfig, ProxyState, ServicePort, ServicePortName, categorize

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"

SVC_PREFIX = "KUBE-SVC-"
SVL_PREFIX = "KUBE-SVL-"
EXT_PREFIX = "KUBE-EXT-"
FW_PREFIX = "KUBE-FW-"
SEP_PREFIX = "KUBE-SEP-"
SERVICE_CHAIN_PREFIXES = (SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX)

FILTER_CHAINS = (KUBE_EXTERNAL_SERVICES, KUBE_PROXY_FIREWALL, KUBE_SERVICES)
NAT_CHAINS = (KUBE_MARK_MASQ, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_SERVICES)

# (table, built-in chain, rule spec) jumps into our chains, ensured with -C / -I
JUMP_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "kubernetes load balancer firewall", "-j", KUBE_PROXY_FIREWALL)),
    ("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "kubernetes externally-visible service portals", "-j", KUBE_EXTERNAL_SERVICES)),
    ("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "kubernetes load balancer firewall", "-j", KUBE_PROXY_FIREWALL)),
    ("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                         "kubernetes service portals", "-j", KUBE_SERVICES)),
    ("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                           "kubernetes service portals", "-j", KUBE_SERVICES)),
    ("filter", "OUTPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                          "kubernetes load balancer firewall", "-j", KUBE_PROXY_FIREWALL)),
    ("filter", "OUTPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                          "kubernetes service portals", "-j", KUBE_SERVICES)),
    ("nat", "PREROUTING", ("-m", "comment", "--comment", "kubernetes service portals", "-j", KUBE_SERVICES)),
    ("nat", "OUTPUT", ("-m", "comment", "--comment", "kubernetes service portals", "-j", KUBE_SERVICES)),
    ("nat", "POSTROUTING", ("-m", "comment", "--comment", "kubernetes postrouting rules", "-j", KUBE_POSTROUTING)),
)


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    encoded = base64.b32encode(hashlib.sha256((service_port_name + protocol).encode()).digest()).decode()
    return encoded[:16]


def service_chain(key: ServicePortName) -> str:
    return SVC_PREFIX + port_proto_hash(str(key), key.protocol.lower())


def local_chain(key: ServicePortName) -> str:
    return SVL_PREFIX + port_proto_hash(str(key), key.protocol.lower())


def external_chain(key: ServicePortName) -> str:
    return EXT_PREFIX + port_proto_hash(str(key), key.protocol.lower())


def firewall_chain(key: ServicePortName) -> str:
    return FW_PREFIX + port_proto_hash(str(key), key.protocol.lower())


def endpoint_chain(key: ServicePortName, ep: Endpoint) -> str:
    encoded = base64.b32encode(
        hashlib.sha256((str(key) + key.protocol.lower() + str(ep)).encode()).digest()
    ).decode()
    return SEP_PREFIX + encoded[:16]


def _comment(text: str) -> str:
    # iptables-save quotes only what needs it; match that so saved and rendered rules compare
    return f'"{text}"' if re.search(r"[^A-Za-z0-9_./:>-]", text) else text


def probability(n: int) -> str:
    """Upstream's formatting: 1/n with 10 decimals (`0.3333333333`)."""
    return f"{1.0 / n:0.10f}"


def _lb_rules(
    chain: str, sp: ServicePort, eps: tuple[Endpoint, ...], affinity: bool
) -> list[str]:
    key = sp.key
    rules = []
    if affinity:
        for ep in eps:
            sep = endpoint_chain(key, ep)
            rules.append(
                f"-A {chain} -m comment --comment {_comment(f'{key} -> {ep}')} -m recent --name {sep} "
                f"--rcheck --seconds {sp.affinity_timeout_seconds} --reap -j {sep}"
            )
    n = len(eps)
    for i, ep in enumerate(eps):
        sep = endpoint_chain(key, ep)
        stat = f" -m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else ""
        rules.append(f"-A {chain} -m comment --comment {_comment(f'{key} -> {ep}')}{stat} -j {sep}")
    return rules


def service_rules(sp: ServicePort, endpoints: tuple[Endpoint, ...], cfg: ProxyConfig) -> tuple[list[str], list[str], list[str]]:
    """(nat chain names, nat rules, filter rules) for one service port (upstream's per-service loop)."""
    key = sp.key
    name = str(key)
    proto = sp.protocol.lower()
    cat = categorize(sp, endpoints, cfg.node_name)
    svc_chain, svl_chain, ext_chain = service_chain(key), local_chain(key), external_chain(key)
    uses_cluster_chain = bool(cat.cluster) and sp.uses_cluster_endpoints
    uses_local_chain = bool(cat.local) and sp.uses_local_endpoints

    internal_chain, has_internal = svc_chain, cat.has_any
    if sp.internal_traffic_local:
        internal_chain, has_internal = svl_chain, cat.has_any and bool(cat.local)
    external_policy_chain, has_external = svc_chain, cat.has_any
    if sp.external_traffic_local:
        external_policy_chain, has_external = svl_chain, cat.has_any and bool(cat.local)
    uses_ext_chain = cat.has_any and sp.externally_accessible

    if not cat.has_any:
        int_target = ext_target = "REJECT"
        int_why = ext_why = f"{name} has no endpoints"
    else:
        int_target = ext_target = "DROP"
        int_why = ext_why = f"{name} has no local endpoints"

    chains: list[str] = []
    nat: list[str] = []
    flt: list[str] = []
    match = f"-m {proto} -p {proto}"

    if has_internal:
        nat.append(
            f"-A {KUBE_SERVICES} -m comment --comment {_comment(f'{name} cluster IP')} {match} "
            f"-d {sp.cluster_ip} --dport {sp.port} -j {internal_chain}"
        )
    else:
        flt.append(
            f"-A {KUBE_SERVICES} -m comment --comment {_comment(int_why)} {match} "
            f"-d {sp.cluster_ip} --dport {sp.port} -j {int_target}"
        )
    for ext_ip in sp.external_ips:
        if cat.has_any:
            nat.append(
                f"-A {KUBE_SERVICES} -m comment --comment {_comment(f'{name} external IP')} {match} "
                f"-d {ext_ip} --dport {sp.port} -j {ext_chain}"
            )
        if not has_external:
            flt.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {_comment(ext_why)} {match} "
                f"-d {ext_ip} --dport {sp.port} -j {ext_target}"
            )
    fw_chain = firewall_chain(key)
    uses_fw_chain = cat.has_any and bool(sp.load_balancer_ips) and bool(sp.source_ranges)
    for lb_ip in sp.load_balancer_ips:
        if cat.has_any:
            nat.append(
                f"-A {KUBE_SERVICES} -m comment --comment {_comment(f'{name} loadbalancer IP')} {match} "
                f"-d {lb_ip} --dport {sp.port} -j {fw_chain if uses_fw_chain else ext_chain}"
            )
        if uses_fw_chain:
            # what KUBE-FW-* did not send on keeps its LB IP destination: dropped here, after nat
            flt.append(
                f"-A {KUBE_PROXY_FIREWALL} -m comment --comment "
                f"{_comment(f'{name} traffic not accepted by {fw_chain}')} {match} "
                f"-d {lb_ip} --dport {sp.port} -j DROP"
            )
        if not has_external:
            flt.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {_comment(ext_why)} {match} "
                f"-d {lb_ip} --dport {sp.port} -j {ext_target}"
            )
    if sp.node_port:
        if cat.has_any:
            nat.append(
                f"-A {KUBE_NODEPORTS} -m comment --comment {_comment(name)} {match} "
                f"--dport {sp.node_port} -j {ext_chain}"
            )
        if not has_external:
            flt.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {_comment(ext_why)} -m addrtype "
                f"--dst-type LOCAL {match} --dport {sp.node_port} -j {ext_target}"
            )

    if uses_cluster_chain:
        chains.append(svc_chain)
    if uses_local_chain:
        chains.append(svl_chain)
    if uses_ext_chain:
        chains.append(ext_chain)
    if uses_fw_chain:
        chains.append(fw_chain)
        for r in sp.source_ranges:
            nat.append(f"-A {fw_chain} -m comment --comment {_comment(f'{name} loadbalancer IP')} "
                       f"-s {r} -j {ext_chain}")
        nat.append(f"-A {fw_chain} -m comment --comment "
                   f"{_comment(f'other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL')}")
    if has_internal and cfg.cluster_cidr:
        nat.append(
            f"-A {internal_chain} -m comment --comment {_comment(f'{name} cluster IP')} {match} "
            f"-d {sp.cluster_ip} --dport {sp.port} ! -s {cfg.cluster_cidr} -j {KUBE_MARK_MASQ}"
        )
    if uses_ext_chain:
        if not sp.external_traffic_local:
            nat.append(
                f"-A {ext_chain} -m comment --comment "
                f"{_comment(f'masquerade traffic for {name} external destinations')} -j {KUBE_MARK_MASQ}"
            )
        elif has_internal:
            if cfg.cluster_cidr:
                nat.append(
                    f"-A {ext_chain} -m comment --comment {_comment(f'pod traffic for {name} external destinations')} "
                    f"-s {cfg.cluster_cidr} -j {internal_chain}"
                )
            nat.append(
                f"-A {ext_chain} -m comment --comment "
                f"{_comment(f'masquerade LOCAL traffic for {name} external destinations')} "
                f"-m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
            )
            nat.append(
                f"-A {ext_chain} -m comment --comment "
                f"{_comment(f'route LOCAL traffic for {name} external destinations')} "
                f"-m addrtype --src-type LOCAL -j {internal_chain}"
            )
        if has_external:
            nat.append(f"-A {ext_chain} -j {external_policy_chain}")

    if uses_cluster_chain:
        nat += _lb_rules(svc_chain, sp, cat.cluster, sp.session_affinity_client_ip)
    if uses_local_chain:
        nat += _lb_rules(svl_chain, sp, cat.local, sp.session_affinity_client_ip)
    for ep in cat.reachable:
        sep = endpoint_chain(key, ep)
        chains.append(sep)
        nat.append(f"-A {sep} -m comment --comment {_comment(name)} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        recent = f" -m recent --name {sep} --set" if sp.session_affinity_client_ip else ""
        nat.append(
            f"-A {sep} -m comment --comment {_comment(name)}{recent} {match} -j DNAT --to-destination {ep}"
        )
    return chains, nat, flt


def render(state: ProxyState, *, previous_chains: Iterable[str] = ()) -> str:
    """The full restore input; chains in `previous_chains` that are gone now are deleted (-X)."""
    cfg = state.config
    mark = cfg.masquerade_mark
    svc_chains: list[str] = []
    nat_rules: list[str] = [
        f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}",
        f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN",
        f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}",
        f"-A {KUBE_POSTROUTING} -m comment --comment "
        f'"kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ]
    filter_rules: list[str] = []
    for key, sp in state.services.items():
        chains, nat, flt = service_rules(sp, state.endpoints_for(key), cfg)
        svc_chains += chains
        nat_rules += nat
        filter_rules += flt
    last = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    if cfg.node_ips:
        nat_rules += [f"-A {KUBE_SERVICES} {last} -d {ip} -j {KUBE_NODEPORTS}" for ip in cfg.node_ips]
    else:
        nat_rules.append(f"-A {KUBE_SERVICES} {last} -m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}")

    current = set(svc_chains)
    stale = sorted(c for c in set(previous_chains) if c not in current and c.startswith(SERVICE_CHAIN_PREFIXES))
    out = ["*filter"]
    out += [f":{c} - [0:0]" for c in FILTER_CHAINS]
    out += filter_rules
    out.append("COMMIT")
    out.append("*nat")
    out += [f":{c} - [0:0]" for c in NAT_CHAINS]
    out += [f":{c} - [0:0]" for c in svc_chains]
    out += [f":{c} - [0:0]" for c in stale]  # declaring flushes them, so -X can delete them
    out += nat_rules
    out += [f"-X {c}" for c in stale]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def chains_in(restore_text: str, table: str = "nat") -> set[str]:
    """Chain names declared in one table of an iptables-save / restore text."""
    out: set[str] = set()
    current = None
    for line in restore_text.splitlines():
        if line.startswith("*"):
            current = line[1:].strip()
        elif line.startswith(":") and current == table:
            out.add(line[1:].split()[0])
    return out


def render_cleanup(saved: Mapping[str, set[str]]) -> str:
    """Restore input deleting every KUBE-* chain of ours found in `saved` (table → chain names).

    The jump rules from built-in chains must be removed first (see JUMP_RULES); this only
    flushes and deletes our chains, leaving all others untouched.
    """
    ours = {
        "filter": sorted(c for c in saved.get("filter", ()) if c in FILTER_CHAINS),
        "nat": sorted(c for c in saved.get("nat", ()) if c in NAT_CHAINS or c.startswith(SERVICE_CHAIN_PREFIXES)),
    }
    out: list[str] = []
    for table, chains in ours.items():
        if not chains:
            continue
        out.append(f"*{table}")
        out += [f":{c} - [0:0]" for c in chains]
        out += [f"-X {c}" for c in chains]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""
