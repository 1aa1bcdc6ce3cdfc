"""CSINode write rules (upstream's ``pkg/registry/storage/csinode`` and its validation).

A kubelet creates its CSINode at start and gives up after about two minutes without one
(facts/real-k8s.md), so this kind is stored and validated like upstream's:

* ``status`` belongs to the ``/status`` subresource; with CSIVolumeHealth off (upstream's
  default, and kubeboot has no switch for it) its ``storageHealth`` is dropped unless the
  stored object already had one — so status stays ``{}``, which upstream also serves.
* a main-resource update keeps the stored status; a driver that keeps its name keeps every
  field but ``allocatable`` (MutableCSINodeAllocatableCount is GA and locked on in v1.37).
* an update must carry a ``resourceVersion`` (``AllowUnconditionalUpdate`` is false).
* an empty or missing driver list is served as ``"drivers": null``, as upstream serves it
  (its storage is protobuf, which cannot tell an empty list from none).

Who may write which CSINode is the Node authorizer's and NodeRestriction's business
(``kubeboot.auth``), not this module's.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kubeboot.api.registry.codec import copy_object
from kubeboot.api.registry.strategies import JsonObj, Strategy
from kubeboot.auth.interface import UserInfo
from kubeboot.resources.status import FieldError
from kubeboot.resources.validation import is_dns1123_subdomain, is_qualified_name

__all__ = ["CSINodeStrategy"]

_DRIVER_NAME_MAX = 63
_NODE_ID_MAX = 256


def _driver_name_errors(name: Any, path: str) -> list[FieldError]:
    """Upstream's ``ValidateCSIDriverName``: a DNS subdomain of at most 63, case-insensitive."""
    if not isinstance(name, str) or not name:
        return [FieldError.required(path)]
    errors = []
    if len(name) > _DRIVER_NAME_MAX:
        errors.append(FieldError.too_long(path, _DRIVER_NAME_MAX))
    errors += [FieldError.invalid(path, name, m) for m in is_dns1123_subdomain(name.lower())]
    return errors


def _driver_errors(driver: Any, path: str, seen: set[str]) -> list[FieldError]:
    if not isinstance(driver, dict):
        return [FieldError.invalid(path, None, "must be an object")]
    name = driver.get("name")
    errors = _driver_name_errors(name, f"{path}.name")
    node_id = driver.get("nodeID")
    if not isinstance(node_id, str) or not node_id:
        errors.append(FieldError.required(f"{path}.nodeID"))
    elif len(node_id) > _NODE_ID_MAX:
        errors.append(
            FieldError.invalid(
                f"{path}.nodeID", node_id, f"must be {_NODE_ID_MAX} characters or less"
            )
        )
    count = (driver.get("allocatable") or {}).get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        errors.append(FieldError.invalid(f"{path}.allocatable.count", count, "must be an integer"))
    elif count is not None and count < 0:
        errors.append(
            FieldError.invalid(
                f"{path}.allocatable.count", count, "must be greater than or equal to 0"
            )
        )
    if isinstance(name, str):
        if name in seen:
            errors.append(FieldError.duplicate(f"{path}.name", name))
        seen.add(name)
    keys = driver.get("topologyKeys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return [*errors, FieldError.invalid(f"{path}.topologyKeys", None, "must be strings")]
    # Upstream reports topology key errors on the driver's path, not the key's.
    unique: set[str] = set()
    for key in keys:
        if not key:
            errors.append(FieldError.required(path))
        if key in unique:
            errors.append(FieldError.duplicate(path, key))
        unique.add(key)
        errors += [FieldError.invalid(path, key, m) for m in is_qualified_name(key)]
    return errors


def _drivers(obj: JsonObj) -> list[Any]:
    drivers = (obj.get("spec") or {}).get("drivers")
    return drivers if isinstance(drivers, list) else []


def _without_allocatable(driver: Any) -> Any:
    if not isinstance(driver, dict):
        return driver
    return {k: v for k, v in driver.items() if k != "allocatable"}


def _go_json(driver: JsonObj) -> str:
    """The driver as upstream's error renders it: its Go fields in order, allocatable unset."""
    fields = {
        "name": driver.get("name"),
        "nodeID": driver.get("nodeID"),
        "topologyKeys": driver.get("topologyKeys") or None,
        "allocatable": None,
    }
    return json.dumps(fields, separators=(",", ":"))


class CSINodeStrategy(Strategy):
    allow_unconditional_update = False

    @staticmethod
    def _normalize(obj: JsonObj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict) and spec.get("drivers") in (None, []):
            spec["drivers"] = None

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        obj["status"] = {}
        self._normalize(obj)

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        if subresource == "status":
            super().prepare_update(new, old, subresource, user, now)
            status = new.get("status")
            if not isinstance(status, dict):
                new["status"] = {}
            elif not (old.get("status") or {}).get("storageHealth"):
                status.pop("storageHealth", None)
            return
        new["status"] = copy_object(old.get("status") or {})
        self._normalize(new)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        spec = obj.get("spec")
        if spec is not None and not isinstance(spec, dict):
            return [FieldError.invalid("spec", None, "must be an object")]
        drivers = (spec or {}).get("drivers")
        if drivers is not None and not isinstance(drivers, list):
            return [FieldError.invalid("spec.drivers", None, "must be a list")]
        errors: list[FieldError] = []
        seen: set[str] = set()
        for i, driver in enumerate(drivers or []):
            errors += _driver_errors(driver, f"spec.drivers[{i}]", seen)
        if old is not None and subresource == "":
            errors += self._immutable_driver_errors(obj, old)
        return errors

    @staticmethod
    def _immutable_driver_errors(obj: JsonObj, old: JsonObj) -> list[FieldError]:
        errors = []
        for old_driver in _drivers(old):
            for new_driver in _drivers(obj):
                if (
                    isinstance(old_driver, dict)
                    and isinstance(new_driver, dict)
                    and old_driver.get("name") == new_driver.get("name")
                    and _without_allocatable(old_driver) != _without_allocatable(new_driver)
                ):
                    errors.append(
                        FieldError(
                            "FieldValueInvalid",
                            "spec.drivers",
                            f"Invalid value: {_go_json(new_driver)}: field is immutable",
                        )
                    )
        return errors
