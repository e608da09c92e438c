"""`kubelab scale TYPE/NAME --replicas N`: a merge patch of the `scale` subresource (what
kubectl sends), so the controller, not the CLI, brings the replicas to N."""

from __future__ import annotations

from kubelab.client import ApiError

from .context import CliError, Context, api_error_line
from .targets import parse_targets


def register(sub) -> None:
    p = sub.add_parser("scale", help="set the number of replicas of a deployment or replicaset",
                       description="Set a new size: scale deployment NAME --replicas N, or scale deploy/NAME --replicas N.")
    p.add_argument("args", nargs="+", metavar="TYPE[/NAME]")
    p.add_argument("--replicas", type=int, required=True, help="the new number of replicas")
    p.add_argument("--current-replicas", type=int, default=None,
                   help="only scale if the current size is this (precondition)")
    p.set_defaults(func=run)


async def run(ctx: Context) -> int:
    args = ctx.args
    if args.replicas < 0:
        raise CliError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    targets = parse_targets(args.args, verb="scale")
    for t in targets:
        if "scale" not in t.rt.subresources:
            raise CliError(f"cannot scale {t.rt.plural}: no scale subresource (deployments, replicasets)")
        if not t.names:
            raise CliError("resource(s) were provided, but no name was specified")
        kind = f"{t.rt.singular}.{t.rt.group}" if t.rt.group else t.rt.singular
        for name in t.names:
            ns = ctx.ns_for(t.rt)
            try:
                if args.current_replicas is not None:
                    cur = await ctx.client.get(t.rt, name, namespace=ns, subresource="scale")
                    have = (cur.get("spec") or {}).get("replicas", 0)
                    if have != args.current_replicas:
                        ctx.error(f"error: Expected replicas to be {args.current_replicas}, was {have}")
                        continue
                await ctx.client.patch(t.rt, name, {"spec": {"replicas": args.replicas}}, namespace=ns,
                                       subresource="scale", patch_type="merge")
            except ApiError as e:
                ctx.error(api_error_line(e))
                continue
            ctx.line(f"{kind}/{name} scaled")
    return 0
