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
from kubeboot.pki.keypair import x509_key_pair_error
from kubeboot.resources.decoding import DecodeError, decode_json
from kubeboot.resources.status import BadRequest, FieldError
from kubeboot.resources.typecheck import json_type
from kubeboot.resources.validation import is_qualified_name

__all__ = ["Strategy", "stamp_conditions"]

JsonObj = dict[str, Any]
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MAX_SECRET_BYTES = 1024 * 1024


class Strategy:
    """Defaults: everything under ``metadata`` is user-writable, nothing else is special."""

    # Subresources that write ``status`` and ``metadata``; everything else (spec) comes
    # from storage, as upstream's status strategies (``newObj.Spec = oldObj.Spec``).
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
            _keep_from_old(new, old, keep=("metadata", "status", "kind", "apiVersion"))
            return
        for field in self.preserved_on_update:
            if field in old:
                new[field] = copy_object(old[field])
            else:
                new.pop(field, None)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        return []

    def warnings(self, obj: JsonObj, old: JsonObj | None) -> list[str]:
        """Upstream's WarningsOnCreate/WarningsOnUpdate: told to the client, not refused."""
        return []

    def created(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        """After a create was stored (logs, metrics); must not fail."""

    def updated(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        """After an update was stored (logs, metrics); must not fail."""


def _keep_from_old(new: JsonObj, old: JsonObj, *, keep: tuple[str, ...]) -> None:
    """Every top-level field but ``keep`` as stored (a subresource writes only ``keep``)."""
    for key in [k for k in new if k not in keep]:
        del new[key]
    for key, value in old.items():
        if key not in keep:
            new[key] = copy_object(value)


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


def normalize_secret_data(obj: JsonObj) -> None:
    """``stringData`` merged into ``data`` (base64), as upstream's v1 conversion does when it
    decodes a Secret; ``data`` values must be base64 (400 otherwise)."""
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


# Keys a Secret of each type must hold (ValidateSecret); basic-auth needs either of its two.
_SECRET_TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
_DOCKER_CONFIG_KEYS = {
    "kubernetes.io/dockercfg": ".dockercfg",
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
}
_SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
_REDACTED = "<secret contents redacted>"


def _secret_type_errors(obj: JsonObj) -> list[FieldError]:
    data = obj.get("data") or {}
    kind = obj.get("type")
    if kind == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(_SA_NAME_ANNOTATION):
            return [FieldError.required(f"metadata.annotations[{_SA_NAME_ANNOTATION}]")]
        return []
    if kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [FieldError.required("data[username]"), FieldError.required("data[password]")]
        return []
    if kind == "kubernetes.io/ssh-auth" and not data.get("ssh-privatekey"):
        return [FieldError.required("data[ssh-privatekey]")]
    missing = [
        FieldError.required(f"data[{k}]")
        for k in _SECRET_TYPE_KEYS.get(str(kind), ())
        if k not in data
    ]
    key = _DOCKER_CONFIG_KEYS.get(str(kind))
    if missing or key is None:
        return missing
    return _docker_config_errors(data[key], f"data[{key}]")


def _docker_config_errors(encoded: str, field: str) -> list[FieldError]:
    """A docker config must be JSON that Go unmarshals into a map (upstream's ValidateSecret)."""
    try:
        parsed = decode_json(base64.b64decode(encoded)).value
    except DecodeError as exc:
        return [FieldError.invalid(field, _REDACTED, str(exc))]
    if parsed is None or isinstance(parsed, dict):
        return []
    return [
        FieldError.invalid(
            field,
            _REDACTED,
            f"json: cannot unmarshal {json_type(parsed)} into Go value of type "
            "map[string]interface {}",
        )
    ]


def _immutability_errors(obj: JsonObj, old: JsonObj, fields: tuple[str, ...]) -> list[FieldError]:
    """Once ``immutable: true``, neither it nor the data may change (both kinds, as upstream)."""
    if old.get("immutable") is not True:
        return []
    errors = []
    if obj.get("immutable") is not True:
        errors.append(
            FieldError.forbidden("immutable", "field is immutable when `immutable` is set")
        )
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            errors.append(FieldError.forbidden(field, "field is immutable when `immutable` is set"))
    return errors


class SecretStrategy(Strategy):
    status_subresources = ()

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        normalize_secret_data(obj)

    def created(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        log_secret_created(obj, user)

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        normalize_secret_data(new)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        """ValidateSecretUpdate's order: what may not change, then the Secret itself."""
        errors: list[FieldError] = []
        if old is not None:
            if obj.get("type") != old.get("type"):
                errors.append(FieldError.invalid("type", obj.get("type"), "field is immutable"))
            errors += _immutability_errors(obj, old, ("data",))
        data = obj.get("data") or {}
        errors += _key_errors(data, "data")
        if sum(len(base64.b64decode(v)) for v in data.values()) > _MAX_SECRET_BYTES:
            errors.append(FieldError.too_long("data", _MAX_SECRET_BYTES))
        return errors + _secret_type_errors(obj)

    def warnings(self, obj: JsonObj, old: JsonObj | None) -> list[str]:
        """A TLS Secret whose pair does not load, in Go's words (GetWarningsForSecret)."""
        if obj.get("type") != "kubernetes.io/tls":
            return []
        data = obj.get("data") or {}
        pem = [base64.b64decode(data.get(k) or "") for k in ("tls.crt", "tls.key")]
        problem = x509_key_pair_error(pem[0], pem[1])
        return [problem] if problem else []


class ConfigMapStrategy(Strategy):
    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        data = obj.get("data") or {}
        binary = obj.get("binaryData") or {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return [FieldError.invalid("data", None, "must be a map of strings")]
        errors = _immutability_errors(obj, old, ("data", "binaryData")) if old is not None else []
        errors += _key_errors(data, "data") + _key_errors(binary, "binaryData")
        decoded = _decode_b64_map(binary, "binaryData")
        for key in set(data) & set(binary):
            errors.append(
                FieldError.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
            )
        # ValidateConfigMap's total: the bytes of the values (Go's len of a string and of a
        # []byte), not the keys and not binaryData's base64 text.
        size = sum(len(v.encode("utf-8", "surrogatepass")) for v in data.values())
        size += sum(len(v) for v in decoded.values())
        if size > _MAX_SECRET_BYTES:
            # field.NewPath("") is the whole object; Go prints an empty path as "[]"
            errors.append(FieldError.too_long("[]", _MAX_SECRET_BYTES))
        return errors


NAMESPACE_FINALIZER = "kubernetes"


class NamespaceStrategy(Strategy):
    """Upstream's namespace strategies: create starts Active with the ``kubernetes`` finalizer;
    an update keeps the stored ``spec.finalizers`` and status; ``/status`` keeps the stored
    spec; ``/finalize`` keeps the stored status (it is how finalizers change). Every write
    keeps the ``kubernetes.io/metadata.name`` label."""

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        obj["status"] = {"phase": "Active"}
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            obj["spec"] = spec = {}
        finalizers = spec.get("finalizers") or []
        if NAMESPACE_FINALIZER not in finalizers:
            spec["finalizers"] = [*finalizers, NAMESPACE_FINALIZER]
        _name_label(obj)

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        if subresource == "status":
            _keep_from_old(new, old, keep=("metadata", "status", "kind", "apiVersion"))
        elif subresource == "finalize":
            _keep_from_old(new, old, keep=("metadata", "spec", "kind", "apiVersion"))
        else:
            spec = new.get("spec")
            if not isinstance(spec, dict):
                new["spec"] = spec = {}
            old_finalizers = (old.get("spec") or {}).get("finalizers")
            if old_finalizers is None:
                spec.pop("finalizers", None)
            else:
                spec["finalizers"] = copy_object(old_finalizers)
            _keep_from_old(new, old, keep=("metadata", "spec", "kind", "apiVersion"))
        _name_label(new)


def _name_label(obj: JsonObj) -> None:
    """Upstream's Canonicalize: the label follows a name, and a nameless namespace (refused
    later by validation) gets none."""
    meta = obj.setdefault("metadata", {})
    if not meta.get("name"):
        return
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        meta["labels"] = labels = {}
    labels["kubernetes.io/metadata.name"] = meta["name"]


NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


class NodeStrategy(Strategy):
    preserved_on_update = ("status",)

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        """A new Node is tainted not-ready until its kubelet reports Ready (upstream's
        TaintNodesByCondition admission)."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            obj["spec"] = spec = {}
        taints = spec.get("taints") or []
        if not any(
            isinstance(t, dict)
            and t.get("key") == NOT_READY_TAINT["key"]
            and t.get("effect") == NOT_READY_TAINT["effect"]
            for t in taints
        ):
            spec["taints"] = [*taints, dict(NOT_READY_TAINT)]


class EventStrategy(Strategy):
    """core/v1 Events: upstream's legacy validation (the namespaces must agree; events with
    an ``eventTime`` name their reporter)."""

    status_subresources = ()

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors: list[FieldError] = []
        involved = obj.get("involvedObject") or {}
        involved_ns = str(involved.get("namespace") or "")
        ns = str((obj.get("metadata") or {}).get("namespace") or "")
        mismatch = FieldError.invalid(
            "involvedObject.namespace", involved_ns, "does not match event.namespace"
        )
        if not obj.get("eventTime"):
            if (not involved_ns and ns not in ("", "default")) or (
                involved_ns and ns != involved_ns
            ):
                errors.append(mismatch)
            return errors
        if not involved_ns and ns not in ("default", "kube-system"):
            errors.append(mismatch)
        component = str(obj.get("reportingComponent") or "")
        if not component:
            errors.append(FieldError.required("reportingComponent"))
        errors += [
            FieldError.invalid("reportingComponent", component, m)
            for m in is_qualified_name(component)
        ]
        for field, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = str(obj.get(field) or "")
            if not value:
                errors.append(FieldError.required(field))
            if len(value) > limit:
                errors.append(FieldError.invalid(field, "", f"can have at most {limit} characters"))
        if len(str(obj.get("message") or "")) > 1024:
            errors.append(FieldError.invalid("message", "", "can have at most 1024 characters"))
        return errors


_RBAC_GROUP = "rbac.authorization.k8s.io"


def _go_internal_json(value: JsonObj, fields: tuple[str, ...]) -> str:
    """How upstream prints an internal struct in a field error: JSON with Go's field names."""
    body = {
        f[:1].upper() + f[1:] if f != "apiGroup" else "APIGroup": value.get(f, "") for f in fields
    }
    return json.dumps(body, separators=(",", ":"))


def _subject_errors(subject: JsonObj, namespaced: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not subject.get("name"):
        errors.append(FieldError.required(f"{path}.name"))
    kind, group = subject.get("kind"), subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if group:
            errors.append(FieldError.not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errors.append(FieldError.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != _RBAC_GROUP:
            errors.append(FieldError.not_supported(f"{path}.apiGroup", group, [_RBAC_GROUP]))
    else:
        errors.append(
            FieldError.not_supported(
                f"{path}.kind", kind or "", ["ServiceAccount", "User", "Group"]
            )
        )
    return errors


class RoleBindingStrategy(Strategy):
    """ValidateRoleBinding / ValidateClusterRoleBinding, texts as upstream v1.37 (declarative
    validation words ``Required value`` and ``field is immutable`` bare)."""

    status_subresources = ()

    def __init__(self, *, namespaced: bool) -> None:
        self.namespaced = namespaced

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors: list[FieldError] = []
        ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
        assert isinstance(ref, dict)
        if ref.get("apiGroup") != _RBAC_GROUP:
            errors.append(
                FieldError.not_supported(
                    "roleRef.apiGroup", ref.get("apiGroup") or "", [_RBAC_GROUP]
                )
            )
        kinds = ["Role", "ClusterRole"] if self.namespaced else ["ClusterRole"]
        if ref.get("kind") not in kinds:
            errors.append(FieldError.not_supported("roleRef.kind", ref.get("kind") or "", kinds))
        if not ref.get("name"):
            errors.append(FieldError.required("roleRef.name"))
        for i, subject in enumerate(obj.get("subjects") or []):
            if isinstance(subject, dict):
                errors += _subject_errors(subject, self.namespaced, f"subjects[{i}]")
        if old is not None and ref != (old.get("roleRef") or {}):
            shown = _go_internal_json(ref, ("apiGroup", "kind", "name"))
            errors.append(
                FieldError(
                    "FieldValueInvalid", "roleRef", f"Invalid value: {shown}: field is immutable"
                )
            )
        return errors


class RoleStrategy(Strategy):
    """ValidatePolicyRule for every rule (namespaced Roles cannot name non-resource URLs)."""

    status_subresources = ()

    def __init__(self, *, namespaced: bool) -> None:
        self.namespaced = namespaced

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors: list[FieldError] = []
        for i, rule in enumerate(obj.get("rules") or []):
            if not isinstance(rule, dict):
                continue
            path = f"rules[{i}]"
            if not rule.get("verbs"):
                errors.append(FieldError.required(f"{path}.verbs"))
            urls = rule.get("nonResourceURLs") or []
            if urls:
                if self.namespaced:
                    errors.append(
                        FieldError.invalid(
                            f"{path}.nonResourceURLs",
                            urls,
                            "namespaced rules cannot apply to non-resource URLs",
                        )
                    )
                if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                    errors.append(
                        FieldError.invalid(
                            f"{path}.nonResourceURLs",
                            urls,
                            "rules cannot apply to both regular resources and non-resource URLs",
                        )
                    )
                continue
            if not rule.get("apiGroups"):
                errors.append(
                    FieldError.required(
                        f"{path}.apiGroups", "resource rules must supply at least one api group"
                    )
                )
            if not rule.get("resources"):
                errors.append(
                    FieldError.required(
                        f"{path}.resources", "resource rules must supply at least one resource"
                    )
                )
        return errors


class LeaseStrategy(Strategy):
    status_subresources = ()
    # Leases are written with the resourceVersion read (leader election depends on it).
    allow_unconditional_update = False

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
