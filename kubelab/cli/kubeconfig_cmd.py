"""`kubelab kubeconfig`: write a kubeconfig so the real kubectl (and every kubelab
component) talks to this cluster."""

from __future__ import annotations

import os

import yaml

from kubelab.client.kubeconfig import default_path, render

from .context import DEFAULT_SERVER, CliError, Context


def register(sub) -> None:
    p = sub.add_parser("kubeconfig", help="write a kubeconfig for kubectl",
                       description="Write a kubeconfig pointing at the API server (--server, else the current "
                                   "connection's, else http://127.0.0.1:6443). -o - prints it.")
    p.add_argument("-o", "--output", default=None,
                   help="file to write (default: $KUBECONFIG or ~/.kube/config); - for stdout")
    p.add_argument("--force", action="store_true", help="overwrite a kubeconfig that is not kubelab's")
    p.add_argument("--export", action="store_true",
                   help="merge a lab's cluster/user/context (kubelab-<lab>) into your kubeconfig and make it "
                        "current, as `kind export kubeconfig` (`kubelab down` removes them); -o - prints it")
    from kubelab.lab.lab import DEFAULT_ROOT
    p.add_argument("--name", default="lab", help="with --export: the lab (default: lab)")
    p.add_argument("--root-dir", default=DEFAULT_ROOT, help="with --export: where labs keep their state")
    p.set_defaults(func=run)


def _ours(path: str) -> bool:
    """Overwrite only kubelab's own kubeconfigs unless --force: a student's ~/.kube/config
    for another cluster must survive."""
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(cfg, dict) and cfg.get("current-context") == "kubelab" and \
        [c.get("name") for c in cfg.get("clusters") or []] == ["kubelab"]


async def run(ctx: Context) -> int:
    args = ctx.args
    if args.export:
        from .lab import run_export_kubeconfig
        return await run_export_kubeconfig(ctx)
    server = getattr(args, "server", None)
    if not server:
        try:
            server = ctx.connection().server
        except CliError:
            server = DEFAULT_SERVER
    ns = args.namespace if getattr(args, "namespace", None) else None
    text = render(server=server.rstrip("/"), namespace=ns)
    if args.output == "-":
        ctx.out(text)
        return 0
    path = args.output or default_path()
    if os.path.exists(path) and not args.force and not _ours(path):
        raise CliError(f"{path} exists and is not a kubelab kubeconfig; use -o FILE or --force")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    hint = "" if path == default_path() else f"KUBECONFIG={path} "
    ctx.line(f"wrote {path} (server {server}); try: {hint}kubectl get nodes")
    return 0
