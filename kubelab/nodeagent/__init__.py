"""kubelab's node agent (the kubelet): pods as a network namespace held by a pause process,
wired by the CNI plugin, plus one process per container in the pod's namespaces.

Modules: agent (the control loops), sandbox (netns + pause + CNI calls), containers,
images (the catalogue), rootfs (each container's own / without the node's secrets),
volumes (emptyDir, hostPath, configMap, secret, downwardAPI, projected), probes,
podstatus (pure status computation), routes (other nodes' pod CIDRs), server (the 10250 logs/exec API), agnhost (a test image), simnodes (simulated
nodes for tests and benchmarks).
"""
