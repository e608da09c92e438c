"""The NetworkPolicy agent: one nftables table per node (`inet kubelab-netpol`) that reads like
the policies.

- `model`     pure: the policies' semantics over frozen dataclasses (who may reach whom)
- `nftables`  pure: the model rendered as one nftables ruleset, every chain a named constant
- `agent`     the loop: informer-fed caches of pods, namespaces and policies → `nft -f`
- `examples`  small clusters and their expected verdicts (docs, tests)
- `__main__`  the process: flags and the informers
"""
