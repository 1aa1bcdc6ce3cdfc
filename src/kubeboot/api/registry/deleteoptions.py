"""``DeleteOptions``: from a body (any kind of group version, as client-go sends it) or the
query, validated as upstream's ``ValidateDeleteOptions``.

kubeboot has no garbage collector (docs/api.md, Deviations), so the propagation policy and
grace period are validated and otherwise have no effect: an object is deleted at once, or
marked when finalizers hold it. The preconditions and ``dryRun`` are honoured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeboot.resources.status import BadRequest, FieldError, Invalid

__all__ = ["DeleteOptions", "dry_run_error", "parse_delete_options"]

_PROPAGATION = ("Foreground", "Background", "Orphan")


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None


def dry_run_error(kind: str, values: list[str]) -> Invalid | None:
    """``dryRun`` holds only ``All`` (422 on the options kind otherwise, as upstream)."""
    if all(v == "All" for v in values):
        return None
    return Invalid.of(
        kind, "meta.k8s.io", "", [FieldError.not_supported("dryRun", values, ["All"])]
    )


def _from_query(query: Mapping[str, str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if "gracePeriodSeconds" in query:
        raw = query["gracePeriodSeconds"]
        try:
            opts["gracePeriodSeconds"] = int(raw)
        except ValueError as exc:
            raise BadRequest(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from exc
    if query.get("propagationPolicy"):
        opts["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query:
        opts["orphanDependents"] = query["orphanDependents"].lower() in ("true", "1")
    getall = getattr(query, "getall", None)
    dry = list(getall("dryRun", [])) if getall else ([query["dryRun"]] if "dryRun" in query else [])
    if dry:
        opts["dryRun"] = dry
    return opts


def parse_delete_options(body: Any, query: Mapping[str, str]) -> DeleteOptions:
    if body is None:
        opts = _from_query(query)
    elif not isinstance(body, dict) or body.get("kind") not in (None, "DeleteOptions"):
        raise BadRequest("decoded object cannot be converted to DeleteOptions")
    else:
        opts = body
    errors: list[FieldError] = []
    policy = opts.get("propagationPolicy")
    if opts.get("orphanDependents") is not None and policy is not None:
        errors.append(
            FieldError.invalid(
                "propagationPolicy",
                policy,
                "orphanDependents and deletionPropagation cannot be both set",
            )
        )
    if policy is not None and policy not in _PROPAGATION:
        errors.append(FieldError.not_supported("propagationPolicy", policy, [*_PROPAGATION, "nil"]))
    dry = opts.get("dryRun") or []
    if not isinstance(dry, list) or not all(isinstance(v, str) for v in dry):
        raise BadRequest("dryRun must be a list of strings")
    invalid = dry_run_error("DeleteOptions", dry)
    if invalid is not None:
        errors += invalid.causes
    if errors:
        raise Invalid.of("DeleteOptions", "meta.k8s.io", "", errors)
    pre = opts.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise BadRequest("preconditions must be an object")
    grace = opts.get("gracePeriodSeconds")
    return DeleteOptions(
        uid=pre.get("uid"),
        resource_version=pre.get("resourceVersion"),
        dry_run=bool(dry),
        grace_period_seconds=grace if isinstance(grace, int) else None,
        propagation_policy=policy,
    )
