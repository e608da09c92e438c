"""The lab's identities, as Kubernetes The Hard Way issues them, and a kubeconfig for each.

One directory holds everything (`ca.crt`, `<identity>.crt/.key`, `sa.key`/`sa.pub`,
`<identity>.kubeconfig`). Who is who comes from the certificate: Kubernetes takes the user
from the CN and the groups from O, so `admin` is O `system:masters` and a node is
`system:node:<name>` in `system:nodes` (what the RBAC bindings and the node authorizer match).

etcd has a CA of its own (`etcd-ca.crt`, kubeadm's `etcd/ca`): etcd trusts only it, and it
signs only etcd's server and peer certificates, the API server's etcd client certificate and
a health-check client. etcd has no authorization of its own here, so whoever etcd accepts
reads every Secret: no user, node or component certificate of the cluster CA may open it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kubelab.client.kubeconfig import render

from . import ca as pki

API_SERVICE_IP = "10.96.0.1"
API_DNS = ("kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
           "localhost")


@dataclass(frozen=True)
class Identity:
    name: str                    # file stem
    cn: str
    orgs: tuple[str, ...] = ()
    server: bool = False
    client: bool = True
    kubeconfig: bool = False     # a client of the API server


COMPONENTS = (
    Identity("admin", "admin", ("system:masters",), kubeconfig=True),
    Identity("kube-controller-manager", "system:kube-controller-manager", kubeconfig=True),
    Identity("kube-scheduler", "system:kube-scheduler", kubeconfig=True),
    Identity("kube-proxy", "system:kube-proxy", kubeconfig=True),
    Identity("kube-dns", "system:kube-dns", kubeconfig=True),
    Identity("kubelab-netpol", "system:kubelab-netpol", kubeconfig=True),  # the NetworkPolicy agent
    Identity("kubelab-lb-controller", "system:kubelab-lb-controller", kubeconfig=True),  # LoadBalancer addresses
    Identity("kubelab-lb-speaker", "system:kubelab-lb-speaker", kubeconfig=True),  # their ARP on each node
    # The API server's identity towards node agents (logs/exec) and etcd.
    Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
)

ETCD_CA = "etcd-ca"
# Signed by the etcd CA (never by the cluster CA): the API server's client certificate towards
# etcd, and a client for health probes (kubeadm's etcd/healthcheck-client).
ETCD_CLIENTS = (
    Identity("apiserver-etcd-client", "kube-apiserver-etcd-client"),
    Identity("etcd-healthcheck-client", "kube-etcd-healthcheck-client"),
)


SERVING_COMPONENTS = ("kube-controller-manager", "kube-scheduler", "kubelab-lb-controller")


def node_identity(node: str) -> Identity:
    return Identity(f"node-{node}", f"system:node:{node}", ("system:nodes",), server=True, kubeconfig=True)


def user_identity(user: str, groups: tuple[str, ...] = ()) -> Identity:
    return Identity(f"user-{user}", user, tuple(groups), kubeconfig=True)


def apiserver_sans(ips: list[str] | tuple[str, ...], dns_domain: str = "cluster.local") -> tuple[list[str], list[str]]:
    dns = [d.replace("cluster.local", dns_domain) for d in API_DNS]
    return dns, [*ips, API_SERVICE_IP, "127.0.0.1"]


def _paths(directory: str, name: str) -> tuple[str, str]:
    return os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")


def load_ca(directory: str) -> pki.KeyPair:
    try:
        return pki.load_pair(directory, "ca")
    except FileNotFoundError:
        raise FileNotFoundError(f"no CA in {directory} (run `kubelab pki init --dir {directory}` first)") from None


def load_etcd_ca(directory: str) -> pki.KeyPair:
    try:
        return pki.load_pair(directory, ETCD_CA)
    except FileNotFoundError:
        raise FileNotFoundError(f"no etcd CA in {directory} (run `kubelab pki init --dir {directory}`)") from None


def write_kubeconfig(directory: str, ident: Identity, *, server: str) -> str:
    crt, key = _paths(directory, ident.name)
    path = os.path.join(directory, f"{ident.name}.kubeconfig")
    text = render(server=server, user=ident.cn, ca_file=os.path.abspath(os.path.join(directory, "ca.crt")),
                  client_cert=os.path.abspath(crt), client_key=os.path.abspath(key))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def issue_identity(directory: str, ident: Identity, *, server_url: str | None = None, days: int = 365,
                   dns: list[str] | tuple[str, ...] = (), ips: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Sign `ident` with the directory's CA; the files written."""
    ca = load_ca(directory)
    pair = pki.issue(ca, cn=ident.cn, orgs=ident.orgs, server=ident.server, client=ident.client, days=days,
                     dns=dns, ips=ips)
    written = list(pki.write_pair(directory, ident.name, pair))
    if ident.kubeconfig and server_url:
        written.append(write_kubeconfig(directory, ident, server=server_url))
    return written


def init(directory: str, *, apiserver_ips: list[str] | tuple[str, ...] = ("192.168.56.10",),
         nodes: list[str] | tuple[str, ...] = (), node_ips: dict[str, str] | None = None,
         etcd_ips: list[str] | tuple[str, ...] = (), etcd_names: list[str] | tuple[str, ...] = (),
         server_url: str | None = None, dns_domain: str = "cluster.local", days: int = 365,
         force: bool = False) -> list[str]:
    """The whole lab PKI in `directory`; keeps an existing CA unless `force` (re-running
    re-issues leaves, so everything stays signed by the CA the cluster already trusts)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    written: list[str] = []
    ca_crt, _ = _paths(directory, "ca")
    if force or not os.path.exists(ca_crt):
        written += pki.write_pair(directory, "ca", pki.create_ca("kubelab-ca", days=3650))
    ca = load_ca(directory)
    server_url = server_url or f"https://{apiserver_ips[0] if apiserver_ips else '127.0.0.1'}:6443"
    dns, ips = apiserver_sans(list(apiserver_ips), dns_domain)
    written += pki.write_pair(directory, "apiserver", pki.issue(
        ca, cn="kube-apiserver", dns=dns, ips=ips, server=True, client=False, days=days))
    for ident in COMPONENTS:
        written += issue_identity(directory, ident, server_url=server_url, days=days)
    # the controller-manager's (10257) and scheduler's (10259) status ports: HTTPS as upstream,
    # on the control plane's addresses
    for name in SERVING_COMPONENTS:
        written += pki.write_pair(directory, f"{name}-server", pki.issue(
            ca, cn=name, dns=[name, "localhost"], ips=[*apiserver_ips, "127.0.0.1"], server=True, client=False,
            days=days))
    for node in nodes:
        ip = (node_ips or {}).get(node)
        written += issue_identity(directory, node_identity(node), server_url=server_url, days=days,
                                  dns=[node], ips=[ip] if ip else [])
    # etcd: its own CA (kept like the cluster CA; made when missing, e.g. a PKI from before it
    # existed), one server cert (all members' names and addresses), one peer cert, and its
    # only clients. Both usages on server/peer certs, as etcd's docs and kubeadm do.
    if force or not os.path.exists(os.path.join(directory, f"{ETCD_CA}.crt")):
        written += pki.write_pair(directory, ETCD_CA, pki.create_ca("kubelab-etcd-ca", days=3650))
    etcd_ca = load_etcd_ca(directory)
    e_ips = [*etcd_ips, "127.0.0.1"]
    e_names = [*etcd_names, "localhost"]
    written += pki.write_pair(directory, "etcd-server", pki.issue(
        etcd_ca, cn="etcd-server", dns=e_names, ips=e_ips, server=True, client=True, days=days))
    written += pki.write_pair(directory, "etcd-peer", pki.issue(
        etcd_ca, cn="etcd-peer", dns=e_names, ips=e_ips, server=True, client=True, days=days))
    for ident in ETCD_CLIENTS:
        written += pki.write_pair(directory, ident.name, pki.issue(
            etcd_ca, cn=ident.cn, orgs=ident.orgs, server=False, client=True, days=days))
    sa_key = os.path.join(directory, "sa.key")
    if force or not os.path.exists(sa_key):
        key = pki.new_key("rsa")
        pki.write_key(sa_key, key)
        with open(os.path.join(directory, "sa.pub"), "wb") as f:
            f.write(pki.public_pem(key))
        written += [sa_key, os.path.join(directory, "sa.pub")]
    return written


def apiserver_flags(directory: str, *, authorization_mode: str = "RBAC,Node") -> list[str]:
    """The API server flags for this PKI (what the lab and Ansible pass)."""
    d = os.path.abspath(directory)
    return ["--tls-cert-file", f"{d}/apiserver.crt", "--tls-private-key-file", f"{d}/apiserver.key",
            "--client-ca-file", f"{d}/ca.crt", "--service-account-key-file", f"{d}/sa.key",
            "--authorization-mode", authorization_mode,
            "--etcd-cafile", f"{d}/{ETCD_CA}.crt", "--etcd-certfile", f"{d}/apiserver-etcd-client.crt",
            "--etcd-keyfile", f"{d}/apiserver-etcd-client.key"]


def etcd_flags(directory: str) -> list[str]:
    """etcd trusts the etcd CA only, for clients and peers alike."""
    d = os.path.abspath(directory)
    return ["--cert-file", f"{d}/etcd-server.crt", "--key-file", f"{d}/etcd-server.key",
            "--trusted-ca-file", f"{d}/{ETCD_CA}.crt", "--client-cert-auth",
            "--peer-cert-file", f"{d}/etcd-peer.crt", "--peer-key-file", f"{d}/etcd-peer.key",
            "--peer-trusted-ca-file", f"{d}/{ETCD_CA}.crt", "--peer-client-cert-auth"]
