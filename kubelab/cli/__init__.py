"""The `kubelab` command: kubectl's everyday verbs against a kubelab API server, plus the lab's own.

- `__main__`, `main`     the entry point and the verb table (argument parsing)
- `context`, `targets`   what every verb needs (connection, namespace, types) and what the user named
- verbs: `get`, `describe`, `apply`, `delete`, `patch`, `scale`, `expose`, `auth`, `podio` (exec, logs),
  `version`, `kubeconfig_cmd`, `pki`, `restart`
- the lab's verbs: `lab` (up, down, status, logs, trace, timeline), `netpol`, `exercise`, `scenario`, `ui`
- pure helpers: `manifests` (reading -f), `applypatch` (three-way merge), `printers` (output),
  `jsonpath` and `gotemplate` (kubectl's template languages)
"""
