"""NodeRestriction on a real HTTPS API server: a node (client certificate `system:node:n1`
in `system:nodes`) may write only its own Node (without changing its pod CIDR, taints or
reserved labels), the status of pods bound to it, its own Lease, and tokens bound to its pods.
Each attack is the request a compromised node would send; each legitimate write the node
agent makes keeps working."""

from __future__ import annotations

import uuid

import pytest

from kubelab.testing import secure_apiserver, tls_client

# Unique node names: etcd is shared by the whole session and Nodes are cluster-scoped.
_TAG = uuid.uuid4().hex[:6]
N1, N2 = f"nr1-{_TAG}", f"nr2-{_TAG}"
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
AGENT_LABELS = {"kubernetes.io/hostname": N1, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}


@pytest.fixture(scope="module")
def secured(etcd):
    with secure_apiserver(etcd.url, nodes=[N1, N2]) as a:
        with tls_client(a) as admin:
            admin.post("/api/v1/nodes", json={"metadata": {"name": N2}, "spec": {
                "podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}}).raise_for_status()
        try:
            yield a
        finally:
            with tls_client(a) as admin:
                admin.delete(f"/api/v1/nodes/{N2}")


@pytest.fixture
def n1_node(secured):
    """Node n1 registered by itself (as the node agent does), then given a pod CIDR by the admin."""
    with tls_client(secured, f"node-{N1}") as n1:
        r = n1.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node",
                                           "metadata": {"name": N1, "labels": AGENT_LABELS}, "spec": {}})
        assert r.status_code == 201, r.text
        # a registered node without a pod range may not pick one (validation would allow "" -> valid)
        forbidden(n1.patch(f"/api/v1/nodes/{N1}", json={"spec": {"podCIDR": "10.244.2.0/25"}}, headers=MERGE),
                  "spec.podCIDR")
    with tls_client(secured) as admin:
        admin.patch(f"/api/v1/nodes/{N1}", json={"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}},
                    headers=MERGE).raise_for_status()
    try:
        yield
    finally:
        with tls_client(secured) as admin:
            admin.delete(f"/api/v1/nodes/{N1}")


@pytest.fixture
def ns(secured):
    name = f"kl-nr-{uuid.uuid4().hex[:6]}"
    with tls_client(secured) as admin:
        admin.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        admin.post(f"/api/v1/namespaces/{name}/serviceaccounts", json={"metadata": {"name": "default"}})
        for pod, node in (("on-n1", N1), ("on-n2", N2)):
            admin.post(f"/api/v1/namespaces/{name}/pods", json={
                "metadata": {"name": pod, "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}).raise_for_status()
    try:
        yield name
    finally:
        with tls_client(secured) as admin:
            admin.delete(f"/api/v1/namespaces/{name}")


def forbidden(r, text: str) -> None:
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "Forbidden" and text in body["message"], body


# ---- Node --------------------------------------------------------------------------------------

def test_a_node_cannot_create_another_node_with_a_slice_of_the_pod_range(secured):
    with tls_client(secured, f"node-{N1}") as n1:
        forbidden(n1.post("/api/v1/nodes", json={"metadata": {"name": "ghost"}, "spec": {
            "podCIDR": "10.244.2.0/25", "podCIDRs": ["10.244.2.0/25"]}}), 'not allowed to modify node "ghost"')
        forbidden(n1.post("/api/v1/nodes", json={"metadata": {"name": "ghost"}}), 'node "ghost"')
        # nor itself with a pod range of its choosing
        forbidden(n1.post("/api/v1/nodes", json={"metadata": {"name": N1}, "spec": {
            "podCIDR": "10.244.2.0/25"}}), "spec.podCIDR")
    with tls_client(secured) as admin:
        assert admin.get("/api/v1/nodes/ghost").status_code == 404
        assert admin.get(f"/api/v1/nodes/{N1}").status_code == 404


@pytest.mark.parametrize("label", ["node-restriction.kubernetes.io/pool", "node-role.kubernetes.io/control-plane",
                                   "x.node-restriction.kubernetes.io/a", "k8s.io/anything"])
def test_a_node_cannot_register_with_reserved_labels(secured, label):
    with tls_client(secured, f"node-{N1}") as n1:
        forbidden(n1.post("/api/v1/nodes", json={"metadata": {"name": N1, "labels": {label: "x"}}}), label)


def test_the_node_agents_own_writes_keep_working(secured, n1_node, ns):
    with tls_client(secured, f"node-{N1}") as n1:
        # status updates (register + node_status_loop)
        r = n1.patch(f"/api/v1/nodes/{N1}/status", json={"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}, headers=MERGE)
        assert r.status_code == 200, r.text
        # labels a kubelet may set, and ones outside kubernetes.io
        r = n1.patch(f"/api/v1/nodes/{N1}", json={"metadata": {"labels": {
            "topology.kubernetes.io/zone": "a", "node.kubernetes.io/instance-type": "lab",
            "x.kubelet.kubernetes.io/y": "z", "example.com/rack": "r1"}}}, headers=MERGE)
        assert r.status_code == 200, r.text
        # its lease (create, then renew)
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": N1, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": N1, "leaseDurationSeconds": 40}}
        r = n1.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=lease)
        assert r.status_code in (201, 409), r.text
        r = n1.patch(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{N1}",
                     json={"spec": {"leaseDurationSeconds": 40}}, headers=MERGE)
        assert r.status_code == 200, r.text
        # the status of its pod, and its deletion
        r = n1.patch(f"/api/v1/namespaces/{ns}/pods/on-n1/status", json={"status": {"phase": "Running"}},
                     headers=MERGE)
        assert r.status_code == 200 and r.json()["status"]["phase"] == "Running", r.text
        r = n1.delete(f"/api/v1/namespaces/{ns}/pods/on-n1", params={"gracePeriodSeconds": "0"})
        assert r.status_code == 200, r.text


def test_a_node_cannot_change_its_pod_cidr_taints_or_reserved_labels(secured, n1_node):
    with tls_client(secured, f"node-{N1}") as n1:
        r = n1.patch(f"/api/v1/nodes/{N1}", json={"spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}},
                     headers=MERGE)  # validation refuses any change of a set range first (422), for anyone
        assert r.status_code in (403, 422) and "spec.podCIDR" in r.json()["message"], r.text
        forbidden(n1.patch(f"/api/v1/nodes/{N1}", json={"spec": {"taints": [
            {"key": "evil", "value": "x", "effect": "NoSchedule"}]}}, headers=MERGE), "taints")
        forbidden(n1.patch(f"/api/v1/nodes/{N1}", json={"metadata": {"labels": {
            "node-restriction.kubernetes.io/pci": "true"}}}, headers=MERGE), "node-restriction.kubernetes.io/pci")
        forbidden(n1.patch(f"/api/v1/nodes/{N1}", json={"metadata": {"labels": {
            "node-role.kubernetes.io/control-plane": ""}}}, headers=MERGE), "node-role.kubernetes.io/control-plane")
        # another node: the authorizer already says no
        r = n1.patch(f"/api/v1/nodes/{N2}", json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
        assert r.status_code == 403, r.text
    with tls_client(secured) as admin:
        node = admin.get(f"/api/v1/nodes/{N1}").json()
        assert node["spec"]["podCIDR"] == "10.244.1.0/24" and not node["spec"].get("taints")
        assert "node-restriction.kubernetes.io/pci" not in node["metadata"]["labels"]
        # the admin still may (taints are the admin's to set)
        r = admin.patch(f"/api/v1/nodes/{N1}", json={"spec": {"taints": [
            {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}, headers=MERGE)
        assert r.status_code == 200, r.text
    with tls_client(secured, f"node-{N1}") as n1:  # and the node cannot take them off
        forbidden(n1.patch(f"/api/v1/nodes/{N1}", json={"spec": {"taints": None}}, headers=MERGE), "taints")


# ---- Pods --------------------------------------------------------------------------------------

@pytest.mark.parametrize("patch", [
    {"metadata": {"labels": {"app": "stolen"}}},
    {"spec": {"containers": [{"name": "c", "image": "evil"}]}},
    {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": N1, "uid": "x"}]}},
    {"metadata": {"finalizers": ["example.com/keep"]}},
], ids=["labels", "image", "owners", "finalizers"])
def test_a_node_cannot_rewrite_its_pods(secured, ns, patch):
    with tls_client(secured, f"node-{N1}") as n1:
        r = n1.patch(f"/api/v1/namespaces/{ns}/pods/on-n1", json=patch, headers=STRATEGIC)
        assert r.status_code == 403, r.text
        r = n1.get(f"/api/v1/namespaces/{ns}/pods/on-n1")
        r.raise_for_status()
        pod = r.json()
        r = n1.put(f"/api/v1/namespaces/{ns}/pods/on-n1", json={**pod, "metadata": {
            **pod["metadata"], "labels": {"app": "stolen"}}})
        assert r.status_code == 403, r.text
    with tls_client(secured) as admin:
        pod = admin.get(f"/api/v1/namespaces/{ns}/pods/on-n1").json()
        assert pod["metadata"]["labels"] == {"app": "web"} and pod["spec"]["containers"][0]["image"] == "busybox"
        assert not pod["metadata"].get("finalizers") and not pod["metadata"].get("ownerReferences")


def test_a_node_cannot_touch_pods_of_another_node(secured, ns):
    with tls_client(secured, f"node-{N1}") as n1:
        r = n1.patch(f"/api/v1/namespaces/{ns}/pods/on-n2/status", json={"status": {"phase": "Failed"}},
                     headers=MERGE)
        assert r.status_code == 403, r.text
        r = n1.delete(f"/api/v1/namespaces/{ns}/pods/on-n2")
        assert r.status_code == 403, r.text
        r = n1.post(f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": "mine"}, "spec": {"nodeName": N1, "containers": [{"name": "c", "image": "x"}]}})
        assert r.status_code == 403, r.text


# ---- Leases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,namespace", [(N2, "kube-node-lease"), (N1, "default"),
                                            ("kube-scheduler", "kube-node-lease")],
                         ids=["other-node", "own-name-other-namespace", "not-a-node"])  # no random parts: xdist workers must agree
def test_a_node_may_write_only_its_own_lease(secured, name, namespace):
    with tls_client(secured, f"node-{N1}") as n1:
        r = n1.post(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", json={
            "metadata": {"name": name}, "spec": {"holderIdentity": N1}})
        assert r.status_code == 403, r.text
    with tls_client(secured) as admin:
        assert admin.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}").status_code == 404


# ---- Tokens ------------------------------------------------------------------------------------

def test_a_node_may_mint_tokens_only_bound_to_its_pods(secured, ns):
    with tls_client(secured) as admin:
        pods = {p: admin.get(f"/api/v1/namespaces/{ns}/pods/{p}").json()["metadata"]["uid"] for p in ("on-n1", "on-n2")}

    def request(h, ref):
        spec = {"boundObjectRef": ref} if ref else {}
        return h.post(f"/api/v1/namespaces/{ns}/serviceaccounts/default/token",
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})

    with tls_client(secured, f"node-{N1}") as n1:
        forbidden(request(n1, None), "not bound to a pod")
        forbidden(request(n1, {"kind": "Pod", "apiVersion": "v1", "name": "on-n1"}), "without a uid")
        forbidden(request(n1, {"kind": "Pod", "apiVersion": "v1", "name": "on-n2", "uid": pods["on-n2"]}),
                  "different node")
        forbidden(request(n1, {"kind": "Pod", "apiVersion": "v1", "name": "on-n1", "uid": "some-other-uid"}),
                  "does not match")
        r = request(n1, {"kind": "Pod", "apiVersion": "v1", "name": "on-n1", "uid": pods["on-n1"]})
        assert r.status_code == 201, r.text
