"""The NetworkPolicy agent: one nftables table per node (`inet kubelab-netpol`) that reads like
the policies. model.py holds the semantics, nftables.py the renderer, agent.py the loop."""
