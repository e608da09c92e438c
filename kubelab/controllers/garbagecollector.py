"""The garbage collector: cascading deletion through metadata.ownerReferences.

- Background: an object all of whose owners are gone is deleted (owners are re-checked
  with a live GET first, because a cache may not yet show a just-created owner).
- Foreground: an owner carrying the `foregroundDeletion` finalizer has its dependents
  deleted; when none is left the finalizer goes, and the API server removes the owner.
- Orphan: an owner carrying the `orphan` finalizer has its ownerReference removed from every
  dependent, then the finalizer goes.

`gc_plan` is the decision for one object given what is known about its owners (pure).
"""

from __future__ import annotations

from kubelab.client import ApiError, Conflict, NotFound

from .base import Context, Controller
from .util import resource_of_ref

GC_RESOURCES = ("deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "pods", "services", "endpointslices", "endpoints",
                "configmaps", "secrets")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def owner_index(obj: dict) -> list[str]:
    return [r["uid"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid")]


def gc_plan(obj: dict, owner_alive: dict[str, bool]) -> str:
    """For an object with ownerReferences: `delete` (all owners gone), `trim` (some gone:
    drop their references), or `keep`. `owner_alive` maps owner uid → exists."""
    refs = obj["metadata"].get("ownerReferences") or []
    if not refs:
        return "keep"
    alive = [owner_alive.get(r.get("uid"), True) for r in refs]
    if not any(alive):
        return "delete"
    if not all(alive):
        return "trim"
    return "keep"


def owner_plan(owner: dict, dependents: list[dict]) -> str:
    """For a terminating owner: `orphan` (strip refs then finalizer), `cascade` (delete
    dependents), `finalize-foreground` (no dependents left), or `none`."""
    meta = owner["metadata"]
    if not meta.get("deletionTimestamp"):
        return "none"
    finalizers = meta.get("finalizers") or []
    if ORPHAN in finalizers:
        return "orphan"
    if FOREGROUND in finalizers:
        return "cascade" if dependents else "finalize-foreground"
    return "none"


class GarbageCollector(Controller):
    name = "garbagecollector"
    component = "garbage-collector-controller"
    workers = 4

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.informers = {r: ctx.factory.informer(r, indexers={"owner": owner_index}) for r in GC_RESOURCES}
        self.uids: dict[str, str] = {}  # uid -> "plural|key"
        for plural, inf in self.informers.items():
            inf.add_handler(on_add=lambda o, p=plural: self._changed(p, o),
                            on_update=lambda old, new, p=plural: self._changed(p, new, old),
                            on_delete=lambda o, p=plural: self._deleted(p, o))

    @staticmethod
    def _item(plural: str, obj: dict) -> str:
        m = obj["metadata"]
        return f"{plural}|{m.get('namespace') or ''}/{m['name']}"

    def _changed(self, plural: str, obj: dict, old: dict | None = None) -> None:
        uid = obj["metadata"].get("uid")
        if uid:
            self.uids[uid] = self._item(plural, obj)
        if obj["metadata"].get("ownerReferences") or obj["metadata"].get("deletionTimestamp"):
            self.queue.add(self._item(plural, obj))
        for ref in obj["metadata"].get("ownerReferences") or []:  # a terminating owner re-checks its dependents
            item = self.uids.get(ref.get("uid"))
            if item:
                self.queue.add(item)

    def _deleted(self, plural: str, obj: dict) -> None:
        uid = obj["metadata"].get("uid")
        self.uids.pop(uid, None)
        for dep in self.dependents(uid):
            self.queue.add(dep[0])
        for ref in obj["metadata"].get("ownerReferences") or []:
            item = self.uids.get(ref.get("uid"))
            if item:
                self.queue.add(item)

    def dependents(self, uid: str | None) -> list[tuple[str, str, dict]]:
        out = []
        if not uid:
            return out
        for plural, inf in self.informers.items():
            for d in inf.store.by_index("owner", uid):
                out.append((self._item(plural, d), plural, d))
        return out

    def _lookup(self, item: str) -> tuple[str, str | None, str, dict | None]:
        plural, key = item.split("|", 1)
        ns, name = key.split("/", 1)
        inf = self.informers[plural]
        obj = inf.store.get(f"{ns}/{name}" if ns else name)
        return plural, ns or None, name, obj

    async def _owner_exists(self, ref: dict, namespace: str | None) -> bool:
        if ref.get("uid") in self.uids:
            return True
        rt = resource_of_ref(ref)
        if rt is None:
            return True  # a kind we do not know: never delete because of it
        try:
            live = await self.client.get(rt, ref["name"], namespace=namespace if rt.namespaced else None)
        except NotFound:
            return False
        return live["metadata"].get("uid") == ref.get("uid")

    async def sync(self, item: str) -> None:
        plural, ns, name, obj = self._lookup(item)
        if obj is None:
            return
        meta = obj["metadata"]
        plan = owner_plan(obj, [d for d in self.dependents(meta.get("uid"))])
        if plan == "orphan":
            await self._orphan(plural, ns, name, obj)
            return
        if plan == "cascade":
            await self._cascade(obj)
            return
        if plan == "finalize-foreground":
            await self._remove_finalizer(plural, ns, name, obj, FOREGROUND)
            return
        if meta.get("ownerReferences") and not meta.get("deletionTimestamp"):
            alive = {r.get("uid"): await self._owner_exists(r, ns) for r in meta["ownerReferences"]}
            decision = gc_plan(obj, alive)
            if decision == "delete":
                try:
                    await self.client.delete(plural, name, namespace=ns, propagation_policy="Background",
                                             preconditions={"uid": meta["uid"]})
                    self.log.info("deleted %s %s/%s: its owners are gone", plural, ns or "", name)
                except (NotFound, Conflict):
                    pass
            elif decision == "trim":
                refs = [r for r in meta["ownerReferences"] if alive.get(r.get("uid"))]
                await self._patch_meta(plural, ns, name, obj, {"ownerReferences": refs})

    async def _patch_meta(self, plural: str, ns: str | None, name: str, obj: dict, meta_patch: dict) -> None:
        body = {"metadata": {**meta_patch, "resourceVersion": obj["metadata"]["resourceVersion"]}}
        try:
            await self.client.patch(plural, name, body, namespace=ns, patch_type="merge")
        except NotFound:
            pass

    async def _remove_finalizer(self, plural: str, ns: str | None, name: str, obj: dict, finalizer: str) -> None:
        rest = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        await self._patch_meta(plural, ns, name, obj, {"finalizers": rest or None})

    async def _orphan(self, plural: str, ns: str | None, name: str, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for _, dplural, dep in self.dependents(uid):
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            await self._patch_meta(dplural, dep["metadata"].get("namespace"), dep["metadata"]["name"], dep,
                                   {"ownerReferences": refs or None})
        await self._remove_finalizer(plural, ns, name, owner, ORPHAN)

    async def _cascade(self, owner: dict) -> None:
        for _, dplural, dep in self.dependents(owner["metadata"]["uid"]):
            if dep["metadata"].get("deletionTimestamp"):
                continue
            has_own = bool(self.dependents(dep["metadata"].get("uid")))
            try:
                await self.client.delete(dplural, dep["metadata"]["name"], namespace=dep["metadata"].get("namespace"),
                                         propagation_policy="Foreground" if has_own else "Background")
            except (NotFound, Conflict):
                pass
            except ApiError as e:
                self.log.warning("foreground delete of %s: %s", dep["metadata"]["name"], e)


