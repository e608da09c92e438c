"""kubelab's CNI plugins: kubelab-bridge (bridge + veth per pod) and kubelab-ipam (host-local).

spec.py     the CNI protocol: env, config, results per spec version, error codes, the skel
bridge.py   kubelab-bridge's ADD/DEL/CHECK/STATUS/GC
ipam.py     kubelab-ipam: pure allocator + file store
netlink.py  every link/address/route change (pyroute2)
nft.py      pod masquerade rules (table `ip kubelab-cni`)
invoke.py   running plugins: IPAM delegation, and conflists for the node agent
"""
