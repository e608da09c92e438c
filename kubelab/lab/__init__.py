"""The lab: real control plane and nodes on one machine (network namespaces, a bridge, processes).

- `lab`         `kubelab up`, `down`, `status`, `logs`: the life cycle
- `components`  which processes run on which node, with which flags (the VMs' command lines)
- `topology`    the node network: one bridge, one namespace per node, a veth each
- `supervisor`  one small daemon per lab that plays systemd for the nodes
- `state`       what `up` made, recorded so `down` removes exactly that
- `userconfig`  the lab's entries in the user's kubeconfig, as kind does it
- `trace`, `resolver`, `reach`, `timeline`   what the lab shows students: a request's path hop by
  hop, a pod's resolver, the reachability matrix, the boot sequence
- `kit/`        exercises and break-fix scenarios (a package: see its docstring)
- `testing`     a real lab for tests and benchmarks, under a unique name
"""
