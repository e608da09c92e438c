"""Smaller holes at the API server's edges, each attacked with the request itself on a real
HTTPS API server: Services that claim someone else's address as an external IP
(CVE-2020-8554), the `edit` role writing Endpoints (CVE-2021-25740), `?watch=false&watch=true`
authorized as a list but served as a watch, and PUT/PATCH on subresources that are not writable."""

from __future__ import annotations

import uuid

import pytest

from kubelab.testing import secure_apiserver, tls_client, wait_until

MERGE = {"Content-Type": "application/merge-patch+json"}
ALLOWED = "192.0.2.0/28"  # TEST-NET-1: never routed; the allow-list of this server
NODE = f"bd-{uuid.uuid4().hex[:6]}"  # etcd is shared by the session: a name of our own


@pytest.fixture(scope="module")
def secured(etcd):
    with secure_apiserver(etcd.url, users=["alice"], args=["--service-external-ip-cidrs", ALLOWED]) as a:
        with tls_client(a) as admin:
            admin.post("/api/v1/nodes", json={"metadata": {"name": NODE}}).raise_for_status()
            admin.patch(f"/api/v1/nodes/{NODE}/status", json={"status": {"addresses": [
                {"type": "InternalIP", "address": "192.0.2.5"}]}}, headers=MERGE).raise_for_status()
        try:
            yield a
        finally:
            with tls_client(a) as admin:
                admin.delete(f"/api/v1/nodes/{NODE}")


@pytest.fixture
def ns(secured):
    name = f"kl-bd-{uuid.uuid4().hex[:6]}"
    with tls_client(secured) as admin:
        admin.post("/api/v1/namespaces", json={"metadata": {"name": name}}).raise_for_status()
        admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/rolebindings", json={
            "metadata": {"name": "alice-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "User", "name": "alice"}]}).raise_for_status()
    with tls_client(secured, "user-alice") as alice:
        wait_until(lambda: alice.get(f"/api/v1/namespaces/{name}/services").status_code == 200, timeout=40,
                   interval=0.2, what="alice's edit binding applied")
    try:
        yield name
    finally:
        with tls_client(secured) as admin:
            admin.delete(f"/api/v1/namespaces/{name}")


def _svc(name: str, ips: list[str]) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], "selector": {"app": "x"},
                                                  "externalIPs": ips}}


@pytest.mark.parametrize("ip,why", [
    ("192.0.2.5", f'node "{NODE}"'),          # a node's address (inside the allow-list, still refused)
    ("127.0.0.1", "API server"),         # the API server's advertise address
    ("10.96.0.1", "service range"),      # the `kubernetes` Service's ClusterIP
    ("10.244.1.7", "pod network"),       # a pod
    ("203.0.113.9", "outside the allowed"),  # anything not allow-listed
], ids=["node", "apiserver", "service", "pod", "outside"])  # ids without NODE's random part: xdist workers must agree
def test_external_ips_that_hijack_traffic_are_refused(secured, ns, ip, why):
    with tls_client(secured, "user-alice") as alice:
        r = alice.post(f"/api/v1/namespaces/{ns}/services", json=_svc("hijack", ["192.0.2.9", ip]))
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["kind"] == "Status" and body["reason"] == "Invalid"
        assert [c["field"] for c in body["details"]["causes"]] == ["spec.externalIPs[1]"], body
        assert why in body["message"]
        assert alice.get(f"/api/v1/namespaces/{ns}/services/hijack").status_code == 404


def test_external_ips_in_the_allow_list_work_and_updates_are_checked(secured, ns):
    with tls_client(secured, "user-alice") as alice:
        r = alice.post(f"/api/v1/namespaces/{ns}/services", json=_svc("web", ["192.0.2.9"]))
        assert r.status_code == 201, r.text
        r = alice.patch(f"/api/v1/namespaces/{ns}/services/web", json={"spec": {"externalIPs": [
            "192.0.2.9", "10.96.0.10"]}}, headers=MERGE)
        assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.externalIPs[1]", r.text
        r = alice.patch(f"/api/v1/namespaces/{ns}/services/web", json={"spec": {"externalIPs": None}},
                        headers=MERGE)
        assert r.status_code == 200, r.text


def test_edit_role_does_not_write_endpoints(secured, ns):
    ep = {"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.244.9.9"}], "ports": [{"port": 80}]}]}
    slice_ = {"metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
              "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.9.9"]}], "ports": [{"port": 80}]}
    with tls_client(secured, "user-alice") as alice:
        assert alice.post(f"/api/v1/namespaces/{ns}/endpoints", json=ep).status_code == 403
        assert alice.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                          json=slice_).status_code == 403
        assert alice.get(f"/api/v1/namespaces/{ns}/endpoints").status_code == 200  # reading stays allowed
        assert alice.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices").status_code == 200


def test_watch_false_then_true_is_authorized_and_served_alike(secured, ns):
    """A user who may `list` but not `watch`: `?watch=false&watch=true` must not become a watch."""
    with tls_client(secured) as admin:
        admin.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", json={
            "metadata": {"name": f"{ns}-list-only"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}).raise_for_status()
        admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", json={
            "metadata": {"name": "alice-list"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{ns}-list-only"},
            "subjects": [{"kind": "User", "name": "alice"}]}).raise_for_status()
        # alice's edit binding would allow watch: take it away for this test
        admin.delete(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/alice-edit").raise_for_status()
    try:
        with tls_client(secured, "user-alice") as alice:
            base = f"/api/v1/namespaces/{ns}/configmaps"
            wait_until(lambda: alice.get(base + "?watch=true&timeoutSeconds=1").status_code == 403, timeout=40,
                       interval=0.2, what="alice's edit binding gone")
            r = alice.get(base + "?watch=false&watch=true&timeoutSeconds=1")
            assert r.status_code == 200 and r.json()["kind"] == "ConfigMapList", r.text  # a list, not a stream
            r = alice.get(base + "?watch=true&watch=false&timeoutSeconds=1")
            assert r.status_code == 403, r.text  # the first value counts, for both
            r = alice.get(base + "?watch=&watch=true&timeoutSeconds=1")
            assert r.status_code == 200 and r.json()["kind"] == "ConfigMapList", r.text
    finally:
        with tls_client(secured) as admin:
            admin.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{ns}-list-only")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("sub", ["pods/p/log", "pods/p/binding", "serviceaccounts/sa/token"])
def test_put_and_patch_on_read_only_subresources_are_405(secured, ns, method, sub):
    with tls_client(secured) as admin:
        admin.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {
            "containers": [{"name": "c", "image": "busybox"}]}})
        admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "sa"}})
        plural, name, _ = sub.split("/")
        before = admin.get(f"/api/v1/namespaces/{ns}/{plural}/{name}").json()
        body = {**before, "metadata": {**before["metadata"], "labels": {"hijacked": "yes"}}}
        if method == "PUT":
            r = admin.put(f"/api/v1/namespaces/{ns}/{sub}", json=body)
        else:
            r = admin.patch(f"/api/v1/namespaces/{ns}/{sub}", json={"metadata": {"labels": {"hijacked": "yes"}}},
                            headers=MERGE)
        assert r.status_code == 405 and r.json()["kind"] == "Status", r.text
        after = admin.get(f"/api/v1/namespaces/{ns}/{plural}/{name}").json()
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
