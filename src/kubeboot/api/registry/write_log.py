"""One INFO line per event an operator follows: CSR approved, denied, signed; token created.

Why here: every approval or denial (the approver, ``kubectl certificate approve|deny``, a
policy approver) and every issued certificate goes through the registry's write of the
CSR, and every bootstrap token through the create of its Secret, whoever wrote it and in
whichever server process; logging at that one place gives exactly one line per event.
Expired tokens are logged by the tokencleaner that deletes them.

Nothing secret is logged: a token's id, never its secret; a certificate's serial, subject
and validity, never a key.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from cryptography import x509

from kubeboot.auth.interface import UserInfo
from kubeboot.clock import format_time
from kubeboot.resources import bootstrap_token as bt

__all__ = ["issued_certificate", "log_csr_update", "log_secret_created", "node_of"]

log = logging.getLogger("kubeboot.registry")

JsonObj = dict[str, Any]
_DECISIONS = {"Approved": "approved", "Denied": "denied"}


def _condition_types(obj: JsonObj) -> list[str]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return [str(c.get("type")) for c in conds if isinstance(c, dict)]


def _condition(obj: JsonObj, ctype: str) -> JsonObj:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype:
            return cond
    return {}


def issued_certificate(obj: JsonObj) -> x509.Certificate | None:
    """The first certificate of ``status.certificate``, or None (absent or unreadable)."""
    encoded = (obj.get("status") or {}).get("certificate")
    if not encoded:
        return None
    try:
        return x509.load_pem_x509_certificates(base64.b64decode(encoded))[0]
    except (ValueError, binascii.Error, IndexError):
        return None


def node_of(subject_cn: str) -> str:
    return subject_cn.removeprefix("system:node:")


def log_csr_update(new: JsonObj, old: JsonObj, user: UserInfo) -> None:
    name = (new.get("metadata") or {}).get("name")
    signer = (new.get("spec") or {}).get("signerName", "")
    requester = (new.get("spec") or {}).get("username", "")
    before = set(_condition_types(old))
    for ctype, verb in _DECISIONS.items():
        if ctype in _condition_types(new) and ctype not in before:
            cond = _condition(new, ctype)
            log.info(
                "CSR %s %s by %s (reason %s): signer %s, requested by %s",
                name,
                verb,
                user.name,
                cond.get("reason") or "none",
                signer,
                requester,
            )
    if issued_certificate(old) is None and (cert := issued_certificate(new)) is not None:
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        cn = str(cns[0].value) if cns else ""
        log.info(
            "CSR %s signed: serial %x, node %s (subject %s), valid %s to %s, signer %s",
            name,
            cert.serial_number,
            node_of(cn) if cn.startswith("system:node:") else "-",
            cert.subject.rfc4514_string(),
            format_time(cert.not_valid_before_utc),
            format_time(cert.not_valid_after_utc),
            signer,
        )


def log_secret_created(obj: JsonObj, user: UserInfo) -> None:
    if obj.get("type") != bt.SECRET_TYPE:
        return
    data = bt.decode_data(obj)
    expiration = data.get(bt.EXPIRATION_KEY) or "never"
    usages = [u for u in ("authentication", "signing") if bt.has_usage(data, u)]
    log.info(
        "bootstrap token %s created by %s: expires %s, usages %s",
        data.get(bt.TOKEN_ID_KEY)
        or bt.token_id_from_secret_name(str((obj.get("metadata") or {}).get("name"))),
        user.name,
        expiration,
        ",".join(usages) or "none",
    )
