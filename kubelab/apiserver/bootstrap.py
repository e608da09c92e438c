"""What the API server creates at start, before any other component exists.

The four system namespaces; the `kubernetes` Service at the first service IP (10.96.0.1)
with Endpoints/EndpointSlice pointing at this API server (how pods reach the API); and the
cluster settings where kubeadm clusters publish them, so the seed's
`kubectl get configmap -n kube-system kubeadm-config -o yaml | grep podSubnet` works.
"""

from __future__ import annotations

import copy
import ipaddress
import logging

import yaml

from kubelab.resources import BY_PLURAL

from .registry import Registry
from .status import StatusError

log = logging.getLogger(__name__)

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def _ensure(registry: Registry, plural: str, namespace: str | None, obj: dict, *, replace: bool = False) -> None:
    """Create `obj`, or bring the existing one up to date. Several API servers (or worker
    processes) may race here at start: losing a race (409) just means trying again."""
    rt = BY_PLURAL[plural]
    for _ in range(5):
        try:
            await registry.create(rt, namespace, copy.deepcopy(obj))
            log.info("bootstrap: created %s %s", plural, obj["metadata"]["name"])
            return
        except StatusError as e:
            if e.code != 409:
                raise
        if not replace:
            return
        try:
            current = await registry.get(rt, namespace, obj["metadata"]["name"])
            want = {**current, **{k: v for k, v in obj.items() if k != "metadata"}}
            if want != current:
                await registry.update(rt, namespace, obj["metadata"]["name"], want)
            return
        except StatusError as e:
            if e.code not in (404, 409):
                raise


async def bootstrap(registry: Registry, *, advertise_address: str, secure_port: int,
                    service_cidr: str, pod_cidr: str, dns_domain: str) -> None:
    for ns in NAMESPACES:
        await _ensure(registry, "namespaces", None, {"metadata": {"name": ns}})
    await bootstrap_policy(registry)
    first_ip = str(ipaddress.ip_network(service_cidr).network_address + 1)
    await _ensure(registry, "services", "default", {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": first_ip, "type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]},
    })
    await _ensure(registry, "endpoints", "default", {
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": advertise_address}],
                     "ports": [{"name": "https", "port": secure_port, "protocol": "TCP"}]}],
    }, replace=True)
    await _ensure(registry, "endpointslices", "default", {
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes",
                                                      "endpointslice.kubernetes.io/managed-by": "kube-apiserver"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [advertise_address], "conditions": {"ready": True, "serving": True,
                                                                           "terminating": False}}],
        "ports": [{"name": "https", "port": secure_port, "protocol": "TCP"}],
    }, replace=True)
    cluster_config = {
        "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
        "clusterName": "kubelab", "kubernetesVersion": "v1.32.0",
        "controlPlaneEndpoint": f"{advertise_address}:{secure_port}",
        "networking": {"dnsDomain": dns_domain, "podSubnet": pod_cidr, "serviceSubnet": service_cidr},
    }
    await _ensure(registry, "configmaps", "kube-system", {
        "metadata": {"name": "kubeadm-config"},
        "data": {"ClusterConfiguration": yaml.safe_dump(cluster_config, sort_keys=False)},
    }, replace=True)


async def bootstrap_policy(registry: Registry) -> None:
    """The default RBAC roles and bindings (cluster-admin, admin, edit, view, the components'),
    brought back to their defaults at every start, as Kubernetes' autoupdate does."""
    from .rbac import default_cluster_role_bindings, default_cluster_roles
    for role in default_cluster_roles():
        await _ensure(registry, "clusterroles", None, role, replace=True)
    for binding in default_cluster_role_bindings():
        await _ensure(registry, "clusterrolebindings", None, binding, replace=True)
