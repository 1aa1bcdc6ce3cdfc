"""Constants of kubeboot's ``ledger.kubeboot.io`` group, in one place (docs/beyond-upstream.md).

* An ``IssuedCertificate`` is named by the certificate's serial number in lowercase hex
  without leading zeros (what ``openssl x509 -serial`` prints, lowercased and stripped), so
  a certificate has exactly one entry and a retried write finds the one it made;
* a ``CertificateRevocation`` has the same name as the entry of the certificate it revokes;
* a ``RejoinDenial`` is named by the node name it refuses.
"""

from __future__ import annotations

from kubeboot.resources.registry import ResourceInfo, find_resource

__all__ = [
    "GROUP",
    "ISSUED_CERTIFICATES",
    "REJOIN_DENIALS",
    "REVOCATIONS",
    "VERSION",
    "parse_serial",
    "serial_name",
]

GROUP = "ledger.kubeboot.io"
VERSION = "v1"


def _resource(plural: str) -> ResourceInfo:
    info = find_resource(GROUP, VERSION, plural)
    assert info is not None, plural
    return info


ISSUED_CERTIFICATES = _resource("issuedcertificates")
REVOCATIONS = _resource("certificaterevocations")
REJOIN_DENIALS = _resource("rejoindenials")


def serial_name(serial: int) -> str:
    """The object name for a serial number: lowercase hex, no ``0x``, no leading zeros."""
    return format(serial, "x")


def parse_serial(text: str) -> int:
    """A serial as an operator types it: hex, with or without ``0x`` or ``:`` separators
    (``openssl x509 -serial`` prints ``serial=5F3A...``); ValueError with the reason."""
    cleaned = text.strip().lower().removeprefix("serial=").removeprefix("0x").replace(":", "")
    if not cleaned or len(cleaned) > 40:
        raise ValueError(f"{text!r} is not a serial number (1 to 40 hex digits)")
    try:
        return int(cleaned, 16)
    except ValueError:
        raise ValueError(f"{text!r} is not a serial number (hex digits only)") from None
