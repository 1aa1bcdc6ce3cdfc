"""Is a certificate/key pair still good to use? A pure function of bytes and a time.

Upstream's ``isClientConfigStillValid`` (node-facts §1.3) only checks that the PEM parses and
that no certificate is past ``NotAfter``. Here (node-facts §8, "weak validity check") the
pair must also: be inside ``NotBefore`` (with the signer's backdating, a cert from the
future means a wrong clock or a wrong file), have a key that matches the leaf, and chain to
the CA the kubeconfig trusts when one is given. Every verdict says why, for the log line
that tells an operator what happened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kubeboot.pki.keys import InvalidKeyError, PrivateKey, load_private_key_pem

__all__ = ["PairVerdict", "check_pair", "load_certificates"]


@dataclass(frozen=True, slots=True)
class PairVerdict:
    """``reason`` is None when the pair is usable; ``leaf`` and ``key`` when they parsed."""

    reason: str | None
    leaf: x509.Certificate | None = None
    key: PrivateKey | None = None

    @property
    def valid(self) -> bool:
        return self.reason is None


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """All certificates in a PEM bundle; [] if there are none or they do not parse."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def check_pair(
    cert_pem: bytes,
    key_pem: bytes,
    ca_pem: bytes | None,
    now: dt.datetime,
    *,
    common_name: str | None = None,
) -> PairVerdict:
    """``common_name``, when given, must be the leaf's CN: a pair left by another
    ``--node-name`` is someone else's identity, not ours to keep using."""
    certs = load_certificates(cert_pem)
    if not certs:
        return PairVerdict("no certificate in the client certificate data")
    leaf = certs[0]
    try:
        key = load_private_key_pem(key_pem)
    except InvalidKeyError as e:
        return PairVerdict(f"client key unusable: {e}", leaf)
    for cert in certs:
        if cert.not_valid_after_utc <= now:
            return PairVerdict(
                f"certificate {cert.subject.rfc4514_string()} expired at "
                f"{cert.not_valid_after_utc.isoformat()}",
                leaf,
                key,
            )
    if leaf.not_valid_before_utc > now:
        return PairVerdict(
            f"certificate is not valid before {leaf.not_valid_before_utc.isoformat()} "
            "(is the clock right?)",
            leaf,
            key,
        )
    if _spki(key) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return PairVerdict("client key does not match the certificate", leaf, key)
    if common_name is not None:
        cns = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cns != [common_name]:
            return PairVerdict(
                f"certificate is for {', '.join(cns) or 'no common name'}, not {common_name} "
                "(was the node name changed?)",
                leaf,
                key,
            )
    if ca_pem is not None:
        issuers = certs[1:] + load_certificates(ca_pem)
        if not any(_issued_by(leaf, issuer) for issuer in issuers):
            return PairVerdict("certificate was not issued by the cluster CA", leaf, key)
    return PairVerdict(None, leaf, key)


def _spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
