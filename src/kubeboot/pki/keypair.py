"""Go's ``crypto/tls.X509KeyPair`` as a check: why a certificate and key do not make a pair,
in Go's words (pure).

kube-apiserver warns with that text when a ``kubernetes.io/tls`` Secret's ``tls.crt`` and
``tls.key`` do not load (upstream's ``GetWarningsForSecret``).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from kubeboot.pki.pem import decode_pem_blocks

__all__ = ["x509_key_pair_error"]


def _go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"  # fmt's %v of a []string


def _load_key(der: bytes) -> object:
    """Go's parsePrivateKey: PKCS#1, PKCS#8 or SEC 1 DER."""
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("tls: failed to parse private key") from None


def x509_key_pair_error(cert_pem: bytes, key_pem: bytes) -> str | None:
    """None when the two load as a pair, else Go's error text."""
    blocks = decode_pem_blocks(cert_pem)
    certs = [b.der for b in blocks if b.type == "CERTIFICATE"]
    if not certs:
        skipped = [b.type for b in blocks]
        if not skipped:
            return "tls: failed to find any PEM data in certificate input"
        if len(skipped) == 1 and skipped[0].endswith("PRIVATE KEY"):
            return (
                "tls: failed to find certificate PEM data in certificate input, but did find a "
                "private key; PEM inputs may have been switched"
            )
        return (
            'tls: failed to find "CERTIFICATE" PEM block in certificate input after skipping '
            f"PEM blocks of the following types: {_go_list(skipped)}"
        )
    skipped = []
    key_der = None
    for block in decode_pem_blocks(key_pem):
        if block.type == "PRIVATE KEY" or block.type.endswith(" PRIVATE KEY"):
            key_der = block.der
            break
        skipped.append(block.type)
    if key_der is None:
        if not skipped:
            return "tls: failed to find any PEM data in key input"
        if skipped == ["CERTIFICATE"]:
            return "tls: found a certificate rather than a key in the PEM for the private key"
        return (
            'tls: failed to find PEM block with type ending in "PRIVATE KEY" in key input after '
            f"skipping PEM blocks of the following types: {_go_list(skipped)}"
        )
    try:
        public = x509.load_der_x509_certificate(certs[0]).public_key()
    except ValueError:
        return "x509: malformed certificate"
    try:
        private = _load_key(key_der)
    except ValueError as exc:
        return str(exc)
    pairs = (
        (rsa.RSAPublicKey, rsa.RSAPrivateKey),
        (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey),
        (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey),
    )
    for public_type, private_type in pairs:
        if isinstance(public, public_type):
            if not isinstance(private, private_type):
                return "tls: private key type does not match public key type"
            mine = private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            theirs = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return None if mine == theirs else "tls: private key does not match public key"
    return "tls: unknown public key algorithm"
