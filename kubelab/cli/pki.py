"""`kubelab pki init|issue|show|token`: the lab's CA, certificates and kubeconfigs.

No API server needed: these only read and write files in one directory (default
`./pki`). Key material is never printed; `show` prints subjects, SANs and dates.
"""

from __future__ import annotations

import json
import os

from .context import CliError, Context


def register(sub) -> None:
    p = sub.add_parser("pki", help="the lab PKI: CA, certificates, kubeconfigs",
                       description="Make and inspect the lab's certificates (as in Kubernetes The Hard Way).")
    verbs = p.add_subparsers(dest="pki_verb", metavar="VERB", required=True)

    i = verbs.add_parser("init", help="create the CA and every component's certificate and kubeconfig")
    i.add_argument("--dir", default="pki", help="output directory (default: %(default)s)")
    i.add_argument("--apiserver-ip", action="append", default=None,
                   help="API server address (SAN), repeatable (default: 192.168.56.10)")
    i.add_argument("--node", action="append", default=[], metavar="NAME[=IP]",
                   help="a node to issue system:node:NAME for, repeatable")
    i.add_argument("--etcd", action="append", default=[], metavar="NAME=IP",
                   help="an etcd member (SANs of the etcd server/peer certs), repeatable")
    i.add_argument("--server-url", default=None, help="API server URL in the kubeconfigs "
                                                      "(default: https://FIRST-APISERVER-IP:6443)")
    i.add_argument("--days", type=int, default=365, help="leaf validity in days (default: %(default)s)")
    i.add_argument("--force", action="store_true", help="replace an existing CA and service-account key")
    i.set_defaults(func=run_init)

    s = verbs.add_parser("issue", help="issue one more certificate (and kubeconfig) from the CA")
    s.add_argument("kind", choices=("node", "user", "component"), help="what to issue")
    s.add_argument("name", help="node name, user name, or component (admin, kube-proxy, ...)")
    s.add_argument("--group", action="append", default=[], help="user groups (O), repeatable")
    s.add_argument("--ip", action="append", default=[], help="SAN address (nodes), repeatable")
    s.add_argument("--dir", default="pki", help="PKI directory (default: %(default)s)")
    s.add_argument("--server-url", default="https://192.168.56.10:6443",
                   help="API server URL in the kubeconfig (default: %(default)s)")
    s.add_argument("--days", type=int, default=365)
    s.set_defaults(func=run_issue)

    w = verbs.add_parser("show", help="describe certificates (subject, groups, SANs, validity)")
    w.add_argument("paths", nargs="*", help="certificate files (default: every .crt in --dir)")
    w.add_argument("--dir", default="pki")
    w.add_argument("-o", "--output", choices=("json",), default=None)
    w.set_defaults(func=run_show)

    t = verbs.add_parser("token", help="sign a service-account token with the PKI's sa.key")
    t.add_argument("serviceaccount", help="NAMESPACE/NAME")
    t.add_argument("--uid", required=True, help="the ServiceAccount's metadata.uid")
    t.add_argument("--dir", default="pki")
    t.add_argument("--ttl", type=int, default=3600, help="seconds (default: %(default)s)")
    t.set_defaults(func=run_token)


async def run_init(ctx: Context) -> int:
    from kubelab.pki import certs
    a = ctx.args
    nodes, node_ips = [], {}
    for spec in a.node:
        name, _, ip = spec.partition("=")
        nodes.append(name)
        if ip:
            node_ips[name] = ip
    etcd_names, etcd_ips = [], []
    for spec in a.etcd:
        name, _, ip = spec.partition("=")
        etcd_names.append(name)
        if ip:
            etcd_ips.append(ip)
    try:
        written = certs.init(a.dir, apiserver_ips=a.apiserver_ip or ["192.168.56.10"], nodes=nodes,
                             node_ips=node_ips, etcd_ips=etcd_ips, etcd_names=etcd_names,
                             server_url=a.server_url, days=a.days, force=a.force)
    except (OSError, ValueError) as e:
        raise CliError(str(e)) from None
    ctx.line(f"wrote {len(written)} files in {a.dir} (keys are mode 0600)")
    ctx.line("API server flags: " + " ".join(certs.apiserver_flags(a.dir)))
    return 0


async def run_issue(ctx: Context) -> int:
    from kubelab.pki import certs
    a = ctx.args
    if a.kind == "node":
        ident = certs.node_identity(a.name)
    elif a.kind == "user":
        ident = certs.user_identity(a.name, tuple(a.group))
    else:
        known = {c.name: c for c in certs.COMPONENTS}
        if a.name in {c.name for c in certs.ETCD_CLIENTS}:
            raise CliError(f"{a.name} is signed by the etcd CA, not the cluster CA: "
                           f"`kubelab pki init --dir {a.dir}` re-issues it")
        if a.name not in known:
            raise CliError(f"unknown component {a.name!r} (one of: {', '.join(known)})")
        ident = known[a.name]
    try:
        written = certs.issue_identity(a.dir, ident, server_url=a.server_url, days=a.days,
                                       dns=[a.name] if a.kind == "node" else [], ips=a.ip)
    except (OSError, ValueError) as e:
        raise CliError(str(e)) from None
    for path in written:
        ctx.line(f"wrote {path}")
    return 0


async def run_show(ctx: Context) -> int:
    from kubelab.pki import ca
    a = ctx.args
    paths = a.paths or sorted(os.path.join(a.dir, f) for f in os.listdir(a.dir) if f.endswith(".crt")) \
        if (a.paths or os.path.isdir(a.dir)) else []
    if not paths:
        raise CliError(f"no certificates in {a.dir}")
    out = {}
    for path in paths:
        try:
            out[path] = ca.describe(ca.load_cert(path))
        except (OSError, ValueError) as e:
            raise CliError(f"{path}: {e}") from None
    if a.output == "json":
        ctx.out(json.dumps(out, indent=2) + "\n")
        return 0
    for path, d in out.items():
        groups = ",".join(d["subject"]["O"]) or "-"
        ctx.line(f"{path}: CN={','.join(d['subject']['CN'])} O={groups} {'/'.join(d['usages']) or 'ca'}"
                 f" until {d['notAfter']}" + (f" SANs={','.join(d['sans'])}" if d["sans"] else ""))
    return 0


async def run_token(ctx: Context) -> int:
    from kubelab.pki import tokens
    a = ctx.args
    ns, sep, name = a.serviceaccount.partition("/")
    if not sep or not ns or not name:
        raise CliError("service account must be NAMESPACE/NAME")
    try:
        key = tokens.load_signing_key(os.path.join(a.dir, "sa.key"))
    except (OSError, ValueError) as e:
        raise CliError(f"cannot read the service-account key: {e}") from None
    ctx.out(tokens.service_account_token(key, namespace=ns, name=name, uid=a.uid, ttl=a.ttl) + "\n")
    return 0
