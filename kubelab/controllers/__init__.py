"""kubelab controller-manager: one module per control loop (see manager.py for the list).

Each loop is pure "desired state" functions (unit tested) plus a small queue-driven sync.

- `manager`     the process: flags, which loops run, shared informers, leader election
- `base`        what every loop shares: `InformerFactory`, `Context`, the queue-driven `Controller`
- `util`        small pure helpers: selectors, pod states, owner references, endpoint fields
- workloads: `deployment`, `replicaset`, `daemonset`, `job`, `cronjob`
- services: `endpoints`, `endpointslice`
- nodes: `nodeipam` (pod CIDRs), `nodelifecycle` (dead nodes, eviction)
- objects: `garbagecollector` (ownerReferences), `namespace` (deletion), `serviceaccount` (default SA)
- `simulation`  simulated nodes for tests and benchmarks
"""
