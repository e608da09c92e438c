"""Who may evict (create pods/eviction), and who may read and write StatefulSets and
PodDisruptionBudgets, under the default roles; a node may not evict (even its own pods)."""

from __future__ import annotations

import pytest

from kubelab.apiserver.authz import node_authorize
from kubelab.apiserver.rbac import Attributes, Policy, UserInfo, default_cluster_role_bindings, default_cluster_roles
from kubelab.apiserver.security import request_attributes

AUTH = "system:authenticated"


def _rb(role: str, user: str) -> dict:
    return {"metadata": {"name": f"{role}-{user}", "namespace": "team"},
            "roleRef": {"kind": "ClusterRole", "name": role}, "subjects": [{"kind": "User", "name": user}]}


POLICY = Policy.from_objects(cluster_roles=default_cluster_roles(), cluster_role_bindings=default_cluster_role_bindings(),
                             role_bindings=[_rb("view", "viewer"), _rb("edit", "editor"), _rb("admin", "boss")])
USERS = {"view": UserInfo("viewer", (AUTH,)), "edit": UserInfo("editor", (AUTH,)), "admin": UserInfo("boss", (AUTH,)),
         "nobody": UserInfo("stranger", (AUTH,)), "scheduler": UserInfo("system:kube-scheduler", (AUTH,)),
         "proxy": UserInfo("system:kube-proxy", (AUTH,)), "dns": UserInfo("system:kube-dns", (AUTH,))}


@pytest.mark.parametrize("who,ns,allowed", [
    ("edit", "team", True), ("admin", "team", True), ("edit", "other", False), ("view", "team", False),
    ("nobody", "team", False), ("scheduler", "team", False), ("proxy", "team", False), ("dns", "team", False),
])
def test_who_may_evict(who, ns, allowed):
    a = Attributes(USERS[who], "create", resource="pods", subresource="eviction", namespace=ns, name="web-0")
    assert POLICY.allows(a)[0] is allowed


def test_eviction_is_create_on_the_subresource():
    scope = {"type": "http", "method": "POST", "path": "/api/v1/namespaces/team/pods/web-0/eviction",
             "query_string": b""}
    a = request_attributes(scope, USERS["edit"])
    assert (a.verb, a.resource, a.subresource, a.namespace, a.name) == ("create", "pods", "eviction", "team", "web-0")
    # eviction does not grant deleting pods, nor does reading pods grant eviction
    assert not POLICY.allows(Attributes(USERS["view"], "create", resource="pods", subresource="eviction",
                                        namespace="team", name="web-0"))[0]


@pytest.mark.parametrize("group,resource,sub", [("apps", "statefulsets", ""), ("apps", "statefulsets", "scale"),
                                                ("policy", "poddisruptionbudgets", "")])
def test_workload_matrix(group, resource, sub):
    for who, may_write in (("view", False), ("edit", True), ("admin", True), ("nobody", None)):
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
            a = Attributes(USERS[who], verb, api_group=group, resource=resource, subresource=sub, namespace="team",
                           name="x")
            want = may_write is not None and (verb in ("get", "list", "watch") or may_write)
            assert POLICY.allows(a)[0] is want, (who, verb)
    cm = UserInfo("system:kube-controller-manager", (AUTH,))
    assert POLICY.allows(Attributes(cm, "update", api_group=group, resource=resource, subresource="status",
                                    namespace="d", name="x"))[0]


def test_only_the_controller_manager_writes_budget_status():
    for who in ("edit", "admin", "view"):
        assert not POLICY.allows(Attributes(USERS[who], "update", api_group="policy", resource="poddisruptionbudgets",
                                            subresource="status", namespace="team", name="x"))[0], who


class _Graph:
    async def pod(self, ns, name):
        return {"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": "n1"}}

    async def pods_on_node(self, node):
        return []


async def test_a_node_may_not_evict_its_own_pods():
    n1 = UserInfo("system:node:n1", ("system:nodes", AUTH))
    a = Attributes(n1, "create", resource="pods", subresource="eviction", namespace="team", name="web-0")
    assert not (await node_authorize(a, _Graph())).allowed
    assert not POLICY.allows(a)[0]
