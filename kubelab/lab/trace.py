"""`kubelab trace <pod> <target>`: the path of a request, hop by hop, from the lab's real state.

Two halves, kept apart on purpose:
  capture (I/O): reads the pod from the API, its resolv.conf through /proc/<pid>/root, asks the
    DNS server live from inside the pod's namespace, lists the proxy's rules and the routes
    inside the node namespaces. Produces one plain dict ("captured state").
  render (pure): captured state -> a tree of hops, each with the command that shows it live.
The parsers of `nft`/`iptables-save`/`ip route get` output are pure too and tested on real
captured text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
from dataclasses import dataclass

from kubelab.client import ApiClient, NotFound

from . import state, topology
from .topology import LabPlan


# --- pure: parsing -------------------------------------------------------------------------------

from .resolver import Resolv, parse_resolv_conf, resolver_rule, search_candidates  # noqa: F401  (re-exported)


def parse_target(target: str) -> tuple[str, int | None]:
    host, sep, port = target.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    if sep and not port.isdigit():
        raise ValueError(f"bad port in {target!r}")
    return target, None


def parse_dig(text: str) -> tuple[str, list[str]]:
    """`dig` output -> (status, A records)."""
    status = "NO ANSWER"
    m = re.search(r"status: ([A-Z]+)", text)
    if m:
        status = m.group(1)
    answers = []
    in_answer = False
    for line in text.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            in_answer = True
            continue
        if in_answer:
            if not line.strip() or line.startswith(";;"):
                in_answer = False
                continue
            parts = line.split()
            if len(parts) >= 5 and parts[3] == "A":
                answers.append(parts[4])
    return status, answers


def nft_service_entry(map_text: str, ip: str, proto: str, port: int) -> str | None:
    """The service-ips element for ip . proto . port -> the chain it jumps to."""
    m = re.search(rf"(?<![\d.]){re.escape(ip)} \. {proto} \. {port} : goto ([^\s,}}]+)", map_text)
    return m.group(1) if m else None


def nft_chain_endpoints(table_text: str, chain: str) -> tuple[str | None, list[tuple[str, str]]]:
    """A service chain's load-balancing rule and its endpoint chains [(chain, "ip:port")]."""
    body = nft_chain_body(table_text, chain)
    if body is None:
        return None, []
    rule = next((line.strip() for line in body.splitlines() if "numgen" in line or "goto endpoint-" in line), None)
    eps = []
    for ep_chain in re.findall(r"goto (endpoint-[^\s,}]+)", body):
        m = re.search(r"__([\d.]+)/(\d+)$", ep_chain)
        eps.append((ep_chain, f"{m.group(1)}:{m.group(2)}" if m else "?"))
    return rule, eps


def nft_chain_body(table_text: str, chain: str) -> str | None:
    m = re.search(rf"chain {re.escape(chain)} \{{\n(.*?)\n\s*\}}", table_text, re.S)
    return m.group(1) if m else None


def iptables_service(save_text: str, ip: str, proto: str, port: int) -> tuple[str | None, list[tuple[str, str]]]:
    """iptables-save -t nat: KUBE-SERVICES rule for ip:port -> KUBE-SVC chain -> [(KUBE-SEP, ip:port)]."""
    svc = None
    for line in save_text.splitlines():
        if line.startswith("-A KUBE-SERVICES") and f"-d {ip}/32" in line and f"--dport {port}" in line \
                and f"-p {proto}" in line:
            m = re.search(r"-j (KUBE-SVC-\S+)", line)
            if m:
                svc = m.group(1)
                break
    if not svc:
        return None, []
    eps = []
    for line in save_text.splitlines():
        if line.startswith(f"-A {svc} "):
            m = re.search(r"-j (KUBE-SEP-\S+)", line)
            if m:
                sep = m.group(1)
                dest = "?"
                for l2 in save_text.splitlines():
                    if l2.startswith(f"-A {sep} ") and "--to-destination" in l2:
                        dest = l2.split("--to-destination", 1)[1].split()[0]
                eps.append((sep, dest))
    return svc, eps


def parse_route_get(text: str) -> dict:
    """`ip route get X` -> {dst, via, dev, src}."""
    out: dict = {}
    parts = text.split()
    if parts:
        out["dst"] = parts[0]
    for key in ("via", "dev", "src"):
        if key in parts:
            i = parts.index(key)
            if i + 1 < len(parts):
                out[key] = parts[i + 1]
    return out


# --- pure: rendering -----------------------------------------------------------------------------

def policy_hop(cluster, src_ip: str, dst_ip: str, port: int, protocol: str) -> dict:
    """The NetworkPolicy hop of a trace, pure: kubelab.netpol.model.verdict (which policy and rule
    allows, or the default deny that drops), plus where it is enforced (egress on the source's
    node, ingress on the destination's) and the nft rule in table inet kubelab-netpol that does it."""
    from kubelab.netpol import nftables as nft
    from kubelab.netpol.model import EGRESS, verdict
    v = verdict(cluster, src_ip, dst_ip, port, protocol)
    src, dst = cluster.pod_by_ip(src_ip), cluster.pod_by_ip(dst_ip)
    steps = []
    for d, pod in ((v.egress, src), (v.ingress, dst)):
        step = {"direction": d.direction, "allowed": d.allowed, "explain": d.explain(), "node": pod.node if pod else "",
                "chain": "", "rule": ""}
        if pod and d.isolated:
            rules = {c.name: c for c in nft.build(cluster, pod.node).chains}
            base = nft.EGRESS_CHAIN if d.direction == EGRESS else nft.INGRESS_CHAIN
            if d.allowed:
                pol = next(p for p in cluster.policies if p.key == d.policy)
                step["chain"] = nft.policy_chain(pol, d.direction)
                tag = f'"{d.policy} {d.direction.lower()}[{d.rule}]:'
                step["rule"] = next((r for r in rules[step["chain"]].rules if tag in r), "")
            else:
                step["chain"] = base
                step["rule"] = next(r for r in rules[base].rules if nft.DEFAULT_DENY_COMMENT[d.direction] in r)
        steps.append(step)
    return {"allowed": v.allowed, "summary": v.explain(), "steps": steps}


def _cmd(text: str) -> str:
    return f"$ {text}"


# The kinds of hop, in path order. A hop kind added later (e.g. a NetworkPolicy verdict between
# "rules" and "route") needs only a new branch in `trace_hops`: the text renderer and the web
# view (kubelab/ui) draw any kind generically from its title, body and facts.
HOP_KINDS = ("resolv", "dns", "service", "rules", "policy", "route", "arrival", "destination", "note")


@dataclass(frozen=True)
class Hop:
    """One step of the path: what happens (title, body lines incl. the command that shows it
    live) and the facts a viewer highlights (the DNS server, the ClusterIP, the chosen pod...)."""
    kind: str                      # one of HOP_KINDS
    title: str
    body: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()  # (name, value) pairs, e.g. ("clusterIP", "10.96.0.12")

    def fact(self, name: str) -> str | None:
        return dict(self.facts).get(name)


def trace_hops(c: dict) -> list[Hop]:
    """Captured state -> the hops, in order. Pure; `render_trace` and the web view share it."""
    hops: list[Hop] = []

    if c.get("resolv_conf") is not None:
        body = [f"  {line}" for line in c["resolv_conf"].strip().splitlines()] or ["  (empty)"]
        hops.append(Hop("resolv", f"resolv.conf of the pod   {_cmd(c['resolv_cmd'])}", tuple(body),
                        (("cmd", c["resolv_cmd"]),)))
    elif c.get("resolv_error"):
        hops.append(Hop("resolv", "resolv.conf of the pod: could not read it", (f"  {c['resolv_error']}",)))

    dns = c.get("dns")
    if dns:
        resolv = dns.get("resolv") or {}
        n = len(dns["candidates"])
        head = (f"DNS: {resolver_rule(dns['name'], resolv.get('ndots', 1), resolv.get('search') or [])}; "
                + (f"one query to {dns['server']}" if n == 1 else
                   f"up to {n} names, stopping at the first answer, asking {dns['server']}"))
        body = []
        answer = ""
        for q in dns["queries"]:
            ans = ", ".join(q["answers"]) if q["answers"] else "-"
            answer = answer or (q["answers"][0] if q["answers"] else "")
            body.append(f"  {q['name']:<45} {q['status']:<9} {ans}")
            body.append(f"    {_cmd(q['cmd'])}")
        if not dns["queries"]:
            body.append("  (not asked live: --no-dns)")
        for name in dns["candidates"][len(dns["queries"]):]:
            body.append(f"  {name:<45} (not tried: an earlier name answered)")
        facts = [("server", dns["server"]), ("name", dns["name"])] + ([("answer", answer)] if answer else [])
        if dns["queries"]:
            facts.append(("cmd", dns["queries"][-1]["cmd"]))
        hops.append(Hop("dns", head, tuple(body), tuple(facts)))

    svc = c.get("service")
    if svc:
        hops.append(Hop("service", f"Service {svc['namespace']}/{svc['name']}: ClusterIP {svc['clusterIP']}, port "
                                   f"{c['port']}/{c['proto']}   {_cmd(c['service_cmd'])}", (),
                        (("service", f"{svc['namespace']}/{svc['name']}"), ("clusterIP", svc["clusterIP"] or ""),
                         ("port", str(c["port"])), ("cmd", c["service_cmd"]))))
    rules = c.get("rules")
    if rules:
        node = rules["node"]
        if rules["mode"] == "nftables":
            if rules.get("entry"):
                body = [f"  {svc['clusterIP']} . {c['proto']} . {c['port']} : goto {rules['entry']}",
                        f"    {_cmd(rules['map_cmd'])}"]
                body.append(f"  chain {rules['entry']}: {rules.get('lb_rule') or '(no load-balancing rule)'}")
                body.append(f"    {_cmd(rules['chain_cmd'])}")
            else:
                body = ["  no element for this address/port: the proxy has not programmed it (yet)",
                        f"    {_cmd(rules['map_cmd'])}"]
            head = f"proxy rules on {node} (nftables, table ip kube-proxy): map service-ips"
        else:
            body = ([f"  KUBE-SERVICES -d {svc['clusterIP']}/32 --dport {c['port']} -> {rules['entry']}"]
                    if rules.get("entry") else ["  no KUBE-SERVICES rule for this address/port"])
            body.append(f"    {_cmd(rules['map_cmd'])}")
            head = f"proxy rules on {node} (iptables, nat table)"
        eps = rules.get("endpoints") or []
        chosen = rules.get("chosen")
        for chain, dest in eps:
            mark = "  <- chosen" + (f" ({rules['chosen_how']})" if rules.get("chosen_how") else "") \
                if dest == chosen else ""
            body.append(f"    -> {chain}  DNAT to {dest}{mark}")
        if rules.get("entry") and not eps:
            body.append("    (no endpoints: the packet is rejected)")
        facts = [("node", node), ("mode", rules["mode"]), ("cmd", rules["map_cmd"])]
        if rules.get("entry"):
            facts.append(("entry", rules["entry"]))
        if chosen:
            facts.append(("chosen", chosen))
        hops.append(Hop("rules", head, tuple(body), tuple(facts)))

    # the NetworkPolicy verdict: after DNAT (policies name pods, not ClusterIPs), before routing
    pol = c.get("policy")
    if pol:
        body = []
        for st in pol["steps"]:
            where = f" on {st['node']}" if st["node"] else ""
            body.append(f"  {st['explain']}{where}")
            if st["chain"]:
                body.append(f"    chain {st['chain']}: {st['rule']}")
                if st.get("ns"):
                    cmd = f"sudo ip netns exec {st['ns']} nft list chain inet kubelab-netpol {st['chain']}"
                    body.append(f"    {_cmd(cmd)}")
        verdict = "ALLOWED" if pol["allowed"] else "DROPPED"
        facts = [("verdict", verdict)] + [(f"{st['direction'].lower()}_chain" if st.get("direction") else "chain", st["chain"])
                                          for st in pol["steps"] if st["chain"]]
        hops.append(Hop("policy", f"NetworkPolicy: {verdict} ({pol['port']}/{pol['protocol']}, judged after DNAT)",
                        tuple(body), tuple(facts)))
    dst = c.get("destination")
    route = c.get("route")
    if route:
        r = route["parsed"]
        how = f"via {r['via']} dev {r.get('dev')}" if r.get("via") else f"dev {r.get('dev')} (directly attached)"
        hops.append(Hop("route", f"route on {route['node']} to {route['dst']}: {how}   {_cmd(route['cmd'])}",
                        (f"  {route['output'].strip()}",) if route.get("output") else (),
                        (("node", route["node"]), ("dst", route["dst"]), ("via", r.get("via") or ""),
                         ("dev", r.get("dev") or ""), ("cmd", route["cmd"]))))
    hop = c.get("arrival")
    if hop:
        body = []
        if hop.get("route_output"):
            body.append(f"  {hop['route_output'].strip()}   {_cmd(hop['route_cmd'])}")
        if hop.get("veth"):
            body.append(f"  {hop.get('bridge') or 'bridge'} -> {hop['veth']} -> eth0 in netns {hop.get('pod_netns') or '?'}"
                        f"   {_cmd(hop['veth_cmd'])}")
        hops.append(Hop("arrival", f"on {hop['node']}: into the pod's veth", tuple(body),
                        (("node", hop["node"]), ("veth", hop.get("veth") or ""), ("bridge", hop.get("bridge") or ""),
                         ("cmd", hop["veth_cmd"]))))
    if dst:
        hops.append(Hop("destination", f"arrives at {dst.get('namespace', '?')}/{dst.get('name', '?')} "
                                       f"{dst['ip']}:{c['port']} on {dst.get('node') or '?'}", (),
                        (("pod", f"{dst.get('namespace', '?')}/{dst.get('name', '?')}"), ("ip", dst["ip"]),
                         ("node", dst.get("node") or ""))))
    for note in c.get("notes", []):
        hops.append(Hop("note", f"note: {note}"))
    return hops


def trace_header(c: dict) -> str:
    src = c["pod"]
    return (f"trace {src['namespace']}/{src['name']} ({src.get('ip') or 'no IP'} on {src.get('node') or '?'}) "
            f"-> {c['target']}")


def render_trace(c: dict) -> str:
    """Captured state -> the hop tree. Every hop: what happens, then the command to see it."""
    lines = [trace_header(c)]
    hops = trace_hops(c)
    for i, h in enumerate(hops):
        last = i == len(hops) - 1
        lines.append(f"{'└─' if last else '├─'} {i + 1}. {h.title}")
        pad = "   " if last else "│  "
        lines += [f"{pad}{b}" for b in h.body]
    return "\n".join(lines)


# --- I/O: capture --------------------------------------------------------------------------------

def _run(cmd: list[str], timeout: float = 10.0) -> str:
    p = topology.run(cmd, check=False, timeout=timeout)
    return p.stdout if p.returncode == 0 else ""


def first_line(text: str) -> str:
    """`ip route get` prints a second line ("cache"): keep the route itself."""
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""


def pod_netns_with_ip(node_netns: str, ip: str) -> str | None:
    for ns in topology.pod_netns_of_node(node_netns):
        out = _run(["ip", "-n", ns, "-j", "-4", "addr", "show"])
        try:
            for link in json.loads(out or "[]"):
                for a in link.get("addr_info", []):
                    if a.get("local") == ip:
                        return ns
        except ValueError:
            continue
    return None


def pod_resolv_conf(ns_name: str) -> tuple[str | None, str | None]:
    """The resolv.conf a process of the pod really sees (its own mount namespace, if any)."""
    inode = topology.netns_inode(ns_name)
    if not inode:
        return None, f"namespace {ns_name} not found"
    def own_mounts(pid: int) -> bool:  # a container (own mount ns, resolv.conf bound in), not the pause
        try:
            return os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.stat("/proc/self/ns/mnt").st_ino
        except OSError:
            return False
    pids = sorted(state.pids_in_netns({inode}), key=lambda p: not own_mounts(p))
    if not pids:
        return None, f"no process running in {ns_name}"
    for pid in pids:
        if not own_mounts(pid):
            break
        try:
            with open(f"/proc/{pid}/root/etc/resolv.conf") as f:
                return f.read(), None
        except OSError:
            continue
    return None, f"no container process with its own /etc in {ns_name}"


def veth_to(node_netns: str, pod_ns: str) -> tuple[str | None, str | None]:
    """The node-side veth whose peer is in the pod's namespace, and the bridge it is on."""
    ids = topology.node_link_netns(node_netns)
    out = _run(["ip", "-n", node_netns, "-j", "link", "show", "type", "veth"])
    try:
        for link in json.loads(out or "[]"):
            if ids.get(link.get("link_netnsid")) == pod_ns:
                return link.get("ifname"), link.get("master")
    except ValueError:
        pass
    return None, None


async def capture(api: ApiClient, plan: LabPlan, *, pod: str, namespace: str, target: str,
                  ask_dns: bool = True) -> dict:
    p = await api.get("pods", pod, namespace=namespace)
    node_name = (p.get("spec") or {}).get("nodeName")
    pod_ip = (p.get("status") or {}).get("podIP")
    c: dict = {"pod": {"name": pod, "namespace": namespace, "node": node_name, "ip": pod_ip},
               "target": target, "notes": []}
    try:
        node = plan.node(node_name) if node_name else None
    except KeyError:
        node = None
    host, port = parse_target(target)
    proto = "tcp"
    pod_ns = pod_netns_with_ip(node.netns, pod_ip) if node and pod_ip else None
    c["pod"]["netns"] = pod_ns
    exec_ns = pod_ns or (node.netns if node else None)
    resolv = Resolv((plan.dns_ip,), (f"{namespace}.svc.{plan.cluster_domain}", f"svc.{plan.cluster_domain}",
                                     plan.cluster_domain), 5)
    if pod_ns:
        text, err = pod_resolv_conf(pod_ns)
        c["resolv_conf"], c["resolv_error"] = text, err
        c["resolv_cmd"] = f"kubectl exec -n {namespace} {pod} -- cat /etc/resolv.conf"
        if text:
            resolv = parse_resolv_conf(text)
    else:
        c["notes"].append("the pod's network namespace was not found (not running on a lab node?)")

    # what the target is: a Service name, a ClusterIP, or a pod IP
    services = (await api.list("services"))["items"]
    dest_ip = None
    svc = None
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if not is_ip:
        candidates = search_candidates(host, resolv)
        server = resolv.nameservers[0] if resolv.nameservers else plan.dns_ip
        queries = []
        if ask_dns and exec_ns:
            for name in candidates:
                cmd = ["ip", "netns", "exec", exec_ns, "dig", "+time=2", "+tries=1", f"@{server}", name, "A"]
                status, answers = await asyncio.to_thread(lambda cmd=cmd: parse_dig(_run(cmd, timeout=8)))
                queries.append({"name": name, "status": status, "answers": answers,
                                "cmd": f"sudo {topology.shell(cmd)}"})
                if answers:
                    dest_ip = answers[0]
                    break
        c["dns"] = {"name": host, "server": server, "candidates": candidates, "queries": queries,
                    "resolv": {"ndots": resolv.ndots, "search": list(resolv.search)}}
        if not dest_ip:  # no live answer: find the Service by name as the resolver would
            for cand in candidates:
                for s in services:
                    m = s["metadata"]
                    if cand.rstrip(".") == f"{m['name']}.{m['namespace']}.svc.{plan.cluster_domain}":
                        svc = s
                        break
                if svc:
                    break
            if svc:
                dest_ip = svc["spec"].get("clusterIP")
                c["notes"].append(f"no live DNS answer; used Service {svc['metadata']['namespace']}/"
                                  f"{svc['metadata']['name']} from the API instead")
    else:
        dest_ip = host
    if dest_ip and not svc:
        svc = next((s for s in services if s["spec"].get("clusterIP") == dest_ip), None)
    if not dest_ip:
        c["notes"].append(f"{host!r} did not resolve")
        return c

    if svc:
        sp = svc["spec"].get("ports") or []
        chosen_port = next((x for x in sp if port is None or x.get("port") == port), None)
        if port is None and chosen_port:
            port = chosen_port["port"]
        if chosen_port:
            proto = chosen_port.get("protocol", "TCP").lower()
        c["service"] = {"name": svc["metadata"]["name"], "namespace": svc["metadata"]["namespace"],
                        "clusterIP": svc["spec"].get("clusterIP")}
        c["service_cmd"] = f"kubectl get svc -n {svc['metadata']['namespace']} {svc['metadata']['name']}"
        c["port"], c["proto"] = port or 80, proto
        if node:
            c["rules"] = await asyncio.to_thread(capture_rules, plan, node.netns, node.name, dest_ip, proto,
                                                 c["port"], pod_ip)
            chosen = (c["rules"] or {}).get("chosen")
            if chosen:
                dest_ip = chosen.split(":")[0]
    else:
        c["port"], c["proto"] = port or 80, proto

    # the destination pod, the route to its node, the veth into it
    pods = (await api.list("pods"))["items"]
    dpod = next((x for x in pods if (x.get("status") or {}).get("podIP") == dest_ip), None)
    c["destination"] = {"ip": dest_ip}
    if dpod:
        c["destination"].update(name=dpod["metadata"]["name"], namespace=dpod["metadata"]["namespace"],
                                node=(dpod.get("spec") or {}).get("nodeName"))
    if pod_ip:
        from kubelab.netpol.model import cluster_from_objects
        cluster = cluster_from_objects(pods, (await api.list("namespaces"))["items"],
                                       (await api.list("networkpolicies"))["items"])
        hop = policy_hop(cluster, pod_ip, dest_ip, c["port"], c["proto"].upper())
        for st in hop["steps"]:
            try:
                st["ns"] = plan.node(st["node"]).netns if st["node"] else ""
            except KeyError:
                st["ns"] = ""
        c["policy"] = {**hop, "port": c["port"], "protocol": c["proto"].upper()}
    if node:
        cmd = ["ip", "-n", node.netns, "route", "get", dest_ip]
        out = first_line(_run(cmd))
        c["route"] = {"node": node.name, "dst": dest_ip, "cmd": f"sudo {topology.shell(cmd)}", "output": out,
                      "parsed": parse_route_get(out)}
    dnode_name = c["destination"].get("node")
    try:
        dnode = plan.node(dnode_name) if dnode_name else None
    except KeyError:
        dnode = None
    if dnode:
        cmd = ["ip", "-n", dnode.netns, "route", "get", dest_ip]
        dpod_ns = pod_netns_with_ip(dnode.netns, dest_ip)
        veth, bridge = veth_to(dnode.netns, dpod_ns) if dpod_ns else (None, None)
        c["arrival"] = {"node": dnode.name, "route_cmd": f"sudo {topology.shell(cmd)}", "route_output": first_line(_run(cmd)),
                        "pod_netns": dpod_ns, "veth": veth, "bridge": bridge,
                        "veth_cmd": f"sudo ip -n {dnode.netns} link show master {bridge or 'cni0'}"}
    return c


def capture_rules(plan: LabPlan, netns: str, node: str, ip: str, proto: str, port: int,
                  client_ip: str | None) -> dict:
    rules: dict = {"node": node, "mode": plan.proxy_mode}
    if plan.proxy_mode == "nftables":
        map_cmd = ["ip", "netns", "exec", netns, "nft", "-s", "list", "map", "ip", "kube-proxy", "service-ips"]
        map_text = _run(map_cmd)
        rules["map_cmd"] = f"sudo {topology.shell(map_cmd)}"
        entry = nft_service_entry(map_text, ip, proto, port)
        rules["entry"] = entry
        if entry:
            chain_cmd = ["ip", "netns", "exec", netns, "nft", "-s", "list", "chain", "ip", "kube-proxy", entry]
            table = _run(["ip", "netns", "exec", netns, "nft", "-s", "list", "table", "ip", "kube-proxy"])
            rules["lb_rule"], rules["endpoints"] = nft_chain_endpoints(table, entry)
            rules["chain_cmd"] = f"sudo {topology.shell(chain_cmd)}"
    else:
        cmd = ["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"]
        text = _run(cmd)
        rules["map_cmd"] = f"sudo {topology.shell(cmd)} | grep {ip}"
        rules["entry"], rules["endpoints"] = iptables_service(text, ip, proto, port)
    eps = rules.get("endpoints") or []
    if eps:
        chosen, how = pick_endpoint(netns, ip, port, client_ip, [d for _, d in eps], proto=proto)
        rules["chosen"], rules["chosen_how"] = chosen, how
    return rules


def pick_endpoint(netns: str, ip: str, port: int, client_ip: str | None, dests: list[str], *,
                  proto: str = "tcp") -> tuple[str, str]:
    """Which endpoint a connection from this pod went to: the node's conntrack says, if the pod
    talked to the Service recently; otherwise the random choice is not made yet."""
    if client_ip:
        out = _run(["ip", "netns", "exec", netns, "conntrack", "-L", "-p", proto, "-s", client_ip, "-d", ip,
                    "--dport", str(port)], timeout=5)
        for line in out.splitlines():
            srcs = re.findall(r"src=([\d.]+)", line)
            sports = re.findall(r"sport=(\d+)", line)
            if len(srcs) >= 2 and len(sports) >= 2:
                dest = f"{srcs[1]}:{sports[1]}"
                if dest in dests:
                    return dest, "from conntrack: the pod's last connection"
    return dests[0], f"e.g.; each new connection picks 1 of {len(dests)} at random"


async def trace(*, name: str, root_dir: str, pod: str, target: str, namespace: str = "default",
                ask_dns: bool = True) -> int:
    from .lab import LabError, load_plan
    if os.geteuid() != 0:
        raise LabError("kubelab trace reads the nodes' namespaces: run it with sudo")
    plan, _ = load_plan(name, root_dir)
    try:
        parse_target(target)
    except ValueError as e:
        raise LabError(str(e)) from None
    from .components import api_client
    api = api_client(plan)
    try:
        try:
            c = await capture(api, plan, pod=pod, namespace=namespace, target=target, ask_dns=ask_dns)
        except NotFound:
            raise LabError(f'pods "{pod}" not found in namespace {namespace}') from None
    finally:
        await api.aclose()
    print(render_trace(c))
    return 0
