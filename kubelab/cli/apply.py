"""`kubelab apply -f` (client-side apply, like kubectl's default) and `kubelab create`
(`-f`, and the generators `deployment`, `namespace`, `configmap`)."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re

from kubelab.apiserver.patch import PatchError, apply_patch
from kubelab.client import AlreadyExists, ApiError, NotFound
from kubelab.client.errors import error_for
from kubelab.resources import ResourceType, for_object

from . import manifests, printers
from .applypatch import original_of, three_way_patch, with_last_applied
from .context import CliError, Context, api_error_line


def register(sub) -> None:
    p = sub.add_parser("apply", help="create or update resources from files (client-side apply)",
                       description="Apply a configuration to resources from files, directories or stdin (-f -). "
                                   "Objects are created, or patched with a three-way strategic merge against the "
                                   "kubectl.kubernetes.io/last-applied-configuration annotation.")
    p.add_argument("-f", "--filename", action="append", required=True, metavar="FILE|DIR|-")
    p.add_argument("-R", "--recursive", action="store_true", help="walk directories recursively")
    p.add_argument("-o", "--output", help="name|yaml|json: print the applied objects instead")
    p.add_argument("--dry-run", choices=("none", "client", "server"), default="none", nargs="?", const="client")
    add_validate_flag(p)
    p.set_defaults(func=run_apply)

    c = sub.add_parser("create", help="create resources from files or generators",
                       description="Create resources from -f FILE, or with a generator: "
                                   "deployment NAME --image=IMG, namespace NAME, configmap NAME --from-literal=k=v.")
    c.add_argument("-f", "--filename", action="append", metavar="FILE|DIR|-")
    c.add_argument("-R", "--recursive", action="store_true")
    c.add_argument("-o", "--output", help="name|yaml|json")
    c.add_argument("--dry-run", choices=("none", "client", "server"), default="none", nargs="?", const="client")
    add_validate_flag(c)
    c.set_defaults(func=run_create, generator=None)
    gens = c.add_subparsers(dest="generator", metavar="GENERATOR")
    d = gens.add_parser("deployment", aliases=["deploy"], help="create a deployment")
    d.add_argument("name")
    d.add_argument("--image", action="append", required=True, help="container image (repeat for more)")
    d.add_argument("-r", "--replicas", type=int, default=1)
    d.add_argument("--port", type=int, default=None, help="container port to expose")
    d.add_argument("command", nargs="*", help="command after --")
    d.set_defaults(func=run_create, build=deployment_object)
    n = gens.add_parser("namespace", aliases=["ns"], help="create a namespace")
    n.add_argument("name")
    n.set_defaults(func=run_create, build=namespace_object)
    m = gens.add_parser("configmap", aliases=["cm"], help="create a configmap")
    m.add_argument("name")
    m.add_argument("--from-literal", action="append", default=[], metavar="KEY=VALUE")
    m.add_argument("--from-file", action="append", default=[], metavar="[KEY=]PATH")
    m.set_defaults(func=run_create, build=configmap_object)
    for g in (d, n, m):
        g.add_argument("-o", "--output", default=argparse.SUPPRESS)
        g.add_argument("--dry-run", choices=("none", "client", "server"), nargs="?", const="client",
                       default=argparse.SUPPRESS)
        add_validate_flag(g, default=argparse.SUPPRESS)


# --- --validate: kubectl's server-side field validation ------------------------------------------

FIELD_VALIDATION = {"strict": "Strict", "true": "Strict", "warn": "Warn", "ignore": "Ignore", "false": "Ignore"}


def add_validate_flag(parser, *, default=None) -> None:
    """Validation values are checked when the verb runs, so a bad one is kubectl's one-line error
    (exit 1), not an argparse usage error."""
    parser.add_argument("--validate", nargs="?", const="strict", default=default or "strict",
                        metavar="strict|warn|ignore",
                        help="unknown fields: strict (or true) rejects the object, warn creates it and prints "
                             "a warning, ignore (or false) drops them silently (default strict)")


def field_validation(args) -> str:
    """`--validate` → the `fieldValidation` query value."""
    value = getattr(args, "validate", None) or "strict"
    try:
        return FIELD_VALIDATION[value]
    except KeyError:
        raise CliError(f'invalid - validate option "{value}"; must be one of: strict (or true), warn, '
                       f'ignore (or false)') from None


def with_source(e: ApiError, verb: str, source: str | None) -> ApiError:
    """kubectl's AddSourceToErr: `error when creating "app.yaml": ...` in the server's message."""
    if not source:
        return e
    where = json.dumps(source, ensure_ascii=False)
    return error_for({**e.status, "message": f"error when {verb} {where}: {e.message}"}, e.code)


# --- generators (pure) -------------------------------------------------------------------------

_NAME_CHARS = re.compile(r"[^a-z0-9-]+")


def container_name(image: str) -> str:
    """kubectl's: `registry:5000/team/nginx:1.25@sha...` → `nginx`."""
    base = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return _NAME_CHARS.sub("-", base.lower()).strip("-") or "app"


def deployment_object(args) -> dict:
    labels = {"app": args.name}
    containers = []
    for image in args.image:
        c: dict = {"name": container_name(image), "image": image}
        if args.port:
            c["ports"] = [{"containerPort": args.port}]
        containers.append(c)
    if args.command:
        containers[0]["command"] = list(args.command)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": args.name, "labels": labels},
            "spec": {"replicas": args.replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}}}


def namespace_object(args) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.name}}


def configmap_object(args) -> dict:
    data: dict[str, str] = {}
    for lit in args.from_literal:
        k, sep, v = lit.partition("=")
        if not sep or not k:
            raise CliError(f"invalid literal source {lit}, expected key=value")
        data[k] = v
    for src in args.from_file:
        k, sep, path = src.partition("=")
        if not sep:
            k, path = os.path.basename(src), src
        try:
            with open(path, encoding="utf-8") as f:
                data[k] = f.read()
        except OSError as e:
            raise CliError(f"error reading {path}: {e.strerror}") from None
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": args.name}, "data": data}


# --- shared ------------------------------------------------------------------------------------

def _type_of(obj: dict) -> ResourceType:
    try:
        return for_object(obj)
    except KeyError as e:
        raise CliError(f'resource mapping not found for name: "{(obj.get("metadata") or {}).get("name", "")}" '
                       f'namespace: "" from "": {e.args[0]}; ensure CRDs are installed first') from None


def place(ctx: Context, obj: dict) -> tuple[ResourceType, str | None, dict]:
    """The object's type and namespace, with `metadata.namespace` filled as kubectl does."""
    rt = _type_of(obj)
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and not meta.get("generateName"):
        raise CliError(f"error when creating {rt.kind}: resource name may not be empty")
    if not rt.namespaced:
        meta.pop("namespace", None)
        return rt, None, obj
    ns = meta.get("namespace")
    if ns and ctx.explicit_namespace and ns != ctx.namespace:
        raise CliError(f'the namespace from the provided object "{ns}" does not match the namespace '
                       f'"{ctx.namespace}". You must pass \'--namespace={ns}\' to perform this operation.')
    ns = ns or ctx.namespace
    meta["namespace"] = ns
    return rt, ns, obj


def _report(ctx: Context, rt: ResourceType, obj: dict, verb: str, output: str | None, dry: str) -> None:
    if output:
        try:
            out = printers.parse_output(output)
        except printers.OutputError as e:
            raise CliError(str(e)) from None
        if out.is_table:
            raise CliError(f"--output={output} is not supported here (use name, yaml, json)")
        ctx.out(printers.render_objects(out, [obj], [rt], single=True))
        return
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry, "")
    ctx.line(f"{printers.name_line(rt, obj)} {verb}{suffix}")


# --- apply -------------------------------------------------------------------------------------

def _no_op(live: dict, patch: dict) -> bool:
    """True when `patch` would leave `live` as it is. A three-way diff is not always empty for
    an unchanged file: lists whose merge key repeats (port 53 over UDP and over TCP, as in the
    DNS add-on) come out as a patch that rewrites them to what they already are."""
    try:
        return apply_patch(live, json.dumps(patch).encode(), "application/strategic-merge-patch+json") == live
    except PatchError:
        return False


async def apply_one(ctx: Context, obj: dict, *, dry_run: str = "none", validation: str | None = None,
                    source: str | None = None) -> tuple[ResourceType, dict, str]:
    """Create or three-way-patch one object; returns (type, result, created|configured|unchanged).
    `validation` is sent as fieldValidation; `source` (the file) goes into create errors."""
    rt, ns, obj = place(ctx, obj)
    api = ctx.client
    name = obj["metadata"].get("name")
    desired = with_last_applied(obj)
    try:
        live = await api.get(rt, name, namespace=ns) if name else None
    except NotFound:
        live = None
    if live is None:
        if dry_run == "client":
            return rt, desired, "created"
        try:
            created = await api.create(rt, desired, namespace=ns, dry_run=dry_run == "server",
                                       field_validation=validation)
        except ApiError as e:
            raise with_source(e, "creating", source) from None
        return rt, created, "created"
    patch = three_way_patch(original_of(live), desired, live, kind=rt.kind)
    if not patch or _no_op(live, patch):
        return rt, live, "unchanged"
    if dry_run == "client":
        return rt, live, "configured"
    path = api.path(rt, name, namespace=ns)
    result = await api.request("PATCH", path, content=json.dumps(patch).encode(),
                               headers={"Content-Type": "application/strategic-merge-patch+json"},
                               params={"fieldManager": "kubectl-client-side-apply",
                                       "dryRun": "All" if dry_run == "server" else None,
                                       "fieldValidation": validation})
    return rt, result, "configured"


async def run_apply(ctx: Context) -> int:
    args = ctx.args
    validation = field_validation(args)
    items = manifests.read(args.filename, recursive=args.recursive)
    for m in items:
        try:
            rt, result, verb = await apply_one(ctx, m.obj, dry_run=args.dry_run or "none", validation=validation,
                                               source=m.source)
        except ApiError as e:
            ctx.error(api_error_line(e))
            continue
        _report(ctx, rt, result, verb, args.output, args.dry_run or "none")
    return 0


# --- create ------------------------------------------------------------------------------------

async def run_create(ctx: Context) -> int:
    args = ctx.args
    dry = getattr(args, "dry_run", None) or "none"
    output = getattr(args, "output", None)
    validation = field_validation(args)
    if args.generator:
        objs: list[tuple[dict, str | None]] = [(args.build(args), None)]
    else:
        if not args.filename:
            raise CliError("must specify one of -f and -k, or a generator (deployment, namespace, configmap)")
        objs = [(m.obj, m.source) for m in manifests.read(args.filename, recursive=args.recursive)]
    for obj, source in objs:
        rt, ns, obj = place(ctx, obj)
        if dry == "client":
            _report(ctx, rt, obj, "created", output, dry)
            continue
        try:
            created = await ctx.client.create(rt, obj, namespace=ns, dry_run=dry == "server",
                                              field_validation=validation)
        except (AlreadyExists, ApiError) as e:
            ctx.error(api_error_line(with_source(e, "creating", source)))
            continue
        _report(ctx, rt, created, "created", output, dry)
    return 0
