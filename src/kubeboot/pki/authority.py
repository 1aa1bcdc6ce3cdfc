"""The certificate authority and upstream's signing policy (server-facts §6.2, pitfall 9).

``CertificateAuthority.sign_request`` is kube-controller-manager's ``authority.Sign`` with
``PermissiveSigningPolicy``:

* TTL: the cluster signing duration (default 8760h), or ``expirationSeconds`` clamped to
  [10 min, cluster signing duration] (:func:`signing_duration`);
* validity: NotBefore = now - 5 min; NotAfter = now + TTL when TTL < 8 h, else
  now + TTL - 5 min; NotAfter clamped to the CA's NotAfter; refusal once the CA expired
  (:func:`validity_window`);
* a uniformly random 128-bit serial from :mod:`secrets`;
* subject, DNS/IP/email/URI SANs and the public key from the CSR; every other CSR extension
  is dropped; KeyUsage/ExtKeyUsage come from ``spec.usages``, never from the CSR
  (:func:`x509_usages`); BasicConstraints CA:false;
* the CSR signature is verified before signing (by :meth:`~CertificateAuthority.sign_request`,
  or, for :meth:`~CertificateAuthority.sign_request_pem`, by the memoised
  :func:`~kubeboot.pki.csr.parse_csr_pem` that the API's create validation already ran).

Extensions are marked critical the way Go's ``x509.CreateCertificate`` marks them
(BasicConstraints and KeyUsage critical, EKU, SAN and AKID not).

Time always comes from an injected :class:`~kubeboot.clock.Clock`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID, ObjectIdentifier

from kubeboot.clock import Clock, format_time
from kubeboot.pki.csr import parse_csr_pem
from kubeboot.pki.keys import (
    PrivateKey,
    PublicKey,
    generate_private_key,
    load_private_key_pem,
    signature_hash,
)
from kubeboot.pki.pem import decode_pem_blocks, encode_pem
from kubeboot.pki.usages import (
    EXT_KEY_USAGES,
    KEY_USAGE_BITS,
    USAGE_CLIENT_AUTH,
    USAGE_DIGITAL_SIGNATURE,
    USAGE_KEY_ENCIPHERMENT,
    USAGE_SERVER_AUTH,
)

__all__ = [
    "BACKDATE",
    "DEFAULT_CLUSTER_SIGNING_DURATION",
    "MIN_SIGNING_DURATION",
    "SHORT_TTL",
    "CertificateAuthority",
    "SigningError",
    "UnusableRequest",
    "create_self_signed_ca",
    "load_certificate_pem",
    "signing_duration",
    "validity_window",
    "x509_usages",
]

BACKDATE = dt.timedelta(minutes=5)
SHORT_TTL = dt.timedelta(hours=8)
MIN_SIGNING_DURATION = dt.timedelta(minutes=10)
DEFAULT_CLUSTER_SIGNING_DURATION = dt.timedelta(hours=8760)
# kubeadm's leaf validity for the certificates the server issues to itself.
SELF_ISSUED_LEAF_DURATION = dt.timedelta(days=365)
_SERIAL_BITS = 128


# Keys this CA certifies (its own key is one of PublicKey's types): what the CSR key policy
# (kubeboot.pki.csr) lets in, as upstream's signers (Go's x509) certify Ed25519 keys too.
SubjectPublicKey = PublicKey | ed25519.Ed25519PublicKey


class SigningError(Exception):
    """The CA cannot sign now (expired CA, bad signature, unusable usages); retried upstream."""


class UnusableRequest(SigningError):
    """The request itself can never be signed (its key type): a retry cannot help."""


def signing_duration(
    expiration_seconds: int | None, cluster_signing_duration: dt.timedelta
) -> dt.timedelta:
    """The TTL the signer grants: the requested seconds clamped to [10 min, cluster max]."""
    if expiration_seconds is None:
        return cluster_signing_duration
    requested = dt.timedelta(seconds=expiration_seconds)
    return max(MIN_SIGNING_DURATION, min(requested, cluster_signing_duration))


def validity_window(
    now: dt.datetime, ttl: dt.timedelta, ca_not_after: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """(NotBefore, NotAfter) as ``PermissiveSigningPolicy.apply`` computes them.

    Times are truncated to whole seconds first, since X.509 cannot carry more and the clamp
    comparisons must see what will be encoded.
    """
    now = now.replace(microsecond=0)
    not_before = now - BACKDATE
    not_after = now + ttl if ttl < SHORT_TTL else now + ttl - BACKDATE
    if not_after >= ca_not_after:
        not_after = ca_not_after
    if not_before >= ca_not_after:
        raise SigningError(f"the signer has expired: NotAfter={format_time(ca_not_after)}")
    if now >= ca_not_after:
        raise SigningError(
            "refusing to sign a certificate that expired in the past: "
            f"NotAfter={format_time(ca_not_after)}"
        )
    return not_before, not_after


def x509_usages(usages: Iterable[str]) -> tuple[x509.KeyUsage | None, list[ObjectIdentifier]]:
    """KeyUsage (None when no bit is set, as Go omits it) and EKUs sorted in Go's enum order."""
    bits: set[str] = set()
    ekus: set[ObjectIdentifier] = set()
    unrecognized: list[str] = []
    for usage in usages:
        if usage in KEY_USAGE_BITS:
            bits.add(KEY_USAGE_BITS[usage])
        elif usage in EXT_KEY_USAGES:
            ekus.add(EXT_KEY_USAGES[usage])
        else:
            unrecognized.append(usage)
    if unrecognized:
        quoted = " ".join(f'"{u}"' for u in unrecognized)
        raise SigningError(f"unrecognized usage values: [{quoted}]")
    order = list(dict.fromkeys(EXT_KEY_USAGES.values()))
    sorted_ekus = sorted(ekus, key=order.index)
    if not bits:
        return None, sorted_ekus
    if ("encipher_only" in bits or "decipher_only" in bits) and "key_agreement" not in bits:
        # Go would encode these bits; X.509 (RFC 5280 §4.2.1.3) gives them no meaning without
        # keyAgreement and cryptography refuses to build such an extension.
        raise SigningError("usages encipher only and decipher only require key agreement")
    flags = {
        name: name in bits
        for name in (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        )
    }
    return x509.KeyUsage(**flags), sorted_ekus


def load_certificate_pem(data: bytes) -> x509.Certificate:
    """The first ``CERTIFICATE`` block; raises ValueError when there is none."""
    for block in decode_pem_blocks(data):
        if block.type == "CERTIFICATE":
            return x509.load_der_x509_certificate(block.der)
    raise ValueError("data does not contain any valid CERTIFICATE PEM block")


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA certificate with its private key; immutable, so reloads swap the whole object."""

    certificate: x509.Certificate
    private_key: PrivateKey

    def __post_init__(self) -> None:
        if self.certificate.public_key() != self.private_key.public_key():
            raise ValueError("the CA private key does not match the CA certificate")

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        return cls(load_certificate_pem(cert_pem), load_private_key_pem(key_pem))

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> CertificateAuthority:
        return cls.from_pem(cert_file.read_bytes(), key_file.read_bytes())

    @property
    def certificate_pem(self) -> bytes:
        return encode_pem("CERTIFICATE", self.certificate.public_bytes(serialization.Encoding.DER))

    def sign_request(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        usages: Sequence[str],
        ttl: dt.timedelta,
        clock: Clock,
    ) -> x509.Certificate:
        """Issue a certificate for an approved CSR under upstream's policy (module header)."""
        if not csr.is_signature_valid:
            raise SigningError("unable to verify certificate request signature")
        return self._sign_verified(csr, usages, ttl, clock)

    def sign_request_pem(
        self,
        request_pem: bytes,
        *,
        usages: Sequence[str],
        ttl: dt.timedelta,
        clock: Clock,
    ) -> x509.Certificate:
        """:meth:`sign_request` for a request as stored (PEM), without checking its signature twice.

        :func:`~kubeboot.pki.csr.parse_csr_pem` returns only requests whose signature it has
        verified, memoised by their exact bytes; the API verified these bytes when the CSR was
        created, so the signer gets that verified parse instead of repeating the ECDSA check
        (~0.1 ms per join on the event loop). If the entry was evicted, the parse verifies
        again; a request that does not verify raises :class:`~kubeboot.pki.csr.CsrError`.
        """
        return self._sign_verified(parse_csr_pem(request_pem), usages, ttl, clock)

    def _sign_verified(
        self,
        csr: x509.CertificateSigningRequest,
        usages: Sequence[str],
        ttl: dt.timedelta,
        clock: Clock,
    ) -> x509.Certificate:
        public_key = csr.public_key()
        if not isinstance(public_key, SubjectPublicKey):
            raise UnusableRequest(f"unsupported public key type {type(public_key).__name__}")
        try:
            san: x509.SubjectAlternativeName | None = csr.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        except x509.ExtensionNotFound:
            san = None
        return self._issue(csr.subject, public_key, san, usages, ttl, clock)

    def issue_serving_cert(
        self,
        *,
        common_name: str,
        dns_names: Sequence[str],
        ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
        clock: Clock,
        ttl: dt.timedelta = SELF_ISSUED_LEAF_DURATION,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A fresh P-256 key and a server-auth certificate for the API server itself."""
        key = generate_private_key()
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        names += [x509.IPAddress(ip) for ip in ips]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        usages = (USAGE_DIGITAL_SIGNATURE, USAGE_KEY_ENCIPHERMENT, USAGE_SERVER_AUTH)
        san = x509.SubjectAlternativeName(names) if names else None
        return self._issue(subject, key.public_key(), san, usages, ttl, clock), key

    def issue_client_cert(
        self,
        *,
        common_name: str,
        organizations: Sequence[str],
        clock: Clock,
        ttl: dt.timedelta = SELF_ISSUED_LEAF_DURATION,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """A fresh P-256 key and a client-auth certificate (O before CN, as Go orders them)."""
        key = generate_private_key()
        subject = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
            + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        )
        usages = (USAGE_DIGITAL_SIGNATURE, USAGE_KEY_ENCIPHERMENT, USAGE_CLIENT_AUTH)
        return self._issue(subject, key.public_key(), None, usages, ttl, clock), key

    def _issue(
        self,
        subject: x509.Name,
        public_key: SubjectPublicKey,
        san: x509.SubjectAlternativeName | None,
        usages: Iterable[str],
        ttl: dt.timedelta,
        clock: Clock,
    ) -> x509.Certificate:
        key_usage, ekus = x509_usages(usages)
        not_before, not_after = validity_window(
            clock.now(), ttl, self.certificate.not_valid_after_utc
        )
        builder = (
            x509.CertificateBuilder()
            .serial_number(secrets.randbits(_SERIAL_BITS))
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        if san is not None and len(san) > 0:
            # Go marks the SAN critical only when the subject is empty (RFC 5280 §4.2.1.6).
            builder = builder.add_extension(san, critical=len(subject) == 0)
        try:
            ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            pass
        else:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value),
                critical=False,
            )
        return builder.sign(self.private_key, signature_hash(self.private_key))


def create_self_signed_ca(
    *, clock: Clock, common_name: str = "kubernetes", years: int = 10
) -> CertificateAuthority:
    """A new P-256 CA shaped like kubeadm's (``cert.NewSelfSignedCACert``).

    NotBefore is backdated by 5 minutes so that nodes whose clocks lag slightly still accept
    certificates issued right after the first start.
    """
    key = generate_private_key()
    now = clock.now().replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .serial_number(secrets.randbits(_SERIAL_BITS))
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, signature_hash(key))
    )
    return CertificateAuthority(cert, key)
