"""Accessors for a CertificateSigningRequest as served (JSON dict), shared by the CSR controllers.

Mirrors upstream ``pkg/controller/certificates`` helpers: "approved" means an Approved
condition and no Denied one; a condition counts only with status ``"True"`` where upstream
checks that; ``spec.request`` and ``status.certificate`` are base64 in JSON.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from kubeboot.client.interface import JsonObject
from kubeboot.clock import parse_time
from kubeboot.resources.registry import ResourceInfo, find_resource

__all__ = [
    "CSR_RESOURCE",
    "certificate_pem",
    "conditions",
    "has_certificate",
    "has_true_condition",
    "is_approved",
    "is_denied",
    "request_pem",
    "timestamp",
    "with_status",
]


def _resource(group: str, plural: str) -> ResourceInfo:
    res = find_resource(group, "v1", plural)
    if res is None:  # pragma: no cover - the table is static
        raise LookupError(f"{plural}.{group} missing from the resource table")
    return res


CSR_RESOURCE = _resource("certificates.k8s.io", "certificatesigningrequests")


def conditions(csr: JsonObject) -> list[dict[str, Any]]:
    conds = (csr.get("status") or {}).get("conditions") or []
    return [c for c in conds if isinstance(c, dict)]


def with_status(csr: JsonObject, **changes: Any) -> JsonObject:
    """``csr`` with these ``status`` keys set, for a write; ``csr`` itself is left untouched.

    Only the top level and ``status`` are new dicts; the rest is shared with ``csr`` (the
    informer's cached object). That is enough because a write never mutates its argument:
    the REST service copies the body first and the HTTP client serialises it. A deep copy
    here cost ~14 µs per CSR write, twice per join.
    """
    return {**csr, "status": {**(csr.get("status") or {}), **changes}}


def is_approved(csr: JsonObject) -> bool:
    types = [c.get("type") for c in conditions(csr)]
    return "Approved" in types and "Denied" not in types


def is_denied(csr: JsonObject) -> bool:
    return any(c.get("type") == "Denied" for c in conditions(csr))


def has_true_condition(csr: JsonObject, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions(csr))


def _b64(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def request_pem(csr: JsonObject) -> bytes:
    return _b64((csr.get("spec") or {}).get("request"))


def certificate_pem(csr: JsonObject) -> bytes:
    return _b64((csr.get("status") or {}).get("certificate"))


def has_certificate(csr: JsonObject) -> bool:
    return bool((csr.get("status") or {}).get("certificate"))


def timestamp(value: Any) -> dt.datetime | None:
    """A metav1.Time, or None when absent/zero/unparseable (zero never counts as old)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
