"""`kubelab delete`: by name, `-f`, `-l`, `--all`; waits until the objects are gone (like
kubectl's default `--wait=true`), since pods leave only when their node confirms."""

from __future__ import annotations

import asyncio
import time

from kubelab.client import ApiError, NotFound
from kubelab.flags import bool_flag, duration_flag
from kubelab.resources import ResourceType

from . import manifests
from .apply import place
from .context import CliError, Context, api_error_line
from .targets import parse_targets


def register(sub) -> None:
    p = sub.add_parser("delete", help="delete resources by name, file, or label selector",
                       description="Delete resources: TYPE NAME..., TYPE/NAME..., -f FILE, TYPE -l SELECTOR, TYPE --all.")
    p.add_argument("args", nargs="*", metavar="TYPE[/NAME]")
    p.add_argument("-f", "--filename", action="append", metavar="FILE|DIR|-")
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("-l", "--selector", help="label selector")
    p.add_argument("--all", action="store_true", help="delete every object of the type in the namespace")
    p.add_argument("--grace-period", type=int, default=-1,
                   help="seconds given to the object to terminate (-1: the object's default; 0 with --force)")
    p.add_argument("--now", action="store_true", help="same as --grace-period=1")
    p.add_argument("--force", action="store_true", help="with --grace-period=0: delete immediately")
    p.add_argument("--wait", type=bool_flag, nargs="?", const=True, default=True,
                   help="wait until the objects are gone (default true)")
    p.add_argument("--timeout", type=duration_flag, default=60.0,
                   help="how long to wait: a Go duration such as 1m30s (default 60s)")
    p.add_argument("--ignore-not-found", action="store_true")
    p.set_defaults(func=run)


def deleted_line(rt: ResourceType, name: str) -> str:
    kind = f"{rt.singular}.{rt.group}" if rt.group else rt.singular
    return f'{kind} "{name}" deleted'


async def _gone(ctx: Context, rt: ResourceType, name: str, ns: str | None, uid: str | None, deadline: float) -> bool:
    while True:
        try:
            obj = await ctx.client.get(rt, name, namespace=ns)
        except NotFound:
            return True
        if uid and (obj.get("metadata") or {}).get("uid") != uid:
            return True  # a new object of the same name: the old one is gone
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)


async def run(ctx: Context) -> int:
    args = ctx.args
    grace: int | None = None if args.grace_period < 0 else args.grace_period
    if args.now:
        grace = 1
    if grace == 0 and not args.force:
        grace = 1  # kubectl: --grace-period=0 without --force means 1
    todo: list[tuple[ResourceType, str, str | None]] = []
    if args.filename:
        if args.args:
            raise CliError("cannot give both -f and resource arguments")
        for m in manifests.read(args.filename, recursive=args.recursive):
            rt, ns, obj = place(ctx, m.obj)
            todo.append((rt, obj["metadata"]["name"], ns))
    else:
        targets = parse_targets(args.args, verb="delete")
        for t in targets:
            ns = ctx.ns_for(t.rt) if not ctx.all_namespaces else None
            if t.names:
                if args.selector or args.all:
                    raise CliError("name cannot be provided when a selector or --all is specified")
                todo.extend((t.rt, n, ctx.namespace if t.rt.namespaced else None) for n in t.names)
            elif args.selector or args.all:
                listed = await ctx.client.list(t.rt, namespace=ns, label_selector=args.selector)
                todo.extend((t.rt, o["metadata"]["name"], o["metadata"].get("namespace")) for o in listed["items"])
            else:
                raise CliError("resource(s) were provided, but no name was specified")
        if not todo:
            where = f" in {ctx.namespace} namespace" if any(t.rt.namespaced for t in targets) else ""
            raise CliError(f"No resources found{where}.", code=0, raw=True)
    waiting = []
    for rt, name, ns in todo:
        try:
            resp = await ctx.client.delete(rt, name, namespace=ns, grace_period_seconds=grace,
                                           propagation_policy="Background")
        except NotFound as e:
            if not args.ignore_not_found:
                ctx.error(api_error_line(e))
            continue
        except ApiError as e:
            ctx.error(api_error_line(e))
            continue
        ctx.line(deleted_line(rt, name))
        uid = (resp.get("metadata") or {}).get("uid") if resp.get("kind") != "Status" else None
        waiting.append((rt, name, ns, uid))
    if args.wait and waiting:
        deadline = time.monotonic() + args.timeout
        results = await asyncio.gather(*(_gone(ctx, rt, n, ns, uid, deadline) for rt, n, ns, uid in waiting))
        for (rt, name, _, _), ok in zip(waiting, results):
            if not ok:
                ctx.error(f"error: timed out waiting for the condition on {rt.group_resource}/{name}")
    return 0
