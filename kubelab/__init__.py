"""kubelab: a mini-Kubernetes in Python, built so students can see how Kubernetes works.

Components (one package each; none imports another — `make lint` checks it):
`apiserver`, `controllers`, `scheduler`, `nodeagent` (the kubelet), `proxy` (kube-proxy),
`dns`, `netpol` (NetworkPolicy agent), `ui` (the web view).

Shared machinery below them: `client` (REST, informers, work queue, events, leader election),
`pki` (CA, certificates, tokens), `cni` (the bridge and IPAM plugins); and one module per value
grammar or shared table: `resources` (the API types), `labels`, `nodematch`, `podfields`,
`quantity`, `durations`, `timestamps`, `procid`, `flags`, `serving` (status endpoints).

Around them: `lab` (the lab kit: `kubelab up`), `cli` (the `kubelab` command), `testing`
(real etcd and API server processes for tests and benchmarks). docs/architecture.md draws it.
"""

__version__ = "0.1.0"
