"""Certificate signing requests: building (agent), validation (API) and signer rules.

* :func:`build_csr` makes the PKCS#10 request the kubelet makes (O before CN, DNS/IP SANs,
  no KeyUsage extensions: usages travel in ``spec.usages``).
* :func:`validate_csr_spec` is the v1 create validation of server-facts §4.3 for the
  ``spec`` of a CSR as served (``request`` base64), returning ``FieldError`` s with
  upstream's exact messages; :func:`validate_issued_certificate` is §4.5's check of
  ``status.certificate``.
* The ``validate_*_csr`` functions are the in-tree signers' rules (server-facts §5): they
  return upstream's error text (used verbatim as the ``Failed`` condition message) or None.
  :func:`signer_validation_error` dispatches on the signer name.
* :func:`subject_restriction_error` is the ``CertificateSubjectRestriction`` admission check.

Values are judged as Go's ``x509`` package sees them: Organization is every O attribute in
order, CommonName is the last CN, SANs come from the extension request.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from kubeboot.pki.keys import PrivateKey, signature_hash
from kubeboot.pki.pem import decode_pem_blocks
from kubeboot.pki.usages import (
    ALL_USAGES,
    USAGE_CLIENT_AUTH,
    USAGE_DIGITAL_SIGNATURE,
    USAGE_KEY_ENCIPHERMENT,
    USAGE_SERVER_AUTH,
)
from kubeboot.resources.status import FieldError
from kubeboot.resources.validation import is_dns1123_label, is_dns1123_subdomain

__all__ = [
    "KUBELET_CLIENT_SIGNER",
    "KUBELET_SERVING_SIGNER",
    "KUBE_APISERVER_CLIENT_SIGNER",
    "LEGACY_UNKNOWN_SIGNER",
    "CsrError",
    "CsrFacts",
    "build_csr",
    "csr_facts",
    "parse_csr_pem",
    "signer_validation_error",
    "subject_restriction_error",
    "validate_apiserver_client_usages",
    "validate_csr_spec",
    "validate_issued_certificate",
    "validate_kubelet_client_csr",
    "validate_kubelet_serving_csr",
]

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"
KUBE_APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
LEGACY_UNKNOWN_SIGNER = "kubernetes.io/legacy-unknown"

_NODES_GROUP = "system:nodes"
_NODE_USER_PREFIX = "system:node:"
_MASTERS_GROUP = "system:masters"
_MIN_EXPIRATION_SECONDS = 600

_KUBELET_CLIENT_USAGES = frozenset(
    {USAGE_DIGITAL_SIGNATURE, USAGE_KEY_ENCIPHERMENT, USAGE_CLIENT_AUTH}
)
_KUBELET_CLIENT_USAGES_NO_RSA = frozenset({USAGE_DIGITAL_SIGNATURE, USAGE_CLIENT_AUTH})
_KUBELET_SERVING_USAGES = frozenset(
    {USAGE_DIGITAL_SIGNATURE, USAGE_KEY_ENCIPHERMENT, USAGE_SERVER_AUTH}
)
_KUBELET_SERVING_USAGES_NO_RSA = frozenset({USAGE_DIGITAL_SIGNATURE, USAGE_SERVER_AUTH})

MIN_RSA_BITS = 2048
ACCEPTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
KEY_POLICY_PREFIX = "public key policy: "
KEY_POLICY = (
    "kubeboot signs RSA keys of 2048 bits or more, ECDSA keys on P-256, P-384 or P-521, "
    "and Ed25519 keys"
)


class CsrError(ValueError):
    """A request that Go's ``ParseCSR`` + ``CheckSignature`` would reject; message is upstream's."""


@dataclass(frozen=True, slots=True)
class CsrFacts:
    """What the signer rules look at, extracted once from a parsed request."""

    common_name: str
    organizations: tuple[str, ...]
    dns_names: tuple[str, ...]
    emails: tuple[str, ...]
    ips: tuple[str, ...]
    uris: tuple[str, ...]


# --- building ----------------------------------------------------------------------------


def build_csr(
    key: PrivateKey,
    *,
    common_name: str,
    organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> bytes:
    """A PEM ``CERTIFICATE REQUEST`` signed by ``key``, shaped like the kubelet's."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, signature_hash(key)).public_bytes(serialization.Encoding.PEM)


# --- parsing -----------------------------------------------------------------------------


_PARSED_CSR_CACHE_SIZE = 1024
"""Verified requests kept by :func:`parse_csr_pem`: a few seconds of a 250 joins/s storm."""


def parse_csr_pem(data: bytes) -> x509.CertificateSigningRequest:
    """Upstream ``ParseCSR`` then ``CheckSignature``: first PEM block only, signature verified.

    Memoised on the exact bytes, because one join parses the same request up to five times
    (API validation and admission, the approver, the signer twice), ~0.15 ms each with the
    signature check. Sharing is safe: a parsed request is immutable, and only successes are
    kept (a rejected request raises again every time).
    """
    return _parse_verified_csr(bytes(data))


@functools.lru_cache(maxsize=_PARSED_CSR_CACHE_SIZE)
def _parse_verified_csr(data: bytes) -> x509.CertificateSigningRequest:
    blocks = decode_pem_blocks(data)
    if not blocks or blocks[0].type != "CERTIFICATE REQUEST":
        raise CsrError("PEM block type must be CERTIFICATE REQUEST")
    try:
        csr = x509.load_der_x509_csr(blocks[0].der)
        _ = csr.extensions  # Go parses the extension request eagerly; malformed SANs fail here.
        public_key = csr.public_key()
    except UnsupportedAlgorithm as exc:  # an explicit-parameter or unknown curve, Ed448...
        raise CsrError(
            f"{KEY_POLICY_PREFIX}this key type or curve is not accepted; {KEY_POLICY}"
        ) from exc
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise CsrError("x509: malformed certificate request") from exc
    _check_key_policy(public_key, _names_its_curve(csr.tbs_certrequest_bytes))
    if not csr.is_signature_valid:
        # Go's CheckSignature error text per key type.
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            raise CsrError("x509: ECDSA verification failure")
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            raise CsrError("x509: Ed25519 verification failure")
        raise CsrError("crypto/rsa: verification error")
    return csr


def _check_key_policy(public_key: object, named_curve: bool) -> None:
    """kubeboot's key policy for every CSR (docs/api.md): keys every signer here can sign.

    Go's x509 (so kube-apiserver) also takes RSA keys from 1024 bits and P-224; kubeboot
    asks for what kubelet and kubeadm generate at least (RSA 2048, P-256) so no weak key is
    ever certified, and names the policy in the 422.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise CsrError(
                f"{KEY_POLICY_PREFIX}an RSA key of {public_key.key_size} bits is too small; "
                f"{KEY_POLICY}"
            )
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not named_curve:
            # OpenSSL turns the explicit parameters of a known curve into the named curve;
            # Go refuses them ("x509: failed to parse ECDSA parameters as named curve").
            raise CsrError(
                f"{KEY_POLICY_PREFIX}explicit elliptic curve parameters are not accepted; "
                f"{KEY_POLICY}"
            )
        if public_key.curve.name not in ACCEPTED_CURVES:
            raise CsrError(
                f"{KEY_POLICY_PREFIX}the elliptic curve {public_key.curve.name} is not accepted; "
                f"{KEY_POLICY}"
            )
    elif not isinstance(public_key, ed25519.Ed25519PublicKey):
        kind = type(public_key).__name__.removeprefix("_").replace("PublicKey", "")
        raise CsrError(f"{KEY_POLICY_PREFIX}{kind} keys are not accepted; {KEY_POLICY}")


def _der_item(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER item at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def _names_its_curve(tbs: bytes) -> bool:
    """Whether the request's key names its curve by OID (not explicit parameters).

    CertificationRequestInfo = SEQUENCE { version, subject, SubjectPublicKeyInfo, ... } and
    SubjectPublicKeyInfo = SEQUENCE { SEQUENCE { algorithm OID, parameters }, BIT STRING };
    a named curve's parameters are an OID (tag 6). Only called on a request that parsed.
    """
    try:
        _, pos, _ = _der_item(tbs, 0)  # CertificationRequestInfo
        for _skip in range(2):  # version, subject
            _, _, pos = _der_item(tbs, pos)
        _, pos, _ = _der_item(tbs, pos)  # SubjectPublicKeyInfo
        _, pos, _ = _der_item(tbs, pos)  # AlgorithmIdentifier
        _, _, pos = _der_item(tbs, pos)  # algorithm OID
        return tbs[pos] == 0x06
    except IndexError:
        return False


@functools.lru_cache(maxsize=_PARSED_CSR_CACHE_SIZE)
def csr_facts(csr: x509.CertificateSigningRequest) -> CsrFacts:
    """The names in ``csr`` that the approvers and signers decide on.

    Memoised like :func:`parse_csr_pem` (whose shared parse is the usual argument): the
    approver and the signer both ask for every join's request, ~20 µs of extension and
    subject walking each time. :class:`CsrFacts` is frozen, so sharing it is safe.
    """
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return CsrFacts(
        common_name=str(cns[-1].value) if cns else "",
        organizations=tuple(str(o.value) for o in orgs),
        dns_names=tuple(san.get_values_for_type(x509.DNSName)),
        emails=tuple(san.get_values_for_type(x509.RFC822Name)),
        ips=tuple(str(i) for i in san.get_values_for_type(x509.IPAddress)),
        uris=tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
    )


# --- API validation (server-facts §4.3, §4.5) ----------------------------------------------


def _decode_request(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise CsrError("spec.request must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CsrError("spec.request is not valid base64") from exc


def _validate_request(value: Any) -> list[FieldError]:
    try:
        request = _decode_request(value)
    except CsrError as exc:
        return [FieldError("FieldValueInvalid", "spec.request", f"Invalid value: {exc}")]
    try:
        parse_csr_pem(request or b"")
    except CsrError as exc:
        # field.Error prints a []byte as JSON does: its base64, quoted (upstream v1.37).
        shown = "null" if request is None else '"' + base64.b64encode(request).decode() + '"'
        message = f"Invalid value: {shown}: {exc}"
        return [FieldError("FieldValueInvalid", "spec.request", message)]
    return []


def _validate_usages(usages: Any) -> list[FieldError]:
    if not isinstance(usages, list) or not usages:
        return [FieldError.required("spec.usages")]
    errors: list[FieldError] = []
    for i, usage in enumerate(usages):
        if usage not in ALL_USAGES:
            errors.append(FieldError.not_supported(f"spec.usages[{i}]", usage, list(ALL_USAGES)))
    seen: set[Any] = set()
    for i, usage in enumerate(usages):
        if usage in seen:
            errors.append(FieldError.duplicate(f"spec.usages[{i}]", usage))
        seen.add(usage)
    return errors


def _validate_signer_name(signer_name: Any) -> list[FieldError]:
    """``apivalidation.ValidateSignerName`` with its quirks (e.g. label-by-label messages)."""
    path = "spec.signerName"
    if signer_name == LEGACY_UNKNOWN_SIGNER:
        return [
            FieldError.invalid(
                path, signer_name, "the legacy signerName is not allowed via this API version"
            )
        ]
    if not signer_name or not isinstance(signer_name, str):
        return [FieldError.required(path)]
    segments = signer_name.split("/")
    if len(segments) != 2:
        return [
            FieldError.invalid(
                path,
                signer_name,
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            )
        ]
    domain, signer_path = segments
    errors: list[FieldError] = []
    if len(domain) > 253:
        errors.append(FieldError.too_long(path, 253))
    labels = domain.split(".")
    for label in labels:
        label_errors = is_dns1123_label(label)
        errors += [
            FieldError.invalid(path, domain, f'validating label "{label}": {e}')
            for e in label_errors
        ]
        if label_errors:
            break
    if len(labels) < 2:
        errors.append(
            FieldError.invalid(
                path, domain, "should be a domain with at least two segments separated by dots"
            )
        )
    for label in signer_path.split("."):
        label_errors = is_dns1123_subdomain(label)
        errors += [
            FieldError.invalid(path, signer_path, f'validating label "{label}": {e}')
            for e in label_errors
        ]
        if label_errors:
            break
    max_length = 253 + (253 + 63 + 1) + 1
    if len(signer_name) > max_length:
        errors.append(FieldError.too_long(path, max_length))
    return errors


def validate_csr_spec(spec: Mapping[str, Any]) -> list[FieldError]:
    """Create-time validation of a v1 CSR ``spec`` (JSON form), in upstream's order."""
    errors = _validate_request(spec.get("request"))
    errors += _validate_usages(spec.get("usages"))
    errors += _validate_signer_name(spec.get("signerName"))
    expiration = spec.get("expirationSeconds")
    if expiration is not None and (
        not isinstance(expiration, int) or expiration < _MIN_EXPIRATION_SECONDS
    ):
        errors.append(
            FieldError.invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration less than 600 seconds (10 minutes)",
            )
        )
    return errors


def validate_issued_certificate(certificate: Any) -> list[FieldError]:
    """``status.certificate`` (base64 in JSON): only header-less CERTIFICATE blocks, ≥ 1."""
    if not certificate:
        return []
    try:
        data = _decode_request(certificate) or b""
    except CsrError:
        return [_certificate_error("status.certificate is not valid base64")]
    blocks = decode_pem_blocks(data)
    if not blocks:
        return [_certificate_error("must contain at least one CERTIFICATE PEM block")]
    for block in blocks:
        if block.type != "CERTIFICATE":
            return [
                _certificate_error(f'only CERTIFICATE PEM blocks are allowed, found "{block.type}"')
            ]
        if block.headers:
            return [_certificate_error("no PEM block headers are permitted")]
        try:
            x509.load_der_x509_certificate(block.der)
        except ValueError:
            return [_certificate_error("x509: malformed certificate")]
    return []


def _certificate_error(detail: str) -> FieldError:
    return FieldError.invalid("status.certificate", "<certificate data>", detail)


# --- signer rules (server-facts §5) --------------------------------------------------------


def _usage_mismatch(required: Collection[str]) -> str:
    return "usages did not match [" + " ".join(sorted(required)) + "]"


def validate_kubelet_client_csr(facts: CsrFacts, usages: Collection[str]) -> str | None:
    """``ValidateKubeletClientCSR``: the error text, or None when the request conforms."""
    if list(facts.organizations) != [_NODES_GROUP]:
        return "subject organization is not system:nodes"
    if facts.dns_names:
        return "DNS subjectAltNames are not allowed"
    if facts.emails:
        return "Email subjectAltNames are not allowed"
    if facts.ips:
        return "IP subjectAltNames are not allowed"
    if facts.uris:
        return "URI subjectAltNames are not allowed"
    if not facts.common_name.startswith(_NODE_USER_PREFIX):
        return "subject common name does not begin with system:node:"
    if set(usages) not in (_KUBELET_CLIENT_USAGES, _KUBELET_CLIENT_USAGES_NO_RSA):
        return _usage_mismatch(_KUBELET_CLIENT_USAGES)
    return None


def validate_kubelet_serving_csr(facts: CsrFacts, usages: Collection[str]) -> str | None:
    """``ValidateKubeletServingCSR`` (note: usages are checked before the CN, as upstream)."""
    if list(facts.organizations) != [_NODES_GROUP]:
        return "subject organization is not system:nodes"
    if not facts.dns_names and not facts.ips:
        return "DNS or IP subjectAltName is required"
    if facts.emails:
        return "Email subjectAltNames are not allowed"
    if facts.uris:
        return "URI subjectAltNames are not allowed"
    if set(usages) not in (_KUBELET_SERVING_USAGES, _KUBELET_SERVING_USAGES_NO_RSA):
        return _usage_mismatch(_KUBELET_SERVING_USAGES)
    if not facts.common_name.startswith(_NODE_USER_PREFIX):
        return "subject common name does not begin with system:node:"
    return None


def validate_apiserver_client_usages(usages: Sequence[str]) -> str | None:
    """``validAPIServerClientUsages``: only digital signature / key encipherment / client auth."""
    for usage in usages:
        if usage not in (USAGE_DIGITAL_SIGNATURE, USAGE_KEY_ENCIPHERMENT, USAGE_CLIENT_AUTH):
            return f"invalid usage for client certificate: {usage}"
    if USAGE_CLIENT_AUTH not in usages:
        return f"missing required usage for client certificate: {USAGE_CLIENT_AUTH}"
    return None


def signer_validation_error(signer_name: str, facts: CsrFacts, usages: Sequence[str]) -> str | None:
    """The in-tree signer's verdict for ``signer_name``; legacy-unknown has no rules."""
    if signer_name == KUBELET_CLIENT_SIGNER:
        return validate_kubelet_client_csr(facts, usages)
    if signer_name == KUBELET_SERVING_SIGNER:
        return validate_kubelet_serving_csr(facts, usages)
    if signer_name == KUBE_APISERVER_CLIENT_SIGNER:
        return validate_apiserver_client_usages(usages)
    if signer_name == LEGACY_UNKNOWN_SIGNER:
        return None
    return f'unrecognized signerName: "{signer_name}"'


def subject_restriction_error(signer_name: str, request_pem: bytes) -> str | None:
    """``CertificateSubjectRestriction`` admission: the 403 message, or None to admit."""
    if signer_name != KUBE_APISERVER_CLIENT_SIGNER:
        return None
    try:
        facts = csr_facts(parse_csr_pem(request_pem))
    except CsrError as exc:
        return str(exc)
    if _MASTERS_GROUP in facts.organizations:
        return (
            "use of kubernetes.io/kube-apiserver-client signer with system:masters group "
            "is not allowed"
        )
    return None
