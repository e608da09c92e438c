"""The filter every request passes before the API: authenticate, limit, authorize.

An ASGI wrapper around the whole app (resource router and FastAPI alike), in Kubernetes'
order: authentication (401), per-client limits (429 + Retry-After), SelfSubjectAccessReview
(answered here, it is about the caller), authorization (403 with user, verb and resource),
then the request, whose body is read under a size cap and a deadline (413, 408). The
request's user stays known while it runs (`CURRENT_REQUEST`), for the registry's hook that
refuses RBAC privilege escalation in writes of roles and bindings (authz.EscalationCheck).

Without any authentication configured (plain HTTP on loopback, the tests' and by-hand mode)
everyone is `system:anonymous` and the authorization mode is AlwaysAllow, as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from kubelab.resources import BY_PLURAL

from . import metricsapi
from . import status as st
from .authn import ANONYMOUS, PEER_CERT, Authenticator, AuthError, parse_token_file
from .authz import Authorizer, EscalationCheck, node_of, parse_modes
from .rbac import Attributes, Policy, UserInfo, forbidden_message
from .request import decode_body, target_of, watch_requested
from .storage import MAX_OBJECT_BYTES

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSRR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
RBAC_PLURALS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
_CONNECT_SUBRESOURCES = {"exec", "attach", "portforward", "proxy"}
# The API request being served (its user, verb, resource), for the registry's RBAC write
# check. Unset for the API server's own writes (bootstrap), which are never checked.
CURRENT_REQUEST: contextvars.ContextVar[Attributes | None] = contextvars.ContextVar("kubelab_request", default=None)


@dataclass
class SecurityConfig:
    """Settings.security: plain data, so `--workers N` processes get it through the env."""

    client_ca_file: str | None = None
    token_auth_file: str | None = None
    service_account_key_file: str | None = None
    service_account_issuer: str | None = None
    api_audiences: list[str] | None = None  # --api-audiences; None: the issuer (upstream's default)
    authorization_mode: str = "AlwaysAllow"
    max_requests_per_client: int = 0   # 0: no cap (non-watch requests in flight)
    max_watches_per_client: int = 0
    body_timeout: float = 60.0
    max_object_bytes: int = MAX_OBJECT_BYTES

    @classmethod
    def from_dict(cls, d: dict | None) -> "SecurityConfig":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


def _public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def request_attributes(scope: dict, user: UserInfo) -> Attributes:
    """The request as (verb, group, resource, subresource, namespace, name) or a path."""
    path = scope["path"]
    method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
    target = target_of(scope)  # parsed once: the router reads the same Target from the scope
    if target is None and (metrics := metricsapi.parse(path)) is not None:
        plural, ns, name = metrics   # served by the API server itself: a resource like any other
        verb = {"GET": "list" if name is None else "get"}.get(method, _METHOD_VERBS.get(method, method.lower()))
        return Attributes(user, verb, api_group=metricsapi.GROUP, resource=plural, namespace=ns or "",
                          name=name or "")
    if target is None:
        return Attributes(user, _METHOD_VERBS.get(method, method.lower()), resource_request=False, path=path)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    sub = target.sub or ""
    if sub in _CONNECT_SUBRESOURCES:
        verb = "create"  # exec/attach over websocket is a GET; Kubernetes authorizes it as create
    elif target.name is None:
        verb = {"GET": "watch" if watch_requested(query.get("watch") or []) else "list",
                "DELETE": "deletecollection"}.get(method, _METHOD_VERBS.get(method, method.lower()))
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    return Attributes(user, verb, api_group=target.rt.group, resource=target.rt.plural, subresource=sub,
                      namespace=target.namespace or "", name=target.name or "")


class PolicyCache:
    """The RBAC objects, reloaded from the registry after any change to them (the watch
    caches tell us) or every `max_age` seconds."""

    def __init__(self, registry, *, max_age: float = 30.0) -> None:
        self.registry = registry
        self.max_age = max_age
        self._policy: Policy | None = None
        self._loaded = 0.0
        self._dirty = True
        self._lock = asyncio.Lock()
        self._hooked = False

    def _mark(self, _ev=None) -> None:
        self._dirty = True

    async def get(self) -> Policy:
        if not self._hooked:
            for plural in RBAC_PLURALS:
                cache = self.registry.caches.get(plural)
                if cache is not None:
                    cache.listeners.append(self._mark)
            self._hooked = True
        if self._policy is not None and not self._dirty and time.monotonic() - self._loaded < self.max_age:
            return self._policy
        async with self._lock:
            if self._policy is not None and not self._dirty and time.monotonic() - self._loaded < self.max_age:
                return self._policy
            self._dirty = False
            lists = {}
            for plural in RBAC_PLURALS:
                rt = BY_PLURAL.get(plural)
                lists[plural] = (await self.registry.list(rt, None))["items"] if rt else []
            self._policy = Policy.from_objects(roles=lists["roles"], cluster_roles=lists["clusterroles"],
                                               role_bindings=lists["rolebindings"],
                                               cluster_role_bindings=lists["clusterrolebindings"])
            self._loaded = time.monotonic()
            return self._policy


class RegistryGraph:
    """What the Node authorizer asks: one pod, and the pods bound to a node."""

    def __init__(self, registry, *, ttl: float = 1.0) -> None:
        self.registry = registry
        self.ttl = ttl
        self._by_node: dict[str, tuple[float, list[dict]]] = {}

    async def pod(self, namespace: str, name: str) -> dict | None:
        try:
            return await self.registry.get(BY_PLURAL["pods"], namespace, name)
        except st.StatusError as e:
            if e.code == 404:
                return None
            raise

    async def pods_on_node(self, node: str) -> list[dict]:
        hit = self._by_node.get(node)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        listed = await self.registry.list(BY_PLURAL["pods"], None,
                                          fields=lambda o: (o.get("spec") or {}).get("nodeName") == node)
        self._by_node[node] = (time.monotonic(), listed["items"])
        return listed["items"]


async def _send_status(send, code: int, message: str, *, reason: str | None = None,
                       headers: dict | None = None, details: dict | None = None) -> None:
    body = json.dumps(st.status_body(code, message, reason=reason, details=details), separators=(",", ":")).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": code, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k == name:
            return v.decode("latin-1")
    return None


class Guard:
    def __init__(self, app, config: SecurityConfig, registry) -> None:
        self.app = app
        self.state = getattr(app, "state", None)
        self.config = config
        static = {}
        if config.token_auth_file:
            with open(config.token_auth_file) as f:
                static = parse_token_file(f.read())
        sa_key = None
        if config.service_account_key_file:
            from kubelab.pki import tokens
            sa_key = tokens.load_verify_key(config.service_account_key_file)
        issuers = (config.service_account_issuer,) if config.service_account_issuer else None
        from kubelab.pki import tokens as _t
        self.authn = Authenticator(static_tokens=static, sa_public_key=sa_key, sa_lookup=self._sa_lookup,
                                   issuers=issuers or (_t.DEFAULT_ISSUER,),
                                   client_certs=bool(config.client_ca_file),
                                   audiences=tuple(config.api_audiences or ()) or None,
                                   object_lookup=self._object_lookup)
        self.registry = registry
        self.policy = PolicyCache(registry)
        self.authz = Authorizer(parse_modes(config.authorization_mode), policy=self.policy.get,
                                graph=RegistryGraph(registry))
        self.escalation = EscalationCheck(self.authz, policy=self.policy.get, get_role=self._get_role)
        if hasattr(registry, "rbac_write_check"):
            registry.rbac_write_check = self._rbac_write_check
        if hasattr(registry, "admission_check") and "Node" in self.authz.modes:
            registry.admission_check = self._node_restriction
        self.inflight: dict[str, int] = {}
        self.watches: dict[str, int] = {}
        # No authentication, AlwaysAllow, no caps: the plain-HTTP loopback mode of tests.
        self.open = not self.authn.enabled and self.authz.modes == ("AlwaysAllow",) and \
            not config.max_requests_per_client and not config.max_watches_per_client

    async def _sa_lookup(self, namespace: str, name: str) -> dict | None:
        try:
            return await self.registry.get(BY_PLURAL["serviceaccounts"], namespace, name)
        except st.StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _object_lookup(self, plural: str, namespace: str, name: str) -> dict | None:
        try:
            return await self.registry.get(BY_PLURAL[plural], namespace, name)
        except st.StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _get_role(self, plural: str, namespace: str, name: str) -> dict:
        return await self.registry.get(BY_PLURAL[plural], namespace, name)

    async def _rbac_write_check(self, rt, obj: dict, old: dict | None) -> None:
        """The registry's hook before it stores a role or binding: privilege-escalation
        prevention for the user of the request being served (none: the server's own write)."""
        request = CURRENT_REQUEST.get()
        if request is not None:
            await self.escalation.check(request, rt.plural, obj, old)

    async def _node_restriction(self, rt, obj: dict, old: dict | None) -> None:
        """The registry's admission hook: NodeRestriction for requests made by a node."""
        request = CURRENT_REQUEST.get()
        node = node_of(request.user) if request is not None else None
        if node is None:
            return
        from . import noderestriction
        if rt.plural == "serviceaccounts" and request.subresource == "token":
            pod_name = noderestriction.bound_pod_name(obj)
            pod = await self._object_lookup("pods", request.namespace, pod_name) if pod_name else None
            reason, name = noderestriction.admit_token_request(node, obj, pod), request.name
        else:
            reason = noderestriction.admit(node, rt.plural, request.subresource, obj, old)
            name = (obj.get("metadata") or {}).get("name") or request.name
        if reason:
            details = {"name": name, "kind": rt.plural}
            if rt.group:
                details["group"] = rt.group
            raise st.StatusError(403, f'{rt.group_resource} "{name}" is forbidden: {reason}', reason="Forbidden",
                                 details=details)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.open and scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)  # loopback dev mode: reads cost nothing extra
            return
        websocket = scope["type"] == "websocket"
        path = scope["path"]

        async def deny(code: int, message: str, **kw) -> None:
            if websocket:
                await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            else:
                await _send_status(send, code, message, **kw)

        # -- authentication
        try:
            peer = (scope.get("state") or {}).get(PEER_CERT)
            user = await self.authn.authenticate(authorization=_header(scope, b"authorization"), peercert=peer)
        except AuthError as e:
            log.info("authentication failed from %s: %s", (scope.get("client") or ("?",))[0], e)
            await deny(401, "Unauthorized")
            return
        if user is None:
            if self.authn.enabled and not _public(path):
                await deny(401, "Unauthorized")
                return
            user = ANONYMOUS

        # -- impersonation (`kubectl --as`): needs the `impersonate` verb on users/groups
        as_user = _header(scope, b"impersonate-user")
        if as_user is not None:
            groups = [v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"impersonate-group"]
            for resource, name in [("users", as_user)] + [("groups", g) for g in groups]:
                d = await self.authz.authorize(Attributes(user, "impersonate", resource=resource, name=name))
                if not d.allowed:
                    await deny(403, f'{resource} "{name}" is forbidden: User "{user.name}" cannot impersonate '
                                    f'resource "{resource}" in API group "" at the cluster scope')
                    return
            if as_user.startswith("system:serviceaccount:") and as_user.count(":") == 3:
                ns = as_user.split(":")[2]
                groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
            user = UserInfo(as_user, (*dict.fromkeys(groups), "system:authenticated"))

        # -- Self{Subject,Rules}Review: about the caller itself, allowed to every authenticated user
        if path in (SSAR_PATH, SSRR_PATH) and not websocket and scope.get("method") == "POST":
            await self._ssar(user, receive, send, _header(scope, b"content-type") or "", rules=path == SSRR_PATH)
            return

        # -- authorization
        attrs = request_attributes(scope, user)
        if not (_public(path) and attrs.verb == "get"):
            try:
                decision = await self.authz.authorize(attrs)
            except Exception:  # a storage hiccup must not turn into an allow
                log.exception("authorization failed")
                await deny(500, "Internal error occurred: authorization failed")
                return
            if not decision.allowed:
                details = {"kind": attrs.resource, "name": attrs.name} if attrs.resource_request else None
                if details and attrs.api_group:
                    details["group"] = attrs.api_group
                await deny(403, forbidden_message(attrs, decision.reason), details=details)
                return

        # -- per-client limits (after authn: the client is the user, or the address when anonymous)
        client = user.name if user is not ANONYMOUS else (scope.get("client") or ("?",))[0]
        is_watch = attrs.verb == "watch" or websocket
        table, cap = (self.watches, self.config.max_watches_per_client) if is_watch else \
            (self.inflight, self.config.max_requests_per_client)
        if cap and table.get(client, 0) >= cap:
            what = "watches" if is_watch else "requests in flight"
            await deny(429, f"too many {what} from this client (limit {cap}), please try again later",
                       headers={"Retry-After": "1"})
            return
        table[client] = table.get(client, 0) + 1
        current = CURRENT_REQUEST.set(attrs)
        try:
            await self.app(scope, self._receive(scope, receive, attrs), send)
        finally:
            CURRENT_REQUEST.reset(current)
            left = table.get(client, 1) - 1
            if left:
                table[client] = left
            else:
                table.pop(client, None)

    def _receive(self, scope, receive, attrs: Attributes):
        """`receive` with a deadline per body chunk and a cap on object bodies."""
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            return receive
        timeout = self.config.body_timeout
        cap = self.config.max_object_bytes if attrs.resource_request and attrs.verb in ("create", "update") \
            and not attrs.subresource else 0
        state = {"done": False, "size": 0}

        async def guarded():
            if state["done"]:
                return await receive()  # after the body: disconnect listening, no deadline
            try:
                async with asyncio.timeout(timeout or None):
                    msg = await receive()
            except TimeoutError:
                raise st.StatusError(408, f"the request body was not received within {timeout:g}s",
                                     reason="Timeout") from None
            if msg.get("type") == "http.request":
                state["size"] += len(msg.get("body") or b"")
                if cap and state["size"] > cap:
                    raise st.StatusError(413, f"Request entity too large: the object is larger than the "
                                              f"limit of {cap} bytes")
                if not msg.get("more_body"):
                    state["done"] = True
            else:
                state["done"] = True
            return msg
        return guarded

    async def _ssrr(self, user: UserInfo, review: dict, send) -> None:
        spec = review.get("spec") if isinstance(review.get("spec"), dict) else {}
        namespace = spec.get("namespace") if isinstance(spec.get("namespace"), str) else ""
        resource_rules, non_resource = [], []
        if "RBAC" in self.authz.modes:
            for r in (await self.policy.get()).rules_for(user, namespace):
                if r.get("nonResourceURLs"):
                    non_resource.append({"verbs": r.get("verbs") or [], "nonResourceURLs": r["nonResourceURLs"]})
                else:
                    resource_rules.append({k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames")
                                           if r.get(k)})
        status = {"resourceRules": resource_rules, "nonResourceRules": non_resource,
                  "incomplete": "RBAC" not in self.authz.modes or len(self.authz.modes) > 1}
        out = {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
        body = json.dumps(out, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _ssar(self, user: UserInfo, receive, send, content_type: str, *, rules: bool = False) -> None:
        chunks, size = [], 0
        while True:
            try:
                msg = await asyncio.wait_for(receive(), self.config.body_timeout or None)
            except asyncio.TimeoutError:
                await _send_status(send, 408, "the request body was not received in time", reason="Timeout")
                return
            if msg["type"] != "http.request":
                return
            chunks.append(msg.get("body") or b"")
            size += len(chunks[-1])
            if size > 64 * 1024:
                await _send_status(send, 413, "Request entity too large")
                return
            if not msg.get("more_body"):
                break
        try:
            review = decode_body(b"".join(chunks), content_type)
        except st.StatusError as e:
            await _send_status(send, e.code, e.message)
            return
        if rules:
            await self._ssrr(user, review, send)
            return
        try:
            spec = review.get("spec") or {}
            ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
            if isinstance(ra, dict):
                attrs = Attributes(user, str(ra.get("verb") or ""), api_group=str(ra.get("group") or ""),
                                   resource=str(ra.get("resource") or ""), subresource=str(ra.get("subresource") or ""),
                                   namespace=str(ra.get("namespace") or ""), name=str(ra.get("name") or ""))
            elif isinstance(nra, dict):
                attrs = Attributes(user, str(nra.get("verb") or ""), resource_request=False,
                                   path=str(nra.get("path") or ""))
            else:
                raise ValueError("spec.resourceAttributes or spec.nonResourceAttributes is required")
        except (ValueError, UnicodeDecodeError, AttributeError) as e:
            await _send_status(send, 400, f"invalid SelfSubjectAccessReview: {e}")
            return
        decision = await self.authz.authorize(attrs)
        status = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        if decision.verdict == "deny" and not decision.allowed:
            status["denied"] = True
        out = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
        body = json.dumps(out, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
