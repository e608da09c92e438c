"""The REST semantics of every resource: create, get, list, update, patch, delete, watch.

`app.py` parses HTTP and calls these; `storage.py` does the etcd I/O. What lives here is
Kubernetes' behaviour in between: metadata (uid, generation, generateName), defaulting and
validation, status subresources, optimistic concurrency, finalizers and graceful deletion,
ClusterIP/NodePort reservation, and turning etcd events into watch events.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from kubelab.resources import BY_PLURAL, ResourceType
from kubelab.timestamps import format_time

from . import allocators, shapes
from . import status as st
from .selector import Requirement, labels_match
from .storage import MAX_OBJECT_BYTES, CompactedError, Entry, PreconditionFailed, ReservationTaken, Storage
from .watchcache import WatchCache

log = logging.getLogger(__name__)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
# Resources whose status is written only through the /status subresource.
_STATUS_RESET_ON_CREATE = {"pods", "services", "deployments", "replicasets", "jobs", "cronjobs", "daemonsets",
                           "ingresses", "statefulsets", "poddisruptionbudgets", "gatewayclasses", "gateways",
                           "httproutes"}
_MAX_CAS_RETRIES = 16
_RBAC_WRITES = {"roles", "clusterroles", "rolebindings", "clusterrolebindings"}


def now() -> str:
    return format_time()


def _spec_part(obj: dict) -> dict:
    """What `generation` tracks: everything except metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))


class Registry:
    def __init__(self, storage: Storage, *, bookmark_interval: float = 5.0) -> None:
        self.storage = storage
        self.bookmark_interval = bookmark_interval
        self.caches = {rt.plural: WatchCache(storage, rt.etcd_prefix()) for rt in BY_PLURAL.values()}
        self.watchers = 0
        # Namespaces seen through the watch: lets a create skip an etcd read to check its
        # namespace. A miss still reads etcd (the watch may lag a just-created namespace).
        self._namespaces: dict[str, dict] = {}
        self.caches["namespaces"].listeners.append(self._on_namespace_event)
        # Set by the request filter (security.Guard): RBAC privilege-escalation prevention,
        # called with (rt, new object, old object or None) before a role or binding is
        # stored by create, update or patch; it raises the 403. None: no check.
        self.rbac_write_check: Callable[[ResourceType, dict, dict | None], Awaitable[None]] | None = None
        # Set by the request filter too: admission of the object about to be stored, with the
        # stored one (None on create), e.g. NodeRestriction; it raises the 403. None: no check.
        self.admission_check: Callable[[ResourceType, dict, dict | None], Awaitable[None]] | None = None
        # Which Service externalIPs may be claimed (externalips.py); the app sets it from its flags.
        from .externalips import ExternalIPPolicy
        self.external_ips = ExternalIPPolicy()
        # Hooks for kinds with their own semantics (defaults, validation, patch live in
        # their modules; imported lazily so pure modules stay importable alone).
        from . import defaults, patch, validation
        self._defaults = defaults
        self._validation = validation
        self._patch = patch

    def _on_namespace_event(self, ev) -> None:
        name = ev.key.rsplit("/", 1)[1]
        if ev.obj is None:
            self._namespaces.pop(name, None)
        else:
            self._namespaces[name] = ev.obj

    async def start(self) -> None:
        ns_entries, rev, _ = await self.storage.list(BY_PLURAL["namespaces"].etcd_prefix())
        self._namespaces = {e.obj["metadata"]["name"]: e.obj for e in ns_entries}
        for cache in self.caches.values():
            cache.start(rev)

    async def stop(self) -> None:
        for cache in self.caches.values():
            await cache.stop()

    # ---- keys and reads ---------------------------------------------------------------

    @staticmethod
    def key(rt: ResourceType, namespace: str | None, name: str) -> str:
        return rt.etcd_prefix(namespace if rt.namespaced else None) + name

    async def _get_entry(self, rt: ResourceType, namespace: str | None, name: str) -> Entry:
        entry = await self.storage.get(self.key(rt, namespace, name))
        if entry is None:
            raise st.not_found(rt, name)
        return entry

    async def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict:
        return (await self._get_entry(rt, namespace, name)).obj

    async def list(self, rt: ResourceType, namespace: str | None, *,
                   labels: tuple[Requirement, ...] = (), fields: Callable[[dict], bool] | None = None,
                   limit: int = 0, continue_token: str | None = None,
                   resource_version: str | None = None) -> dict:
        """A List, read at one revision; `continue` pages keep reading at that revision."""
        prefix = rt.etcd_prefix(namespace if rt.namespaced else None)
        revision, start = 0, None
        if continue_token:
            try:
                tok = json.loads(_b64d(continue_token))
                revision, start = int(tok["rv"]), tok["start"]
                if not start.startswith(prefix):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise st.bad_request("continue key is not valid: invalid continue token") from None
        elif resource_version not in (None, "", "0"):
            revision = _parse_rv(resource_version)
        items: list[dict] = []
        more = False
        next_start = None
        chunk = max(limit, 500) if limit else 0
        try:
            while True:
                entries, read_rev, has_more = await self.storage.list(prefix, revision=revision, start=start,
                                                                       limit=chunk)
                revision = read_rev
                for i, e in enumerate(entries):
                    if labels_match(labels, e.obj) and (fields is None or fields(e.obj)):
                        items.append(e.obj)
                        if limit and len(items) >= limit:
                            rest = entries[i + 1:]
                            if rest or has_more:
                                more, next_start = True, e.key + "\x00"
                            break
                else:
                    if has_more and entries:
                        start = entries[-1].key + "\x00"
                        continue
                break
        except CompactedError:
            if continue_token:
                raise st.gone("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.") from None
            raise st.gone(f"too old resource version: {revision}") from None
        meta: dict = {"resourceVersion": str(revision)}
        if more:
            meta["continue"] = _b64e(json.dumps({"rv": revision, "start": next_start}))
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": items}

    # ---- create --------------------------------------------------------------------------

    async def _check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if not rt.namespaced:
            return
        ns_rt = BY_PLURAL["namespaces"]
        ns = self._namespaces.get(namespace or "")
        if ns is None:
            entry = await self.storage.get(self.key(ns_rt, None, namespace or ""))
            if entry is None:
                raise st.not_found(ns_rt, namespace or "")
            ns = self._namespaces.setdefault(namespace or "", entry.obj)
        if ns["metadata"].get("deletionTimestamp"):
            raise st.StatusError(403, f"{rt.plural} \"{''}\" is forbidden: unable to create new content in "
                                      f"namespace {namespace} because it is being terminated",
                                 reason="Forbidden")

    def _check_type(self, rt: ResourceType, obj: dict) -> None:
        if not isinstance(obj, dict):
            raise st.bad_request("the body of the request was in an unknown format")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise st.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                 f"API version ({rt.api_version}) or kind {kind} is not {rt.kind}")
        if api_version and api_version != rt.api_version:
            raise st.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                 f"API version ({rt.api_version})")
        meta = obj.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise st.bad_request("metadata: must be an object")
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        obj.setdefault("metadata", {})

    def _validate(self, rt: ResourceType, obj: dict, old: dict | None = None) -> None:
        causes = self._validation.validate(rt, obj, old=old)
        if causes:
            raise st.invalid(rt, obj["metadata"].get("name") or obj["metadata"].get("generateName", ""), causes)
        size = len(json.dumps(obj, separators=(",", ":")))
        if size > MAX_OBJECT_BYTES:  # etcd would refuse it (a 500); say why instead
            raise st.StatusError(413, f"Request entity too large: the object is {size} bytes, the limit is "
                                      f"{MAX_OBJECT_BYTES}")

    @staticmethod
    def _drop_unknown(kind: str, obj: dict, field_validation: str, warnings: list[str] | None, *,
                      stored: dict | None = None) -> list[str]:
        """Drop the fields `kind` does not have from `obj`, as Go decoding does in every mode,
        and report them per `fieldValidation`: Warn appends one warning each to `warnings`,
        Strict returns them for the caller to fail on, Ignore stays silent. Unknown fields the
        `stored` object already had (written before this check existed) are not the client's
        doing: they are dropped without a word."""
        paths = shapes.drop_unknown(kind, obj)
        if paths and stored is not None:
            old = set(shapes.unknown_fields(kind, stored))
            paths = [p for p in paths if p not in old]
        if not paths or field_validation == "Ignore":
            return []
        if field_validation == "Strict":
            return paths
        if warnings is not None:
            warnings.extend(shapes.unknown_field_message(p) for p in paths)
        return []

    def _drop_unknown_or_fail(self, kind: str, version: str, obj: dict, field_validation: str,
                              warnings: list[str] | None) -> None:
        """For a POST/PUT body: Strict fails with the 400 upstream's decoder gives."""
        bad = self._drop_unknown(kind, obj, field_validation, warnings)
        if bad:
            raise st.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                 f"{shapes.strict_decoding_error(bad)}")

    async def create(self, rt: ResourceType, namespace: str | None, body: dict, *, dry_run: bool = False,
                     field_validation: str = "Warn", warnings: list[str] | None = None) -> dict:
        """POST. `field_validation` (Strict, Warn, Ignore) says what to do about unknown
        fields; Warn's warnings go to `warnings`."""
        self._check_type(rt, body)
        self._drop_unknown_or_fail(rt.kind, rt.version, body, field_validation, warnings)
        obj = body
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise st.bad_request("the namespace of the provided object does not match the namespace "
                                     "sent on the request")
            meta["namespace"] = namespace or meta.get("namespace") or "default"
            namespace = meta["namespace"]
        else:
            meta.pop("namespace", None)
        generate = not meta.get("name") and meta.get("generateName")
        if generate:
            meta["name"] = _generate_name(meta["generateName"])
        if not meta.get("name"):
            raise st.invalid(rt, "", [{"reason": "FieldValueRequired", "message": "name or generateName is required",
                                       "field": "metadata.name"}])
        await self._check_namespace(rt, namespace)
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        if rt.plural in _STATUS_RESET_ON_CREATE:
            obj.pop("status", None)
        self._defaults.apply_defaults(rt, obj)
        meta["uid"] = str(uuid.uuid4())
        self._defaults.after_uid(rt, obj)
        meta["creationTimestamp"] = now()
        if "spec" in obj or rt.plural in ("deployments", "replicasets", "pods", "services"):
            meta["generation"] = 1
        self._validate(rt, obj)
        if warnings is not None:
            warnings.extend(self._validation.pod_field_warnings(obj))
        if self.rbac_write_check is not None and rt.plural in _RBAC_WRITES:
            await self.rbac_write_check(rt, obj, None)
        if self.admission_check is not None:
            await self.admission_check(rt, obj, None)
        if rt.plural == "services":
            await self._check_external_ips(rt, obj, None)
        if dry_run:
            return obj
        spec = obj.get("spec") or {}
        requested = {"clusterIP": spec.get("clusterIP"),
                     "nodePorts": {i: p.get("nodePort") for i, p in enumerate(spec.get("ports") or [])}}
        for _ in range(_MAX_CAS_RETRIES):
            reserve = await self._allocate(rt, obj, None)
            try:
                rev = await self.storage.create(self.key(rt, namespace, meta["name"]), obj, reserve=reserve)
            except ReservationTaken as e:
                self._release_auto(rt, obj, requested, e.key)
                continue
            except PreconditionFailed:
                if generate:
                    meta["name"] = _generate_name(meta["generateName"])
                    continue
                raise st.already_exists(rt, meta["name"]) from None
            meta["resourceVersion"] = str(rev)
            return obj
        raise st.StatusError(500, "could not allocate a unique name or address; try again", reason="InternalError")

    async def _check_external_ips(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        """422 for external IPs this write adds that the policy refuses (CVE-2020-8554)."""
        from . import externalips
        new_ips = externalips.added(obj.get("spec") or {}, (old or {}).get("spec"))
        if not new_ips:
            return
        nodes = (await self.list(BY_PLURAL["nodes"], None))["items"]
        causes = externalips.check(self.external_ips, new_ips, externalips.node_addresses(nodes))
        if causes:
            raise st.invalid(rt, obj["metadata"]["name"], causes)

    # ---- service IP and port allocation -------------------------------------------------

    async def _allocate(self, rt: ResourceType, obj: dict, old: dict | None) -> dict[str, str]:
        """Fill in ClusterIP / NodePorts the Service lacks; the reservations to create."""
        if rt.plural != "services":
            return {}
        spec = obj.setdefault("spec", {})
        owner = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        errors = []
        svc_type = spec.get("type", "ClusterIP")
        if svc_type == "ExternalName":
            spec.pop("clusterIP", None)
        elif not spec.get("clusterIP"):
            taken = {k.rsplit("/", 1)[1] for k in await self.storage.keys(allocators.IP_PREFIX)}
            spec["clusterIP"] = allocators.random_cluster_ip(taken)
        elif spec["clusterIP"] != "None" and old is None:
            try:
                allocators.check_cluster_ip(spec["clusterIP"])
            except allocators.RangeError as e:
                errors.append({"reason": "FieldValueInvalid", "field": "spec.clusterIP",
                               "message": f"Invalid value: \"{spec['clusterIP']}\": {e}"})
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            spec["clusterIPs"] = [spec["clusterIP"]]
        if svc_type in ("NodePort", "LoadBalancer"):
            taken_ports: set[int] | None = None
            for i, p in enumerate(spec.get("ports") or []):
                if p.get("nodePort"):
                    try:
                        allocators.check_node_port(int(p["nodePort"]))
                    except (allocators.RangeError, ValueError) as e:
                        errors.append({"reason": "FieldValueInvalid", "field": f"spec.ports[{i}].nodePort",
                                       "message": f"Invalid value: {p['nodePort']}: {e}"})
                    continue
                if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False:
                    continue  # the LB address alone reaches it (kubelab.loadbalancer + the proxy)
                if taken_ports is None:
                    taken_ports = {int(k.rsplit("/", 1)[1]) for k in await self.storage.keys(allocators.PORT_PREFIX)}
                p["nodePort"] = allocators.random_node_port(taken_ports)
                taken_ports.add(p["nodePort"])
        else:
            for p in spec.get("ports") or []:
                p.pop("nodePort", None)
        if errors:
            raise st.invalid(rt, obj["metadata"]["name"], errors)
        want = allocators.service_reservations(obj)
        have = allocators.service_reservations(old) if old else set()
        return {k: owner for k in want - have}

    def _release_auto(self, rt: ResourceType, obj: dict, requested: dict, key: str) -> None:
        """A reservation lost a race. If the user asked for that IP/port, it is a 422; if we
        chose it, forget it so the next try picks another."""
        spec = obj["spec"]
        value = key.rsplit("/", 1)[1]
        if key.startswith(allocators.IP_PREFIX):
            if requested.get("clusterIP"):
                raise st.invalid(rt, obj["metadata"]["name"], [{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                    "message": f"Invalid value: []string{{\"{value}\"}}: failed to allocate IP {value}: "
                               f"provided IP is already allocated"}])
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return
        for i, p in enumerate(spec.get("ports") or []):
            if str(p.get("nodePort")) == value:
                if requested.get("nodePorts", {}).get(i):
                    raise st.invalid(rt, obj["metadata"]["name"], [{
                        "reason": "FieldValueInvalid", "field": f"spec.ports[{i}].nodePort",
                        "message": f"Invalid value: {value}: provided port is already allocated"}])
                p.pop("nodePort", None)

    # ---- update, patch --------------------------------------------------------------------

    async def update(self, rt: ResourceType, namespace: str | None, name: str, body: dict, *,
                     subresource: str | None = None, dry_run: bool = False, field_validation: str = "Warn",
                     warnings: list[str] | None = None) -> dict:
        """PUT. With `metadata.resourceVersion` it is a compare-and-swap (stale → 409); without,
        it replaces whatever is current, retrying if someone writes in between."""
        if subresource is None:
            self._check_type(rt, body)
        elif not isinstance(body, dict):
            raise st.bad_request("the body of the request was in an unknown format")
        self._drop_unknown_or_fail(rt.kind, rt.version, body, field_validation, warnings)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise st.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        expected = meta.get("resourceVersion") or None
        for _ in range(_MAX_CAS_RETRIES):
            entry = await self._get_entry(rt, namespace, name)
            if expected is not None and _parse_rv(expected) != entry.mod_revision:
                raise st.conflict(rt, name)
            new = self._merge_update(rt, entry.obj, body, subresource)
            try:
                return await self._write(rt, namespace, name, entry, new, dry_run=dry_run)
            except _CasLost:
                if expected is not None:
                    raise st.conflict(rt, name) from None
        raise st.conflict(rt, name, "too many concurrent changes; try again")

    async def patch(self, rt: ResourceType, namespace: str | None, name: str, body: bytes, content_type: str, *,
                    subresource: str | None = None, dry_run: bool = False, field_manager: str | None = None,
                    field_validation: str = "Warn", warnings: list[str] | None = None) -> dict:
        """PATCH: applied to the current object and written back, re-read and re-applied when
        someone wrote in between (a patch carrying a resourceVersion is a 409 instead).
        Unknown fields are judged on the patched object, as upstream decodes it."""
        for _ in range(_MAX_CAS_RETRIES):
            try:
                entry = await self._get_entry(rt, namespace, name)
            except st.StatusError as e:
                if e.code == 404 and content_type.startswith("application/apply-patch") and subresource is None:
                    from .request import decode_body  # the one body grammar (YAML here: apply creates)
                    obj = decode_body(body, "application/yaml")
                    obj.setdefault("metadata", {})["name"] = name
                    return await self.create(rt, namespace, obj, dry_run=dry_run, field_validation=field_validation,
                                             warnings=warnings)
                raise
            current = entry.obj
            base = current if subresource != "scale" else self._to_scale(rt, current)
            try:
                patched = self._patch.apply_patch(base, body, content_type, max_bytes=MAX_OBJECT_BYTES)
            except self._patch.PatchError as e:
                raise st.StatusError(e.code, str(e)) from None
            if not isinstance(patched, dict):
                raise st.StatusError(422, "the patch produced an object that is not a JSON object")
            if subresource != "scale":  # a patch may not rename or re-type the object
                self._check_type(rt, patched)
                if patched["metadata"].get("name") not in (None, name):
                    raise st.bad_request(f"the name of the object ({patched['metadata']['name']}) does not match "
                                         f"the name on the URL ({name})")
            kind = "Scale" if subresource == "scale" else rt.kind
            found: list[str] = []  # a retried patch warns once
            bad = self._drop_unknown(kind, patched, field_validation, found, stored=base)
            if bad:  # upstream's patcher answers 422 here, not the 400 of POST/PUT
                raise _strict_patch_error(body, bad)
            if warnings is not None:
                warnings.extend(w for w in found if w not in warnings)
            if subresource == "scale":
                return await self._write_scale(rt, namespace, name, entry, patched, dry_run=dry_run)
            rv = (patched.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise st.conflict(rt, name)
            new = self._merge_update(rt, current, patched, subresource)
            try:
                return await self._write(rt, namespace, name, entry, new, dry_run=dry_run)
            except _CasLost:
                continue
        raise st.conflict(rt, name, "too many concurrent changes; try again")

    def _merge_update(self, rt: ResourceType, old: dict, body: dict, subresource: str | None) -> dict:
        """The object to store for a PUT/PATCH: which parts the caller may change depends on
        the subresource (status writers cannot touch spec, spec writers cannot touch status)."""
        old_meta = old["metadata"]
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in body:
                new["status"] = body["status"]
            # Kubelets may also update labels/annotations through status in the past; we do not.
            return new
        if subresource == "finalize":  # namespaces: spec.finalizers only
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = (body.get("spec") or {}).get("finalizers") or []
            return new
        new = copy.deepcopy(body)
        new["kind"], new["apiVersion"] = rt.kind, rt.api_version
        meta = new.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise st.bad_request("metadata: must be an object")
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace",
                  "name", "generation"):
            if k in old_meta:
                meta[k] = old_meta[k]
            else:
                meta.pop(k, None)
        if rt.plural == "services":  # a replace without clusterIP/nodePorts keeps the allocated ones
            self._defaults.preserve_allocations(rt, new, old)
            _drop_type_dependent_fields(new, old)
        if rt.has_status and "status" in rt.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    async def _write(self, rt: ResourceType, namespace: str | None, name: str, entry: Entry, new: dict, *,
                     dry_run: bool) -> dict:
        """Validate and compare-and-swap `new` over `entry` (raising _CasLost when someone
        wrote in between); deletes instead when the last finalizer of a terminating object
        is gone."""
        old = entry.obj
        self._defaults.apply_defaults(rt, new)
        self._validate(rt, new, old)
        if self.rbac_write_check is not None and rt.plural in _RBAC_WRITES:
            await self.rbac_write_check(rt, new, old)
        if self.admission_check is not None:
            await self.admission_check(rt, new, old)
        if rt.plural == "services":
            await self._check_external_ips(rt, new, old)
        if _spec_part(new) != _spec_part(old) and "generation" in old["metadata"]:
            new["metadata"]["generation"] = int(old["metadata"]["generation"]) + 1
        if dry_run:
            return new
        key = self.key(rt, namespace, name)
        is_service = rt.plural == "services"
        try:
            if new["metadata"].get("deletionTimestamp") and self._may_delete_now(rt, new):
                release = tuple(allocators.service_reservations(old)) if is_service else ()
                rev = await self.storage.delete(key, expected_revision=entry.mod_revision, release=release)
            else:
                reserve = await self._allocate(rt, new, old) if is_service else {}
                release = tuple(allocators.service_reservations(old) - allocators.service_reservations(new)) \
                    if is_service else ()
                rev = await self.storage.update(key, new, expected_revision=entry.mod_revision,
                                                reserve=reserve, release=release)
        except ReservationTaken as e:
            raise st.invalid(rt, name, [{"reason": "FieldValueInvalid", "field": "spec",
                                         "message": f"Invalid value: provided address or port is already allocated "
                                                    f"({e.key.rsplit('/', 1)[1]})"}]) from None
        except PreconditionFailed:
            raise _CasLost() from None
        new["metadata"]["resourceVersion"] = str(rev)
        return new

    @staticmethod
    def _may_delete_now(rt: ResourceType, obj: dict) -> bool:
        if obj["metadata"].get("finalizers"):
            return False
        if rt.plural == "namespaces" and (obj.get("spec") or {}).get("finalizers"):
            return False
        if rt.plural == "pods" and obj.get("spec", {}).get("nodeName") and \
                obj["metadata"].get("deletionGracePeriodSeconds", 0) > 0:
            return False  # its node has not confirmed yet
        return True

    # ---- scale subresource ------------------------------------------------------------

    @staticmethod
    def _to_scale(rt: ResourceType, obj: dict) -> dict:
        sel = (obj.get("spec") or {}).get("selector") or {}
        labels = sel.get("matchLabels") or {}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                          "creationTimestamp") if k in obj["metadata"]},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))},
        }

    async def get_scale(self, rt: ResourceType, namespace: str | None, name: str) -> dict:
        return self._to_scale(rt, await self.get(rt, namespace, name))

    async def update_scale(self, rt: ResourceType, namespace: str | None, name: str, body: dict, *,
                           dry_run: bool = False, field_validation: str = "Warn",
                           warnings: list[str] | None = None) -> dict:
        if not isinstance(body, dict):
            raise st.bad_request("the body of the request was in an unknown format")
        self._drop_unknown_or_fail("Scale", "v1", body, field_validation, warnings)
        entry = await self._get_entry(rt, namespace, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and _parse_rv(rv) != entry.mod_revision:
            raise st.conflict(rt, name)
        return await self._write_scale(rt, namespace, name, entry, body, dry_run=dry_run)

    async def _write_scale(self, rt: ResourceType, namespace: str | None, name: str, entry: Entry, scale: dict, *,
                           dry_run: bool) -> dict:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise st.invalid(rt, name, [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                         "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0"}])
        new = copy.deepcopy(entry.obj)
        new.setdefault("spec", {})["replicas"] = replicas
        try:
            obj = await self._write(rt, namespace, name, entry, new, dry_run=dry_run)
        except _CasLost:
            raise st.conflict(rt, name) from None
        return self._to_scale(rt, obj)

    # ---- pods/binding -----------------------------------------------------------------------

    async def bind(self, namespace: str, name: str, binding: dict) -> dict:
        rt = BY_PLURAL["pods"]
        target = (binding.get("target") or {}).get("name") if isinstance(binding, dict) else None
        if not target:
            raise st.invalid(rt, name, [{"reason": "FieldValueRequired", "field": "target.name",
                                         "message": "Required value"}])
        for _ in range(_MAX_CAS_RETRIES):
            entry = await self._get_entry(rt, namespace, name)
            pod = copy.deepcopy(entry.obj)
            if pod["metadata"].get("deletionTimestamp"):
                raise st.conflict(rt, name, "pod is being deleted, cannot be assigned to a host")
            if pod["spec"].get("nodeName"):
                raise st.conflict(rt, name, f"pod {name} is already assigned to node \"{pod['spec']['nodeName']}\"")
            pod["spec"]["nodeName"] = target
            conds = [c for c in (pod.setdefault("status", {}).get("conditions") or []) if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now()})
            pod["status"]["conditions"] = conds
            try:
                await self.storage.update(self.key(rt, namespace, name), pod, expected_revision=entry.mod_revision)
            except PreconditionFailed:
                continue
            return st.status_body(201, "", reason="") | {"status": "Success", "code": 201}
        raise st.conflict(rt, name)

    # ---- delete -------------------------------------------------------------------------

    async def delete(self, rt: ResourceType, namespace: str | None, name: str, options: dict | None = None, *,
                     dry_run: bool = False) -> dict:
        options = options or {}
        for _ in range(_MAX_CAS_RETRIES):
            entry = await self._get_entry(rt, namespace, name)
            obj = copy.deepcopy(entry.obj)
            meta = obj["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise st.conflict(rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, "
                                            f"UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
                raise st.conflict(rt, name, "Precondition failed: resourceVersion in precondition does not match")
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is True and not policy:
                policy = "Orphan"
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            elif policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            graceful = False
            if rt.plural == "pods" and obj.get("spec", {}).get("nodeName"):
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
                grace = max(int(grace), 0)
                current = meta.get("deletionGracePeriodSeconds")
                if grace > 0 and (current is None or grace < current):
                    graceful = True
                    meta["deletionGracePeriodSeconds"] = grace
                    meta["deletionTimestamp"] = format_time(time.time() + grace)
                elif grace == 0:
                    meta["deletionGracePeriodSeconds"] = 0
                elif current is not None:
                    graceful = current > 0
            if rt.plural == "namespaces":
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now()
                    meta["deletionGracePeriodSeconds"] = 0
                obj.setdefault("status", {})["phase"] = "Terminating"
                graceful = bool((obj.get("spec") or {}).get("finalizers"))
            if finalizers:
                meta["finalizers"] = finalizers
                meta.setdefault("deletionTimestamp", now())
                meta.setdefault("deletionGracePeriodSeconds", 0)
            if dry_run:
                return obj
            key = self.key(rt, namespace, name)
            try:
                if finalizers or graceful:
                    if obj == entry.obj:
                        return obj
                    rev = await self.storage.update(key, obj, expected_revision=entry.mod_revision)
                else:
                    release = tuple(allocators.service_reservations(entry.obj)) if rt.plural == "services" else ()
                    rev = await self.storage.delete(key, expected_revision=entry.mod_revision, release=release)
            except PreconditionFailed:
                continue
            meta["resourceVersion"] = str(rev)
            return obj
        raise st.conflict(rt, name)

    async def delete_collection(self, rt: ResourceType, namespace: str | None, *, labels=(), fields=None,
                                options: dict | None = None) -> dict:
        listed = await self.list(rt, namespace, labels=labels, fields=fields)
        deleted = []
        for obj in listed["items"]:
            try:
                deleted.append(await self.delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], options))
            except st.StatusError as e:
                if e.code != 404:
                    raise
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]}, "items": deleted}

    # ---- watch -------------------------------------------------------------------------

    async def watch(self, rt: ResourceType, namespace: str | None, *, resource_version: str | None,
                    labels: tuple[Requirement, ...] = (), fields: Callable[[dict], bool] | None = None,
                    bookmarks: bool = False, timeout: float = 1800.0) -> AsyncIterator[dict]:
        """Watch events as Kubernetes sends them, for `timeout` seconds. RV unset or "0":
        ADDED for every current object first, then changes; otherwise exactly the changes
        after that revision."""
        prefix = rt.etcd_prefix(namespace if rt.namespaced else None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + self.bookmark_interval

        def matches(obj: dict | None) -> bool:
            return obj is not None and labels_match(labels, obj) and (fields is None or fields(obj))

        def quiet_for() -> float:
            return max(0.0, min(deadline, next_bookmark) - loop.time())

        self.watchers += 1
        try:
            if resource_version in (None, "", "0"):
                listed = await self.list(rt, namespace, labels=labels, fields=fields)
                after = int(listed["metadata"]["resourceVersion"])
                for obj in listed["items"]:
                    yield {"type": "ADDED", "object": obj}
            else:
                after = _parse_rv(resource_version)
            last = after
            cache = self.caches[rt.plural]
            try:
                async for ev in cache.events(after, timeout=quiet_for):
                    now_t = loop.time()
                    if now_t >= deadline:
                        return
                    if ev is None:
                        next_bookmark = now_t + self.bookmark_interval
                        if bookmarks:
                            last = max(last, cache.revision)
                            yield {"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                                                   "metadata": {"resourceVersion": str(last)}}}
                        continue
                    last = ev.revision
                    if not ev.key.startswith(prefix):
                        continue
                    was, now_ = matches(ev.prev), matches(ev.obj)
                    if ev.kind == "DELETE":
                        if was:
                            yield {"type": "DELETED", "object": ev.prev}
                    elif now_:
                        yield {"type": "ADDED" if (ev.created or not was) else "MODIFIED", "object": ev.obj}
                    elif was:
                        yield {"type": "DELETED", "object": ev.obj}
            except CompactedError:
                yield {"type": "ERROR", "object": st.gone(f"too old resource version: {after}").to_status()}
        finally:
            self.watchers -= 1


def _drop_type_dependent_fields(new: dict, old: dict) -> None:
    """Leaving NodePort/LoadBalancer for ClusterIP drops the node ports and the external
    traffic policy the user did not change (upstream's dropTypeDependentFields), so a plain
    `kubectl patch svc x -p '{"spec":{"type":"ClusterIP"}}'` works."""
    spec, ospec = new.get("spec") or {}, old.get("spec") or {}
    external = ("NodePort", "LoadBalancer")
    if spec.get("type", "ClusterIP") in external or ospec.get("type", "ClusterIP") not in external:
        return
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in ospec.get("ports") or []}
    for p in spec.get("ports") or []:
        if p.get("nodePort") and old_ports.get((p.get("port"), p.get("protocol", "TCP"))) == p["nodePort"]:
            del p["nodePort"]
    if spec.get("externalTrafficPolicy") == ospec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    if spec.get("healthCheckNodePort") == ospec.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)


def _strict_patch_error(body: bytes, paths: list[str]) -> st.StatusError:
    """Upstream's PATCH answer to unknown fields under Strict: an Invalid with no kind, the
    patch as the invalid value (`"" is invalid: patch: Invalid value: ...`)."""
    text = body.decode("utf-8", "replace")
    if len(text) > 200:
        text = text[:197] + "..."
    message = f"Invalid value: {shapes.go_quote(text)}: {shapes.strict_decoding_error(paths)}"
    return st.StatusError(422, f' "" is invalid: patch: {message}', reason="Invalid",
                          details={"causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]})


class _CasLost(Exception):
    """Internal: a patch lost a compare-and-swap race and should re-read and re-apply."""


def _parse_rv(rv: str) -> int:
    try:
        value = int(rv)
        if value < 0:
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise st.bad_request(f"invalid resource version: {rv!r}") from None


def _b64e(s: str) -> str:
    import base64
    return base64.urlsafe_b64encode(s.encode()).decode()


def _b64d(s: str) -> str:
    import base64
    return base64.urlsafe_b64decode(s.encode()).decode()
