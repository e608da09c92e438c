"""`kubelab auth can-i VERB RESOURCE[/NAME]`: ask the API server (SelfSubjectAccessReview),
as `kubectl auth can-i` does; prints yes/no, exits 0/1."""

from __future__ import annotations

from .context import CliError, Context, resolve_type

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def register(sub) -> None:
    p = sub.add_parser("auth", help="inspect authorization")
    verbs = p.add_subparsers(dest="auth_verb", metavar="VERB", required=True)
    c = verbs.add_parser("can-i", help="check whether you may do VERB on RESOURCE",
                         description="Prints yes or no; exit status 0 when allowed, 1 when not.")
    c.add_argument("verb", help="get, list, watch, create, update, patch, delete, ... or *")
    c.add_argument("resource", help="RESOURCE, RESOURCE/NAME, RESOURCE/SUBRESOURCE (pods/log), or a /path")
    c.add_argument("name", nargs="?", default=None, help="resource name")
    c.add_argument("--subresource", default="", help="e.g. log, exec, status")
    c.add_argument("-q", "--quiet", action="store_true", help="no output, only the exit status")
    c.set_defaults(func=run_can_i)


def review_spec(ctx: Context, verb: str, resource: str, name: str | None, subresource: str) -> dict:
    if resource.startswith("/"):
        return {"nonResourceAttributes": {"path": resource, "verb": verb}}
    base, _, rest = resource.partition("/")
    if rest and not name and not subresource:
        # kubectl: `pods/log` is a subresource, `pod/x` a name
        try:
            rt0 = resolve_type(base)
        except CliError:
            rt0 = None
        if rt0 is not None and rest in rt0.subresources:
            subresource = rest
        else:
            name = rest
    if base == "*":
        attrs = {"verb": verb, "resource": "*", "group": "*"}
    else:
        rt = resolve_type(base)
        attrs = {"verb": verb, "group": rt.group, "version": rt.version, "resource": rt.plural}
        if rt.namespaced:
            attrs["namespace"] = "" if ctx.all_namespaces else ctx.namespace
    if subresource:
        attrs["subresource"] = subresource
    if name:
        attrs["name"] = name
    return {"resourceAttributes": attrs}


async def run_can_i(ctx: Context) -> int:
    a = ctx.args
    spec = review_spec(ctx, a.verb, a.resource, a.name, a.subresource)
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}
    review = await ctx.client.request("POST", SSAR, json_body=body)
    status = review.get("status") or {}
    allowed = bool(status.get("allowed"))
    if not a.quiet:
        ctx.line("yes" if allowed else "no" + (f" - {status['reason']}" if status.get("reason") else ""))
    return 0 if allowed else 1
