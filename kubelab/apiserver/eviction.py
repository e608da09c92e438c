"""POST pods/NAME/eviction: a pod deletion that a PodDisruptionBudget may refuse.

Why a subresource and not a plain DELETE: `kubectl drain` (and any operator) must not take
down more pods of an application than its budget allows, and only the API server can decide
that atomically. Upstream's rules (registry/core/pod/storage/eviction.go), kept here:

- a pod that is terminal, Pending or already terminating is deleted without looking at budgets;
- no matching budget: deleted; more than one: 500 (upstream does not support overlapping budgets);
- the budget not yet processed by its controller (observedGeneration behind): 429;
- `status.disruptionsAllowed` 0: 429 `TooManyRequests` with a `DisruptionBudget` cause naming
  the budget and its healthy counts (kubectl drain retries until its timeout);
- otherwise the allowance is decremented and the pod recorded in `status.disruptedPods`
  (one compare-and-swap write of the budget's status, so two evictions cannot both spend the
  last allowance), then the pod is deleted. The disruption controller forgets the entry when
  the pod is gone (or after two minutes).
- an unready pod does not spend the budget when the budget is already met
  (`unhealthyPodEvictionPolicy: IfHealthyBudget`, the default) or at all (`AlwaysAllow`).

Authorization is the caller's `create` on `pods/eviction` (the edit role has it, view does not);
the deletion itself is done by the server, as upstream.
"""

from __future__ import annotations

import copy
from typing import Any

from kubelab.labels import selector_matches
from kubelab.resources import BY_PLURAL
from kubelab.timestamps import format_time

from . import status as st

MAX_DISRUPTED_PODS = 2000  # upstream's bound on the map a budget's status carries
_CAS_ATTEMPTS = 5
MSG_VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"


def _too_many(cause: str) -> st.StatusError:
    return st.StatusError(429, MSG_VIOLATES, details={"causes": [{"reason": DISRUPTION_BUDGET_CAUSE,
                                                                   "message": cause}]})


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _ignores_budget(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) or \
        (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Pending")


def check_body(body: Any, namespace: str, name: str) -> dict:
    """The Eviction object: its name (and namespace, when given) must be the pod's."""
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        raise st.bad_request("the body of the request must be a policy/v1 Eviction")
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    if meta.get("name") not in (None, "", name):
        raise st.bad_request("name in URL does not match name in Eviction object")
    if meta.get("namespace") not in (None, "", namespace):
        raise st.bad_request("namespace in URL does not match namespace in Eviction object")
    options = body.get("deleteOptions")
    if options is not None and not isinstance(options, dict):
        raise st.bad_request("deleteOptions must be an object")
    return options or {}


async def evict(registry, namespace: str, name: str, body: Any, *, dry_run: bool = False) -> dict:
    """Evict the pod or raise the Status upstream would; returns the Success Status (201)."""
    options = dict(check_body(body, namespace, name))
    dry_run = dry_run or bool(options.pop("dryRun", None))
    pods, pdbs = BY_PLURAL["pods"], BY_PLURAL["poddisruptionbudgets"]
    pod = await registry.get(pods, namespace, name)
    options.setdefault("preconditions", {"uid": pod["metadata"]["uid"]})
    if not _ignores_budget(pod):
        for _ in range(_CAS_ATTEMPTS):
            listed = await registry.list(pdbs, namespace)
            labels = pod["metadata"].get("labels") or {}
            matching = [b for b in listed["items"]
                        if (b.get("spec") or {}).get("selector") is not None
                        and selector_matches(b["spec"]["selector"], labels)]
            if not matching:
                break
            if len(matching) > 1:
                raise st.StatusError(500, "This pod has more than one PodDisruptionBudget, which the eviction "
                                          "subresource does not support.")
            if await _spend(registry, matching[0], pod, dry_run=dry_run):
                break
        else:
            raise st.StatusError(429, MSG_VIOLATES + " The disruption budget changed too often; try again.")
    if not dry_run:
        await registry.delete(pods, namespace, name, options)
    return st.status_body(201, "") | {"details": {"name": name, "kind": "pods"}}


async def _spend(registry, pdb: dict, pod: dict, *, dry_run: bool) -> bool:
    """Take one disruption from the budget; False when the write lost a race (try again)."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    bname = pdb["metadata"]["name"]
    if not _ready(pod):
        policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
        if policy == "AlwaysAllow" or (desired > 0 and healthy >= desired):
            return True  # an unready pod's loss does not reduce what the budget protects
    if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
        raise _too_many(f"The disruption budget {bname} is still being processed by the server.")
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise st.StatusError(403, f'poddisruptionbudgets.policy "{bname}" is forbidden: pdb disruptions allowed '
                                  "is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise st.StatusError(403, f'poddisruptionbudgets.policy "{bname}" is forbidden: DisruptedPods map too '
                                  "big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise _too_many(f"The disruption budget {bname} needs {status.get('desiredHealthy', 0)} healthy pods "
                        f"and has {status.get('currentHealthy', 0)} currently")
    new = copy.deepcopy(pdb)
    nstatus = new.setdefault("status", {})
    nstatus["disruptionsAllowed"] = allowed - 1
    nstatus.setdefault("disruptedPods", {})[pod["metadata"]["name"]] = format_time()
    if allowed - 1 == 0:
        conditions = [c for c in nstatus.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
        conditions.append({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                           "message": "", "observedGeneration": nstatus.get("observedGeneration", 0),
                           "lastTransitionTime": format_time()})
        nstatus["conditions"] = conditions
    try:
        await registry.update(BY_PLURAL["poddisruptionbudgets"], pdb["metadata"]["namespace"], bname, new,
                              subresource="status", dry_run=dry_run)
    except st.StatusError as e:
        if e.code == 409:
            return False
        raise
    return True
