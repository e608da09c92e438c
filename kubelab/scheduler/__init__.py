"""kubelab's scheduler: binds each pending pod to a node, as kube-scheduler's default profile.

- `filters`    pure: which nodes may run the pod (ready, schedulable, taints, node selector, resources)
- `scores`     pure: how much each feasible node is preferred
- `scheduler`  the loop: informers on pods and nodes, a work queue, the Binding it posts
- `main`       flags, health, leader election; `__main__` runs it
"""
