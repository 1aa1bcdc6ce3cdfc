"""Issuance policy: TTL clamp, 8h backdate rule, CA-expiry clamp, usages, dropped extensions."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeboot.clock import FakeClock
from kubeboot.pki import csr as csr_module
from kubeboot.pki.authority import (
    DEFAULT_CLUSTER_SIGNING_DURATION,
    CertificateAuthority,
    SigningError,
    create_self_signed_ca,
    load_certificate_pem,
    signing_duration,
    validity_window,
    x509_usages,
)
from kubeboot.pki.csr import CsrError, parse_csr_pem
from kubeboot.pki.keys import dump_private_key_pem
from tests.unit.pki.pki_helpers import csr_pem, make_csr, openssl_verify, tamper_signature

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
FAR = NOW + dt.timedelta(days=3650)
CLIENT_USAGES = ("digital signature", "client auth")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return create_self_signed_ca(clock=FakeClock(NOW))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# --- unhappy paths -----------------------------------------------------------------------


def test_signer_expired_when_backdated_not_before_is_past_ca_expiry() -> None:
    with pytest.raises(
        SigningError, match=r"^the signer has expired: NotAfter=2026-03-01T11:50:00Z$"
    ):
        validity_window(NOW, H, NOW - 10 * M)


def test_refuses_once_now_is_past_ca_expiry_even_if_backdate_is_not() -> None:
    with pytest.raises(
        SigningError, match=r"^refusing to sign a certificate that expired in the past"
    ):
        validity_window(NOW, H, NOW - 2 * M)
    with pytest.raises(SigningError, match=r"^refusing to sign"):
        validity_window(NOW, H, NOW)


@pytest.mark.parametrize(
    ("usages", "message"),
    [
        (["client auth", "bogus"], r'unrecognized usage values: ["bogus"]'),
        (["x", "y"], r'unrecognized usage values: ["x" "y"]'),
        (["encipher only"], "require key agreement"),
    ],
)
def test_bad_usages(usages: list[str], message: str) -> None:
    with pytest.raises(SigningError) as info:
        x509_usages(usages)
    assert message in str(info.value)


def test_tampered_csr_signature_is_refused(ca: CertificateAuthority) -> None:
    bad = tamper_signature(make_csr())
    assert not bad.is_signature_valid
    with pytest.raises(SigningError, match="unable to verify certificate request signature"):
        ca.sign_request(bad, usages=CLIENT_USAGES, ttl=H, clock=FakeClock(NOW))
    with pytest.raises(CsrError, match=r"^x509: ECDSA verification failure$"):
        ca.sign_request_pem(csr_pem(bad), usages=CLIENT_USAGES, ttl=H, clock=FakeClock(NOW))


def test_ca_key_must_match_certificate(ca: CertificateAuthority) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="does not match"):
        CertificateAuthority(ca.certificate, other)


def test_no_certificate_block() -> None:
    with pytest.raises(ValueError, match="CERTIFICATE"):
        load_certificate_pem(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        )


# --- TTL and validity --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiration_seconds", "expected"),
    [
        (None, DEFAULT_CLUSTER_SIGNING_DURATION),
        (1, dt.timedelta(minutes=10)),
        (599, dt.timedelta(minutes=10)),
        (600, dt.timedelta(minutes=10)),
        (3600, H),
        (8760 * 3600, DEFAULT_CLUSTER_SIGNING_DURATION),
        (2**31 - 1, DEFAULT_CLUSTER_SIGNING_DURATION),
    ],
)
def test_signing_duration(expiration_seconds: int | None, expected: dt.timedelta) -> None:
    assert signing_duration(expiration_seconds, DEFAULT_CLUSTER_SIGNING_DURATION) == expected


def test_signing_duration_respects_a_shorter_cluster_maximum() -> None:
    assert signing_duration(86400, 2 * H) == 2 * H


@pytest.mark.parametrize(
    ("ttl", "not_after"),
    [
        (10 * M, NOW + 10 * M),
        (8 * H - dt.timedelta(seconds=1), NOW + 8 * H - dt.timedelta(seconds=1)),
        (8 * H, NOW + 8 * H - 5 * M),
        (DEFAULT_CLUSTER_SIGNING_DURATION, NOW + DEFAULT_CLUSTER_SIGNING_DURATION - 5 * M),
    ],
)
def test_validity_window_short_and_long(ttl: dt.timedelta, not_after: dt.datetime) -> None:
    assert validity_window(NOW + dt.timedelta(microseconds=700), ttl, FAR) == (
        NOW - 5 * M,
        not_after,
    )


def test_not_after_is_clamped_to_the_ca_expiry() -> None:
    ca_end = NOW + 2 * H
    assert validity_window(NOW, 24 * H, ca_end) == (NOW - 5 * M, ca_end)
    # exactly equal also takes the CA's value (Go: !NotAfter.Before(ca)).
    assert validity_window(NOW, 2 * H + 5 * M, ca_end)[1] == ca_end


# --- usages ------------------------------------------------------------------------------


def test_usages_map_to_key_usage_and_sorted_deduplicated_ekus() -> None:
    ku, ekus = x509_usages(
        ["s/mime", "client auth", "signing", "server auth", "email protection", "key encipherment"]
    )
    assert ku is not None
    assert ku.digital_signature
    assert ku.key_encipherment
    assert not ku.key_cert_sign
    assert ekus == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ]


def test_no_key_usage_bits_means_no_extension() -> None:
    assert x509_usages(["client auth"]) == (None, [ExtendedKeyUsageOID.CLIENT_AUTH])


# --- issuance ----------------------------------------------------------------------------


def test_sign_request_copies_subject_and_sans_drops_other_extensions(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    csr = make_csr(
        dns=["node1.example"],
        ips=["10.0.0.7"],
        extra_extensions=[x509.BasicConstraints(ca=True, path_length=None)],
    )
    cert = ca.sign_request(
        csr,
        usages=["digital signature", "key encipherment", "server auth"],
        ttl=DEFAULT_CLUSTER_SIGNING_DURATION,
        clock=FakeClock(NOW),
    )
    assert cert.subject == csr.subject
    assert cert.issuer == ca.certificate.subject
    assert cert.public_key() == csr.public_key()
    assert 0 <= cert.serial_number < 2**128
    assert cert.not_valid_before_utc == NOW - 5 * M
    assert cert.not_valid_after_utc == NOW + DEFAULT_CLUSTER_SIGNING_DURATION - 5 * M
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not eku.critical
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node1.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    result = openssl_verify(
        ca.certificate_pem, _pem(cert), tmp_path, purpose="sslserver", at=int(NOW.timestamp())
    )
    assert result.returncode == 0, result.stderr


def test_sign_request_pem_issues_what_sign_request_does_from_the_verified_parse(
    ca: CertificateAuthority,
) -> None:
    csr = make_csr(dns=["node1.example"])
    pem = csr_pem(csr)
    parse_csr_pem(pem)  # the API's create validation
    hits = csr_module._parse_verified_csr.cache_info().hits
    clock = FakeClock(NOW)
    from_pem = ca.sign_request_pem(pem, usages=CLIENT_USAGES, ttl=H, clock=clock)
    assert csr_module._parse_verified_csr.cache_info().hits == hits + 1
    direct = ca.sign_request(csr, usages=CLIENT_USAGES, ttl=H, clock=clock)
    for attr in ("subject", "issuer", "not_valid_before_utc", "not_valid_after_utc"):
        assert getattr(from_pem, attr) == getattr(direct, attr), attr
    assert list(from_pem.extensions) == list(direct.extensions)
    assert from_pem.public_key() == csr.public_key()


def test_serials_differ(ca: CertificateAuthority) -> None:
    csr = make_csr()
    clock = FakeClock(NOW)
    serials = {
        ca.sign_request(csr, usages=CLIENT_USAGES, ttl=H, clock=clock).serial_number
        for _ in range(4)
    }
    assert len(serials) == 4


def test_rsa_ca_loaded_from_pkcs1_signs(tmp_path: Path) -> None:
    """An RSA CA (as operators bring via --cluster-signing-*-file) is loaded and used."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - H)
        .not_valid_after(NOW + 2 * H)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    rsa_ca = CertificateAuthority.from_pem(_pem(ca_cert), dump_private_key_pem(key))
    assert dump_private_key_pem(key).startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    cert = rsa_ca.sign_request(make_csr(), usages=CLIENT_USAGES, ttl=24 * H, clock=FakeClock(NOW))
    assert cert.not_valid_after_utc == NOW + 2 * H  # clamped to the CA
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    result = openssl_verify(
        rsa_ca.certificate_pem, _pem(cert), tmp_path, purpose="sslclient", at=int(NOW.timestamp())
    )
    assert result.returncode == 0, result.stderr


def test_self_signed_ca_shape() -> None:
    clock = FakeClock(NOW)
    new = create_self_signed_ca(clock=clock)
    cert = new.certificate
    assert isinstance(new.private_key, ec.EllipticCurvePrivateKey)
    assert new.private_key.curve.name == "secp256r1"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes"
    assert cert.not_valid_before_utc == NOW - 5 * M
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_helper_certs(ca: CertificateAuthority, tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    serving, _ = ca.issue_serving_cert(
        common_name="kube-apiserver",
        dns_names=["localhost"],
        ips=[ipaddress.ip_address("127.0.0.1")],
        clock=clock,
    )
    client, key = ca.issue_client_cert(
        common_name="kubernetes-admin", organizations=["system:masters"], clock=clock
    )
    assert client.public_key() == key.public_key()
    assert [a.oid for a in client.subject] == [NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME]
    at = int(NOW.timestamp())
    for cert, purpose in ((serving, "sslserver"), (client, "sslclient")):
        result = openssl_verify(ca.certificate_pem, _pem(cert), tmp_path, purpose=purpose, at=at)
        assert result.returncode == 0, result.stderr
    wrong = openssl_verify(ca.certificate_pem, _pem(client), tmp_path, purpose="sslserver", at=at)
    assert wrong.returncode != 0
