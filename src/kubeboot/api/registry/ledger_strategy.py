"""Write rules of kubeboot's ``ledger.kubeboot.io`` kinds that clients write.

* ``CertificateRevocation``: named by its ``spec.serialNumber`` (lowercase hex, as the ledger
  names entries), so revoking twice is a 409 AlreadyExists and the authenticator's index is a
  set of names; ``spec.revokedBy`` and ``spec.revokedAt`` are the server's (the requester and
  the time), like a CSR's ``spec.username``.
* ``RejoinDenial``: named by its ``spec.nodeName``; ``spec.deniedBy``/``deniedAt`` likewise.

Neither kind is ever updated (the table serves no update or patch). Every create is logged
at INFO (who, what, why); with ``--audit-log-path`` the audit log has every create and
delete request too.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from kubeboot.api.registry.strategies import JsonObj, Strategy
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import format_time
from kubeboot.resources.status import FieldError

__all__ = ["RejoinDenialStrategy", "RevocationStrategy"]

log = logging.getLogger("kubeboot.ledger")

_SERIAL = re.compile(r"^(0|[1-9a-f][0-9a-f]{0,39})$")
_MAX_REASON = 1024


class _Record(Strategy):
    """A record named by its ``spec.<key>``, stamped with who created it and when."""

    key = by = at = ""

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            obj["spec"] = spec = {}
        spec[self.by] = user.name
        spec[self.at] = format_time(now)

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        # metadata.name is checked as a DNS subdomain already, and the key must equal it.
        spec = obj.get("spec") or {}
        value = spec.get(self.key)
        errors = []
        if not value:
            errors.append(FieldError.required(f"spec.{self.key}"))
        elif value != (obj.get("metadata") or {}).get("name"):
            errors.append(FieldError.invalid(f"spec.{self.key}", value, "must equal metadata.name"))
        if len(str(spec.get("reason") or "")) > _MAX_REASON:
            errors.append(FieldError.too_long("spec.reason", _MAX_REASON))
        return errors


class RevocationStrategy(_Record):
    key, by, at = "serialNumber", "revokedBy", "revokedAt"

    def validate(self, obj: JsonObj, old: JsonObj | None, subresource: str) -> list[FieldError]:
        errors = super().validate(obj, old, subresource)
        serial = (obj.get("spec") or {}).get("serialNumber")
        if serial and not _SERIAL.match(str(serial)):
            errors.append(
                FieldError.invalid(
                    "spec.serialNumber",
                    serial,
                    "must be the serial number in lowercase hex without leading zeros "
                    "(1 to 40 digits), as the issuance ledger names it",
                )
            )
        return errors

    def created(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        spec = obj.get("spec") or {}
        log.info(
            "certificate serial %s revoked by %s (node %s, subject %s): %s",
            spec.get("serialNumber"),
            user.name,
            spec.get("nodeName") or "-",
            spec.get("subject") or "-",
            spec.get("reason") or "no reason given",
        )


class RejoinDenialStrategy(_Record):
    key, by, at = "nodeName", "deniedBy", "deniedAt"

    def created(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        spec = obj.get("spec") or {}
        log.info(
            "node %s denied re-joining by %s: %s",
            spec.get("nodeName"),
            user.name,
            spec.get("reason") or "no reason given",
        )
