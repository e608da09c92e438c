"""The namespace controller: a terminating Namespace has everything in it deleted, then its
`kubernetes` finalizer is removed through `/finalize`, and the API server deletes it."""

from __future__ import annotations

from kubelab.client import ApiError, Conflict, NotFound
from kubelab.resources import RESOURCES

from .base import Context, Controller

FINALIZER = "kubernetes"
NAMESPACED = tuple(r for r in RESOURCES if r.namespaced and "list" in r.verbs and "delete" in r.verbs)


def finalize_body(ns: dict) -> dict:
    """The Namespace to PUT to /finalize: spec.finalizers without `kubernetes` (pure)."""
    rest = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
    return {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": rest}}


class NamespaceController(Controller):
    name = "namespace"
    component = "namespace-controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.factory.informer("namespaces")
        self.namespaces.add_handler(on_add=self._maybe, on_update=lambda o, n: self._maybe(n), on_delete=self.enqueue)

    def _maybe(self, ns: dict) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        ns = self.namespaces.store.get(key)
        if ns is not None and not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for rt in NAMESPACED:
            try:
                listed = await self.client.list(rt, namespace=key)
            except ApiError as e:
                self.log.debug("listing %s in %s: %s", rt.plural, key, e)
                continue
            for obj in listed["items"]:
                remaining += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(rt, obj["metadata"]["name"], namespace=key)
                except NotFound:
                    remaining -= 1
        if ns is None:
            return  # already gone from the API (no finalizer): what was left is cleaned up
        if remaining:
            self.queue.add_after(key, 1.0)  # pods wait for their nodes; look again soon
            return
        if FINALIZER in ((ns.get("spec") or {}).get("finalizers") or []):
            try:
                await self.client.replace("namespaces", key, finalize_body(ns), subresource="finalize")
            except NotFound:
                return
            except Conflict:
                self.queue.add_after(key, 0.1)
                return
            self.log.info("namespace %s finalized", key)
