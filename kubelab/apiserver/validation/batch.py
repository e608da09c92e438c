"""batch/v1 kinds: Job and CronJob (the schedule through croniter, the time zone through
zoneinfo); fields the job controller does not implement are refused, never ignored.
"""

from __future__ import annotations

from kubelab.labels import selector_matches

from .causes import Causes, _dict
from .formats import _is_int
from .meta import _immutable, validate_label_selector, validate_labels
from .podspec import validate_pod_spec


# Job fields whose feature the job controller does not implement: refused, never ignored.
JOB_UNIMPLEMENTED = ("podFailurePolicy", "successPolicy", "backoffLimitPerIndex", "maxFailedIndexes")
JOB_MANAGED_BY = "kubernetes.io/job-controller"


def _validate_job(errs: Causes, obj: dict) -> None:
    """As upstream's ValidateJob: counts non-negative, pods that terminate (restartPolicy
    OnFailure or Never), a selector that matches the template."""
    _validate_job_spec(errs, _dict(obj.get("spec")), "spec", uid=_dict(obj.get("metadata")).get("uid"))


def _validate_job_spec(errs: Causes, spec: dict, at: str, *, uid: str | None,
                       selector_required: bool = True) -> None:
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        errs.nonneg(f"{at}.{f}", spec.get(f))
    mode = spec.get("completionMode")
    errs.enum(f"{at}.completionMode", mode, ("NonIndexed", "Indexed"), required=False)
    if mode == "Indexed":
        errs.forbidden(f"{at}.completionMode", "Indexed is not supported by kubelab's job controller yet")
        if spec.get("completions") is None:
            errs.required(f"{at}.completions", "when completion mode is Indexed")
        elif _is_int(spec["completions"]) and spec["completions"] > 100000:
            errs.invalid(f"{at}.completions", spec["completions"],
                         "must be less than or equal to 100000 when completion mode is Indexed")
    for f in JOB_UNIMPLEMENTED:
        if spec.get(f) is not None:
            errs.forbidden(f"{at}.{f}", "not supported by kubelab's job controller")
    errs.enum(f"{at}.podReplacementPolicy", spec.get("podReplacementPolicy"), ("TerminatingOrFailed",),
              required=False)
    if spec.get("managedBy") not in (None, JOB_MANAGED_BY):
        errs.not_supported(f"{at}.managedBy", spec.get("managedBy"), (JOB_MANAGED_BY,))
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        if selector_required:
            errs.required(f"{at}.selector")
    else:
        validate_label_selector(errs, selector, f"{at}.selector")
    if not isinstance(template, dict):
        errs.required(f"{at}.template")
        return
    labels = _dict(template.get("metadata")).get("labels") or {}
    validate_labels(errs, labels, f"{at}.template.metadata.labels")
    if isinstance(selector, dict) and not selector_matches(selector, labels):
        errs.invalid(f"{at}.template.metadata.labels", labels, "`selector` does not match template `labels`")
    if spec.get("manualSelector") is not True and uid and \
            _dict(_dict(selector).get("matchLabels")).get("batch.kubernetes.io/controller-uid") != uid:
        errs.invalid(f"{at}.selector", selector, "`selector` not auto-generated")
    pod_spec = template.get("spec")
    validate_pod_spec(errs, pod_spec, f"{at}.template.spec")
    rp = _dict(pod_spec).get("restartPolicy")
    if rp not in ("OnFailure", "Never"):
        errs.not_supported(f"{at}.template.spec.restartPolicy", rp, ("OnFailure", "Never"))


def schedule_error(schedule: str) -> str | None:
    """Why a CronJob schedule is refused (None when fine): five cron fields or a predefined
    `@hourly`-style macro, as upstream's parser takes; the time zone goes in spec.timeZone."""
    from croniter import croniter
    if len(schedule) > 256:
        return "must be no more than 256 characters"
    text = schedule.strip()
    if "TZ=" in text:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if text.startswith("@"):
        if text not in ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"):
            return f"unrecognized descriptor: {text}"
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {text}"
    if any("H" in f or "?" in f or "L" in f or "#" in f for f in fields) or not croniter.is_valid(text):
        return f"unparseable cron schedule: {text}"
    return None


def time_zone_error(tz: str) -> str | None:
    import zoneinfo
    if len(tz) > 64 or tz.startswith("/") or ".." in tz:
        return f"unknown time zone {tz}"
    try:
        zoneinfo.ZoneInfo(tz)
    except Exception:
        return f"unknown time zone {tz}"
    return None


def _validate_cronjob(errs: Causes, obj: dict) -> None:
    spec = _dict(obj.get("spec"))
    name = _dict(obj.get("metadata")).get("name")
    if isinstance(name, str) and len(name) > 52:
        errs.invalid("metadata.name", name, "must be no more than 52 characters")
    schedule = spec.get("schedule")
    if not schedule:
        errs.required("spec.schedule")
    elif (why := schedule_error(schedule)) is not None:
        errs.invalid("spec.schedule", schedule, why)
    tz = spec.get("timeZone")
    if tz is not None and (why := time_zone_error(tz)) is not None:
        errs.invalid("spec.timeZone", tz, why)
    errs.enum("spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ("Allow", "Forbid", "Replace"))
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.nonneg(f"spec.{f}", spec.get(f))
    template = spec.get("jobTemplate")
    if not isinstance(template, dict):
        errs.required("spec.jobTemplate")
        return
    validate_labels(errs, _dict(template.get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels")
    _validate_job_spec(errs, _dict(template.get("spec")), "spec.jobTemplate.spec", uid=None, selector_required=False)


def _validate_job_update(errs: Causes, obj: dict, old: dict) -> None:
    """A Job's pods are its template's: selector, template, completions and mode are fixed."""
    spec, ospec = _dict(obj.get("spec")), _dict(old.get("spec"))
    for f in ("selector", "template", "completions", "completionMode", "manualSelector"):
        _immutable(errs, f"spec.{f}", spec.get(f), ospec.get(f))


# kind → validator: merged into the package's registry (validation/__init__.py)
VALIDATORS = {"Job": _validate_job, "CronJob": _validate_cronjob}
UPDATE_VALIDATORS = {"Job": _validate_job_update}
