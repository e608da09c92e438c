"""The API server's REST semantics on real etcd: shapes, errors, concurrency, subresources."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import yaml

from kubelab.client import AlreadyExists, ApiError, Conflict, Invalid, NotFound


def pod(name: str, **labels) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def test_bootstrap_objects(api):
    names = {n["metadata"]["name"] for n in (await api.list("namespaces"))["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    svc = await api.get("services", "kubernetes", namespace="default")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    ep = await api.get("endpoints", "kubernetes", namespace="default")
    assert ep["subsets"][0]["ports"][0]["name"] == "https"
    cm = await api.get("configmaps", "kubeadm-config", namespace="kube-system")
    cfg = yaml.safe_load(cm["data"]["ClusterConfiguration"])
    assert cfg["networking"] == {"dnsDomain": "cluster.local", "podSubnet": "10.244.0.0/16",
                                 "serviceSubnet": "10.96.0.0/12"}


async def test_create_get_metadata_and_defaults(api, namespace):
    created = await api.create("pods", pod("web-1", app="web"), namespace=namespace)
    meta = created["metadata"]
    assert meta["namespace"] == namespace and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"].isdigit() and meta["generation"] == 1
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["spec"]["dnsPolicy"] == "ClusterFirst"
    assert created["spec"]["terminationGracePeriodSeconds"] == 30
    assert created["status"]["phase"] == "Pending"
    got = await api.get("pods", "web-1", namespace=namespace)
    assert got == created


async def test_generate_name(api, namespace):
    a = await api.create("configmaps", {"metadata": {"generateName": "cfg-"}}, namespace=namespace)
    b = await api.create("configmaps", {"metadata": {"generateName": "cfg-"}}, namespace=namespace)
    assert a["metadata"]["name"].startswith("cfg-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


async def test_errors_are_status(api, namespace):
    with pytest.raises(NotFound) as e:
        await api.get("pods", "nope", namespace=namespace)
    assert e.value.status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": 'pods "nope" not found', "reason": "NotFound", "code": 404,
                              "details": {"name": "nope", "kind": "pods"}}
    with pytest.raises(NotFound) as e:
        await api.get("deployments", "x", namespace=namespace)
    assert e.value.message == 'deployments.apps "x" not found'
    await api.create("pods", pod("dup"), namespace=namespace)
    with pytest.raises(AlreadyExists) as e:
        await api.create("pods", pod("dup"), namespace=namespace)
    assert e.value.reason == "AlreadyExists" and e.value.code == 409
    bad = pod("bad-1")
    del bad["spec"]["containers"][0]["image"]
    with pytest.raises(Invalid) as e:
        await api.create("pods", bad, namespace=namespace)
    assert e.value.message.startswith('Pod "bad-1" is invalid: spec.containers[0].image: Required value')
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.containers[0].image"} in e.value.causes
    with pytest.raises(NotFound) as e:
        await api.create("pods", pod("x"), namespace="no-such-ns")
    assert e.value.message == 'namespaces "no-such-ns" not found'


async def test_http_level_errors(apiserver, namespace):
    base = f"{apiserver.url}/api/v1/namespaces/{namespace}/configmaps"
    async with httpx.AsyncClient() as http:
        r = await http.post(base, content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["kind"] == "Status" and r.json()["reason"] == "BadRequest"
        r = await http.post(base, content=b"<xml/>", headers={"Content-Type": "application/xml"})
        assert r.status_code == 415 and r.json()["kind"] == "Status"
        big = json.dumps({"metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}})
        r = await http.post(base, content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["kind"] == "Status"
        r = await http.get(f"{apiserver.url}/api/v1/nosuchthings")
        assert r.status_code == 404 and r.json()["kind"] == "Status"
        r = await http.get(f"{apiserver.url}/apis/apps/v1/namespaces/{namespace}/deployments?labelSelector=a+in+(")
        assert r.status_code == 400 and r.json()["kind"] == "Status"
        # no Content-Type (the Python client's POST, kubectl scale's PUT): treated as JSON
        r = await http.post(base, content=json.dumps({"metadata": {"name": "noct"}}))
        assert r.status_code == 201
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{base}/big")
        assert r.status_code == 404  # nothing stored by the rejected request


async def test_update_conflict_and_generation(api, namespace):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                  "template": {"metadata": {"labels": {"app": "d"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    created = await api.create("deployments", d, namespace=namespace)
    assert created["metadata"]["generation"] == 1
    stale = json.loads(json.dumps(created))
    created["spec"]["replicas"] = 3
    updated = await api.replace("deployments", "d", created, namespace=namespace)
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    stale["spec"]["replicas"] = 5
    with pytest.raises(Conflict) as e:
        await api.replace("deployments", "d", stale, namespace=namespace)
    assert "the object has been modified" in e.value.message
    # metadata-only change: generation unchanged
    relabeled = await api.patch("deployments", "d", {"metadata": {"labels": {"x": "y"}}}, namespace=namespace)
    assert relabeled["metadata"]["generation"] == 2


async def test_status_subresource_isolation(api, namespace):
    await api.create("pods", pod("s1"), namespace=namespace)
    # a spec writer cannot change status
    p = await api.patch("pods", "s1", {"status": {"phase": "Running"}}, namespace=namespace)
    assert p["status"]["phase"] == "Pending"
    # a status writer can, and cannot change spec
    p = await api.patch("pods", "s1", {"status": {"phase": "Running", "podIP": "10.244.1.5"},
                                       "spec": {"nodeName": "sneaky"}},
                        namespace=namespace, subresource="status")
    assert p["status"]["phase"] == "Running" and p["status"]["podIP"] == "10.244.1.5"
    assert "nodeName" not in p["spec"]
    assert p["metadata"]["generation"] == 1


async def test_patch_types(api, namespace):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "p"}},
                  "template": {"metadata": {"labels": {"app": "p"}},
                               "spec": {"containers": [{"name": "a", "image": "nginx"},
                                                       {"name": "b", "image": "busybox"}]}}}}
    await api.create("deployments", d, namespace=namespace)
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "debian"}]}}}}
    out = await api.patch("deployments", "p", smp, namespace=namespace, patch_type="strategic")
    assert [(c["name"], c["image"]) for c in out["spec"]["template"]["spec"]["containers"]] == \
        [("a", "nginx"), ("b", "debian")]
    out = await api.patch("deployments", "p", [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                          namespace=namespace, patch_type="json")
    assert out["spec"]["replicas"] == 4
    with pytest.raises(ApiError) as e:
        await api.patch("deployments", "p", [{"op": "test", "path": "/spec/replicas", "value": 9}],
                        namespace=namespace, patch_type="json")
    assert e.value.code == 422
    with pytest.raises(NotFound):
        await api.patch("deployments", "missing", {"spec": {}}, namespace=namespace)


async def test_server_side_apply_creates_and_updates(api, namespace):
    body = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
                           "data": {"a": "1"}}).encode()
    out = await api.patch("configmaps", "ssa", body, namespace=namespace, patch_type="apply",
                          field_manager="kubectl", force=True)
    assert out["data"] == {"a": "1"}
    body = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
                           "data": {"a": "2"}}).encode()
    out = await api.patch("configmaps", "ssa", body, namespace=namespace, patch_type="apply",
                          field_manager="kubectl", force=True)
    assert out["data"]["a"] == "2"


async def test_scale_subresource(api, namespace):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sc"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "sc"}},
                  "template": {"metadata": {"labels": {"app": "sc"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    await api.create("deployments", d, namespace=namespace)
    scale = await api.get("deployments", "sc", namespace=namespace, subresource="scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=sc"
    scale = await api.patch("deployments", "sc", {"spec": {"replicas": 3}}, namespace=namespace,
                            subresource="scale")
    assert scale["spec"]["replicas"] == 3
    assert (await api.get("deployments", "sc", namespace=namespace))["spec"]["replicas"] == 3
    scale["spec"]["replicas"] = 2
    scale = await api.replace("deployments", "sc", scale, namespace=namespace, subresource="scale")
    assert (await api.get("deployments", "sc", namespace=namespace))["spec"]["replicas"] == 2


async def test_binding(api, namespace):
    await api.create("pods", pod("b1"), namespace=namespace)
    await api.bind("b1", "node-a", namespace=namespace)
    p = await api.get("pods", "b1", namespace=namespace)
    assert p["spec"]["nodeName"] == "node-a"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    with pytest.raises(Conflict):
        await api.bind("b1", "node-b", namespace=namespace)


async def test_graceful_pod_delete_waits_for_node(api, namespace):
    await api.create("pods", pod("g1"), namespace=namespace)
    await api.bind("g1", "node-a", namespace=namespace)
    out = await api.delete("pods", "g1", namespace=namespace)
    assert out["metadata"]["deletionTimestamp"] and out["metadata"]["deletionGracePeriodSeconds"] == 30
    still = await api.get("pods", "g1", namespace=namespace)  # stays until the node confirms
    assert still["metadata"]["deletionTimestamp"]
    await api.delete("pods", "g1", namespace=namespace, grace_period_seconds=0)  # the node agent's confirmation
    with pytest.raises(NotFound):
        await api.get("pods", "g1", namespace=namespace)
    # an unscheduled pod goes at once
    await api.create("pods", pod("g2"), namespace=namespace)
    await api.delete("pods", "g2", namespace=namespace)
    with pytest.raises(NotFound):
        await api.get("pods", "g2", namespace=namespace)


async def test_finalizers_hold_deletion(api, namespace):
    cm = {"metadata": {"name": "fin", "finalizers": ["example.com/hold"]}}
    await api.create("configmaps", cm, namespace=namespace)
    out = await api.delete("configmaps", "fin", namespace=namespace)
    assert out["metadata"]["deletionTimestamp"]
    assert (await api.get("configmaps", "fin", namespace=namespace))["metadata"]["finalizers"] == ["example.com/hold"]
    await api.patch("configmaps", "fin", {"metadata": {"finalizers": None}}, namespace=namespace)
    with pytest.raises(NotFound):
        await api.get("configmaps", "fin", namespace=namespace)


async def test_propagation_policies_add_finalizers(api, namespace):
    for name, policy, fin in (("fg", "Foreground", "foregroundDeletion"), ("or", "Orphan", "orphan")):
        await api.create("configmaps", {"metadata": {"name": name}}, namespace=namespace)
        out = await api.delete("configmaps", name, namespace=namespace, propagation_policy=policy)
        assert fin in out["metadata"]["finalizers"]


async def test_selectors_and_all_namespaces(api, namespace):
    for i, (app, tier) in enumerate([("web", "fe"), ("web", "be"), ("db", "be")]):
        await api.create("pods", pod(f"sel-{i}", app=app, tier=tier), namespace=namespace)
    names = lambda r: sorted(o["metadata"]["name"] for o in r["items"])  # noqa: E731
    assert names(await api.list("pods", namespace=namespace, label_selector="app=web")) == ["sel-0", "sel-1"]
    assert names(await api.list("pods", namespace=namespace, label_selector="app!=web")) == ["sel-2"]
    assert names(await api.list("pods", namespace=namespace, label_selector="tier in (fe),app")) == ["sel-0"]
    assert names(await api.list("pods", namespace=namespace, label_selector="app notin (web)")) == ["sel-2"]
    assert names(await api.list("pods", namespace=namespace, label_selector="!tier")) == []
    assert names(await api.list("pods", namespace=namespace, field_selector="metadata.name=sel-1")) == ["sel-1"]
    assert names(await api.list("pods", namespace=namespace, field_selector="status.phase=Pending,"
                                                                           "metadata.name!=sel-1")) == ["sel-0", "sel-2"]
    everywhere = await api.list("pods", label_selector="app=web")
    assert {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in everywhere["items"]} >= \
        {(namespace, "sel-0"), (namespace, "sel-1")}
    with pytest.raises(ApiError) as e:
        await api.list("pods", namespace=namespace, field_selector="spec.bogus=x")
    assert e.value.code == 400


async def test_pagination_is_consistent(api, namespace):
    for i in range(7):
        await api.create("configmaps", {"metadata": {"name": f"pg-{i}"}}, namespace=namespace)
    first = await api.request("GET", f"/api/v1/namespaces/{namespace}/configmaps", params={"limit": 3})
    assert len(first["items"]) == 3 and first["metadata"]["continue"]
    await api.create("configmaps", {"metadata": {"name": "pg-late"}}, namespace=namespace)
    seen = [o["metadata"]["name"] for o in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = await api.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                                 params={"limit": 3, "continue": token})
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        seen += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue")
    assert seen == [f"pg-{i}" for i in range(7)]  # read at one revision: pg-late not in it


async def test_delete_collection(api, namespace):
    for i in range(3):
        await api.create("configmaps", {"metadata": {"name": f"dc-{i}", "labels": {"grp": "x" if i else "y"}}},
                         namespace=namespace)
    await api.delete_collection("configmaps", namespace=namespace, label_selector="grp=x")
    left = [o["metadata"]["name"] for o in (await api.list("configmaps", namespace=namespace))["items"]]
    assert "dc-0" in left and "dc-1" not in left and "dc-2" not in left


async def test_namespace_delete_marks_terminating_and_blocks_creates(api):
    await api.create("namespaces", {"metadata": {"name": "doomed-ns"}})
    out = await api.delete("namespaces", "doomed-ns")
    assert out["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as e:
        await api.create("configmaps", {"metadata": {"name": "x"}}, namespace="doomed-ns")
    assert e.value.code == 403
    # the namespace controller's last step: clear spec.finalizers through /finalize
    ns = await api.get("namespaces", "doomed-ns")
    ns["spec"]["finalizers"] = []
    await api.replace("namespaces", "doomed-ns", ns, subresource="finalize")
    with pytest.raises(NotFound):
        await api.get("namespaces", "doomed-ns")


async def test_cluster_ip_and_node_port_allocation(api, namespace):
    svc = lambda name, **spec: {"metadata": {"name": name}, "spec": {  # noqa: E731
        "selector": {"app": name}, "ports": [{"port": 80}], **spec}}
    results = await asyncio.gather(*(api.create("services", svc(f"s{i}", type="NodePort"), namespace=namespace)
                                     for i in range(40)))
    ips = [r["spec"]["clusterIP"] for r in results]
    ports = [r["spec"]["ports"][0]["nodePort"] for r in results]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    assert all(ip.startswith("10.") for ip in ips) and all(30000 <= p <= 32767 for p in ports)
    fixed = await api.create("services", svc("fixed", clusterIP="10.96.0.77"), namespace=namespace)
    assert fixed["spec"]["clusterIP"] == "10.96.0.77"
    with pytest.raises(Invalid) as e:
        await api.create("services", svc("fixed2", clusterIP="10.96.0.77"), namespace=namespace)
    assert "already allocated" in e.value.message
    with pytest.raises(Invalid) as e:
        await api.create("services", svc("outside", clusterIP="192.168.1.1"), namespace=namespace)
    assert e.value.causes[0]["field"] == "spec.clusterIP"
    # deleting releases the address for reuse
    await api.delete("services", "fixed", namespace=namespace)
    again = await api.create("services", svc("fixed3", clusterIP="10.96.0.77"), namespace=namespace)
    assert again["spec"]["clusterIP"] == "10.96.0.77"
    headless = await api.create("services", svc("hl", clusterIP="None"), namespace=namespace)
    assert headless["spec"]["clusterIP"] == "None"


async def test_health_metrics_version(apiserver, api):
    async with httpx.AsyncClient(base_url=apiserver.url) as http:
        assert (await http.get("/healthz")).text == "ok"
        assert (await http.get("/readyz")).status_code == 200
        v = (await http.get("/version")).json()
        assert v["major"] == "1" and v["minor"] == "32"
        await api.list("pods")
        m = (await http.get("/metrics")).text
        assert 'apiserver_request_total{code="200",resource="pods",verb="get"}' in m  # labels sorted by name
        assert "apiserver_request_duration_seconds_bucket" in m and "apiserver_registered_watchers" in m


async def test_service_replace_keeps_allocations_and_releases_on_type_change(api, namespace):
    svc = await api.create("services", {"metadata": {"name": "keep"}, "spec": {
        "type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]}}, namespace=namespace)
    ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    manifest = {"metadata": {"name": "keep"}, "spec": {"type": "NodePort", "selector": {"a": "c"},
                                                       "ports": [{"port": 80}]}}
    out = await api.replace("services", "keep", manifest, namespace=namespace)  # like `kubectl replace -f`
    assert out["spec"]["clusterIP"] == ip and out["spec"]["ports"][0]["nodePort"] == node_port
    out = await api.patch("services", "keep", {"spec": {"type": "ClusterIP"}}, namespace=namespace)
    assert "nodePort" not in out["spec"]["ports"][0]
    # the released port can be taken by someone else now
    other = await api.create("services", {"metadata": {"name": "taker"}, "spec": {
        "type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "nodePort": node_port}]}},
        namespace=namespace)
    assert other["spec"]["ports"][0]["nodePort"] == node_port
