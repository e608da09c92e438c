"""Authorization: the `--authorization-mode` chain (AlwaysAllow, AlwaysDeny, RBAC, Node).

Each authorizer answers allow, deny, or no opinion; the first allow or deny wins, and a
request nobody allowed is forbidden (Kubernetes' union authorizer). The Node authorizer
is Kubernetes' idea cut down: a node (`system:node:<name>` in `system:nodes`) may write only
its own Node and Lease and the status of the pods bound to it (and delete them), and read the secrets/configmaps/service
accounts only its pods use. Pod lookups go through an injected `NodeGraph`, so the
decisions stay testable without a server.

`EscalationCheck` is Kubernetes' privilege-escalation prevention for writes of roles and
bindings: it asks the chain for `escalate`/`bind` and compares the rules granted with the
writer's own (the pure comparison lives in `rbac`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from . import status as st
from .rbac import (AGGREGATION_DENIED, FULL_AUTHORITY, RBAC_GROUP, Attributes, Policy, UserInfo,
                   escalation_allowed, escalation_message, has_aggregation_rule, node_rules,
                   only_gc_fields_changed, rbac_forbidden_message, rule_allows, uncovered_rules)

ALLOW, DENY, NO_OPINION = "allow", "deny", "no-opinion"
MODES = ("AlwaysAllow", "AlwaysDeny", "RBAC", "Node")
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"


@dataclass(frozen=True)
class Decision:
    verdict: str
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict == ALLOW


def parse_modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"unknown authorization mode {', '.join(bad) or repr(text)} (use {', '.join(MODES)})")
    return modes


def node_of(user: UserInfo) -> str | None:
    if NODES_GROUP in user.groups and user.name.startswith(NODE_PREFIX):
        return user.name[len(NODE_PREFIX):] or None
    return None


class NodeGraph(Protocol):
    async def pod(self, namespace: str, name: str) -> dict | None: ...
    async def pods_on_node(self, node: str) -> list[dict]: ...


def pod_references(pod: dict) -> dict[str, set[str]]:
    """The secrets, configmaps and service account a pod uses (what its node may read)."""
    spec = pod.get("spec") or {}
    refs: dict[str, set[str]] = {"secrets": set(), "configmaps": set(), "serviceaccounts": set()}
    refs["serviceaccounts"].add(spec.get("serviceAccountName") or "default")
    for v in spec.get("volumes") or []:
        if (v.get("secret") or {}).get("secretName"):
            refs["secrets"].add(v["secret"]["secretName"])
        if (v.get("configMap") or {}).get("name"):
            refs["configmaps"].add(v["configMap"]["name"])
        for src in (v.get("projected") or {}).get("sources") or []:
            if (src.get("secret") or {}).get("name"):
                refs["secrets"].add(src["secret"]["name"])
            if (src.get("configMap") or {}).get("name"):
                refs["configmaps"].add(src["configMap"]["name"])
    for s in spec.get("imagePullSecrets") or []:
        if s.get("name"):
            refs["secrets"].add(s["name"])
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for ef in c.get("envFrom") or []:
            if (ef.get("secretRef") or {}).get("name"):
                refs["secrets"].add(ef["secretRef"]["name"])
            if (ef.get("configMapRef") or {}).get("name"):
                refs["configmaps"].add(ef["configMapRef"]["name"])
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if (vf.get("secretKeyRef") or {}).get("name"):
                refs["secrets"].add(vf["secretKeyRef"]["name"])
            if (vf.get("configMapKeyRef") or {}).get("name"):
                refs["configmaps"].add(vf["configMapKeyRef"]["name"])
    return refs


_OWN_WRITE = {"create", "update", "patch", "delete"}


async def node_authorize(a: Attributes, graph: NodeGraph) -> Decision:
    node = node_of(a.user)
    if node is None or not a.resource_request:
        return Decision(NO_OPINION)
    r, sub, g = a.resource, a.subresource, a.api_group
    if g == "" and r == "nodes":
        if a.verb in ("get", "list", "watch") and not sub:
            return Decision(ALLOW)
        if a.verb in _OWN_WRITE and (a.name == node or (a.verb == "create" and not a.name)):
            return Decision(ALLOW)
        return Decision(NO_OPINION, f"node '{node}' cannot modify node '{a.name}'")
    if g == "coordination.k8s.io" and r == "leases":
        if a.namespace == "kube-node-lease" and a.verb in _OWN_WRITE | {"get"} and \
                (a.name == node or (a.verb == "create" and not a.name)):
            return Decision(ALLOW)
        return Decision(NO_OPINION, f"node '{node}' can only access its own lease in kube-node-lease")
    if g == "" and r == "pods" and a.name and ((a.verb == "delete" and not sub) or
                                               (a.verb in ("update", "patch") and sub == "status")):
        # the pod's status and its deletion, never the pod itself (NodeRestriction checks the
        # binding again on the stored object, see noderestriction.admit_pod)
        pod = await graph.pod(a.namespace, a.name)
        if pod is not None and (pod.get("spec") or {}).get("nodeName") == node:
            return Decision(ALLOW)
        return Decision(NO_OPINION, f"node '{node}' can only modify pods bound to it")
    if g == "" and r in ("secrets", "configmaps", "serviceaccounts") and a.verb == "get" and a.name and not sub:
        for pod in await graph.pods_on_node(node):
            if (pod.get("metadata") or {}).get("namespace") == a.namespace and a.name in pod_references(pod)[r]:
                return Decision(ALLOW)
        return Decision(NO_OPINION, f"no relationship found between node '{node}' and this object")
    if g == "" and r == "serviceaccounts" and sub == "token" and a.verb == "create" and a.name:
        # the token the node agent mounts into a pod: only for the accounts its pods run as
        for pod in await graph.pods_on_node(node):
            if (pod.get("metadata") or {}).get("namespace") == a.namespace and \
                    a.name in pod_references(pod)["serviceaccounts"]:
                return Decision(ALLOW)
        return Decision(NO_OPINION, f"no relationship found between node '{node}' and this object")
    if any(rule_allows(rule, a) for rule in node_rules()):
        return Decision(ALLOW)
    return Decision(NO_OPINION)


def rbac_authorize(a: Attributes, policy: Policy) -> Decision:
    ok, why = policy.allows(a)
    return Decision(ALLOW, why) if ok else Decision(NO_OPINION)


class Authorizer:
    """The chain for `--authorization-mode`. `policy` returns the current RBAC snapshot."""

    def __init__(self, modes: tuple[str, ...], *, policy: Callable[[], Awaitable[Policy]] | None = None,
                 graph: NodeGraph | None = None) -> None:
        self.modes = modes
        self._policy = policy
        self._graph = graph

    async def authorize(self, a: Attributes) -> Decision:
        reasons = []
        for mode in self.modes:
            if mode == "AlwaysAllow":
                return Decision(ALLOW)
            if mode == "AlwaysDeny":
                return Decision(DENY, "everything is denied")
            if mode == "RBAC" and self._policy is not None:
                d = rbac_authorize(a, await self._policy())
            elif mode == "Node" and self._graph is not None:
                d = await node_authorize(a, self._graph)
            else:
                continue
            if d.verdict != NO_OPINION:
                return d
            if d.reason:
                reasons.append(d.reason)
        return Decision(DENY, "; ".join(reasons))


ROLE_PLURALS = ("roles", "clusterroles")
BINDING_PLURALS = ("rolebindings", "clusterrolebindings")
RoleGetter = Callable[[str, str, str], Awaitable[dict]]  # (plural, namespace, name) -> role; raises 404


class EscalationCheck:
    """Whether a user may store this Role/ClusterRole/(Cluster)RoleBinding, as upstream's
    policybased storage decides (pkg/registry/rbac): system:masters always; a role if the
    user has `escalate` on it or already holds all its rules in that scope (cluster-wide for
    a ClusterRole); a binding if the user has `bind` on the role it references or holds all
    that role's rules in the binding's scope. A denial raises the 403 upstream returns."""

    def __init__(self, authorizer: Authorizer, *, policy: Callable[[], Awaitable[Policy]],
                 get_role: RoleGetter) -> None:
        self.authorizer = authorizer
        self._policy = policy
        self._get_role = get_role

    async def _allowed(self, a: Attributes) -> bool:
        return (await self.authorizer.authorize(a)).allowed

    async def _missing(self, user: UserInfo, namespace: str, rules) -> list[dict]:
        owner = (await self._policy()).rules_for(user, namespace)
        return uncovered_rules(owner, rules if isinstance(rules, list) else [])

    async def check(self, request: Attributes, plural: str, obj: dict, old: dict | None) -> None:
        """`request` is the API request doing the write (its user, and its name for `escalate`,
        which upstream takes from the URL: empty on create)."""
        user = request.user
        if plural not in ROLE_PLURALS + BINDING_PLURALS or escalation_allowed(user):
            return
        if old is not None and only_gc_fields_changed(obj, old):
            return
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        namespace = meta.get("namespace", "") if plural in ("roles", "rolebindings") else ""

        def forbidden(why: str) -> st.StatusError:
            return st.StatusError(403, rbac_forbidden_message(plural, name, why), reason="Forbidden",
                                  details={"name": name, "group": RBAC_GROUP, "kind": plural})

        if plural in ROLE_PLURALS:
            url_name = request.name if request.resource == plural else ""
            if await self._allowed(Attributes(user, "escalate", api_group=RBAC_GROUP, resource=plural,
                                              namespace=namespace, name=url_name)):
                return
            missing = await self._missing(user, namespace, obj.get("rules"))
            if missing:
                raise forbidden(escalation_message(user, missing))
            if plural == "clusterroles" and (has_aggregation_rule(obj) or has_aggregation_rule(old)) and \
                    await self._missing(user, "", FULL_AUTHORITY):
                raise forbidden(AGGREGATION_DENIED)
            return
        ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
        kind, role_name = ref.get("kind"), ref.get("name")
        role_plural = {"Role": "roles", "ClusterRole": "clusterroles"}.get(kind)
        if role_plural is None or not isinstance(role_name, str):
            raise forbidden(f"unsupported role reference kind: {kind!r}")
        # The group is always RBAC's (the only valid roleRef.apiGroup): a `bind` grant on some
        # other group must not let a binding through to an RBAC role.
        if await self._allowed(Attributes(user, "bind", api_group=RBAC_GROUP, resource=role_plural,
                                          namespace=namespace, name=role_name)):
            return
        role = await self._get_role(role_plural, namespace, role_name)
        missing = await self._missing(user, namespace, role.get("rules"))
        if missing:
            raise forbidden(escalation_message(user, missing))
