"""RBAC: who may do what, from Role/ClusterRole rules and their bindings. Pure.

The same rule semantics as Kubernetes (`rbac.authorization.k8s.io/v1`): a request is allowed
when some binding that names the user (User), one of its groups (Group) or its service
account (ServiceAccount) points at a role with a rule matching the request's verb, API
group, resource[/subresource] and name. A RoleBinding grants only in its own namespace;
a ClusterRoleBinding everywhere. There are no deny rules.

Also here: privilege-escalation prevention's rule comparison (which requested rules the
writer's own rules do not cover, upstream's `Covers`, and the 403 wording), and the default
roles the API server creates at start (cluster-admin, admin, edit, view, and the
components' roles), as in Kubernetes' bootstrap policy, cut down to the resources kubelab
serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .shapes import go_quote

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizers see it (Kubernetes' authorizer.Attributes)."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    def describe_resource(self) -> str:
        return self.resource + (f"/{self.subresource}" if self.subresource else "")


def forbidden_message(a: Attributes, reason: str = "") -> str:
    """Kubernetes' wording, which people grep for:
    `pods "x" is forbidden: User "jane" cannot delete resource "pods" in API group "" in the namespace "default"`."""
    if not a.resource_request:
        msg = f'forbidden: User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    else:
        gr = a.resource + (f".{a.api_group}" if a.api_group else "")
        head = f'{gr} "{a.name}" is forbidden' if a.name else f"{gr} is forbidden"
        msg = (f'{head}: User "{a.user.name}" cannot {a.verb} resource "{a.describe_resource()}" '
               f'in API group "{a.api_group}"')
        msg += f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
    return msg + (f": {reason}" if reason else "")


# ---- rule matching -----------------------------------------------------------------------

def _has(items, value: str) -> bool:
    if not isinstance(items, list):
        return False
    return "*" in items or value in items


def _resource_matches(rule_resources, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    if not isinstance(rule_resources, list):
        return False
    for r in rule_resources:
        if r == "*" or r == combined:
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _path_matches(urls, path: str) -> bool:
    if not isinstance(urls, list):
        return False
    for u in urls:
        if not isinstance(u, str):
            continue
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])):
            return True
    return False


def rule_allows(rule: dict, a: Attributes) -> bool:
    if not isinstance(rule, dict) or not _has(rule.get("verbs"), a.verb):
        return False
    if not a.resource_request:
        return _path_matches(rule.get("nonResourceURLs"), a.path)
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    if not _has(rule.get("apiGroups"), a.api_group):
        return False
    if not _resource_matches(rule.get("resources"), a.resource, a.subresource):
        return False
    names = rule.get("resourceNames")
    return not names or (isinstance(names, list) and a.name in names)


def subject_matches(subject: dict, user: UserInfo, binding_namespace: str = "") -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


@dataclass
class Policy:
    """A snapshot of the RBAC objects: name → object (namespaced ones keyed `ns/name`)."""

    roles: dict[str, dict] = field(default_factory=dict)
    cluster_roles: dict[str, dict] = field(default_factory=dict)
    role_bindings: list[dict] = field(default_factory=list)
    cluster_role_bindings: list[dict] = field(default_factory=list)

    @classmethod
    def from_objects(cls, *, roles=(), cluster_roles=(), role_bindings=(), cluster_role_bindings=()) -> "Policy":
        def key(o):
            m = o.get("metadata") or {}
            return f"{m.get('namespace', '')}/{m.get('name', '')}"
        return cls({key(o): o for o in roles},
                   {(o.get("metadata") or {}).get("name", ""): o for o in cluster_roles},
                   list(role_bindings), list(cluster_role_bindings))

    def _role_rules(self, ref: dict, namespace: str) -> list:
        if not isinstance(ref, dict):
            return []
        if ref.get("kind") == "ClusterRole":
            role = self.cluster_roles.get(ref.get("name", ""))
        elif ref.get("kind") == "Role":
            role = self.roles.get(f"{namespace}/{ref.get('name', '')}")
        else:
            role = None
        rules = (role or {}).get("rules") or []
        return rules if isinstance(rules, list) else []

    def rules_for(self, user: UserInfo, namespace: str) -> list[dict]:
        """Every rule granted to `user` in `namespace` (what `kubectl auth can-i --list` shows)."""
        out: list[dict] = []
        for b in self.cluster_role_bindings:
            if any(subject_matches(s, user) for s in b.get("subjects") or []):
                out += [r for r in self._role_rules(b.get("roleRef"), "") if isinstance(r, dict)]
        for b in self.role_bindings:
            ns = (b.get("metadata") or {}).get("namespace", "")
            if ns == namespace and any(subject_matches(s, user, ns) for s in b.get("subjects") or []):
                out += [r for r in self._role_rules(b.get("roleRef"), ns) if isinstance(r, dict)]
        return out

    def allows(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, why): why names the binding and role that allowed it."""
        for b in self.cluster_role_bindings:
            if any(subject_matches(s, a.user) for s in b.get("subjects") or []):
                for rule in self._role_rules(b.get("roleRef"), ""):
                    if rule_allows(rule, a):
                        return True, f'RBAC: allowed by ClusterRoleBinding "{b["metadata"]["name"]}"'
        if a.namespace and a.resource_request:
            for b in self.role_bindings:
                ns = (b.get("metadata") or {}).get("namespace", "")
                if ns != a.namespace:
                    continue
                if any(subject_matches(s, a.user, ns) for s in b.get("subjects") or []):
                    for rule in self._role_rules(b.get("roleRef"), ns):
                        if rule_allows(rule, a):
                            return True, f'RBAC: allowed by RoleBinding "{b["metadata"]["name"]}/{ns}"'
        return False, ""


# ---- privilege-escalation prevention --------------------------------------------------------
# Kubernetes' rule (pkg/registry/rbac/validation): a user may write a Role, ClusterRole or a
# binding only if it grants nothing the user does not already hold, unless the user has the
# `escalate` verb (roles) or `bind` verb (bindings). Otherwise anyone allowed to create
# RoleBindings could bind cluster-admin to themselves.

RBAC_GROUP = "rbac.authorization.k8s.io"
PRIVILEGED_GROUP = "system:masters"
# What an aggregationRule may gather: anything, so setting one needs * on *.* and on every URL.
FULL_AUTHORITY = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]
AGGREGATION_DENIED = "must have cluster-admin privileges to use the aggregationRule"
# Metadata the garbage collector changes: updating only these never needs the check.
_GC_FIELDS = ("ownerReferences", "finalizers", "selfLink", "managedFields", "resourceVersion")


def escalation_allowed(user: UserInfo) -> bool:
    """system:masters holds everything (the API server's own loopback identity is in it)."""
    return PRIVILEGED_GROUP in user.groups


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def breakdown_rule(rule: dict) -> list[dict]:
    """`rule` as rules of one verb, one group, one resource and at most one name each
    (upstream's BreakdownRule): each piece is then covered by one owner rule or not at all."""
    if not isinstance(rule, dict):
        return []
    verbs, names = _strings(rule.get("verbs")), _strings(rule.get("resourceNames"))
    out: list[dict] = []
    for group in _strings(rule.get("apiGroups")):
        for resource in _strings(rule.get("resources")):
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                out += [{**base, "resourceNames": [n]} for n in names] if names else [base]
    for url in _strings(rule.get("nonResourceURLs")):
        out += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs]
    return out


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner or set(wanted) <= set(owner):
        return True
    for r in wanted:
        if r in owner:
            continue
        if "/" not in r or f"*/{r.split('/', 1)[1]}" not in owner:
            return False
    return True


def _url_covers(owner: str, path: str) -> bool:
    return owner == path or (owner.endswith("*") and path.startswith(owner.rstrip("*")))


def rule_covers(owner: dict, sub: dict) -> bool:
    """Whether `owner` allows everything `sub` (one piece of `breakdown_rule`) does; upstream's ruleCovers."""
    if not isinstance(owner, dict):
        return False
    o_verbs, o_groups = _strings(owner.get("verbs")), _strings(owner.get("apiGroups"))
    o_names, o_urls = _strings(owner.get("resourceNames")), _strings(owner.get("nonResourceURLs"))
    s_names = _strings(sub.get("resourceNames"))
    return ("*" in o_verbs or set(_strings(sub.get("verbs"))) <= set(o_verbs)) and \
        ("*" in o_groups or set(_strings(sub.get("apiGroups"))) <= set(o_groups)) and \
        _resources_cover(_strings(owner.get("resources")), _strings(sub.get("resources"))) and \
        all(any(_url_covers(o, u) for o in o_urls) for u in _strings(sub.get("nonResourceURLs"))) and \
        (not o_names or (bool(s_names) and set(s_names) <= set(o_names)))


def uncovered_rules(owner_rules: list[dict], requested: list[dict]) -> list[dict]:
    """The pieces of `requested` that no rule of `owner_rules` covers ([]: nothing escalates).
    Upstream's Covers."""
    return [sub for rule in requested for sub in breakdown_rule(rule)
            if not any(rule_covers(o, sub) for o in owner_rules)]


def compact_rules(rules: list[dict]) -> list[dict]:
    """Pieces differing only in verb merged back into one rule (upstream's CompactRules),
    so a message lists `Verbs:["get" "list"]` once rather than a line per verb."""
    out: list[dict] = []
    simple: dict[tuple, dict] = {}
    for r in rules:
        groups, resources, names = r.get("apiGroups") or [], r.get("resources") or [], r.get("resourceNames") or []
        if len(groups) == 1 and len(resources) == 1 and len(names) <= 1 and not r.get("nonResourceURLs") and \
                set(r) <= {"apiGroups", "resources", "verbs", "resourceNames"}:
            key = (groups[0], resources[0], names[0] if names else None)
            if key in simple:
                simple[key]["verbs"] = list(simple[key].get("verbs") or []) + list(r.get("verbs") or [])
            else:
                simple[key] = {k: list(v) for k, v in r.items()}
        else:
            out.append(r)
    return out + list(simple.values())


def _go_list(items: list[str]) -> str:
    """A []string as Go's %q prints it: `["a" "b"]`."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def compact_string(rule: dict) -> str:
    """A rule as upstream prints it in escalation errors: `{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}`."""
    parts = [f"{label}:{_go_list(rule[key])}" for label, key in (
        ("APIGroups", "apiGroups"), ("Resources", "resources"), ("NonResourceURLs", "nonResourceURLs"),
        ("ResourceNames", "resourceNames"), ("Verbs", "verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"


def escalation_message(user: UserInfo, missing: list[dict]) -> str:
    """Upstream's ConfirmNoEscalation wording, the missing rules compacted, one per line, sorted."""
    lines = sorted({compact_string(r) for r in compact_rules(missing)})
    return (f"user {go_quote(user.name)} (groups={_go_list(list(user.groups))}) is attempting to grant "
            f"RBAC permissions not currently held:\n" + "\n".join(lines))


def rbac_forbidden_message(plural: str, name: str, why: str) -> str:
    """`roles.rbac.authorization.k8s.io "x" is forbidden: <why>` (upstream's NewForbidden)."""
    return f'{plural}.{RBAC_GROUP} "{name}" is forbidden: {why}'


def has_aggregation_rule(role: dict | None) -> bool:
    """An aggregationRule with at least one selector (an empty one aggregates nothing)."""
    agg = (role or {}).get("aggregationRule")
    return isinstance(agg, dict) and bool(agg.get("clusterRoleSelectors"))


def _semantic(value):
    """Go's semantic equality treats null, [] and {} alike: drop them before comparing."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def only_gc_fields_changed(new: dict, old: dict) -> bool:
    """An update touching only what the garbage collector writes (owner references,
    finalizers) needs no escalation check: the GC must be able to delete any role."""
    def strip(obj: dict) -> dict:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _GC_FIELDS}
        return _semantic({**obj, "metadata": meta})
    return strip(new) == strip(old)


# ---- the default policy --------------------------------------------------------------------

def _rule(groups, resources, verbs, **extra) -> dict:
    return {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs), **extra}


_WORKLOADS = ["pods", "pods/log", "pods/status", "services", "services/status", "endpoints", "configmaps",
              "serviceaccounts", "events"]
_APPS = ["deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
         "replicasets/status", "daemonsets", "daemonsets/status", "statefulsets", "statefulsets/scale",
         "statefulsets/status"]
_POLICY = ["poddisruptionbudgets", "poddisruptionbudgets/status"]
_BATCH = ["jobs", "jobs/status", "cronjobs", "cronjobs/status"]
_DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                   "/healthz", "/livez", "/readyz"]


def _cluster_role(name: str, rules: list[dict], *, labels: dict | None = None) -> dict:
    meta: dict = {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
                  "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}


def _crb(name: str, role: str, subjects: list[dict]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}


def _user(name: str) -> dict:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def _group(name: str) -> dict:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}


def default_cluster_roles() -> list[dict]:
    view = [
        _rule([""], ["pods", "pods/log", "pods/status", "services", "services/status", "endpoints", "configmaps",
                     "serviceaccounts", "events", "namespaces", "namespaces/status"], READ),
        _rule(["apps"], _APPS, READ),
        _rule(["batch"], _BATCH, READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["networking.k8s.io"], ["networkpolicies", "ingresses", "ingresses/status"], READ),
        _rule(["policy"], _POLICY, READ),
        _rule(["metrics.k8s.io"], ["pods", "nodes"], ["get", "list", "watch"]),   # metrics-server's aggregated role
        # upstream's gateway-api roles: namespaced Gateways and routes aggregate to view/edit;
        # GatewayClasses are cluster-scoped (the infrastructure provider's), as upstream leaves them.
        _rule(["gateway.networking.k8s.io"], ["gateways", "gateways/status", "httproutes", "httproutes/status",
                                              "referencegrants"], READ),
    ]
    # No writes of endpoints/endpointslices (CVE-2021-25740, upstream since 1.22): whoever may
    # write them can point a Service at any address, including other namespaces' pods.
    edit = [
        _rule([""], ["pods", "pods/exec", "pods/attach", "pods/portforward", "services", "configmaps",
                     "secrets", "serviceaccounts", "persistentvolumeclaims"], READ + WRITE),
        _rule(["apps"], ["deployments", "deployments/scale", "replicasets", "replicasets/scale", "daemonsets",
                         "statefulsets", "statefulsets/scale"], READ + WRITE),
        # as upstream's edit role: whoever may delete a pod may ask to evict it (PDBs then apply)
        _rule([""], ["pods/eviction"], ["create"]),
        _rule(["policy"], ["poddisruptionbudgets"], READ + WRITE),
        _rule(["batch"], ["jobs", "cronjobs"], READ + WRITE),
        _rule(["coordination.k8s.io"], ["leases"], READ + WRITE),
        _rule(["networking.k8s.io"], ["networkpolicies", "ingresses"], READ + WRITE),
        _rule(["gateway.networking.k8s.io"], ["gateways", "httproutes", "referencegrants"], READ + WRITE),
        _rule([""], ["events"], ["create", "patch", "update"]),
        *view,
    ]
    admin = [
        _rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], READ + WRITE),
        *edit,
    ]
    return [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        _cluster_role("admin", admin, labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
        _cluster_role("edit", edit),
        _cluster_role("view", view),
        _cluster_role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        _cluster_role("system:basic-user", [
            _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"])]),
        _cluster_role("system:kube-controller-manager", [
            _rule(["", "apps", "batch", "discovery.k8s.io", "coordination.k8s.io", "policy"], ["*"], ["*"]),
            _rule(["rbac.authorization.k8s.io"], ["*"], READ),
            # the namespace controller empties a terminating namespace of *every* kind (as upstream's
            # system:controller:namespace-controller): without this a RoleBinding (or a
            # NetworkPolicy) keeps its namespace Terminating for ever
            _rule(["*"], ["*"], ["get", "list", "delete", "deletecollection"]),
        ]),
        _cluster_role("system:kube-scheduler", [
            _rule([""], ["pods", "nodes", "namespaces", "services", "replicationcontrollers",
                         "persistentvolumeclaims", "persistentvolumes", "configmaps"], READ),
            _rule([""], ["pods/binding", "bindings"], ["create"]),
            _rule([""], ["pods/status"], ["patch", "update"]),
            _rule([""], ["pods"], ["delete"]),
            _rule([""], ["events"], ["create", "patch", "update"]),
            _rule(["apps"], ["replicasets"], READ),
            _rule(["coordination.k8s.io"], ["leases"], ["create"]),
            _rule(["coordination.k8s.io"], ["leases"], ["get", "update", "patch"], resourceNames=["kube-scheduler"]),
        ]),
        _cluster_role("system:node-proxier", [
            _rule([""], ["services", "endpoints", "nodes"], READ),
            _rule(["discovery.k8s.io"], ["endpointslices"], READ),
            _rule([""], ["events"], ["create", "patch", "update"]),
        ]),
        _cluster_role("system:kube-dns", [
            _rule([""], ["services", "endpoints", "namespaces", "pods"], READ),
            _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        ]),
        # the NetworkPolicy agent on each node (kubelab.netpol): reads only, like a CNI's policy agent
        _cluster_role("system:kubelab-netpol", [
            _rule([""], ["pods", "namespaces", "nodes"], READ),
            _rule(["networking.k8s.io"], ["networkpolicies"], READ),
            _rule([""], ["events"], ["create", "patch", "update"]),
        ]),
        # kubelab.loadbalancer: the controller is the only writer of services/status' load balancer,
        # the speakers only read (and record Events), as MetalLB's two ClusterRoles
        _cluster_role("system:kubelab-lb-controller", [
            _rule([""], ["services"], READ),
            _rule([""], ["services/status"], ["update", "patch"]),
            _rule([""], ["events"], ["create", "patch", "update"]),
        ]),
        _cluster_role("system:kubelab-lb-speaker", [
            _rule([""], ["services", "nodes"], READ),
            _rule(["discovery.k8s.io"], ["endpointslices"], READ),
            _rule([""], ["events"], ["create", "patch", "update"]),
        ]),
        # What a node needs beyond what the Node authorizer grants per node (as Kubernetes'
        # `system:node`, unbound by default: the Node authorizer carries it).
        _cluster_role("system:node", node_rules()),
    ]


def node_rules() -> list[dict]:
    """The static part of a node's rights; the Node authorizer narrows the writes to the
    node's own objects and the reads of secrets/configmaps to its pods'."""
    return [
        _rule([""], ["nodes", "pods", "services", "endpoints", "namespaces"], READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule([""], ["events"], ["create", "patch", "update"]),
    ]


def default_cluster_role_bindings() -> list[dict]:
    return [
        _crb("cluster-admin", "cluster-admin", [_group("system:masters")]),
        _crb("system:discovery", "system:discovery", [_group("system:authenticated")]),
        _crb("system:basic-user", "system:basic-user", [_group("system:authenticated")]),
        _crb("system:kube-controller-manager", "system:kube-controller-manager",
             [_user("system:kube-controller-manager")]),
        _crb("system:kube-scheduler", "system:kube-scheduler", [_user("system:kube-scheduler")]),
        _crb("system:node-proxier", "system:node-proxier", [_user("system:kube-proxy")]),
        _crb("system:kube-dns", "system:kube-dns",
             [_user("system:kube-dns"), {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"},
              {"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}]),  # kubelab's dns addon
        _crb("system:node", "system:node", []),
        _crb("system:kubelab-netpol", "system:kubelab-netpol", [_user("system:kubelab-netpol")]),
        _crb("system:kubelab-lb-controller", "system:kubelab-lb-controller", [_user("system:kubelab-lb-controller")]),
        _crb("system:kubelab-lb-speaker", "system:kubelab-lb-speaker", [_user("system:kubelab-lb-speaker")]),
    ]


def default_policy() -> Policy:
    return Policy.from_objects(cluster_roles=default_cluster_roles(),
                               cluster_role_bindings=default_cluster_role_bindings())
