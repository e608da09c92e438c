"""`kubelab version`: the CLI's version and the server's `/version`."""

from __future__ import annotations

from importlib import metadata

from . import printers
from .context import Context


def register(sub) -> None:
    p = sub.add_parser("version", help="print the client and server versions")
    p.add_argument("--client", action="store_true", help="client version only (no server needed)")
    p.add_argument("-o", "--output", choices=("yaml", "json"), default=None)
    p.set_defaults(func=run)


def client_version() -> str:
    try:
        return metadata.version("kubelab")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


async def run(ctx: Context) -> int:
    args = ctx.args
    info: dict = {"clientVersion": {"gitVersion": f"v{client_version()}", "program": "kubelab"}}
    server_error = None
    if not args.client:
        try:
            info["serverVersion"] = await ctx.client.request("GET", "/version")
        except Exception as e:  # still print the client's version, like kubectl
            server_error = e
    if args.output == "json":
        ctx.out(printers.to_json(info))
    elif args.output == "yaml":
        ctx.out(printers.to_yaml(info))
    else:
        ctx.line(f"Client Version: {info['clientVersion']['gitVersion']} (kubelab)")
        if "serverVersion" in info:
            ctx.line(f"Server Version: {info['serverVersion'].get('gitVersion', '?')}")
    if server_error is not None:
        raise server_error
    return 0
