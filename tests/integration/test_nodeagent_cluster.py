"""Two node agents on simulated nodes (network namespaces on one bridge) against a real API
server: pods as netns + pause + processes, CNI, routes between nodes, probes, back-off,
logs and exec through the API server's node proxy, and clean deletion."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from fastapi import Request, WebSocket  # module level: the routes' annotations are strings

from kubelab.client import ApiClient
from kubelab.client.podio import exec_command
from kubelab.nodeagent import routes
from kubelab.nodeagent.simnodes import SimCluster, leftovers
from kubelab.testing import eventually, free_port, wait_until

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def cluster(etcd):
    c = SimCluster(etcd.url, nodes_count=2, backoff_base=1.0)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
async def capi(cluster):
    client = ApiClient(server=cluster.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def ns(capi):
    name = f"na-{uuid.uuid4().hex[:8]}"
    await capi.create("namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        pods = await capi.list("pods", namespace=name)
        for p in pods["items"]:
            try:
                await capi.delete("pods", p["metadata"]["name"], namespace=name, grace_period_seconds=1)
            except Exception:
                pass

        async def no_pods():
            return not (await capi.list("pods", namespace=name))["items"]
        await eventually(no_pods, timeout=30, what="test pods deleted")
        try:
            await capi.delete("namespaces", name)
        except Exception:
            pass


def pod(name: str, node: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2, "containers": containers, **spec}}


def host_dir(path) -> dict:
    """A hostPath volume + mount at the same path: containers do not see the node's files."""
    return {"volumes": [{"name": "host", "hostPath": {"path": str(path), "type": "Directory"}}]}


MOUNT_HOST = lambda path: [{"name": "host", "mountPath": str(path)}]  # noqa: E731


def cond(p: dict, t: str) -> str | None:
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == t:
            return c["status"]
    return None


async def wait_ready(api: ApiClient, ns: str, name: str, timeout: float = 30) -> dict:
    async def ready():
        p = await api.get("pods", name, namespace=ns)
        return p if cond(p, "Ready") == "True" else None
    return await eventually(ready, timeout=timeout, interval=0.1, what=f"pod {name} Ready")


def netns_of(cluster: SimCluster, node: int, p: dict) -> str:
    return f"/run/netns/{cluster.nodes[node].prefix}{p['metadata']['uid']}"


# ---- node ------------------------------------------------------------------------------

async def test_nodes_registered_with_lease_and_routes(cluster, capi):
    for i, n in enumerate(cluster.nodes):
        node = await capi.get("nodes", n.name)
        st = node["status"]
        assert {"type": "InternalIP", "address": n.ip} in st["addresses"]
        assert cond(node, "Ready") == "True"
        info = st["nodeInfo"]
        for k in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                  "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"):
            assert info[k], k
        assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
        lease = await capi.get("leases", n.name, namespace="kube-node-lease")
        assert lease["spec"]["holderIdentity"] == n.name and lease["spec"]["renewTime"]
        other = cluster.nodes[1 - i]
        out = n.run("ip", "route", "show", other.pod_cidr).stdout
        assert f"via {other.ip}" in out and f"proto {routes.RTPROT_KUBELAB}" in out


async def test_route_removed_when_node_goes(cluster, capi):
    name = f"kl-ghost-{uuid.uuid4().hex[:6]}"
    await capi.create("nodes", {"metadata": {"name": name}, "spec": {"podCIDR": "10.244.77.0/24"}})
    await capi.patch("nodes", name, {"status": {"addresses": [{"type": "InternalIP", "address": cluster.subnet + ".77"}]}},
                     subresource="status")
    n0 = cluster.nodes[0]
    await eventually(lambda: "10.244.77.0/24" in n0.run("ip", "route").stdout, timeout=10, what="route added")
    await capi.delete("nodes", name)
    await eventually(lambda: "10.244.77.0/24" not in n0.run("ip", "route").stdout, timeout=10, what="route removed")


# ---- pods ------------------------------------------------------------------------------

async def test_pod_reaches_pod_on_other_node(cluster, capi, ns):
    n0, n1 = cluster.nodes
    await capi.create("pods", pod("server", n1.name, [{"name": "agnhost", "image": "registry.k8s.io/e2e-test-images/agnhost:2.39",
                                                       "args": ["netexec", "--http-port=8080"],
                                                       "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]),
                      namespace=ns)
    await capi.create("pods", pod("client", n0.name, [{"name": "sh", "image": "busybox"}]), namespace=ns)
    server = await wait_ready(capi, ns, "server")
    client = await wait_ready(capi, ns, "client")
    sip, cip = server["status"]["podIP"], client["status"]["podIP"]
    assert sip.startswith("10.244.2.") and cip.startswith("10.244.1.")
    assert server["status"]["hostIP"] == n1.ip and server["status"]["phase"] == "Running"
    cs = server["status"]["containerStatuses"][0]
    assert cs["ready"] and cs["restartCount"] == 0 and cs["imageID"] and cs["containerID"].startswith("kubelab://")
    # real TCP from the client pod's network namespace to the server pod on the other node
    out = subprocess.run(["nsenter", f"--net={netns_of(cluster, 0, client)}", "curl", "-s", "--max-time", "5",
                          f"http://{sip}:8080/clientip"], capture_output=True, text=True, check=True).stdout
    assert out.split(":")[0] == cip  # not masqueraded inside the pod network
    out = subprocess.run(["nsenter", f"--net={netns_of(cluster, 0, client)}", "curl", "-s", "--max-time", "5",
                          f"http://{sip}:8080/hostname"], capture_output=True, text=True, check=True).stdout
    assert out == "server"  # the pod's UTS namespace


async def test_unknown_image_is_err_image_pull(cluster, capi, ns):
    await capi.create("pods", pod("nope", cluster.nodes[0].name, [{"name": "c", "image": "example.com/nothing:1"}]),
                      namespace=ns)

    async def waiting():
        p = await capi.get("pods", "nope", namespace=ns)
        for cs in p.get("status", {}).get("containerStatuses") or []:
            w = cs["state"].get("waiting") or {}
            if w.get("reason") == "ErrImagePull":
                return w
    w = await eventually(waiting, timeout=20, what="ErrImagePull")
    assert "catalogue" in w["message"] and "nginx" in w["message"]


async def test_readiness_probe_flips_ready(cluster, capi, ns, tmp_path):
    flag = tmp_path / "ready"
    flag.write_text("ok")
    await capi.create("pods", pod("probed", cluster.nodes[0].name, [{
        "name": "c", "image": "busybox", "command": ["sleep", "infinity"],
        "volumeMounts": MOUNT_HOST(tmp_path),
        "readinessProbe": {"exec": {"command": ["cat", str(flag)]}, "periodSeconds": 1, "failureThreshold": 1}}],
        **host_dir(tmp_path)), namespace=ns)
    await wait_ready(capi, ns, "probed")
    flag.unlink()

    async def unready():
        p = await capi.get("pods", "probed", namespace=ns)
        return cond(p, "Ready") == "False" and cond(p, "ContainersReady") == "False" and p["status"]["phase"] == "Running"
    await eventually(unready, timeout=15, what="Ready=False after the probe fails")
    flag.write_text("ok")
    await wait_ready(capi, ns, "probed", timeout=15)


async def test_liveness_probe_restarts_container(cluster, capi, ns):
    await capi.create("pods", pod("live", cluster.nodes[1].name, [{
        "name": "c", "image": "busybox", "command": ["sleep", "infinity"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}}]),
        namespace=ns)

    async def restarted():
        p = await capi.get("pods", "live", namespace=ns)
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        return cs if cs.get("restartCount", 0) >= 1 else None
    cs = await eventually(restarted, timeout=30, what="liveness restart")
    assert cs["lastState"]["terminated"]["exitCode"] == 137  # sleep as PID 1 ignores SIGTERM: killed


async def test_crashing_container_backs_off(cluster, capi, ns):
    await capi.create("pods", pod("crash", cluster.nodes[1].name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "echo crashing; exit 3"]}]), namespace=ns)
    t0 = time.monotonic()
    seen_backoff = False

    async def restarts3():
        nonlocal seen_backoff
        p = await capi.get("pods", "crash", namespace=ns)
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        if (cs.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
            seen_backoff = True
        return cs if cs.get("restartCount", 0) >= 3 else None
    cs = await eventually(restarts3, timeout=40, interval=0.05, what="3 restarts")
    elapsed = time.monotonic() - t0
    assert seen_backoff
    assert elapsed >= 2.5  # back-off of 1 s then 2 s (base 1 s in this cluster) before the 3rd restart
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    p = await capi.get("pods", "crash", namespace=ns)
    assert p["status"]["phase"] == "Running"  # restartPolicy Always

    async def reasons():  # what `kubectl describe pod` lists
        evs = (await capi.list("events", namespace=ns))["items"]
        got = {e["reason"] for e in evs if e["involvedObject"].get("name") == "crash"
               and e["source"]["component"] == "kubelet"}
        return got if {"Created", "Started", "BackOff"} <= got else None
    await eventually(reasons, timeout=10, what="kubelet events")


async def test_restart_policy_never_fails_pod(cluster, capi, ns):
    await capi.create("pods", pod("once", cluster.nodes[0].name, [{
        "name": "c", "image": "debian", "command": ["sh", "-c", "exit 2"]}], restartPolicy="Never"), namespace=ns)

    async def failed():
        p = await capi.get("pods", "once", namespace=ns)
        return p if p.get("status", {}).get("phase") == "Failed" else None
    p = await eventually(failed, timeout=20, what="phase Failed")
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert p["status"]["podIP"]  # kept in the status after the sandbox is gone
    # a finished pod gives back its sandbox: no netns, no IP allocation, no pause
    uid = p["metadata"]["uid"]
    await eventually(lambda: not os.path.exists(netns_of(cluster, 0, p)), timeout=10, what="sandbox released")
    assert not any(uid in x for x in leftovers(cluster)[cluster.nodes[0].name] if not x.startswith("pod dir"))


async def test_status_written_only_on_change(cluster, capi, ns):
    await capi.create("pods", pod("steady", cluster.nodes[0].name, [{
        "name": "c", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]),
        namespace=ns)
    p = await wait_ready(capi, ns, "steady")
    events = []

    async def watch():
        async for ev in capi.watch("pods", namespace=ns, resource_version=p["metadata"]["resourceVersion"]):
            if ev["object"]["metadata"]["name"] == "steady":
                events.append(ev["type"])
    t = asyncio.create_task(watch())
    await asyncio.sleep(3.5)  # a window with 3 probe runs: the observation itself needs the time
    t.cancel()
    assert events == []


async def test_delete_leaves_nothing_behind(cluster, capi, ns):
    n0 = cluster.nodes[0]
    await capi.create("pods", pod("gone", n0.name, [{"name": "web", "image": "nginx"}]), namespace=ns)
    p = await wait_ready(capi, ns, "gone")
    uid = p["metadata"]["uid"]
    assert os.path.exists(netns_of(cluster, 0, p))
    await capi.delete("pods", "gone", namespace=ns)

    async def deleted():
        try:
            await capi.get("pods", "gone", namespace=ns)
            return False
        except Exception:
            return True
    await eventually(deleted, timeout=20, what="pod confirmed deleted by the node")
    assert not os.path.exists(netns_of(cluster, 0, p))
    # nothing of that pod anywhere: netns, veth, IP allocation, state dir, process
    left = leftovers(cluster)
    assert not any(uid in x for items in left.values() for x in items), left
    from kubelab.cni.bridge import host_veth_name
    assert host_veth_name(uid, "eth0") not in n0.run("ip", "link").stdout
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    assert uid.encode() not in f.read()
            except OSError:
                pass


# ---- logs and exec through the API server's node proxy ------------------------------------

@pytest.fixture(scope="module")
def proxy(cluster):
    """A tiny API front: pods/log and pods/exec from kubelab.apiserver.nodeproxy, everything
    else (kubectl's discovery and GETs) forwarded to the real API server."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    from kubelab.apiserver import nodeproxy
    from kubelab.apiserver.status import StatusError

    upstream = cluster.url

    async def get_object(plural, namespace, name):
        path = f"/api/v1/namespaces/{namespace}/{plural}/{name}" if namespace else f"/api/v1/{plural}/{name}"
        async with httpx.AsyncClient() as c:
            r = await c.get(upstream + path)
        if r.status_code == 404:
            raise StatusError(404, f'{plural} "{name}" not found')
        r.raise_for_status()
        return r.json()

    app = FastAPI()

    @app.get("/api/v1/namespaces/{namespace}/pods/{name}/log")
    async def pod_log(namespace: str, name: str, request: Request):
        return await nodeproxy.pod_log(request, namespace=namespace, name=name, get_object=get_object)

    @app.websocket("/api/v1/namespaces/{namespace}/pods/{name}/exec")
    async def pod_exec(websocket: WebSocket, namespace: str, name: str):
        await nodeproxy.pod_exec(websocket, namespace=namespace, name=name, get_object=get_object)

    @app.get("/{path:path}")
    async def forward(path: str, request: Request):
        async with httpx.AsyncClient() as c:
            r = await c.get(f"{upstream}/{path}", params=request.query_params,
                            headers={"Accept": request.headers.get("accept", "application/json")})
        return Response(r.content, status_code=r.status_code, media_type=r.headers.get("content-type"))

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="websockets-sansio", lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    wait_until(lambda: server.started, timeout=10, what="proxy app")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)


def kubectl(proxy: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", "--server", proxy, *args], capture_output=True, text=True, timeout=timeout)


needs_kubectl = pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")


@needs_kubectl
async def test_kubectl_exec_shows_resolv_conf_and_hostname(cluster, capi, ns, proxy):
    await capi.create("pods", pod("shell", cluster.nodes[1].name, [{"name": "sh", "image": "busybox"}]), namespace=ns)
    await wait_ready(capi, ns, "shell")
    r = kubectl(proxy, "-n", ns, "exec", "shell", "--", "cat", "/etc/resolv.conf")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"nameserver 10.96.0.10\nsearch {ns}.svc.cluster.local svc.cluster.local cluster.local\n"
                        "options ndots:5\n")
    r = kubectl(proxy, "-n", ns, "exec", "shell", "--", "sh", "-c", "cat /etc/hostname; hostname; tr '\\0' ' ' < /proc/1/cmdline")
    # the pod's UTS namespace, and the container's own PID namespace (PID 1 = its command)
    assert r.stdout.split() == ["shell", "shell", "sleep", "infinity"], r.stderr
    # `kill 1` in a container reaches only the container's own PID 1 (which ignores it)
    r = kubectl(proxy, "-n", ns, "exec", "shell", "--", "sh", "-c", "kill 1; kill -9 1; echo alive")
    assert r.stdout == "alive\n"
    p = await capi.get("pods", "shell", namespace=ns)
    assert p["status"]["containerStatuses"][0]["restartCount"] == 0 and os.path.exists("/proc/1")
    r = kubectl(proxy, "-n", ns, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3 and r.stdout == "out\n" and "err" in r.stderr
    # stdin reaches the command
    r = subprocess.run(["kubectl", "--server", proxy, "-n", ns, "exec", "-i", "shell", "--", "tr", "a-z", "A-Z"],
                       input="hello\n", capture_output=True, text=True, timeout=30)
    assert r.stdout == "HELLO\n", r.stderr


@needs_kubectl
async def test_kubectl_logs_follow_tail_previous(cluster, capi, ns, proxy):
    script = "for i in 1 2 3 4; do echo line $i; sleep 0.3; done"
    await capi.create("pods", pod("talker", cluster.nodes[0].name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", script]}], restartPolicy="OnFailure"), namespace=ns)

    async def running():
        p = await capi.get("pods", "talker", namespace=ns)
        return p.get("status", {}).get("phase") in ("Running", "Succeeded")
    await eventually(running, timeout=20, what="talker running")
    t0 = time.monotonic()
    r = await asyncio.to_thread(kubectl, proxy, "-n", ns, "logs", "-f", "talker")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "line 1\nline 2\nline 3\nline 4\n"
    assert time.monotonic() - t0 < 10  # the stream ended with the container
    r = await asyncio.to_thread(kubectl, proxy, "-n", ns, "logs", "--tail=2", "talker")
    assert r.stdout == "line 3\nline 4\n"
    # previous: a crashing container's last attempt
    await capi.create("pods", pod("prev", cluster.nodes[0].name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "echo attempt; exit 1"]}]), namespace=ns)

    async def restarted():
        p = await capi.get("pods", "prev", namespace=ns)
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        return cs.get("restartCount", 0) >= 1
    await eventually(restarted, timeout=20, what="prev restarted")
    r = await asyncio.to_thread(kubectl, proxy, "-n", ns, "logs", "--previous", "prev")
    assert r.stdout == "attempt\n", r.stderr


async def test_exec_protocol_via_nodeproxy(cluster, capi, ns, proxy):
    """The raw v5 protocol: subprotocol echoed, channels, and the Failure status frame."""
    from websockets.asyncio.client import connect
    await capi.create("pods", pod("raw", cluster.nodes[0].name, [{"name": "c", "image": "busybox"}]), namespace=ns)
    await wait_ready(capi, ns, "raw")
    url = proxy.replace("http", "ws") + f"/api/v1/namespaces/{ns}/pods/raw/exec?command=sh&command=-c&command=exit+3&stdout=true&stderr=true"
    async with connect(url, subprotocols=["v5.channel.k8s.io"]) as ws:
        assert ws.subprotocol == "v5.channel.k8s.io"
        frames = [m async for m in ws]
    status = [json.loads(f[1:]) for f in frames if f[0] == 3]
    assert status == [{"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                       "message": "command terminated with non-zero exit code: exit status 3",
                       "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}]
    url = proxy.replace("http", "ws") + f"/api/v1/namespaces/{ns}/pods/missing/exec?command=true&stdout=true"
    async with connect(url, subprotocols=["v5.channel.k8s.io"]) as ws:
        frames = [m async for m in ws]
    assert frames[0][0] == 3 and json.loads(frames[0][1:])["status"] == "Failure"


# ---- agent restart ------------------------------------------------------------------------

async def test_agent_restart_readopts_and_cleans(cluster, capi, ns):
    n0 = cluster.nodes[0]
    await capi.create("pods", pod("stays", n0.name, [{"name": "web", "image": "nginx"}]), namespace=ns)
    await capi.create("pods", pod("goes", n0.name, [{"name": "c", "image": "busybox"}]), namespace=ns)
    stays = await wait_ready(capi, ns, "stays")
    goes = await wait_ready(capi, ns, "goes")
    cid = stays["status"]["containerStatuses"][0]["containerID"]
    cluster.stop_agent(n0)
    # force-delete while the agent is down: the API object is gone at once
    await capi.delete("pods", "goes", namespace=ns, grace_period_seconds=0)
    # debris of a crash: a netns with this node's prefix, a veth on the bridge, an IP file
    orphan_ns = f"{n0.prefix}0rphan-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", orphan_ns], check=True)
    n0.run("ip", "link", "add", "vethdead0001", "type", "veth", "peer", "name", "xdead0001")
    n0.run("ip", "link", "set", "vethdead0001", "master", "cni0")
    ipfile = os.path.join(n0.root_dir, "cni", "networks", "kubelab", "10.244.1.250")
    with open(ipfile, "w") as f:
        f.write("0rphan-container\r\neth0")
    cluster.start_agent(n0)
    cluster.wait_agent(n0)
    assert not os.path.exists(f"/run/netns/{orphan_ns}")
    assert "vethdead0001" not in n0.run("ip", "link").stdout
    assert not os.path.exists(ipfile)

    async def goes_cleaned():
        return not os.path.exists(netns_of(cluster, 0, goes)) and \
            not os.path.exists(os.path.join(n0.root_dir, "pods", goes["metadata"]["uid"]))
    await eventually(goes_cleaned, timeout=20, what="deleted pod cleaned after restart")
    await eventually(lambda: "stays: re-adopted, CNI CHECK passed" in n0.proc.log(), timeout=10,
                     what="CNI CHECK of the re-adopted sandbox")
    p = await capi.get("pods", "stays", namespace=ns)
    cs = p["status"]["containerStatuses"][0]
    assert cs["containerID"] == cid and cs["restartCount"] == 0 and cond(p, "Ready") == "True"
    out = n0.run("curl", "-s", "--max-time", "3", f"http://{p['status']['podIP']}/").stdout
    assert "Welcome to nginx" in out
    # and the re-adopted pod still terminates cleanly
    await capi.delete("pods", "stays", namespace=ns)

    async def stays_gone():
        return not os.path.exists(netns_of(cluster, 0, stays))
    await eventually(stays_gone, timeout=20, what="re-adopted pod deleted")


async def test_init_containers_run_first_in_order(cluster, capi, ns, tmp_path):
    out = tmp_path / "order"
    m = MOUNT_HOST(tmp_path)
    await capi.create("pods", pod("inits", cluster.nodes[1].name, [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", f"echo main >> {out}; exec sleep infinity"],
         "volumeMounts": m}],
        initContainers=[{"name": "one", "image": "busybox", "command": ["sh", "-c", f"echo one >> {out}"],
                         "volumeMounts": m},
                        {"name": "two", "image": "busybox", "command": ["sh", "-c", f"sleep 0.3; echo two >> {out}"],
                         "volumeMounts": m}], **host_dir(tmp_path)),
        namespace=ns)
    p = await wait_ready(capi, ns, "inits")
    assert cond(p, "Initialized") == "True"
    assert [s["state"]["terminated"]["exitCode"] for s in p["status"]["initContainerStatuses"]] == [0, 0]
    await eventually(lambda: out.exists() and out.read_text() == "one\ntwo\nmain\n", timeout=10, what="order")


async def test_shared_pid_namespace_pause_reaps_orphans(cluster, capi, ns):
    # the subshell exits at once, orphaning its sleep: only the pod's PID 1 (pause) can reap it
    await capi.create("pods", pod("shared", cluster.nodes[0].name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "(sleep 0.2 &); exec sleep infinity"]}],
        shareProcessNamespace=True), namespace=ns)
    p = await wait_ready(capi, ns, "shared")
    n0 = cluster.nodes[0]

    def init_pid() -> int:
        with open(os.path.join(n0.root_dir, "pods", p["metadata"]["uid"], "containers", "c.json")) as f:
            return json.load(f)["init_pid"]
    init = await eventually(init_pid, timeout=5, what="container pid recorded")
    with open(f"/proc/{init}/status") as f:
        nspid = [line.split()[1:] for line in f if line.startswith("NSpid:")][0]
    assert nspid[-1] != "1"  # not PID 1: the pause is, in the shared namespace

    def pod_procs() -> list[tuple[str, str]]:
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != os.readlink(f"/proc/{init}/ns/pid"):
                    continue
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
                out.append((st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2]))
            except OSError:
                pass
        return out
    # eventually: just the pause and `sleep infinity` — the orphan was reaped, no zombie left
    await eventually(lambda: sorted(pod_procs()) == [("kubelab-pause", "S"), ("sleep", "S")], timeout=10,
                     what="orphan reaped by pause")


async def test_exec_with_tty(cluster, capi, ns, proxy):
    from websockets.asyncio.client import connect
    await capi.create("pods", pod("tty", cluster.nodes[1].name, [{"name": "c", "image": "busybox"}]), namespace=ns)
    await wait_ready(capi, ns, "tty")
    url = proxy.replace("http", "ws") + f"/api/v1/namespaces/{ns}/pods/tty/exec?command=sh&stdin=true&stdout=true&tty=true"
    async with connect(url, subprotocols=["v5.channel.k8s.io"]) as ws:
        await ws.send(b'\x04{"Width":100,"Height":30}')
        await ws.send(b"\x00stty size; test -t 0 && echo is-a-tty; exit 7\n")
        frames = [m async for m in ws]
    out = b"".join(f[1:] for f in frames if f[0] == 1).decode(errors="replace")
    # the pty is the node agent's: the container's own /dev/pts (a new instance) has no name for it
    assert "30 100" in out and "is-a-tty\r\n" in out, out
    assert json.loads(frames[-1][1:])["details"]["causes"][0]["message"] == "7", out


@needs_kubectl
async def test_kubectl_exec_it_shell(cluster, capi, ns, proxy):
    """`kubectl exec -it pod -- sh` on a real terminal (a pty here)."""
    import pty
    await capi.create("pods", pod("it", cluster.nodes[0].name, [{"name": "c", "image": "busybox"}]), namespace=ns)
    await wait_ready(capi, ns, "it")

    def session() -> tuple[bytes, int]:
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp("kubectl", ["kubectl", "--server", proxy, "-n", ns, "exec", "-it", "it", "--", "sh"])
        os.write(fd, b"echo $((6*7)); hostname; exit 5\n")
        out = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        return out, os.waitstatus_to_exitcode(status)
    out, code = await asyncio.to_thread(session)
    assert b"42" in out and b"it" in out and code == 5, out


async def test_host_network_pod(cluster, capi, ns):
    n0, n1 = cluster.nodes
    await capi.create("pods", pod("hostnet", n1.name, [{
        "name": "c", "image": "agnhost", "args": ["netexec", "--http-port=18080", "--udp-port=0"],
        "readinessProbe": {"httpGet": {"port": 18080, "path": "/healthz"}, "periodSeconds": 1}}],
        hostNetwork=True), namespace=ns)
    p = await wait_ready(capi, ns, "hostnet")
    assert p["status"]["podIP"] == n1.ip
    assert not os.path.exists(netns_of(cluster, 1, p))  # no pod netns: the node's network
    out = n0.run("curl", "-s", "--max-time", "5", f"http://{n1.ip}:18080/hostname").stdout
    assert out == os.uname().nodename  # the node's UTS namespace too


async def test_graceful_termination_sigterm_then_sigkill(cluster, capi, ns):
    n1 = cluster.nodes[1]
    # traps SIGTERM (as PID 1 of its namespace, only a handled signal reaches it) and exits
    await capi.create("pods", pod("polite", n1.name, [{
        "name": "c", "image": "busybox",
        "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]}],
        terminationGracePeriodSeconds=30), namespace=ns)
    # ignores SIGTERM: killed when the grace period ends
    await capi.create("pods", pod("stubborn", n1.name, [{"name": "c", "image": "busybox"}],
                                  terminationGracePeriodSeconds=2), namespace=ns)
    await wait_ready(capi, ns, "polite")
    await wait_ready(capi, ns, "stubborn")

    async def gone(name: str) -> float:
        t0 = time.monotonic()
        await capi.delete("pods", name, namespace=ns)

        async def absent():
            try:
                await capi.get("pods", name, namespace=ns)
                return False
            except Exception:
                return True
        await eventually(absent, timeout=40, interval=0.05, what=f"{name} deleted")
        return time.monotonic() - t0
    polite, stubborn = await asyncio.gather(gone("polite"), gone("stubborn"))
    assert polite < 10  # SIGTERM ended it, long before its 30 s grace period
    assert stubborn >= 2  # waited the whole grace period, then SIGKILL


@needs_kubectl
async def test_kubectl_through_the_real_apiserver(cluster, capi, ns):
    """The API server's own pods/log and pods/exec routes (app.py wires nodeproxy)."""
    await capi.create("pods", pod("real", cluster.nodes[1].name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "echo hello from real; exec sleep infinity"]}]),
        namespace=ns)
    await wait_ready(capi, ns, "real")
    r = await asyncio.to_thread(kubectl, cluster.url, "-n", ns, "exec", "real", "--", "cat", "/etc/hostname")
    assert r.returncode == 0 and r.stdout == "real\n", r.stderr
    r = await asyncio.to_thread(kubectl, cluster.url, "-n", ns, "logs", "real")
    assert r.stdout == "hello from real\n", r.stderr
    # the same through kubelab's own client and CLI
    result = await exec_command(capi, "real", ["sh", "-c", "cat /etc/hostname; echo oops >&2; exit 3"], namespace=ns)
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"real\n", b"oops\n")
    r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "kubelab.cli", "--server", cluster.url, "-n", ns,
                                                 "exec", "real", "--", "sh", "-c", "echo hi; exit 4"],
                                capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (4, "hi\n"), r.stderr
    r = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "kubelab.cli", "--server", cluster.url, "-n", ns,
                                                 "logs", "real"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "hello from real\n"), r.stderr


async def test_startup_probe_gates_readiness(cluster, capi, ns, tmp_path):
    flag = tmp_path / "started"
    await capi.create("pods", pod("slow", cluster.nodes[0].name, [{
        "name": "c", "image": "busybox", "volumeMounts": MOUNT_HOST(tmp_path),
        "startupProbe": {"exec": {"command": ["cat", str(flag)]}, "periodSeconds": 1, "failureThreshold": 60},
        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}], **host_dir(tmp_path)), namespace=ns)

    async def running_not_started():
        p = await capi.get("pods", "slow", namespace=ns)
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        return p if "running" in cs.get("state", {}) and cs.get("started") is False else None
    p = await eventually(running_not_started, timeout=20, what="running, startup probe pending")
    assert cond(p, "Ready") == "False"  # readiness waits for the startup probe
    flag.write_text("ok")
    p = await wait_ready(capi, ns, "slow", timeout=15)
    assert p["status"]["containerStatuses"][0]["started"] is True
