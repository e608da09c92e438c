"""The cluster DNS server (the kube-dns add-on's role), answering from the API server's Services.

- `records`   pure: Services and EndpointSlices → an immutable zone snapshot, and answers from it
- `watch`     where the objects come from: informers on the API server, or a file
- `server`    the wire side: UDP and TCP listeners answering from the current snapshot
- `forward`   names outside the cluster zone: one upstream, with a TTL-honouring cache
- `status`    metrics and `/health`, `/ready`, `/metrics`
- `examples`  a small cluster and what DNS must answer for it (docs, tests)
- `__main__`  the process and its flags
"""
