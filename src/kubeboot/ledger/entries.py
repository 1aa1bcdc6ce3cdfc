"""The ledger's objects, built from what the server knows at issuance (pure functions).

An ``IssuedCertificate`` is immutable once written: everything in it is a fact of the
certificate (serial, subject, SANs, validity, fingerprint) or of the request that produced it
(the CSR's name, uid, requester and approval; the source address of the request that created
the CSR, recorded by :mod:`kubeboot.ledger.recorder` in a :class:`Origin`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kubeboot.auth.users import NODE_USER_PREFIX
from kubeboot.clock import format_time, parse_time
from kubeboot.resources.ledger import GROUP, VERSION, serial_name

__all__ = [
    "Origin",
    "issued_certificate_entry",
    "rejoin_denial",
    "revocation",
    "still_valid",
]

JsonObj = dict[str, Any]
_API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True, slots=True)
class Origin:
    """What only the request path knows about a CSR: who created it from where, who approved.

    ``source_address`` is the client address of the create request (the real one through the
    PROXY protocol); ``approver`` the authenticated user whose write added ``Approved``.
    """

    source_address: str = ""
    approver: str = ""

    def to_json(self) -> JsonObj:
        return {"sourceAddress": self.source_address, "approver": self.approver}

    @classmethod
    def from_json(cls, raw: Any) -> Origin:
        if not isinstance(raw, dict):
            return cls()
        return cls(str(raw.get("sourceAddress") or ""), str(raw.get("approver") or ""))


def _approval(csr: JsonObj) -> JsonObj:
    for cond in (csr.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Approved":
            return cond
    return {}


def _names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def issued_certificate_entry(cert: x509.Certificate, csr: JsonObj, origin: Origin) -> JsonObj:
    """The ``IssuedCertificate`` recording ``cert``, issued for ``csr``."""
    meta = csr.get("metadata") or {}
    spec = csr.get("spec") or {}
    approval = _approval(csr)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    dns, ips = _names(cert)
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "apiVersion": _API_VERSION,
        "kind": "IssuedCertificate",
        "metadata": {"name": serial_name(cert.serial_number)},
        "spec": {
            "serialNumber": serial_name(cert.serial_number),
            "subject": cert.subject.rfc4514_string(),
            "commonName": cn,
            "organizations": orgs,
            "dnsNames": dns,
            "ipAddresses": ips,
            "signerName": str(spec.get("signerName") or ""),
            "usages": [str(u) for u in spec.get("usages") or []],
            "notBefore": format_time(cert.not_valid_before_utc),
            "notAfter": format_time(cert.not_valid_after_utc),
            "sha256Fingerprint": hashlib.sha256(der).hexdigest(),
            "csrName": str(meta.get("name") or ""),
            "csrUID": str(meta.get("uid") or ""),
            "requestingUser": str(spec.get("username") or ""),
            "requestingGroups": [str(g) for g in spec.get("groups") or []],
            "approver": origin.approver,
            "approvalReason": str(approval.get("reason") or ""),
            "approvalMessage": str(approval.get("message") or ""),
            "nodeName": cn[len(NODE_USER_PREFIX) :] if cn.startswith(NODE_USER_PREFIX) else "",
            "sourceAddress": origin.source_address,
        },
    }


def revocation(entry_spec: JsonObj, reason: str) -> JsonObj:
    """A ``CertificateRevocation`` for the ledger entry whose spec is ``entry_spec`` (or a
    bare ``{"serialNumber": ...}`` for a certificate the ledger does not know)."""
    serial = str(entry_spec["serialNumber"])
    spec: JsonObj = {"serialNumber": serial, "reason": reason}
    for key in ("nodeName", "subject", "notAfter"):
        if entry_spec.get(key):
            spec[key] = entry_spec[key]
    return {
        "apiVersion": _API_VERSION,
        "kind": "CertificateRevocation",
        "metadata": {"name": serial},
        "spec": spec,
    }


def rejoin_denial(node: str, reason: str) -> JsonObj:
    """A ``RejoinDenial``: CSRs for ``system:node:<node>`` are refused while it exists."""
    return {
        "apiVersion": _API_VERSION,
        "kind": "RejoinDenial",
        "metadata": {"name": node},
        "spec": {"nodeName": node, "reason": reason},
    }


def still_valid(spec: JsonObj, now: dt.datetime) -> bool:
    """Whether the entry's certificate has not expired yet (revoking an expired one is moot)."""
    try:
        return parse_time(str(spec.get("notAfter") or "")) > now
    except ValueError:
        return True
