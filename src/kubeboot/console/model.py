"""What the console shows, from plain API objects: pure functions, no I/O.

* **pending CSRs**: no Approved/Denied condition and no certificate yet;
* **tokens**: bootstrap-token Secrets with their remaining TTL and, for kubeboot's bound
  tokens (docs/beyond-upstream.md), the node they are bound to and the uses left;
* **certificate spans**: per node, the newest issued client and serving certificate, read
  from kubeboot's issuance ledger where the cluster serves it (it outlives CSR garbage
  collection), else from the certificates in CSRs' ``status.certificate`` (every cluster has
  those while the CSRs live; the subject CN names the node, also for bootstrap-token
  requests).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from kubeboot.clock import parse_time
from kubeboot.controllers.certificates import conditions, has_certificate
from kubeboot.pki.csr import KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources import token_binding as tb

__all__ = [
    "CertSpan",
    "Revocation",
    "TokenRow",
    "cert_spans_from_csrs",
    "cert_spans_from_ledger",
    "is_pending",
    "recent_revocations",
    "token_rows",
]

CertKind = Literal["client", "serving"]
_KINDS: dict[str, CertKind] = {KUBELET_CLIENT_SIGNER: "client", KUBELET_SERVING_SIGNER: "serving"}
_NODE_PREFIX = "system:node:"


def is_pending(csr: Mapping[str, Any]) -> bool:
    decided = any(c.get("type") in ("Approved", "Denied") for c in conditions(dict(csr)))
    return not decided and not has_certificate(dict(csr))


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_id: str
    description: str
    expires: dt.datetime | None
    ttl_left: dt.timedelta | None  # None: never expires
    usages: tuple[str, ...]
    groups: str
    node_name: str
    uses: int
    max_uses: int | None  # None: unlimited

    @property
    def uses_left(self) -> int | None:
        return None if self.max_uses is None else max(self.max_uses - self.uses, 0)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def token_rows(secrets: Iterable[Mapping[str, Any]], now: dt.datetime) -> list[TokenRow]:
    """One row per bootstrap-token Secret, soonest expiry first (never-expiring last)."""
    rows = []
    for secret in secrets:
        if secret.get("type") != bt.SECRET_TYPE:
            continue
        data = bt.decode_data(secret)
        token_id = data.get(bt.TOKEN_ID_KEY) or str(
            bt.token_id_from_secret_name(str((secret.get("metadata") or {}).get("name"))) or ""
        )
        try:
            expires = bt.get_expiration(data)
        except ValueError:
            expires = now  # upstream: an unparseable expiration is expired
        rows.append(
            TokenRow(
                token_id=token_id,
                description=data.get(bt.DESCRIPTION_KEY, ""),
                expires=expires,
                ttl_left=None if expires is None else max(expires - now, dt.timedelta(0)),
                usages=tuple(u for u in bt.KNOWN_USAGES if bt.has_usage(data, u)),
                groups=data.get(bt.AUTH_EXTRA_GROUPS_KEY, ""),
                node_name=data.get(tb.NODE_NAME_KEY, ""),
                uses=_int(data.get(tb.USES_KEY)) or 0,
                max_uses=_int(data.get(tb.MAX_USES_KEY)),
            )
        )
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(rows, key=lambda r: (r.expires or far, r.token_id))


@dataclass(frozen=True, slots=True)
class CertSpan:
    node: str
    kind: CertKind
    not_before: dt.datetime
    not_after: dt.datetime
    source: str  # where the console read it ("CSR csr-x")


def _leaf(csr: Mapping[str, Any]) -> x509.Certificate | None:
    encoded = (csr.get("status") or {}).get("certificate")
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        return x509.load_pem_x509_certificates(base64.b64decode(encoded))[0]
    except (ValueError, binascii.Error, IndexError):
        return None


def _newest(spans: Iterable[CertSpan]) -> list[CertSpan]:
    """The newest client and serving certificate of each node, by node name then kind."""
    newest: dict[tuple[str, CertKind], CertSpan] = {}
    for span in spans:
        key = (span.node, span.kind)
        if key not in newest or newest[key].not_after < span.not_after:
            newest[key] = span
    return sorted(newest.values(), key=lambda s: (s.node, s.kind))


def cert_spans_from_ledger(
    entries: Iterable[Mapping[str, Any]], revoked: frozenset[str] = frozenset()
) -> list[CertSpan]:
    """From kubeboot's IssuedCertificate entries (they outlive the CSRs), minus revoked
    serials: a revoked certificate no longer counts as the node's."""
    spans = []
    for entry in entries:
        spec = entry.get("spec") or {}
        kind = _KINDS.get(str(spec.get("signerName")))
        node = str(spec.get("nodeName") or "")
        if kind is None or not node or str(spec.get("serialNumber")) in revoked:
            continue
        try:
            not_before = parse_time(str(spec.get("notBefore")))
            not_after = parse_time(str(spec.get("notAfter")))
        except ValueError:
            continue
        source = f"ledger, serial {spec.get('serialNumber', '')}"
        spans.append(CertSpan(node, kind, not_before, not_after, source))
    return _newest(spans)


def cert_spans_from_csrs(csrs: Iterable[Mapping[str, Any]]) -> list[CertSpan]:
    """From the certificates in CSRs' ``status.certificate`` (any cluster)."""
    spans = []
    for csr in csrs:
        kind = _KINDS.get(str((csr.get("spec") or {}).get("signerName")))
        cert = _leaf(csr) if kind else None
        if kind is None or cert is None:
            continue
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else ""
        if not cn.startswith(_NODE_PREFIX):
            continue
        spans.append(
            CertSpan(
                node=cn.removeprefix(_NODE_PREFIX),
                kind=kind,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                source=f"CSR {(csr.get('metadata') or {}).get('name', '')}",
            )
        )
    return _newest(spans)


RECENT_REVOCATIONS = 20


@dataclass(frozen=True, slots=True)
class Revocation:
    when: str
    node: str
    serial: str
    reason: str


def recent_revocations(objects: Iterable[Mapping[str, Any]]) -> list[Revocation]:
    """The newest :data:`RECENT_REVOCATIONS` CertificateRevocations, newest first."""
    rows = [
        Revocation(
            when=str((obj.get("metadata") or {}).get("creationTimestamp") or ""),
            node=str((obj.get("spec") or {}).get("nodeName") or ""),
            serial=str((obj.get("spec") or {}).get("serialNumber") or ""),
            reason=str((obj.get("spec") or {}).get("reason") or ""),
        )
        for obj in objects
    ]
    rows.sort(key=lambda r: (r.when, r.serial), reverse=True)
    return rows[:RECENT_REVOCATIONS]
