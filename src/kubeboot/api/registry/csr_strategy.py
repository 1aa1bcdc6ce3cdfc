"""CertificateSigningRequest write rules (server-facts §4.3–4.7, pitfalls 4–7).

* create: ``spec.username/uid/groups/extra`` come from the requester, never the body;
  ``status`` starts empty, so nobody can create a pre-approved CSR.
* main resource update: spec and status silently reset to the stored values.
* ``/status``: spec reset; Approved/Denied content kept; certificate is write-once.
* ``/approval``: only ``status.conditions`` is taken from the request.
* on every path: Approved and Denied are exclusive, Approved/Denied/Failed cannot be
  removed, condition types are unique, built-in types must be "True"; rules the stored
  object already broke are relaxed for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.api.registry.codec import copy_object
from kubeboot.api.registry.strategies import JsonObj, Strategy, stamp_conditions
from kubeboot.api.registry.write_log import log_csr_update
from kubeboot.auth.interface import UserInfo
from kubeboot.metrics.csr import record_csr_update
from kubeboot.pki.csr import validate_csr_spec, validate_issued_certificate
from kubeboot.resources.status import FieldError

__all__ = ["CSRStrategy"]

_BUILTIN = ("Approved", "Denied", "Failed")
# Upstream's union validation (declarative, v1.37) on Approved + Denied, text as it prints.
_UNION_MEMBERS = '`conditions[{"type": "Approved"}]`, `conditions[{"type": "Denied"}]`'
_UNION_ERROR = FieldError(
    "FieldValueInvalid",
    "status.conditions",
    'Invalid value: "{conditions[{\\"type\\": \\"Approved\\"}], '
    'conditions[{\\"type\\": \\"Denied\\"}]}": must specify at most one of: ' + _UNION_MEMBERS,
)


def _conditions(obj: JsonObj) -> list[JsonObj]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return [c for c in conds if isinstance(c, dict)]


def _count(conds: list[JsonObj], ctype: str) -> int:
    return sum(1 for c in conds if c.get("type") == ctype)


class CSRStrategy(Strategy):
    status_subresources = ()

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            obj["spec"] = spec = {}
        for field in ("username", "uid", "groups", "extra"):
            spec.pop(field, None)
        spec["username"] = user.name
        if user.uid:
            spec["uid"] = user.uid
        spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra.items()}
        obj["status"] = {}

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        new["spec"] = copy_object(old.get("spec"))
        old_status: dict[str, Any] = copy_object(old.get("status") or {})
        if subresource == "":
            new["status"] = old_status
            return
        incoming = new.get("status") if isinstance(new.get("status"), dict) else {}
        assert isinstance(incoming, dict)
        conds = [copy_object(c) for c in incoming.get("conditions") or [] if isinstance(c, dict)]
        if subresource == "approval":
            status = old_status
            status["conditions"] = conds
        else:  # status
            status = copy_object(incoming)
            old_conds = _conditions(old)
            for ctype in ("Approved", "Denied"):
                if _count(conds, ctype) == _count(old_conds, ctype):
                    # Keep the stored instances' content, in the positions the client sent.
                    stored = iter([copy_object(c) for c in old_conds if c.get("type") == ctype])
                    conds = [next(stored) if c.get("type") == ctype else c for c in conds]
            status["conditions"] = conds
        if not status.get("conditions"):
            status.pop("conditions", None)
        stamp_conditions(status.get("conditions") or [], _conditions(old), now)
        new["status"] = status

    def updated(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        log_csr_update(new, old, user)
        record_csr_update(new, old, now)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors: list[FieldError] = []
        spec = obj.get("spec")
        if old is None:
            errors += validate_csr_spec(spec if isinstance(spec, dict) else {})
        errors += self._validate_conditions(obj, old)
        if subresource == "status" and old is not None:
            errors += self._validate_status_keeps_decisions(obj, old)
        errors += self._validate_certificate(obj, old)
        errors += self._validate_kept_conditions(obj, old)  # upstream checks these last
        return errors

    @staticmethod
    def _validate_conditions(obj: JsonObj, old: JsonObj | None) -> list[FieldError]:
        errors: list[FieldError] = []
        conds = _conditions(obj)
        old_conds = _conditions(old) if old is not None else []
        relaxed_exclusive = _count(old_conds, "Approved") and _count(old_conds, "Denied")
        if _count(conds, "Approved") and _count(conds, "Denied") and not relaxed_exclusive:
            errors.append(_UNION_ERROR)
        seen: set[str] = set()
        old_types = [c.get("type") for c in old_conds]
        for i, cond in enumerate(conds):
            ctype = cond.get("type")
            field = f"status.conditions[{i}]"
            if not ctype:
                errors.append(FieldError.required(f"{field}.type"))
                continue
            if ctype in seen and old_types.count(ctype) < 2:
                errors.append(FieldError.duplicate(f"{field}.type", ctype))
            seen.add(str(ctype))
            if ctype in _BUILTIN:
                status = cond.get("status")
                if not status:
                    errors.append(FieldError.required(f"{field}.status"))
                elif status != "True":
                    errors.append(FieldError.not_supported(f"{field}.status", status, ["True"]))
            elif cond.get("status") not in ("True", "False", "Unknown"):
                errors.append(
                    FieldError.not_supported(
                        f"{field}.status", cond.get("status"), ["False", "True", "Unknown"]
                    )
                )
        return errors

    @staticmethod
    def _validate_kept_conditions(obj: JsonObj, old: JsonObj | None) -> list[FieldError]:
        conds, old_conds = _conditions(obj), _conditions(old) if old is not None else []
        return [
            FieldError.forbidden(
                "status.conditions", f'updates may not remove a condition of type "{ctype}"'
            )
            for ctype in _BUILTIN
            if _count(old_conds, ctype) and not _count(conds, ctype)
        ]

    @staticmethod
    def _validate_status_keeps_decisions(obj: JsonObj, old: JsonObj) -> list[FieldError]:
        """Approved/Denied may be added or changed only through ``/approval``."""
        errors = []
        for ctype in ("Approved", "Denied"):
            new_n, old_n = _count(_conditions(obj), ctype), _count(_conditions(old), ctype)
            if new_n > old_n:
                errors.append(
                    FieldError.forbidden(
                        "status.conditions", f'updates may not add a condition of type "{ctype}"'
                    )
                )
        return errors

    @staticmethod
    def _validate_certificate(obj: JsonObj, old: JsonObj | None) -> list[FieldError]:
        cert = (obj.get("status") or {}).get("certificate") or ""
        old_cert = ((old or {}).get("status") or {}).get("certificate") or ""
        if cert == old_cert:
            return []
        if old_cert:
            return [
                FieldError.forbidden(
                    "status.certificate", "updates may not modify existing certificate content"
                )
            ]
        return validate_issued_certificate(cert)
