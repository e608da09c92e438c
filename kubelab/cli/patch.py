"""`kubelab patch TYPE NAME -p PATCH [--type strategic|merge|json]`: the server applies it;
the CLI only reads the patch, sends it, and says whether anything changed."""

from __future__ import annotations

import json

import yaml

from kubelab.client import ApiError

from .context import CliError, Context, api_error_line
from .printers import kind_prefix
from .targets import parse_targets


def register(sub) -> None:
    p = sub.add_parser("patch", help="update fields of a resource with a patch",
                       description="Patch a resource: patch TYPE NAME -p '{\"spec\":{...}}' [--type strategic|merge|json].")
    p.add_argument("args", nargs="+", metavar="TYPE[/NAME]")
    p.add_argument("-p", "--patch", default=None, help="the patch, as JSON or YAML")
    p.add_argument("--patch-file", default=None, help="a file holding the patch")
    p.add_argument("--type", dest="patch_type", default="strategic", choices=("strategic", "merge", "json"))
    p.add_argument("--subresource", default=None, choices=("status", "scale"))
    p.set_defaults(func=run)


def parse_patch(text: str, patch_type: str):
    """JSON (or YAML, which kubectl also accepts) → the patch value, checked for its type."""
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise CliError(f"unable to parse \"{text}\": {e}") from None
    if patch_type == "json":
        if not isinstance(value, list):
            raise CliError(f"unable to parse \"{text}\": a json patch must be a list of operations")
    elif not isinstance(value, dict):
        raise CliError(f"unable to parse \"{text}\": a {patch_type} patch must be an object")
    return value


def _comparable(obj: dict) -> dict:
    """The object without the fields every write changes (to tell "no change")."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


async def run(ctx: Context) -> int:
    args = ctx.args
    if (args.patch is None) == (args.patch_file is None):
        raise CliError("must specify exactly one of --patch (-p) or --patch-file")
    text = args.patch
    if args.patch_file:
        try:
            with open(args.patch_file, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise CliError(f"cannot read {args.patch_file}: {e.strerror}") from None
    patch = parse_patch(text, args.patch_type)
    targets = parse_targets(args.args, verb="patch")
    for t in targets:
        if not t.names:
            raise CliError("resource(s) were provided, but no name was specified")
        ns = ctx.ns_for(t.rt)
        for name in t.names:
            try:
                before = await ctx.client.get(t.rt, name, namespace=ns)
                after = await ctx.client.patch(t.rt, name, patch, namespace=ns, subresource=args.subresource,
                                               patch_type=args.patch_type)
            except ApiError as e:
                ctx.error(api_error_line(e))
                continue
            same = _comparable(before) == _comparable(after)
            ctx.line(f"{kind_prefix(t.rt)}/{name} patched" + (" (no change)" if same else ""))
    return 0
