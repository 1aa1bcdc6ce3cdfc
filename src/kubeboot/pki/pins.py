"""CA public-key pins in kubeadm's ``sha256:<hex>`` format (node-facts §3.5, ``pubkeypin.go``).

The hash is SHA-256 over the certificate's DER SubjectPublicKeyInfo *exactly as encoded in
the certificate*, so it is cut out of the certificate bytes rather than re-serialised from
the parsed key (re-encoding could change parameters for some key types).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["PinError", "PinSet", "spki_der", "spki_pin"]

_SUPPORTED_FORMATS = "sha256"


class PinError(ValueError):
    """A malformed pin, or no pinned key among the presented certificates."""


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``offset``."""
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return tag, start, start + length


def spki_der(cert: x509.Certificate) -> bytes:
    """The raw SubjectPublicKeyInfo element of ``cert``'s TBSCertificate."""
    der = cert.public_bytes(serialization.Encoding.DER)
    _, tbs_start, _ = _tlv(der, 0)  # Certificate ::= SEQUENCE { tbsCertificate, ... }
    _, offset, _ = _tlv(der, tbs_start)  # tbsCertificate ::= SEQUENCE { ... }
    if der[offset] == 0xA0:  # [0] EXPLICIT version, optional
        offset = _tlv(der, offset)[2]
    # serialNumber, signature, issuer, validity, subject
    for _ in range(5):
        offset = _tlv(der, offset)[2]
    _, _, end = _tlv(der, offset)
    return der[offset:end]


def spki_pin(cert: x509.Certificate) -> str:
    """``sha256:<lower-case hex>`` of the certificate's SPKI, as ``kubeadm`` prints it."""
    return "sha256:" + hashlib.sha256(spki_der(cert)).hexdigest()


class PinSet:
    """A set of allowed SPKI hashes (``--discovery-token-ca-cert-hash`` values)."""

    def __init__(self, pins: Iterable[str] = ()) -> None:
        self._sha256: list[bytes] = []
        for pin in pins:
            self.allow(pin)

    def __bool__(self) -> bool:
        return bool(self._sha256)

    def allow(self, pin: str) -> None:
        parts = pin.split(":")
        if len(parts) != 2:
            raise PinError(
                'invalid hash, expected "format:hex-value". '
                f"Known format(s) are: {_SUPPORTED_FORMATS}"
            )
        fmt, value = parts
        if fmt.lower() != "sha256":
            raise PinError(
                f'unknown hash format "{fmt}". Known format(s) are: {_SUPPORTED_FORMATS}'
            )
        if len(value) // 2 != hashlib.sha256().digest_size:
            raise PinError(
                f'invalid hash "{pin}", expected a 32 byte SHA-256 hash, '
                f"found {len(value) // 2} bytes"
            )
        try:
            digest = bytes.fromhex(value)
        except ValueError as exc:
            raise PinError(f'invalid hash "{pin}", could not decode SHA-256 from hex') from exc
        self._sha256.append(digest)

    def matches(self, cert: x509.Certificate) -> bool:
        digest = hashlib.sha256(spki_der(cert)).digest()
        # Any-match without early exit, so timing does not reveal which pin matched.
        found = False
        for pinned in self._sha256:
            found |= hmac.compare_digest(pinned, digest)
        return found

    def check_any(self, certs: Iterable[x509.Certificate]) -> None:
        """Pass if any certificate's key is pinned; otherwise list the hashes that were seen."""
        seen: list[str] = []
        for cert in certs:
            if self.matches(cert):
                return
            seen.append(spki_pin(cert))
        raise PinError(f'none of the public keys "{":".join(seen)}" are pinned')
