"""Break-and-fix scenarios, as data: each makes its app in namespace `shop`, breaks the lab the
way real clusters break, and checks by real traffic whether it works again.

One scenario runs at a time (they share the namespace `shop`, which they create and label, and
refuse to touch when someone else made it). `start` records what it is about to break *before*
breaking it, so `reset` can always undo: a frozen process is resumed by its recorded PID (and
start time), a deleted route is put back, a scaled-down Deployment is scaled back, files the
scenario wrote are removed, and the namespace goes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time

from kubelab.client import ApiClient, ApiError, KubeconfigError

from .. import components, state
from .model import KitError, Result, Scenario, fail, ok

NS = "shop"
LABEL = "kubelab.io/scenario"
NETPOL = "networking.k8s.io"
DEV_USER = "dev"


# ---- the app ------------------------------------------------------------------------------------

def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {LABEL: name}}}


def web_deployment(*, name: str = "web", app: str = "web", replicas: int = 2, node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}}, "spec": spec}}}


def service(name: str = "web", *, selector: str = "web", target_port: int = 80) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": selector},
                     "ports": [{"name": "http", "port": 80, "targetPort": target_port, "protocol": "TCP"}]}}


def client_pod(node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "client", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": NS,
                                                            "labels": {"app": "client"}}, "spec": spec}


async def create_all(probe, objs: list[dict]) -> None:
    from kubelab.resources import for_object
    for obj in objs:
        rt = for_object(obj)
        await probe.api.create(rt.plural, obj, namespace=obj["metadata"].get("namespace") if rt.namespaced else None)


async def wait_for(cond, *, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await cond()
        except (ApiError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise KitError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_running(probe, selector: str, n: int, *, timeout: float = 120) -> list[dict]:
    async def enough():
        pods = await probe.running_pods(NS, selector)
        return pods if len(pods) >= n else None
    return await wait_for(enough, timeout=timeout, what=f"{n} running pod(s) {selector} in {NS}")


async def wait_endpoints(probe, svc: str, n: int, *, timeout: float = 90) -> list[str]:
    async def enough():
        eps = await probe.ready_endpoints(NS, svc)
        return eps if len(eps) >= n else None
    return await wait_for(enough, timeout=timeout, what=f"{n} ready endpoint(s) of Service {svc} in {NS}")


async def client(probe) -> tuple[dict | None, Result | None]:
    pods = await probe.running_pods(NS, "app=client")
    if not pods:
        return None, fail(f"no running client pod in namespace {NS} (was it deleted? `kubelab scenario reset` "
                          "and start again)")
    return pods[0], None


async def fetch_web(probe, pod: dict, url: str = "http://web") -> Result:
    f = await probe.fetch_from_pod(pod, url)
    where = f"pod {pod['metadata']['name']} in {NS} (on {pod['spec'].get('nodeName')})"
    if f.ok:
        return ok(f"{where} fetched {url}: {f.detail}")
    return fail(f"{where} cannot fetch {url}: {f.detail}")


async def check_client_fetches_web(probe, record: dict) -> Result:
    pod, bad = await client(probe)
    return bad or await fetch_web(probe, pod)


def _first_worker(probe) -> str:
    return probe.plan.workers[0].name


def _freeze(probe, record: dict, node: str, component: str) -> None:
    comp = probe.supervised(node, component)
    if not comp or not state.alive(comp.get("pid")):
        raise KitError(f"{node}/{component} is not running here (`kubelab status`)")
    record["data"].update(frozen=comp["pid"], node=node, component=component)
    probe.save(record)  # recorded before the signal: reset can always resume it
    if not state.signal_proc(comp["pid"], signal.SIGSTOP):
        raise KitError(f"could not stop {node}/{component} (pid {comp['pid']['pid']})")


def _thaw(record: dict) -> None:
    pid = record.get("data", {}).get("frozen")
    if pid and state.alive(pid):
        state.signal_proc(pid, signal.SIGCONT)


async def base_app(probe, name: str, *, svc: dict | None = None, client_node: str | None = None,
                   web: dict | None = None, extra: list[dict] = ()) -> None:
    await create_all(probe, [web or web_deployment(), svc or service(), client_pod(client_node), *extra])
    await wait_running(probe, "app=web", (web or web_deployment())["spec"]["replicas"])
    await wait_running(probe, "app=client", 1)


# ---- wrong-selector, wrong-targetport -----------------------------------------------------------

async def start_wrong_selector(probe, record: dict) -> None:
    await base_app(probe, "wrong-selector", svc=service(selector="webshop"))


async def start_wrong_targetport(probe, record: dict) -> None:
    await base_app(probe, "wrong-targetport", svc=service(target_port=8080))
    await wait_endpoints(probe, "web", 2)


async def reset_nothing(probe, record: dict) -> None:
    return None


# ---- dns-down ---------------------------------------------------------------------------------------

async def start_dns_down(probe, record: dict) -> None:
    await base_app(probe, "dns-down")
    dep = await probe.get("deployments", "kube-dns", "kube-system")
    if dep is None:
        raise KitError("this lab has no DNS add-on (Deployment kube-dns in kube-system): it was started with --no-dns")
    record["data"]["replicas"] = (dep.get("spec") or {}).get("replicas", 2) or 2
    probe.save(record)
    await probe.api.patch("deployments", "kube-dns", {"spec": {"replicas": 0}}, namespace="kube-system")
    await wait_for(lambda: _no_dns(probe), timeout=90, what="the DNS pods to go")


async def _no_dns(probe) -> bool:
    return not await probe.ready_endpoints("kube-system", "kube-dns")


async def check_dns_down(probe, record: dict) -> Result:
    pod, bad = await client(probe)
    if bad:
        return bad
    rcode, answers = await probe.dig_from_pod(pod, "kubernetes.default", search=True)
    if rcode != "NOERROR" or not answers:
        return fail(f"pod client in {NS} cannot resolve kubernetes.default: {rcode}")
    return await fetch_web(probe, pod)


async def reset_dns_down(probe, record: dict) -> None:
    want = record.get("data", {}).get("replicas")
    dep = await probe.get("deployments", "kube-dns", "kube-system")
    if want and dep is not None and not (dep.get("spec") or {}).get("replicas"):
        await probe.api.patch("deployments", "kube-dns", {"spec": {"replicas": want}}, namespace="kube-system")
    if want:
        await wait_for(lambda: probe.ready_endpoints("kube-system", "kube-dns"), timeout=120,
                       what="the DNS pods to come back")


# ---- default-deny -----------------------------------------------------------------------------------

DENY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": NS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


async def start_default_deny(probe, record: dict) -> None:
    await base_app(probe, "default-deny", extra=[web_deployment(name="db", app="db", replicas=1),
                                                   service("db", selector="db")])
    await wait_running(probe, "app=db", 1)
    await wait_endpoints(probe, "web", 2)
    await wait_endpoints(probe, "db", 1)
    await probe.api.create("networkpolicies", DENY, namespace=NS)


async def check_default_deny(probe, record: dict) -> Result:
    pod, bad = await client(probe)
    if bad:
        return bad
    r = await fetch_web(probe, pod)
    if not r.ok:
        return r
    f = await probe.fetch_from_pod(pod, "http://db")
    if f.ok:
        return fail("pod client reaches http://web, but also http://db: the deny for everything else is gone "
                    "(allow the web app only)")
    return ok(f"{r.reason}; http://db stays closed ({f.detail})")


# ---- node-notready ---------------------------------------------------------------------------------

async def start_node_notready(probe, record: dict) -> None:
    victim, other = probe.plan.workers[-1].name, probe.plan.workers[0].name
    await base_app(probe, "node-notready", client_node=other)
    await wait_endpoints(probe, "web", 2)
    _freeze(probe, record, victim, "nodeagent")


async def check_node_notready(probe, record: dict) -> Result:
    pod, bad = await client(probe)
    if bad:
        return bad
    pods = [p for p in await probe.list("pods", NS) if not p["metadata"].get("deletionTimestamp")]
    for node in sorted({p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")}):
        answers, detail = await probe.node_agent_answers(node)
        n = await probe.get("nodes", node)
        ready = next((c.get("status") for c in ((n or {}).get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready"), "Unknown")
        if not answers or ready != "True":
            here = ", ".join(p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == node)
            return fail(f"node {node} runs pods of {NS} ({here}) but is not healthy: Ready={ready}, "
                        f"its node agent: {detail}")
    dep = await probe.get("deployments", "web", NS)
    want = ((dep or {}).get("spec") or {}).get("replicas", 0)
    have = len(await probe.ready_endpoints(NS, "web"))
    if have < want:
        return fail(f"Service web in {NS} has {have} ready endpoint(s) of the {want} Deployment web wants")
    return await fetch_web(probe, pod)


async def reset_thaw(probe, record: dict) -> None:
    _thaw(record)


# ---- stale-rules ------------------------------------------------------------------------------------

async def start_stale_rules(probe, record: dict) -> None:
    node = _first_worker(probe)
    await base_app(probe, "stale-rules", client_node=node)
    await wait_endpoints(probe, "web", 2)
    _freeze(probe, record, node, "proxy")
    await create_all(probe, [service("api")])
    await wait_endpoints(probe, "api", 2)


async def check_stale_rules(probe, record: dict) -> Result:
    pod, bad = await client(probe)
    if bad:
        return bad
    r = await fetch_web(probe, pod, "http://api")
    return r if not r.ok else await fetch_web(probe, pod)


# ---- missing-route ------------------------------------------------------------------------------------

async def start_missing_route(probe, record: dict) -> None:
    here, there = probe.plan.workers[0], probe.plan.workers[1]
    await base_app(probe, "missing-route", client_node=here.name, web=web_deployment(node=there.name))
    await wait_endpoints(probe, "web", 2)
    node = await probe.get("nodes", there.name)
    cidr = ((node or {}).get("spec") or {}).get("podCIDR")
    if not cidr:
        raise KitError(f"{there.name} has no pod CIDR")
    record["data"].update(node=here.name, cidr=cidr, via=there.ip, other=there.name, netns=here.netns)
    probe.save(record)
    p = await probe.node_run(here.name, ["ip", "route", "del", cidr])
    if p.returncode != 0:
        raise KitError(f"could not delete the route to {cidr} on {here.name}: {p.stderr.strip()}")


async def check_missing_route(probe, record: dict) -> Result:
    pod, bad = await client(probe)
    if bad:
        return bad
    for web in await probe.running_pods(NS, "app=web"):
        if web["spec"]["nodeName"] == pod["spec"]["nodeName"]:
            continue
        ip = web["status"]["podIP"]
        r = await fetch_web(probe, pod, f"http://{ip}/")
        if not r.ok:
            return fail(f"{r.reason} (pod {web['metadata']['name']} on {web['spec']['nodeName']})")
    return await fetch_web(probe, pod)


async def reset_missing_route(probe, record: dict) -> None:
    d = record.get("data", {})
    if not d.get("cidr"):
        return
    have = await probe.node_run(d["node"], ["ip", "route", "show", d["cidr"]])
    if not have.stdout.strip():  # put back the node agent's own route (its protocol, 176)
        await probe.node_run(d["node"], ["ip", "route", "replace", d["cidr"], "via", d["via"], "proto", "176"])


# ---- bad-ndots ----------------------------------------------------------------------------------------

def bad_client(dns_ip: str) -> dict:
    dep = web_deployment(name="client", app="client", replicas=1)
    spec = dep["spec"]["template"]["spec"]
    spec["containers"] = [{"name": "client", "image": "busybox"}]
    spec["dnsPolicy"] = "None"
    spec["dnsConfig"] = {"nameservers": [dns_ip], "searches": ["cluster.local"],
                         "options": [{"name": "ndots", "value": "1"}]}
    return dep


async def start_bad_ndots(probe, record: dict) -> None:
    await create_all(probe, [web_deployment(), service(), bad_client(probe.plan.dns_ip)])
    await wait_running(probe, "app=web", 2)
    await wait_running(probe, "app=client", 1)
    await wait_endpoints(probe, "web", 2)


async def check_bad_ndots(probe, record: dict) -> Result:
    pods = await probe.running_pods(NS, "app=client")
    if not pods:
        return fail(f"no running pod of Deployment client in {NS}")
    for pod in pods:
        r = await fetch_web(probe, pod)
        if not r.ok:
            return r
    return ok(f"every client pod ({', '.join(p['metadata']['name'] for p in pods)}) fetches http://web")


# ---- expired-cert ---------------------------------------------------------------------------------------

def dev_files(probe) -> list[str]:
    d = components.pki_dir(probe.plan)
    return [os.path.join(d, f"user-{DEV_USER}.{ext}") for ext in ("crt", "key", "kubeconfig")]


async def start_expired_cert(probe, record: dict) -> None:
    from kubelab.pki import ca as pki_ca
    from kubelab.pki import certs
    d = components.pki_dir(probe.plan)
    existing = [f for f in dev_files(probe) if os.path.exists(f)]
    if existing:
        raise KitError(f"{existing[0]} exists already (not made by this scenario): remove it first")
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "dev-view", "namespace": NS},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEV_USER}]}
    await create_all(probe, [web_deployment(replicas=1), binding])
    record["data"]["files"] = dev_files(probe)
    probe.save(record)
    ca = certs.load_ca(d)
    two_days_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    pki_ca.write_pair(d, f"user-{DEV_USER}", pki_ca.issue(ca, cn=DEV_USER, not_before=two_days_ago, days=1))
    certs.write_kubeconfig(d, certs.user_identity(DEV_USER), server=probe.plan.api_url)


async def check_expired_cert(probe, record: dict) -> Result:
    path = dev_files(probe)[2]
    if not os.path.exists(path):
        return fail(f"{path} is gone: the developer has no kubeconfig")
    try:
        api = ApiClient.from_kubeconfig(path)
    except (OSError, KubeconfigError) as e:
        return fail(f"{path} cannot be used: {e}")
    try:
        try:
            await api.list("pods", namespace=NS)
        except ApiError as e:
            return fail(f"with {path}, listing pods in {NS} fails: {e}")
        except Exception as e:  # the TLS handshake: an expired certificate is refused there
            return fail(f"with {path}, the API server refuses the connection: {_tls_reason(e)}")
        try:
            await api.list("pods", namespace="kube-system")
            return fail(f"{path} now reaches kube-system too: it must stay the developer's own identity "
                        f"({DEV_USER}, allowed to view {NS} only), not an admin's")
        except ApiError:
            pass
        return ok(f"{path} works again: {DEV_USER} lists pods in {NS} (and still not in kube-system)")
    finally:
        await api.aclose()


def _tls_reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    while e.__cause__ or e.__context__:
        e = e.__cause__ or e.__context__
        text = str(e) or text
    return text.splitlines()[0][:200]


async def reset_expired_cert(probe, record: dict) -> None:
    for f in record.get("data", {}).get("files") or []:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass


SCENARIOS: list[Scenario] = [
    Scenario(
        "wrong-selector", "A Service whose selector matches no pod",
        "The web app in namespace {ns} answers 'connection refused': `kubectl -n {ns} exec client -- curl -s "
        "http://web` fails, though its pods are Running.",
        ("Does the Service have endpoints? kubectl -n {ns} get endpoints web",
         "Compare the Service's selector with the pods' labels: kubectl -n {ns} get svc web -o wide; "
         "kubectl -n {ns} get pods --show-labels",
         "Make them match: change the Service's selector (kubectl -n {ns} edit svc web)."),
        "Cause: Service web selects app=webshop, the pods are labelled app=web, so the endpoints controller "
        "finds no pod and the proxy rejects connections to a Service without endpoints.\n"
        "Show it:\n  kubectl -n {ns} get endpoints web             # <none>\n"
        "  kubectl -n {ns} get svc web -o wide            # SELECTOR app=webshop\n"
        "  kubectl -n {ns} get pods --show-labels         # app=web\n"
        "  sudo ip netns exec {netns} nft list map ip kube-proxy no-endpoint-services   # reject\n"
        "Fix: kubectl -n {ns} patch svc web -p '{{\"spec\":{{\"selector\":{{\"app\":\"web\"}}}}}}'",
        start_wrong_selector, check_client_fetches_web, reset_nothing),
    Scenario(
        "wrong-targetport", "A Service that targets a port nothing listens on",
        "The web app in namespace {ns} answers 'connection refused': `kubectl -n {ns} exec client -- curl -s "
        "http://web` fails, though the Service has endpoints.",
        ("Which address and port does the Service send to? kubectl -n {ns} get endpoints web",
         "What do the pods listen on? kubectl -n {ns} get pods -o wide, then curl a pod IP on port 80.",
         "The Service's targetPort must be the container's port."),
        "Cause: Service web has targetPort 8080; nginx listens on 80. The endpoints are pod-IP:8080, the proxy "
        "DNATs there and the pod answers with a reset.\n"
        "Show it:\n  kubectl -n {ns} get endpoints web             # 10.244.x.y:8080\n"
        "  kubectl -n {ns} get svc web -o yaml | grep targetPort\n"
        "  kubectl -n {ns} exec client -- curl -s http://<a web pod IP>:80   # works\n"
        "Fix: kubectl -n {ns} patch svc web -p '{{\"spec\":{{\"ports\":[{{\"port\":80,\"targetPort\":80}}]}}}}'",
        start_wrong_targetport, check_client_fetches_web, reset_nothing),
    Scenario(
        "dns-down", "The cluster DNS is gone",
        "Pods in namespace {ns} cannot resolve any name: `kubectl -n {ns} exec client -- curl -s http://web` "
        "says 'Could not resolve host', while curl to the Service's IP works.",
        ("Who answers 10.96.0.10? kubectl -n kube-system get svc,endpoints kube-dns",
         "Are the DNS pods running? kubectl -n kube-system get deploy,pods -l k8s-app=kube-dns",
         "A Deployment with 0 replicas runs nothing: scale it back."),
        "Cause: Deployment kube-dns in kube-system was scaled to 0 replicas; Service kube-dns (10.96.0.10) has "
        "no endpoints, so every lookup from a pod fails.\n"
        "Show it:\n  kubectl -n kube-system get deploy kube-dns      # READY 0/0\n"
        "  kubectl -n kube-system get endpoints kube-dns   # <none>\n"
        "  kubectl -n {ns} exec client -- cat /etc/resolv.conf\n"
        "Fix: kubectl -n kube-system scale deployment kube-dns --replicas={replicas}",
        start_dns_down, check_dns_down, reset_dns_down),
    Scenario(
        "default-deny", "A default-deny NetworkPolicy",
        "The web app in namespace {ns} times out: `kubectl -n {ns} exec client -- curl -s -m 5 http://web` "
        "hangs, though its pods are Running and the Service has endpoints.",
        ("Is anything filtering the traffic? kubectl -n {ns} get networkpolicy",
         "A policy with podSelector {{}} and policyTypes [Ingress] and no rules denies all ingress to every "
         "pod of the namespace.",
         "Add a policy that allows ingress to the web pods (app=web) on port 80; keep the deny for the rest."),
        "Cause: NetworkPolicy default-deny in {ns} selects every pod and allows no ingress.\n"
        "Show it:\n  kubectl -n {ns} get networkpolicy\n  kubectl -n {ns} describe networkpolicy default-deny\n"
        "  sudo ip netns exec {netns} nft list table inet kubelab-netpol\n"
        "Fix (the web app only; db must stay closed):\n"
        "  kubectl apply -f - <<EOF\n  apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n"
        "  metadata: {{name: allow-web, namespace: {ns}}}\n"
        "  spec:\n    podSelector: {{matchLabels: {{app: web}}}}\n    policyTypes: [Ingress]\n"
        "    ingress: [{{ports: [{{port: 80}}]}}]\n  EOF",
        start_default_deny, check_default_deny, reset_nothing, needs_group=NETPOL),
    Scenario(
        "node-notready", "A worker's node agent stopped",
        "A worker stopped answering: `kubectl get nodes` shows {node} NotReady within a minute, and "
        "nothing scheduled there starts or stops any more.",
        ("Which node? kubectl get nodes; kubectl describe node {node} (the Ready condition's message).",
         "Is its node agent running? kubelab status{name_flag} (health of nodeagent on {node}); "
         "ps -o pid,stat,cmd -p <PID>: state T means stopped.",
         "Start it again: sudo kubelab restart nodeagent --node {node}{name_flag}"),
        "Cause: the node agent of {node} (pid {pid}) was stopped (SIGSTOP): it renews no Lease and answers no "
        "health check; after the grace period the node lifecycle controller marks the node NotReady and its "
        "pods leave the endpoints.\n"
        "Show it:\n  kubectl get nodes\n  kubectl get lease -n kube-node-lease {node} -o yaml   # renewTime stands still\n"
        "  kubelab status{name_flag}\n  ps -o pid,stat,cmd -p {pid}                 # STAT T\n"
        "Fix: sudo kubelab restart nodeagent --node {node}{name_flag}   (or: sudo kill -CONT {pid}); "
        "or drain the node (kubectl drain {node} --ignore-daemonsets --force) so the pods run elsewhere.",
        start_node_notready, check_node_notready, reset_thaw, min_workers=2),
    Scenario(
        "stale-rules", "A frozen service proxy",
        "A new Service api in namespace {ns} does not answer from pod client on {node} (`kubectl -n {ns} exec "
        "client -- curl -s -m 5 http://api`), while the older Service web works there and api works "
        "from other nodes.",
        ("Does {node} know the Service? sudo ip netns exec {netns} nft -s list map ip kube-proxy service-ips "
         "(look for api's ClusterIP: kubectl -n {ns} get svc api)",
         "Who writes those rules? kubelab status{name_flag}: the proxy on {node}.",
         "Bring the proxy back: sudo kubelab restart proxy --node {node}{name_flag}"),
        "Cause: the service proxy of {node} (pid {pid}) is frozen (SIGSTOP). The rules it wrote before keep "
        "working (web), but it programs nothing new, so api's ClusterIP is not in {node}'s map.\n"
        "Show it:\n  kubectl -n {ns} get svc api\n"
        "  sudo ip netns exec {netns} nft -s list map ip kube-proxy service-ips   # no api\n"
        "  kubelab status{name_flag}                                 # proxy on {node}: unreachable\n"
        "  ps -o pid,stat,cmd -p {pid}                   # STAT T\n"
        "Fix: sudo kubelab restart proxy --node {node}{name_flag}   (or: sudo kill -CONT {pid})",
        start_stale_rules, check_stale_rules, reset_thaw),
    Scenario(
        "missing-route", "A node lost its route to another node's pods",
        "From pod client on {node}, the web app in namespace {ns} times out (`kubectl -n {ns} exec client -- "
        "curl -s -m 5 http://web`); from other nodes it works.",
        ("Where do the web pods run, and with which IPs? kubectl -n {ns} get pods -o wide",
         "How does {node} reach pods of another node? sudo ip -n {netns} route",
         "Each node has a route to every other node's pod CIDR via that node's IP (proto 176, the node "
         "agent's)."),
        "Cause: the route on {node} to {other}'s pod CIDR {cidr} (via {via}) was deleted; packets to those pods "
        "follow the default route and are lost.\n"
        "Show it:\n  kubectl get nodes -o custom-columns=NAME:.metadata.name,CIDR:.spec.podCIDR\n"
        "  sudo ip -n {netns} route                      # no {cidr}\n"
        "  sudo ip -n {netns} route get <web pod IP>\n"
        "Fix: sudo ip -n {netns} route add {cidr} via {via}\n"
        "  or let the owner re-add it: sudo kubelab restart nodeagent --node {node}{name_flag}",
        start_missing_route, check_missing_route, reset_missing_route, min_workers=2),
    Scenario(
        "bad-ndots", "A pod DNS config that breaks short names",
        "Pods of Deployment client in namespace {ns} cannot reach http://web ('Could not resolve host: web'), "
        "though http://web.{ns}.svc.cluster.local works from them.",
        ("What does the pod's resolver do? kubectl -n {ns} exec deploy/client -- cat /etc/resolv.conf",
         "With search cluster.local and ndots:1, `web` is asked as web.cluster.local and web. — neither exists.",
         "The pod spec sets it: kubectl -n {ns} get deploy client -o yaml | grep -B2 -A8 dnsConfig"),
        "Cause: Deployment client has dnsPolicy None with dnsConfig searches [cluster.local] and ndots:1, "
        "so short Service names are never tried as web.{ns}.svc.cluster.local.\n"
        "Show it:\n  kubectl -n {ns} exec deploy/client -- cat /etc/resolv.conf\n"
        "  kubectl -n {ns} get deploy client -o jsonpath='{{.spec.template.spec.dnsConfig}}'\n"
        "Fix: kubectl -n {ns} patch deploy client -p "
        "'{{\"spec\":{{\"template\":{{\"spec\":{{\"dnsPolicy\":\"ClusterFirst\",\"dnsConfig\":null}}}}}}}}'",
        start_bad_ndots, check_bad_ndots, reset_nothing),
    Scenario(
        "expired-cert", "A kubeconfig with an expired client certificate",
        "The developer's kubeconfig stopped working: `sudo kubectl --kubeconfig {pki}/user-dev.kubeconfig -n "
        "{ns} get pods` fails, though it worked last week.",
        ("What does the API server say? Run the kubectl command with -v=6.",
         "Look at the certificate: sudo kubelab pki show {pki}/user-dev.crt (until ...).",
         "Issue a new one from the lab CA: sudo kubelab pki issue user dev --dir {pki} --server-url {api}"),
        "Cause: the client certificate of user dev ({pki}/user-dev.crt) expired yesterday; the API server "
        "refuses it in the TLS handshake.\n"
        "Show it:\n  sudo kubelab pki show {pki}/user-dev.crt       # until <yesterday>\n"
        "  sudo openssl x509 -in {pki}/user-dev.crt -noout -dates\n"
        "Fix: sudo kubelab pki issue user dev --dir {pki} --server-url {api}\n"
        "  (the same identity, CN=dev, so its RoleBinding dev-view in {ns} still applies)",
        start_expired_cert, check_expired_cert, reset_expired_cert, needs_tls=True),
]

BY_NAME = {s.name: s for s in SCENARIOS}


def facts(plan, record: dict | None) -> dict:
    """What symptom/solution texts may name: this lab's values, and what start recorded."""
    data = dict((record or {}).get("data") or {})
    node = data.get("node") or (plan.workers[0].name if plan.workers else plan.control_plane.name)
    if record and record.get("name") == "node-notready" and not data.get("node"):
        node = plan.workers[-1].name
    try:
        netns = plan.node(node).netns
    except (KeyError, ValueError):
        netns = f"kl-{plan.name}-{node}"
    pid = (data.get("frozen") or {}).get("pid", "<PID from kubelab status>")
    return {"ns": NS, "node": node, "netns": netns, "pid": pid, "pki": components.pki_dir(plan),
            "api": plan.api_url, "name_flag": "" if plan.name == "lab" else f" --name {plan.name}",
            "replicas": data.get("replicas", 2), "cidr": data.get("cidr", "<pod CIDR>"),
            "via": data.get("via", "<node IP>"), "other": data.get("other", "the other worker")}
