"""The lab guide's exercises with a checkable outcome, as data (docs/lab-guide.md).

Each check looks at the live lab through a `Probe`: curl from inside the client pod, curl to a
NodePort from the host, the proxy's live rules, the Node objects. Ids are stable; the guide
prints `kubelab exercise check ID` (or `answer ID VALUE`) under each exercise.
"""

from __future__ import annotations

import asyncio

from .model import Exercise, Result, candidate_names, fail, ok, parse_resolv_conf

NS = "default"
S1, S2, S3, S4, S5, S7 = ("1. Nodes and their subnets", "2. Pods: the pause process and the pod namespace",
                          "3. DNS", "4. Services: ClusterIP and NodePort", "5. kube-proxy's rules",
                          "7. The boot sequence")
NETPOL = "networking.k8s.io"


def _names(pods: list[dict]) -> str:
    return ", ".join(p["metadata"]["name"] for p in pods)


async def _client(probe) -> tuple[dict | None, Result | None]:
    pods = await probe.running_pods(NS, "app=client")
    if not pods:
        return None, fail("no running pod of Deployment client in namespace default "
                          "(kubectl create deployment client --image=busybox)")
    return pods[0], None


async def _service_hint(probe, name: str) -> str:
    """Why a Service may not answer: nothing to do with how it was made, only what it is now."""
    svc = await probe.get("services", name, NS)
    if svc is None:
        return f" — there is no Service {name} in {NS}"
    if not await probe.ready_endpoints(NS, name):
        sel = ",".join(f"{k}={v}" for k, v in ((svc.get("spec") or {}).get("selector") or {}).items())
        return f" — the Service has no ready endpoints (selector {sel or 'none'})"
    return ""


# ---- 7. the boot sequence (asked in exercise 0) -------------------------------------------------

async def first_healthy(probe) -> str:
    for ev in probe.events():
        if ev.get("event") == "healthy" and ev.get("component"):
            return ev["component"]
    raise LookupError("this lab's events.jsonl has no component that became healthy")


# ---- 1. nodes ----------------------------------------------------------------------------------

async def worker2_cidr(probe) -> str:
    node = await probe.get("nodes", "worker-2")
    cidr = ((node or {}).get("spec") or {}).get("podCIDR")
    if not cidr:
        raise LookupError("this lab has no worker-2 with a pod CIDR (start it with --workers 2 or more)")
    return cidr


# ---- 2. pods -----------------------------------------------------------------------------------

async def check_nginx_deployment(probe) -> Result:
    dep = await probe.get("deployments", "nginx", NS)
    if dep is None:
        return fail("there is no Deployment nginx in namespace default (kubectl create deployment nginx --image=nginx)")
    pods = await probe.running_pods(NS, "app=nginx")
    if len(pods) < 2:
        return fail(f"{len(pods)} running nginx pod(s) in default, the exercise wants 2 "
                    f"(Deployment nginx asks for {(dep.get('spec') or {}).get('replicas', 1)})")
    for p in pods:
        node, ip = p["spec"]["nodeName"], p["status"]["podIP"]
        f = await probe.fetch_from_node(node, f"http://{ip}:80/")
        if not f.ok:
            return fail(f"pod {p['metadata']['name']} ({ip}) on {node} does not serve port 80: {f.detail}")
    return ok(f"{len(pods)} nginx pods serve their page: {_names(pods)}")


async def check_pod_to_pod(probe) -> Result:
    client, bad = await _client(probe)
    if bad:
        return bad
    here = client["spec"]["nodeName"]
    others = [p for p in await probe.running_pods(NS, "app=nginx") if p["spec"]["nodeName"] != here]
    if not others:
        return fail(f"no nginx pod runs on another node than the client's ({here}): scale nginx "
                    "(kubectl scale deployment nginx --replicas=2) so one lands on the other worker")
    target = others[0]
    ip = target["status"]["podIP"]
    f = await probe.fetch_from_pod(client, f"http://{ip}/")
    if not f.ok:
        return fail(f"pod {client['metadata']['name']} on {here} cannot fetch http://{ip}/ "
                    f"(nginx on {target['spec']['nodeName']}): {f.detail}")
    return ok(f"pod {client['metadata']['name']} on {here} fetched nginx at {ip} on {target['spec']['nodeName']}")


# ---- 3. DNS ------------------------------------------------------------------------------------

async def dns_names_for_nginx(probe) -> str:
    """How many names the client's resolver asks before one answers, from its live resolv.conf
    and live answers (each candidate asked the pod's own nameserver)."""
    client, bad = await _client(probe)
    if bad:
        raise LookupError(bad.reason)
    if await probe.get("services", "nginx", NS) is None:
        raise LookupError("there is no Service nginx in default yet (section 4: kubectl expose deployment nginx --port 80)")
    text = await probe.pod_file(client, "/etc/resolv.conf")
    conf = parse_resolv_conf(text or "")
    server = conf.nameservers[0] if conf.nameservers else None
    for i, name in enumerate(candidate_names("nginx", conf), 1):
        rcode, answers = await probe.dig_from_pod(client, name, server=server)
        if rcode == "NOERROR" and answers:
            return str(i)
    raise LookupError("no name for nginx answered from the client pod: is the DNS add-on running?")


# ---- 4. Services --------------------------------------------------------------------------------

async def check_service_by_name(probe) -> Result:
    client, bad = await _client(probe)
    if bad:
        return bad
    for url in ("http://nginx", "http://nginx.default.svc.cluster.local"):
        f = await probe.fetch_from_pod(client, url)
        if not f.ok:
            return fail(f"pod {client['metadata']['name']} in default cannot fetch {url}: {f.detail}"
                        + await _service_hint(probe, "nginx"))
    return ok(f"pod {client['metadata']['name']} fetched http://nginx by its short and its full name")


async def check_nodeport(probe) -> Result:
    services = [s for s in await probe.list("services", NS) if (s.get("spec") or {}).get("type") == "NodePort"
                and ((s["spec"].get("selector") or {}).get("app") == "nginx")]
    if not services:
        return fail("no NodePort Service for the nginx pods in default "
                    "(kubectl expose deployment nginx --type=NodePort --name nginx-np --port 80)")
    svc = sorted(services, key=lambda s: s["metadata"]["name"] != "nginx-np")[0]
    port = next((p.get("nodePort") for p in svc["spec"].get("ports") or [] if p.get("nodePort")), None)
    if not port:
        return fail(f"Service {svc['metadata']['name']} has no nodePort yet")
    for node in probe.plan.nodes:
        f = await probe.fetch_from_host(f"http://{node.ip}:{port}/")
        if not f.ok:
            return fail(f"from this machine, http://{node.ip}:{port}/ ({node.name}) fails: {f.detail}"
                        + await _service_hint(probe, svc["metadata"]["name"]))
    return ok(f"NodePort {port} of {svc['metadata']['name']} answers on every node: "
              + ", ".join(n.ip for n in probe.plan.nodes))


# ---- 5. the proxy's rules ------------------------------------------------------------------------

async def check_scale_map(probe) -> Result:
    ready = await probe.ready_endpoints(NS, "nginx")
    if await probe.get("services", "nginx", NS) is None:
        return fail("there is no Service nginx in default (section 4)")
    if len(ready) != 3:
        return fail(f"Service nginx has {len(ready)} ready endpoint(s); scale nginx to 3 replicas "
                    "(kubectl scale deployment nginx --replicas=3)")
    node = probe.plan.workers[0].name if probe.plan.workers else probe.plan.control_plane.name
    want = sorted(f"{ip}:80" for ip in ready)
    got: list[str] = []
    for _ in range(10):  # the proxy follows the slices within a sync
        got = await probe.proxy_backends(node, NS, "nginx")
        if got == want:
            return ok(f"{node}'s {probe.plan.proxy_mode} rules for nginx send to the 3 pods: {', '.join(got)}")
        await asyncio.sleep(0.5)
    return fail(f"{node}'s {probe.plan.proxy_mode} rules for nginx send to {', '.join(got) or 'nothing'}, "
                f"the endpoints are {', '.join(want)}")


# ---- NetworkPolicy (the guide's exercises N1-N3: team-a's web, a client in team-a and team-b) ----

async def _team_pods(probe) -> tuple[dict | None, dict | None, Result | None]:
    """The two clients (`kubectl -n team-X run client`), once team-a's web has endpoints: a
    policy is judged only when the traffic it should stop would otherwise flow."""
    if not await probe.serves_group(NETPOL):
        return None, None, fail("this lab's API server does not serve networking.k8s.io (NetworkPolicy)")
    if not await probe.ready_endpoints("team-a", "web"):
        return None, None, fail("Service web in team-a has no ready endpoints (kubectl -n team-a create deployment "
                                "web --image=nginx --replicas=2; kubectl -n team-a expose deployment web --port 80)")
    found = []
    for ns in ("team-a", "team-b"):
        pod = next((p for p in await probe.running_pods(ns, "run=client") if p["metadata"]["name"] == "client"), None)
        if pod is None:
            return None, None, fail(f"no running pod client in {ns} (kubectl -n {ns} run client --image=busybox)")
        found.append(pod)
    return found[0], found[1], None


async def _reach(probe, pod: dict, url: str = "http://web.team-a") -> tuple[bool, str]:
    f = await probe.fetch_from_pod(pod, url)
    return f.ok, f.detail


async def check_netpol_default_deny(probe) -> Result:
    a, b, bad = await _team_pods(probe)
    if bad:
        return bad
    for pod in (a, b):
        reached, detail = await _reach(probe, pod)
        if reached:
            return fail(f"{pod['metadata']['namespace']}/client still reaches http://web.team-a: no policy denies "
                        "ingress to team-a's pods")
    return ok(f"nothing reaches team-a's web any more, from team-a or team-b ({detail})")


async def check_netpol_allow_namespace(probe) -> Result:
    a, b, bad = await _team_pods(probe)
    if bad:
        return bad
    reached, detail = await _reach(probe, b)
    if not reached:
        return fail(f"team-b/client cannot reach http://web.team-a: {detail}")
    reached, detail_a = await _reach(probe, a)
    if reached:
        return fail("team-a/client reaches http://web.team-a too: only team-b may")
    return ok(f"team-b/client reaches web.team-a ({detail}); team-a/client does not ({detail_a})")


async def check_netpol_dns_only(probe) -> Result:
    a, b, bad = await _team_pods(probe)
    if bad:
        return bad
    rcode, answers = await probe.dig_from_pod(b, "web.team-a", search=True)
    if rcode != "NOERROR" or not answers:
        return fail(f"team-b/client cannot resolve web.team-a: {rcode} (DNS must stay allowed)")
    reached, detail = await _reach(probe, b)
    if reached:
        return fail("team-b/client still reaches http://web.team-a: its egress is not limited to DNS")
    return ok(f"team-b/client resolves web.team-a ({answers[0]}) but cannot fetch it ({detail})")


EXERCISES: list[Exercise] = [
    Exercise("boot-order", "0", "0. Start the lab", "Which component became healthy first?",
             "How long did each component take to become healthy? (`kubelab timeline`) Which started "
             "first, and why must it? Answer with the component's name.",
             ("`kubelab timeline` lists the boot in order, with who did what.",
              "Everything in the cluster keeps its state through one component; it must be up before the "
              "API server can answer anything.",
              "It is the key-value store the API server writes to."),
             expected=first_healthy),
    Exercise("worker-2-cidr", "1", S1, "Which /24 did worker-2 get?",
             "Which /24 did each worker get, and who gave it? Answer with worker-2's pod CIDR "
             "(e.g. 10.244.7.0/24).",
             ("Each Node object has a spec.podCIDR.",
              "kubectl get no -o=custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR",
              "`kubelab timeline`: look for `pod CIDR ... (nodeipam)`."),
             expected=worker2_cidr, answer_kind="cidr"),
    Exercise("nginx-deployment", "2", S2, "Run nginx with 2 replicas",
             "kubectl create deployment nginx --image=nginx; kubectl scale deployment nginx --replicas=2; "
             "kubectl get pods -o wide. Then find each pod's pause process and network namespace.",
             ("kubectl create deployment nginx --image=nginx",
              "kubectl scale deployment nginx --replicas=2",
              "The check fetches port 80 of each pod from its node: kubectl get pods -o wide shows the IPs."),
             check=check_nginx_deployment),
    Exercise("pod-to-pod", "3", S2, "Pod to pod across nodes",
             "From a pod on one worker, fetch the nginx pod on the other by its IP: kubectl create deployment "
             "client --image=busybox, then kubectl exec <client pod> -- curl -s http://<nginx pod IP>.",
             ("kubectl create deployment client --image=busybox",
              "kubectl get pods -o wide: which node runs the client, which runs each nginx pod?",
              "If both nginx pods share the client's node, delete one: the new one may land elsewhere."),
             check=check_pod_to_pod),
    Exercise("dns-search", "5", S4, "How many names does the resolver try for nginx?",
             "How many names does the resolver try for `curl http://nginx` from the client pod, and in which "
             "order? Answer with the number of names tried up to the one that answers.",
             ("kubectl exec <client pod> -- cat /etc/resolv.conf: the search list and ndots.",
              "A name with fewer dots than ndots is tried with each search domain first, in order.",
              "sudo kubelab trace <client pod> nginx, step 2, shows each name and its answer."),
             expected=dns_names_for_nginx, answer_kind="int"),
    Exercise("service-by-name", "4", S4, "Reach nginx by its Service name",
             "kubectl expose deployment nginx --port 80, then from the client pod fetch http://nginx and "
             "http://nginx.default.svc.cluster.local.",
             ("kubectl expose deployment nginx --port 80",
              "kubectl get endpoints nginx: the Service must list the nginx pods.",
              "kubectl exec <client pod> -- curl -s http://nginx | grep title"),
             check=check_service_by_name),
    Exercise("nodeport", "6", S4, "NodePort from the host",
             "kubectl expose deployment nginx --type=NodePort --name nginx-np --port 80, then from your machine "
             "curl http://<node IP>:<nodePort> on every node, including one that runs no nginx pod.",
             ("kubectl expose deployment nginx --type=NodePort --name nginx-np --port 80",
              "kubectl get svc nginx-np: the port after 80: is the nodePort.",
              "Every node's proxy programs every NodePort (traffic.md, flow 4)."),
             check=check_nodeport),
    Exercise("scale-map", "7", S5, "Scale nginx to 3 and see the proxy's map change",
             "Find your Service's ClusterIP in worker-1's map, scale nginx to 3 replicas and list the map and "
             "the Service's chain again.",
             ("kubectl scale deployment nginx --replicas=3",
              "sudo ip netns exec kl-lab-worker-1 nft -s list map ip kube-proxy service-ips",
              "The Service's chain jumps to one endpoint chain per pod: `numgen random mod 3`."),
             check=check_scale_map),
    Exercise("netpol-default-deny", "N1", "NetworkPolicy", "Default deny in team-a",
             "Apply a default-deny-ingress policy to team-a: no pod, from team-a or team-b, reaches team-a's web.",
             ("A policy whose podSelector is {} selects every pod of its namespace.",
              "A pod selected for Ingress accepts only what an ingress rule allows; no rules: nothing.",
              "spec: {podSelector: {}} — the API server fills in policyTypes: [Ingress]."),
             check=check_netpol_default_deny, needs_group=NETPOL),
    Exercise("netpol-allow-namespace", "N2", "NetworkPolicy", "Only team-b may reach team-a's web",
             "Add a policy letting only team-b reach app=web in team-a on port 80, selecting the namespace by its "
             "kubernetes.io/metadata.name label.",
             ("The policy lives in team-a and selects app=web.",
              "from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-b}}}]",
              "ports: [{port: 80}]; keep the default deny so team-a's own client stays out."),
             check=check_netpol_allow_namespace, needs_group=NETPOL),
    Exercise("netpol-dns-only", "N3", "NetworkPolicy", "team-b may only ask DNS",
             "Give team-b a policy with policyTypes [Egress] that allows only UDP and TCP port 53 to pods "
             "k8s-app=kube-dns in kube-system: names resolve, web.team-a is not reachable.",
             ("The policy lives in team-b and selects every pod there (podSelector: {}).",
              "egress: [{to: [{namespaceSelector: ..., podSelector: {matchLabels: {k8s-app: kube-dns}}}], ...}]",
              "ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]"),
             check=check_netpol_dns_only, needs_group=NETPOL),
]

BY_ID = {e.id: e for e in EXERCISES}
