"""LoadBalancer Services, MetalLB layer-2 style: a controller hands out addresses, speakers announce them.

Two processes (`python -m kubelab.loadbalancer controller|speaker`), one pure core each:

- `pool.py` — the allocator: pool ranges + the addresses already handed out + one Service →
  a decision (keep, assign, release, pending with a reason). The controller is the *only*
  writer of `status.loadBalancer`, and it decides one Service at a time over one in-memory
  table of assignments, so two Services can never get the same address, however many are
  created at once.
- `announce.py` — which node answers ARP for an address: every speaker computes the same
  answer from API state alone (Ready nodes, and for `externalTrafficPolicy: Local` only nodes
  with a ready local endpoint), so they agree without talking to each other.
- `controller.py` / `speaker.py` — the informer loops and the I/O (status writes, Events,
  `ip addr`, gratuitous ARP).

The service proxy (kubelab.proxy) programs the assigned addresses like ClusterIPs; this
package only gets them assigned and answered for on the node network.
"""
