"""Go's tls.X509KeyPair errors, which kube-apiserver sends as warnings for TLS Secrets."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kubeboot.pki.keypair import x509_key_pair_error


def _pair() -> tuple[bytes, bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, key


def test_a_matching_pair_loads() -> None:
    cert, key, _ = _pair()
    assert x509_key_pair_error(cert, key) is None


def test_go_texts_for_what_does_not_load() -> None:
    cert, key, _ = _pair()
    other_cert, other_key, _ = _pair()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert x509_key_pair_error(b"", key) == "tls: failed to find any PEM data in certificate input"
    assert x509_key_pair_error(key, cert) == (
        "tls: failed to find certificate PEM data in certificate input, but did find a private "
        "key; PEM inputs may have been switched"
    )
    assert x509_key_pair_error(cert, b"") == "tls: failed to find any PEM data in key input"
    assert x509_key_pair_error(cert, other_cert) == (
        "tls: found a certificate rather than a key in the PEM for the private key"
    )
    assert x509_key_pair_error(cert, other_key) == "tls: private key does not match public key"
    assert x509_key_pair_error(cert, rsa_key) == (
        "tls: private key type does not match public key type"
    )
