"""desired_endpoints: the Endpoints object of a Service (pure)."""

from kubelab.controllers.endpoints import desired_endpoints, endpoints_differ


def svc(ports=None, **spec):
    return {"metadata": {"name": "web", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"selector": {"app": "web"}, "ports": ports or [{"port": 80, "targetPort": 8080}], **spec}}


def pod(name, ip, *, ready=True, labels=None, ns="ns", terminating=False, ports=None, phase="Running"):
    p = {"metadata": {"name": name, "namespace": ns, "uid": name + "-uid", "labels": labels or {"app": "web"}},
         "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or []}]},
         "status": {"phase": phase, "podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]}}
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


def test_ready_and_not_ready_addresses():
    ep = desired_endpoints(svc(), [pod("a", "10.0.0.2"), pod("b", "10.0.0.1", ready=False), pod("c", "10.0.0.3")])
    (subset,) = ep["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.2", "10.0.0.3"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.1"]
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"]["name"] == "a"
    assert subset["addresses"][0]["nodeName"] == "n1"
    assert ep["metadata"]["labels"] == {"a": "b"}


def test_excluded_pods():
    pods = [pod("a", "10.0.0.1", labels={"app": "x"}), pod("b", "10.0.0.2", ns="other"),
            pod("c", "10.0.0.3", terminating=True), pod("d", None), pod("e", "10.0.0.5", phase="Succeeded")]
    assert desired_endpoints(svc(), pods)["subsets"] == []


def test_named_ports_group_subsets():
    ports = [{"name": "http", "port": 80, "targetPort": "web"}]
    pods = [pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 9090}]),
            pod("c", "10.0.0.3", ports=[])]
    subsets = desired_endpoints(svc(ports), pods)["subsets"]
    assert [(s["ports"][0]["port"], [a["ip"] for a in s["addresses"]]) for s in subsets] == \
        [(8080, ["10.0.0.1"]), (9090, ["10.0.0.2"])]


def test_publish_not_ready_and_differ():
    ep = desired_endpoints(svc(publishNotReadyAddresses=True), [pod("a", "10.0.0.1", ready=False)])
    assert ep["subsets"][0]["addresses"][0]["ip"] == "10.0.0.1"
    assert not endpoints_differ({"metadata": {"labels": {"a": "b"}}, "subsets": ep["subsets"]}, ep)
    assert endpoints_differ({"metadata": {"labels": {"a": "b"}}, "subsets": []}, ep)
