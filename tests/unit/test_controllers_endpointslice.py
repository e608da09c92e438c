"""desired_endpoint_slices: upstream's reconciler as a pure function."""

from kubelab.controllers.endpointslice import (CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SliceTracker,
                                              desired_endpoint_slices, pod_to_endpoint)


def svc(name="web", *, ports=None, headless=False, labels=None, publish=False):
    spec = {"selector": {"app": name}, "ports": ports or [{"name": "http", "port": 80, "targetPort": "http"}]}
    if headless:
        spec["clusterIP"] = "None"
    if publish:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns", "uid": "svc-uid", "labels": labels or {}}, "spec": spec}


def pod(i, *, ready=True, app="web", port=8080, node="n1", terminating=False, ip=True, hostname=None, sub=None):
    p = {"metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}", "labels": {"app": app}},
         "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if ip:
        p["status"]["podIP"] = f"10.244.{i // 250}.{i % 250 + 1}"
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if hostname:
        p["spec"]["hostname"], p["spec"]["subdomain"] = hostname, sub
    return p


def apply(existing, create, update, delete):
    """What the store holds after the writes (names given to created slices)."""
    out = {s["metadata"]["name"]: s for s in existing}
    for s in delete:
        out.pop(s["metadata"]["name"])
    for s in update:
        out[s["metadata"]["name"]] = s
    for i, s in enumerate(create):
        s = {**s, "metadata": {**s["metadata"], "name": f"web-new{len(out)}-{i}"}}
        out[s["metadata"]["name"]] = s
    return list(out.values())


def test_new_service_gets_slices_of_at_most_100_with_labels_and_owner():
    pods = [pod(i) for i in range(250)]
    create, update, delete = desired_endpoint_slices(svc(labels={"team": "a"}), pods, [])
    assert (len(create), update, delete) == (3, [], [])
    assert sorted(len(s["endpoints"]) for s in create) == [50, 100, 100]
    s = create[0]
    assert s["metadata"]["labels"][SERVICE_NAME_LABEL] == "web"
    assert s["metadata"]["labels"][MANAGED_BY_LABEL] == CONTROLLER_NAME
    assert s["metadata"]["labels"]["team"] == "a"
    assert s["metadata"]["generateName"] == "web-"
    assert s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_converged_state_needs_no_writes():
    pods = [pod(i) for i in range(250)]
    state = apply([], *desired_endpoint_slices(svc(), pods, []))
    assert desired_endpoint_slices(svc(), pods, state) == ([], [], [])


def test_one_pod_change_rewrites_exactly_one_slice():
    pods = [pod(i) for i in range(250)]
    state = apply([], *desired_endpoint_slices(svc(), pods, []))
    pods[137] = pod(137, ready=False)
    create, update, delete = desired_endpoint_slices(svc(), pods, state)
    assert (create, delete) == ([], [])
    assert len(update) == 1
    ep = next(e for e in update[0]["endpoints"] if e["targetRef"]["name"] == "p137")
    assert ep["conditions"] == {"ready": False, "serving": False, "terminating": False}


def test_new_pod_fills_the_slice_with_room_not_a_new_one():
    pods = [pod(i) for i in range(250)]
    state = apply([], *desired_endpoint_slices(svc(), pods, []))
    create, update, delete = desired_endpoint_slices(svc(), pods + [pod(250)], state)
    assert (create, delete) == ([], [])
    assert len(update) == 1 and len(update[0]["endpoints"]) == 51


def test_removed_pods_and_empty_slices():
    pods = [pod(i) for i in range(150)]
    state = apply([], *desired_endpoint_slices(svc(), pods, []))
    full = next(s for s in state if len(s["endpoints"]) == 100)
    gone = {e["targetRef"]["name"] for e in full["endpoints"]}
    remaining = [p for p in pods if p["metadata"]["name"] not in gone]
    create, update, delete = desired_endpoint_slices(svc(), remaining, state)
    assert [s["metadata"]["name"] for s in delete] == [full["metadata"]["name"]]
    assert (create, update) == ([], [])


def test_no_endpoints_keeps_one_placeholder():
    create, update, delete = desired_endpoint_slices(svc(), [], [])
    assert len(create) == 1 and create[0]["endpoints"] == [] and (update, delete) == ([], [])
    state = apply([], create, update, delete)
    assert desired_endpoint_slices(svc(), [], state) == ([], [], [])
    # pods arrive: the placeholder goes once real slices exist
    create, update, delete = desired_endpoint_slices(svc(), [pod(1)], state)
    assert len(create) == 1 and [s["metadata"]["name"] for s in delete] == [state[0]["metadata"]["name"]]


def test_named_target_ports_resolved_per_pod_split_slices():
    pods = [pod(1, port=8080), pod(2, port=9090), pod(3, port=8080)]
    create, _, _ = desired_endpoint_slices(svc(), pods, [])
    by_port = {s["ports"][0]["port"]: sorted(e["targetRef"]["name"] for e in s["endpoints"]) for s in create}
    assert by_port == {8080: ["p1", "p3"], 9090: ["p2"]}


def test_conditions_terminating_and_not_ready_and_publish():
    ep = pod_to_endpoint(pod(1, terminating=True), svc())
    assert ep["conditions"] == {"ready": False, "serving": True, "terminating": True}
    ep = pod_to_endpoint(pod(1, ready=False), svc(publish=True))
    assert ep["conditions"]["ready"] is True
    assert ep["nodeName"] == "n1"
    assert ep["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "p1", "uid": "u1"}


def test_pods_without_ip_or_other_labels_are_left_out():
    create, _, _ = desired_endpoint_slices(svc(), [pod(1, ip=False), pod(2, app="other"), pod(3)], [])
    assert [e["targetRef"]["name"] for e in create[0]["endpoints"]] == ["p3"]


def test_hostname_for_headless_subdomain():
    ep = pod_to_endpoint(pod(1, hostname="db-0", sub="web"), svc(headless=True))
    assert ep["hostname"] == "db-0"
    assert "hostname" not in pod_to_endpoint(pod(1, hostname="db-0", sub="other"), svc(headless=True))
    create, _, _ = desired_endpoint_slices(svc(headless=True), [pod(1)], [])
    assert create[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_label_change_on_service_rewrites_slices():
    pods = [pod(i) for i in range(5)]
    state = apply([], *desired_endpoint_slices(svc(), pods, []))
    create, update, delete = desired_endpoint_slices(svc(labels={"x": "y"}), pods, state)
    assert len(update) == 1 and update[0]["metadata"]["labels"]["x"] == "y" and not create and not delete


def test_tracker_detects_stale_cache():
    t = SliceTracker()
    t.written("ns/web", "web-abc", "10")
    assert t.stale("ns/web", [])
    assert t.stale("ns/web", [{"metadata": {"name": "web-abc", "resourceVersion": "9"}}])
    assert not t.stale("ns/web", [{"metadata": {"name": "web-abc", "resourceVersion": "10"}}])
    t.written("ns/web", "web-abc", None)
    assert t.stale("ns/web", [{"metadata": {"name": "web-abc", "resourceVersion": "10"}}])
    assert not t.stale("ns/web", [])


def test_one_info_line_per_slice_write_names_slice_service_and_ready_addresses():
    from kubelab.controllers.endpointslice import slice_write_line
    s = {"metadata": {"name": "web-abc", "namespace": "default"}, "ports": [{"port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}},
                       {"addresses": ["10.244.2.7"], "conditions": {"ready": False}}]}
    assert slice_write_line("created", s, "default/web") == (
        "endpointslice default/web-abc created for service default/web: 2 endpoint(s), 1 ready (10.244.1.5), "
        "ports 8080/TCP")
    assert slice_write_line("deleted", s, "default/web") == "endpointslice default/web-abc deleted for service default/web"
    empty = {"metadata": {"name": "new-x", "namespace": "default"}, "endpoints": [], "ports": []}
    assert slice_write_line("created", empty, "default/new") == (
        "endpointslice default/new-x created for service default/new: 0 endpoint(s), 0 ready, ports none")


def test_endpointslice_writes_are_logged_at_info(caplog):
    """The controller itself: each create/update/delete it makes is one INFO line (exercise 9)."""
    import asyncio
    import logging

    from kubelab.controllers import endpointslice as es

    class FakeClient:
        def __init__(self):
            self.calls = []

        async def create(self, plural, body, namespace=None):
            self.calls.append("create")
            return {**body, "metadata": {**body["metadata"], "name": body["metadata"].get("name") or "web-1",
                                         "resourceVersion": "5"}}

    ctrl = es.EndpointSliceController.__new__(es.EndpointSliceController)
    service = svc()
    service["metadata"]["uid"] = "u1"

    class Store:
        def __init__(self, objs):
            self.objs = objs

        def get(self, key):
            return self.objs.get(key)

        def by_index(self, index, key):
            return self.objs.get((index, key), [])

    class Inf:
        def __init__(self, store):
            self.store = store
    ctrl.client = FakeClient()
    ns = service["metadata"]["namespace"]
    ctrl.services = Inf(Store({f"{ns}/web": service}))
    ctrl.slices = Inf(Store({}))
    ctrl.pods = Inf(Store({("namespace", ns): [pod(1)]}))
    ctrl.tracker = SliceTracker()
    ctrl.max_per_slice = 100
    ctrl.log = logging.getLogger("kubelab.controllers.endpointslice")
    with caplog.at_level(logging.INFO, logger="kubelab.controllers.endpointslice"):
        asyncio.run(ctrl.sync(f"{ns}/web"))
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert ctrl.client.calls == ["create"]
    assert len(lines) == 1 and lines[0].startswith(f"endpointslice {ns}/") \
        and f" created for service {ns}/web: 1 endpoint(s), 1 ready" in lines[0], lines
