"""The one table of API types every component shares.

The API server routes, validates and stores by it; the client builds paths from it; the CLI
resolves `po`, `deploy`, `svc` through it. Adding a resource means adding one row here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    # Fields whose change bumps metadata.generation (everything but status and metadata).
    has_status: bool = True
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods`: the name Kubernetes uses in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def etcd_prefix(self, namespace: str | None = None) -> str:
        """Where objects live in etcd: `/registry/<resource>/<namespace>/<name>`."""
        key = f"/registry/{self.group_resource}/"
        if self.namespaced and namespace:
            key += f"{namespace}/"
        return key


ALL = "all"
_RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize"),
                 verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    ResourceType("", "v1", "Pod", "pods", True, ("po",),
                 ("status", "binding", "log", "exec", "attach", "portforward", "ephemeralcontainers", "eviction"),
                 (ALL,)),
    ResourceType("", "v1", "Service", "services", True, ("svc",), ("status",), (ALL,)),
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",), has_status=False),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), ("status", "proxy")),
    ResourceType("", "v1", "Event", "events", True, ("ev",), has_status=False),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",), has_status=False),
    ResourceType("", "v1", "Secret", "secrets", True, (), has_status=False),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",), has_status=False),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"), (ALL,)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"), (ALL,)),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), (ALL,)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale"), (ALL,)),
    ResourceType("batch", "v1", "Job", "jobs", True, (), ("status",), (ALL,)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), (ALL,)),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, (), has_status=False),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, (), has_status=False),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",),
                 has_status=False),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), ("status",)),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False, (), has_status=False),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",)),
    # Gateway API (gateway.networking.k8s.io, standard channel): the kinds kubelab's ingress controller
    # implements end to end; ReferenceGrant (v1beta1, as upstream serves it) allows cross-namespace refs.
    ResourceType("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False, ("gc",), ("status",)),
    ResourceType("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, ("gtw",), ("status",)),
    ResourceType("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True, (), ("status",)),
    ResourceType("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants", True, ("refgrant",),
                 has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True, (), has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, (), has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, (), has_status=False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False, (),
                 has_status=False),
)

BY_PLURAL: dict[str, ResourceType] = {r.plural: r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(name: str) -> ResourceType:
    """Resolve what a user types (`po`, `pod`, `pods`, `deploy`, `deployments.apps`)."""
    n = name.lower()
    for r in RESOURCES:
        if n in (r.plural, r.singular, r.group_resource, *r.short_names):
            return r
    raise KeyError(name)


def for_object(obj: dict) -> ResourceType:
    """The resource type of an object from its apiVersion and kind."""
    try:
        return BY_KIND[(obj.get("apiVersion", ""), obj.get("kind", ""))]
    except KeyError:
        raise KeyError(f'no kind "{obj.get("kind")}" is registered for version "{obj.get("apiVersion")}"') from None


def groups() -> dict[str, list[ResourceType]]:
    """Group name → its resources, in table order (for discovery)."""
    out: dict[str, list[ResourceType]] = {}
    for r in RESOURCES:
        out.setdefault(r.group, []).append(r)
    return out
