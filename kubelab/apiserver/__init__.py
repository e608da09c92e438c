"""kubelab's API server: the only component that talks to etcd; everything else talks to it.

A request's way through, outermost first (docs/architecture.md draws it):

    security.Guard ─→ app.ResourceRouter ─→ app.ResourceHandler ─→ registry.Registry ─→ storage
    (authn, authz,     (resource paths;      (one method per        (REST semantics:      (etcd)
     limits; parses     the rest to FastAPI)  verb; routing table)   defaults, validation,
     the path once)                                                  admission, watch cache)

Serving HTTP
- `__main__`      the process: flags, TLS, uvicorn
- `flags`         the security flags (kube-apiserver's names) → `security.SecurityConfig`
- `app`           the ASGI app: routing table, `ResourceHandler`, discovery/health routes
- `request`       the request grammar: `Target`/`parse_path`, body decoding, query options
- `status`        every error as a Kubernetes Status
- `discovery`, `openapi`, `openapi_v2`   what kubectl downloads to learn the API
- `tables`        server-side printing (`kubectl get` columns)
- `metrics`       `/metrics` under kube-apiserver's names
- `nodeproxy`     pods/log, pods/exec, nodes/proxy: relayed to the node agent
- `tokenrequest`  serviceaccounts/token: signed service-account tokens

Security
- `security`      the filter every request passes: authenticate, authorize, limit
- `authn`, `authz`, `rbac`   who is asking; the authorizer chain; RBAC rules (pure)
- `noderestriction`, `externalips`   admission: what a node may write, who may claim an IP

Objects
- `registry`      create/get/list/update/patch/delete/watch of every resource
- `shapes`        JSON types and field names, checked first (unknown fields: Strict/Warn/Ignore)
- `defaults`      what a manifest leaves out, filled in as upstream does
- `validation/`   field validation by API group (a package: see its docstring)
- `patch`, `yamlbody`, `protobuf`, `selector`   body and query grammars the registry applies
- `allocators`    ClusterIPs and NodePorts, reserved in the same etcd transaction
- `bootstrap`     what exists before any other component (namespaces, RBAC defaults, the Service)

Storage
- `storage`       etcd and nothing else (the only module importing the etcd client)
- `watchcache`    one etcd watch per resource, fanned out to every client watch
"""
