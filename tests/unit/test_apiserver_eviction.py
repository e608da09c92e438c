"""The eviction subresource's decisions (apiserver/eviction.py) against an in-memory registry:
budgets spent in one compare-and-swap, upstream's 429/500/403 answers, hostile bodies refused
with a 400 and nothing changed."""

from __future__ import annotations

import copy

import pytest

from kubelab.apiserver import eviction
from kubelab.apiserver import status as st


class FakeRegistry:
    """get/list/update(status, CAS on resourceVersion)/delete over dicts; `race` makes the
    next budget write lose once, as a concurrent eviction would."""

    def __init__(self, pods, pdbs):
        self.objs = {("pods", p["metadata"]["name"]): p for p in pods}
        self.objs.update({("poddisruptionbudgets", b["metadata"]["name"]): b for b in pdbs})
        self.deleted: list[tuple[str, dict]] = []
        self.race = 0

    async def get(self, rt, ns, name):
        try:
            return copy.deepcopy(self.objs[(rt.plural, name)])
        except KeyError:
            raise st.not_found(rt, name) from None

    async def list(self, rt, ns):
        return {"items": [copy.deepcopy(o) for (k, _), o in self.objs.items() if k == rt.plural]}

    async def update(self, rt, ns, name, obj, *, subresource=None, dry_run=False):
        cur = self.objs[(rt.plural, name)]
        if self.race:
            self.race -= 1
            cur["metadata"]["resourceVersion"] = str(int(cur["metadata"]["resourceVersion"]) + 1)
        if obj["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"]:
            raise st.conflict(rt, name)
        if not dry_run:
            cur["status"] = obj["status"]
            cur["metadata"]["resourceVersion"] = str(int(cur["metadata"]["resourceVersion"]) + 1)
        return cur

    async def delete(self, rt, ns, name, options):
        self.deleted.append((name, options))
        return {}


def pod(name, *, ready=True, phase="Running", labels=None):
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "web"}},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(name="web", allowed=1, *, healthy=3, desired=2, gen=1, observed=1, selector=None, **spec):
    return {"metadata": {"name": name, "namespace": "ns", "generation": gen, "resourceVersion": "5"},
            "spec": {"selector": {"matchLabels": {"app": "web"}} if selector is None else selector, **spec},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": healthy, "desiredHealthy": desired,
                       "observedGeneration": observed}}


def body(name="web-0", **extra):
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "ns"}, **extra}


async def test_allowed_eviction_spends_the_budget_and_deletes_with_the_uid():
    reg = FakeRegistry([pod("web-0")], [pdb(allowed=1)])
    out = await eviction.evict(reg, "ns", "web-0", body())
    assert (out["status"], out["code"]) == ("Success", 201)
    status = reg.objs[("poddisruptionbudgets", "web")]["status"]
    assert status["disruptionsAllowed"] == 0 and "web-0" in status["disruptedPods"]
    assert status["conditions"][0]["reason"] == "InsufficientPods"
    assert reg.deleted == [("web-0", {"preconditions": {"uid": "uid-web-0"}})]


async def test_exhausted_budget_is_429_with_the_cause_and_nothing_changes():
    reg = FakeRegistry([pod("web-0")], [pdb(allowed=0, healthy=2, desired=2)])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", body())
    assert e.value.code == 429 and e.value.reason == "TooManyRequests"
    assert e.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert e.value.details["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    assert reg.deleted == [] and "disruptedPods" not in reg.objs[("poddisruptionbudgets", "web")]["status"]


@pytest.mark.parametrize("budget,code,words", [
    (pdb(gen=2, observed=1), 429, "is still being processed by the server"),
    (pdb(allowed=-1), 403, "pdb disruptions allowed is negative"),
])
async def test_budget_states_upstream_refuses(budget, code, words):
    reg = FakeRegistry([pod("web-0")], [budget])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", body())
    assert e.value.code == code and words in str(e.value.details or "") + e.value.message
    assert reg.deleted == []


async def test_too_many_unconfirmed_evictions_is_forbidden():
    b = pdb()
    b["status"]["disruptedPods"] = {f"p{i}": "2027-01-15T08:00:00Z" for i in range(eviction.MAX_DISRUPTED_PODS + 1)}
    reg = FakeRegistry([pod("web-0")], [b])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", body())
    assert e.value.code == 403 and "DisruptedPods map too big" in e.value.message


async def test_two_budgets_for_one_pod_is_500():
    reg = FakeRegistry([pod("web-0")], [pdb("a"), pdb("b")])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", body())
    assert e.value.code == 500 and "more than one PodDisruptionBudget" in e.value.message


@pytest.mark.parametrize("the_pod,budget", [
    (pod("web-0", phase="Pending", ready=False), pdb(allowed=0)),          # not running: no budget applies
    (pod("web-0", phase="Succeeded", ready=False), pdb(allowed=0)),
    (pod("web-0", ready=False), pdb(allowed=0, healthy=2, desired=2)),     # unready, budget met: IfHealthyBudget
    (pod("web-0", ready=False), pdb(allowed=0, healthy=1, desired=2, unhealthyPodEvictionPolicy="AlwaysAllow")),
    (pod("web-0"), pdb(allowed=0, selector={"matchLabels": {"app": "other"}})),  # not selected
])
async def test_evicted_without_spending(the_pod, budget):
    reg = FakeRegistry([the_pod], [budget])
    await eviction.evict(reg, "ns", "web-0", body())
    assert [d[0] for d in reg.deleted] == ["web-0"]
    assert reg.objs[("poddisruptionbudgets", budget["metadata"]["name"])]["status"]["disruptionsAllowed"] == 0


async def test_unready_pod_below_the_budget_still_needs_an_allowance():
    reg = FakeRegistry([pod("web-0", ready=False)], [pdb(allowed=0, healthy=1, desired=2)])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", body())
    assert e.value.code == 429


async def test_a_lost_race_is_retried_on_the_fresh_budget():
    reg = FakeRegistry([pod("web-0")], [pdb(allowed=1)])
    reg.race = 1
    await eviction.evict(reg, "ns", "web-0", body())
    assert reg.objs[("poddisruptionbudgets", "web")]["status"]["disruptionsAllowed"] == 0
    reg = FakeRegistry([pod("web-0")], [pdb(allowed=1)])
    reg.race = 99  # always losing: bounded, a 429 rather than a loop
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", body())
    assert e.value.code == 429 and reg.deleted == []


async def test_dry_run_decides_but_changes_nothing():
    reg = FakeRegistry([pod("web-0")], [pdb(allowed=1)])
    await eviction.evict(reg, "ns", "web-0", body(deleteOptions={"dryRun": ["All"]}))
    assert reg.deleted == [] and reg.objs[("poddisruptionbudgets", "web")]["status"]["disruptionsAllowed"] == 1


@pytest.mark.parametrize("bad,words", [
    (body("web-1"), "name in URL does not match name in Eviction object"),
    ({"kind": "Eviction", "metadata": {"name": "web-0", "namespace": "other"}}, "namespace in URL does not match"),
    ({"kind": "Pod", "metadata": {"name": "web-0"}}, "must be a policy/v1 Eviction"),
    ([1, 2], "must be a policy/v1 Eviction"),
    (body(deleteOptions="now"), "deleteOptions must be an object"),
])
async def test_hostile_bodies_are_400_and_change_nothing(bad, words):
    reg = FakeRegistry([pod("web-0")], [pdb(allowed=1)])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "web-0", bad)
    assert e.value.code == 400 and words in e.value.message
    assert reg.deleted == [] and reg.objs[("poddisruptionbudgets", "web")]["status"]["disruptionsAllowed"] == 1


async def test_missing_pod_is_404():
    reg = FakeRegistry([], [pdb()])
    with pytest.raises(st.StatusError) as e:
        await eviction.evict(reg, "ns", "ghost", body("ghost"))
    assert e.value.code == 404
