"""Per-resource write rules (kube-apiserver's registry strategies), pure functions of objects.

A strategy prepares an incoming object (``prepare_create`` / ``prepare_update``: defaults,
fields the server owns, fields a subresource may not touch) and validates it (returning field
errors, rendered as 422 ``Invalid``). Authorization-dependent admission (CSR approve/sign)
lives in ``kubeboot.api.admission``; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from kubeboot.api.registry.codec import copy_object
from kubeboot.api.registry.write_log import log_secret_created
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import format_time
from kubeboot.resources.status import BadRequest, FieldError

__all__ = ["Strategy", "stamp_conditions"]

JsonObj = dict[str, Any]
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MAX_SECRET_BYTES = 1024 * 1024


class Strategy:
    """Defaults: everything under ``metadata`` is user-writable, nothing else is special."""

    # Subresources that replace only ``status`` (the rest of the object comes from storage).
    status_subresources: tuple[str, ...] = ("status",)
    # Fields copied from the stored object on a main-resource update.
    preserved_on_update: tuple[str, ...] = ()
    allow_unconditional_update = True

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        """Mutate a new object in place before validation."""

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        if subresource in self.status_subresources:
            status = new.get("status")
            new.clear()
            new.update(copy_object(old))
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            return
        for field in self.preserved_on_update:
            if field in old:
                new[field] = copy_object(old[field])
            else:
                new.pop(field, None)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        return []

    def created(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        """After a create was stored (logs, metrics); must not fail."""

    def updated(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        """After an update was stored (logs, metrics); must not fail."""


def _decode_b64_map(data: Any, field: str) -> dict[str, bytes]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadRequest(f"{field} must be a map of base64 strings")
    out: dict[str, bytes] = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise BadRequest(f"{field}[{key}] must be a base64-encoded string")
        try:
            out[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(
                f"{field}[{key}]: illegal base64 data; values in {field} must be "
                "base64-encoded (use stringData for plain text)"
            ) from exc
    return out


def _key_errors(keys: Any, field: str) -> list[FieldError]:
    errors = []
    for key in keys:
        if not _CONFIG_KEY.match(key) or len(key) > 253:
            errors.append(
                FieldError.invalid(
                    f"{field}[{key}]",
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                    "validation is '[-._a-zA-Z0-9]+')",
                )
            )
    return errors


class SecretStrategy(Strategy):
    status_subresources = ()

    def _normalize(self, obj: JsonObj) -> None:
        data = _decode_b64_map(obj.get("data"), "data")
        string_data = obj.pop("stringData", None)
        if string_data is not None:
            if not isinstance(string_data, dict):
                raise BadRequest("stringData must be a map of strings")
            for key, value in string_data.items():
                if not isinstance(value, str):
                    raise BadRequest(f"stringData[{key}] must be a string")
                data[key] = value.encode()
        if data or "data" in obj:
            obj["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
        obj.setdefault("type", "Opaque")

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        self._normalize(obj)

    def created(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        log_secret_created(obj, user)

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        self._normalize(new)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        data = obj.get("data") or {}
        errors = _key_errors(data, "data")
        if sum(len(base64.b64decode(v)) for v in data.values()) > _MAX_SECRET_BYTES:
            errors.append(FieldError.too_long("data", _MAX_SECRET_BYTES))
        errors += _secret_type_errors(obj)
        if old is not None:
            if obj.get("type") != old.get("type"):
                errors.append(FieldError.invalid("type", obj.get("type"), "field is immutable"))
            if old.get("immutable") and (
                obj.get("data") != old.get("data") or not obj.get("immutable")
            ):
                errors.append(
                    FieldError.forbidden("data", "field is immutable when `immutable` is set")
                )
        return errors


# Upstream's ValidateSecret: the keys each built-in Secret type must hold.
_TLS = "kubernetes.io/tls"
_SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"


def _secret_type_errors(obj: JsonObj) -> list[FieldError]:
    stype = obj.get("type") or "Opaque"
    data = obj.get("data") or {}
    if stype == _TLS:
        return [FieldError.required(f"data[{k}]") for k in ("tls.crt", "tls.key") if k not in data]
    if stype == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(_SA_NAME_ANNOTATION):
            return [FieldError.required(f"metadata.annotations[{_SA_NAME_ANNOTATION}]")]
    if stype == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        return [FieldError.required("data[username]"), FieldError.required("data[password]")]
    if stype == "kubernetes.io/ssh-auth" and not data.get("ssh-privatekey"):
        return [FieldError.required("data[ssh-privatekey]")]
    for dtype, key in (
        ("kubernetes.io/dockercfg", ".dockercfg"),
        ("kubernetes.io/dockerconfigjson", ".dockerconfigjson"),
    ):
        if stype != dtype:
            continue
        if key not in data:
            return [FieldError.required(f"data[{key}]")]
        try:
            parsed = json.loads(base64.b64decode(data[key]))
        except ValueError as exc:
            return [FieldError.invalid(f"data[{key}]", "<secret contents redacted>", str(exc))]
        if not isinstance(parsed, dict):
            return [
                FieldError.invalid(
                    f"data[{key}]",
                    "<secret contents redacted>",
                    "json: cannot unmarshal into Go value of type map[string]interface {}",
                )
            ]
    return []


class ConfigMapStrategy(Strategy):
    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        data = obj.get("data") or {}
        binary = obj.get("binaryData") or {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return [FieldError.invalid("data", None, "must be a map of strings")]
        errors = _key_errors(data, "data") + _key_errors(binary, "binaryData")
        _decode_b64_map(binary, "binaryData")
        for key in set(data) & set(binary):
            errors.append(
                FieldError.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
            )
        size = sum(len(k) + len(v) for k, v in data.items()) + sum(len(v) for v in binary.values())
        if size > _MAX_SECRET_BYTES:
            errors.append(FieldError.too_long("", _MAX_SECRET_BYTES))
        if (
            old is not None
            and old.get("immutable")
            and (data != (old.get("data") or {}) or binary != (old.get("binaryData") or {}))
        ):
            errors.append(
                FieldError.forbidden("data", "field is immutable when `immutable` is set")
            )
        return errors


class NamespaceStrategy(Strategy):
    preserved_on_update = ("status",)

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        super().prepare_update(new, old, subresource, user, now)
        new.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = (
            new["metadata"].get("name")
        )


class NodeStrategy(Strategy):
    preserved_on_update = ("status",)


class RoleBindingStrategy(Strategy):
    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors: list[FieldError] = []
        ref = obj.get("roleRef")
        if not isinstance(ref, dict) or not ref.get("name"):
            errors.append(FieldError.required("roleRef.name"))
        elif ref.get("kind") not in ("Role", "ClusterRole"):
            errors.append(
                FieldError.not_supported("roleRef.kind", ref.get("kind"), ["Role", "ClusterRole"])
            )
        if old is not None and ref != old.get("roleRef"):
            errors.append(FieldError.invalid("roleRef", None, "cannot change roleRef"))
        for i, subject in enumerate(obj.get("subjects") or []):
            if not isinstance(subject, dict) or not subject.get("name"):
                errors.append(FieldError.required(f"subjects[{i}].name"))
            elif subject.get("kind") not in ("User", "Group", "ServiceAccount"):
                errors.append(
                    FieldError.not_supported(
                        f"subjects[{i}].kind",
                        subject.get("kind"),
                        ["Group", "ServiceAccount", "User"],
                    )
                )
        return errors


class RoleStrategy(Strategy):
    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors: list[FieldError] = []
        for i, rule in enumerate(obj.get("rules") or []):
            if not isinstance(rule, dict) or not rule.get("verbs"):
                errors.append(
                    FieldError.required(
                        f"rules[{i}].verbs", "verbs must contain at least one value"
                    )
                )
                continue
            if rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("apiGroups")):
                errors.append(
                    FieldError.invalid(
                        f"rules[{i}].nonResourceURLs",
                        None,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            elif not rule.get("nonResourceURLs") and not rule.get("resources"):
                errors.append(
                    FieldError.required(
                        f"rules[{i}].resources", "resource rules must supply at least one resource"
                    )
                )
        return errors


class LeaseStrategy(Strategy):
    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        """Upstream's ValidateLeaseSpec."""
        spec = obj.get("spec") or {}
        errors = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and duration <= 0:
            errors.append(
                FieldError.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
        transitions = spec.get("leaseTransitions")
        if transitions is not None and transitions < 0:
            errors.append(
                FieldError.invalid(
                    "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
                )
            )
        if spec.get("preferredHolder") and not spec.get("strategy"):
            errors.append(
                FieldError.forbidden(
                    "spec.preferredHolder", "may only be specified if `strategy` is defined"
                )
            )
        return errors


class EventStrategy(Strategy):
    """core/v1 Events: upstream validates only its legacy rules for this version."""

    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        involved = (obj.get("involvedObject") or {}).get("namespace") or ""
        if obj.get("eventTime"):  # a "new" event: reporting fields required (as upstream)
            errors = []
            if not involved and namespace not in ("default", "kube-system"):
                errors.append(_namespace_mismatch(involved))
            for field, limit in (("reportingComponent", 0), ("reportingInstance", 128)):
                value = obj.get(field) or ""
                if not value:
                    errors.append(FieldError.required(field))
                elif limit and len(value) > limit:
                    errors.append(
                        FieldError.invalid(field, "", f"can have at most {limit} characters")
                    )
            if not obj.get("action"):
                errors.append(FieldError.required("action"))
            if not obj.get("reason"):
                errors.append(FieldError.required("reason"))
            return errors
        if (involved or namespace not in ("", "default")) and involved != namespace:
            return [_namespace_mismatch(involved)]
        return []


def _namespace_mismatch(involved: str) -> FieldError:
    return FieldError.invalid(
        "involvedObject.namespace", involved, "does not match event.namespace"
    )


def stamp_conditions(new: list[JsonObj], old: list[JsonObj], now: dt.datetime) -> None:
    """§4.7: fill lastUpdateTime, and lastTransitionTime from a same-type same-status old one."""
    stamp = format_time(now)
    for cond in new:
        if not cond.get("lastUpdateTime"):
            cond["lastUpdateTime"] = stamp
        if not cond.get("lastTransitionTime"):
            previous = next(
                (
                    o.get("lastTransitionTime")
                    for o in old
                    if o.get("type") == cond.get("type")
                    and o.get("status") == cond.get("status")
                    and o.get("lastTransitionTime")
                ),
                None,
            )
            cond["lastTransitionTime"] = previous or stamp
