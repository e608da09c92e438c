"""A `default` ServiceAccount in every active namespace (pods reference it by default)."""

from __future__ import annotations

from kubelab.client import AlreadyExists, NotFound

from .base import Context, Controller


def default_service_account(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}


class ServiceAccountController(Controller):
    name = "serviceaccount"
    component = "service-account-controller"
    workers = 1

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.factory.informer("namespaces")
        self.sas = ctx.factory.informer("serviceaccounts")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.sas.add_handler(on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.store.get(key)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        if self.sas.store.get(f"{key}/default") is not None:
            return
        try:
            await self.client.create("serviceaccounts", default_service_account(key), namespace=key)
        except (AlreadyExists, NotFound):
            pass
