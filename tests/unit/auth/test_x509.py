"""Client-certificate verification and the permissive-handshake TLS context."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubeboot.auth.interface import AuthenticationFailed, CredentialRevoked
from kubeboot.auth.x509 import (
    CREDENTIAL_ID_KEY,
    ClientCertAuthenticator,
    load_ca_bundle,
    make_server_ssl_context,
)
from kubeboot.clock import FakeClock
from tests.unit.auth.auth_pki import CA, HOUR, NOW, der, write_pair

EKU = ExtendedKeyUsageOID
PEM = Encoding.PEM


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("foreign CA", "signed by unknown authority"),
        ("expired", "has expired or is not yet valid"),
        ("not yet valid", "has expired or is not yet valid"),
        ("server-auth only", "incompatible key usage"),
        ("expired CA", "client CA certificate has expired"),
        ("garbage", "does not parse"),
    ],
)
def test_bad_certificates_fail_not_anonymous(
    case: str, message: str, cluster_ca: CA, rogue_ca: CA, clock: FakeClock
) -> None:
    old_ca = CA.create("old", not_before=NOW - 400 * 24 * HOUR)
    certs: dict[str, bytes] = {
        "foreign CA": der(rogue_ca.issue("system:node:w1", ("system:nodes",))[0]),
        "expired": der(cluster_ca.issue("u", not_after=NOW - HOUR)[0]),
        "not yet valid": der(cluster_ca.issue("u", not_before=NOW + HOUR)[0]),
        "server-auth only": der(cluster_ca.issue("u", eku=[EKU.SERVER_AUTH])[0]),
        "expired CA": der(old_ca.issue("u")[0]),
        "garbage": b"\x30\x03\x02\x01\x00",
    }
    authn = ClientCertAuthenticator([cluster_ca.cert, old_ca.cert], clock)
    with pytest.raises(AuthenticationFailed, match=message):
        authn.authenticate(certs[case])


def test_no_certificate_and_empty_cn_are_not_mine(cluster_ca: CA, clock: FakeClock) -> None:
    authn = ClientCertAuthenticator([cluster_ca.cert], clock)
    assert authn.authenticate(None) is None
    assert authn.authenticate(der(cluster_ca.issue("", ("system:nodes",))[0])) is None


@pytest.mark.parametrize(
    "eku",
    [None, [EKU.CLIENT_AUTH], [EKU.SERVER_AUTH, EKU.CLIENT_AUTH], [EKU.ANY_EXTENDED_KEY_USAGE]],
)
def test_good_certificate_maps_cn_and_orgs(
    eku: list[x509.ObjectIdentifier] | None, cluster_ca: CA, rogue_ca: CA, clock: FakeClock
) -> None:
    cert = der(cluster_ca.issue("system:node:w1", ("system:nodes", "team-a"), eku=eku)[0])
    # Any certificate in the bundle is a trust anchor, in any position.
    user = ClientCertAuthenticator([rogue_ca.cert, cluster_ca.cert], clock).authenticate(cert)
    assert user is not None
    assert user.name == "system:node:w1"
    assert user.groups == ("system:nodes", "team-a")
    assert user.uid == ""
    (credential_id,) = user.extra[CREDENTIAL_ID_KEY]
    assert credential_id.startswith("X509SHA256=")
    assert len(credential_id) == len("X509SHA256=") + 64


def test_validity_follows_the_injected_clock(cluster_ca: CA, clock: FakeClock) -> None:
    cert = der(cluster_ca.issue("u", not_after=NOW + HOUR)[0])
    authn = ClientCertAuthenticator([cluster_ca.cert], clock)
    assert authn.authenticate(cert) is not None
    clock.advance(2 * 3600)
    with pytest.raises(AuthenticationFailed, match="expired"):
        authn.authenticate(cert)


def test_a_cached_verification_still_refuses_an_expired_certificate(
    cluster_ca: CA, clock: FakeClock
) -> None:
    cert = der(cluster_ca.issue("u", not_after=NOW + HOUR)[0])
    authn = ClientCertAuthenticator([cluster_ca.cert], clock)
    first = authn.authenticate(cert)
    assert first is not None
    assert len(authn._verified) == 1
    assert authn.authenticate(cert) == first  # a hit, same answer
    clock.advance(2 * 3600)
    with pytest.raises(AuthenticationFailed, match=r"client certificate has expired .* outside"):
        authn.authenticate(cert)
    assert len(authn._verified) == 0  # failures are not remembered
    with pytest.raises(AuthenticationFailed, match="expired"):
        authn.authenticate(cert)


def test_a_cached_verification_rechecks_the_anchor_and_falls_back_to_another(
    clock: FakeClock,
) -> None:
    short = CA.create("kubernetes", days=1)  # expires at NOW + 23 h
    # The same key and name re-issued for a year: either anchor verifies the leaf.
    renewed = (
        x509.CertificateBuilder()
        .subject_name(short.cert.subject)
        .issuer_name(short.cert.subject)
        .public_key(short.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - HOUR)
        .not_valid_after(NOW + 365 * 24 * HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(short.key, hashes.SHA256())
    )
    cert = der(short.issue("u", not_after=NOW + 48 * HOUR)[0])
    alone = ClientCertAuthenticator([short.cert], clock)
    both = ClientCertAuthenticator([short.cert, renewed], clock)
    assert alone.authenticate(cert) is not None
    assert both.authenticate(cert) is not None
    clock.advance(30 * 3600)
    with pytest.raises(AuthenticationFailed, match="client CA certificate has expired"):
        alone.authenticate(cert)
    user = both.authenticate(cert)
    assert user is not None and user.name == "u"


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(
    cluster_ca: CA, clock: FakeClock
) -> None:
    certs = [der(cluster_ca.issue(f"u{i}")[0]) for i in range(3)]
    authn = ClientCertAuthenticator([cluster_ca.cert], clock, cache_size=2)
    for cert in (certs[0], certs[1], certs[0], certs[2]):
        assert authn.authenticate(cert) is not None
    assert list(authn._verified) == [hashlib.sha256(c).digest() for c in (certs[0], certs[2])]


def test_a_hit_returns_a_user_the_caller_cannot_use_to_change_the_cache(
    cluster_ca: CA, clock: FakeClock
) -> None:
    cert = der(cluster_ca.issue("u")[0])
    authn = ClientCertAuthenticator([cluster_ca.cert], clock)
    first = authn.authenticate(cert)
    assert first is not None
    first.extra.clear()
    again = authn.authenticate(cert)
    assert again is not None and CREDENTIAL_ID_KEY in again.extra


def test_bundle_loading(tmp_path: Path, cluster_ca: CA, rogue_ca: CA) -> None:
    empty = tmp_path / "empty.crt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.crt: no PEM certificate"):
        load_ca_bundle(empty)
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(b"".join(c.cert.public_bytes(PEM) for c in (cluster_ca, rogue_ca)))
    assert load_ca_bundle(bundle) == [cluster_ca.cert, rogue_ca.cert]
    with pytest.raises(ValueError, match="at least one"):
        ClientCertAuthenticator([], FakeClock())


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> bytes | None:
    """Run a TLS handshake over memory BIOs; the DER the server saw, or raise ssl.SSLError."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    for _ in range(6):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
    # TLS 1.3 sends the client certificate after the client's Finished: push one record.
    client.write(b"x")
    s_in.write(c_out.read())
    assert server.read(1) == b"x"
    # Nothing more to read must be "want read", not a stale verification error from OpenSSL's
    # queue (which asyncio would treat as fatal and drop the connection).
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1)
    return server.getpeercert(binary_form=True)


# OpenSSL checks the server certificate against the real time, so the handshake tests use
# certificates around the real now rather than the fake clock's.
REAL_NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def live_ca() -> CA:
    return CA.create("kubernetes", not_before=REAL_NOW - HOUR)


@pytest.fixture
def tls_files(tmp_path: Path, live_ca: CA) -> tuple[Path, Path, Path]:
    pair = live_ca.issue(
        "apiserver", not_before=REAL_NOW - HOUR, not_after=REAL_NOW + HOUR, dns="localhost"
    )
    crt, key = write_pair(tmp_path, "apiserver", *pair)
    ca = tmp_path / "ca.crt"
    ca.write_bytes(live_ca.cert.public_bytes(PEM))
    return crt, key, ca


def _client(
    tmp_path: Path, ca: Path, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        crt, key = write_pair(tmp_path, "client", *pair)
        ctx.load_cert_chain(str(crt), str(key))
    return ctx


@pytest.mark.parametrize("tls", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_handshake_hands_every_client_certificate_to_the_application(
    tls: ssl.TLSVersion, tmp_path: Path, tls_files: tuple[Path, Path, Path], live_ca: CA
) -> None:
    crt, key, ca = tls_files
    server_ctx = make_server_ssl_context(crt, key, ca)
    assert server_ctx.num_tickets == 0
    assert server_ctx.minimum_version is ssl.TLSVersion.TLSv1_2
    untrusted = CA.create("kubernetes", not_before=REAL_NOW - HOUR).issue(
        "evil", not_before=REAL_NOW - HOUR
    )
    client_ctx = _client(tmp_path, ca, untrusted)
    client_ctx.maximum_version = tls
    assert _handshake(server_ctx, client_ctx) == der(untrusted[0])
    assert _handshake(server_ctx, _client(tmp_path, ca, None)) is None


def test_fallback_context_lets_expired_through_and_refuses_foreign(
    tmp_path: Path, tls_files: tuple[Path, Path, Path], live_ca: CA
) -> None:
    crt, key, ca = tls_files
    server_ctx = make_server_ssl_context(crt, key, ca, verify_in_application=False)
    expired = live_ca.issue("late", not_before=REAL_NOW - 2 * HOUR, not_after=REAL_NOW - HOUR)
    assert _handshake(server_ctx, _client(tmp_path, ca, expired)) == der(expired[0])
    foreign = CA.create("kubernetes", not_before=REAL_NOW - HOUR)
    with pytest.raises(ssl.SSLError):
        _handshake(server_ctx, _client(tmp_path, ca, foreign.issue("evil", not_before=REAL_NOW)))


def test_revocation_is_checked_on_every_request_cached_or_not(
    cluster_ca: CA, clock: FakeClock
) -> None:
    """kubeboot's revocation list: asked after verification, also on a cache hit."""
    cert, _ = cluster_ca.issue("system:node:w1", ("system:nodes",))
    revoked: set[int] = set()
    asked: list[tuple[int, str]] = []

    def check(serial: int, subject: str) -> None:
        asked.append((serial, subject))
        if serial in revoked:
            raise CredentialRevoked(f"serial {serial:x} was revoked")

    authn = ClientCertAuthenticator([cluster_ca.cert], clock, revoked=check)
    assert authn.authenticate(der(cert)) is not None  # verified, cached
    assert authn.authenticate(der(cert)) is not None  # cache hit, asked again
    assert asked == [(cert.serial_number, "CN=system:node:w1,O=system:nodes")] * 2
    revoked.add(cert.serial_number)
    with pytest.raises(CredentialRevoked, match="was revoked"):
        authn.authenticate(der(cert))  # refused at once, from the cache
    fresh = ClientCertAuthenticator([cluster_ca.cert], clock, revoked=check)
    with pytest.raises(CredentialRevoked):
        fresh.authenticate(der(cert))  # and on a full verification


def test_an_expired_revoked_certificate_reports_expiry_first(
    cluster_ca: CA, clock: FakeClock
) -> None:
    cert, _ = cluster_ca.issue("u", not_after=NOW - HOUR)

    def check(serial: int, subject: str) -> None:
        raise CredentialRevoked("revoked")

    authn = ClientCertAuthenticator([cluster_ca.cert], clock, revoked=check)
    with pytest.raises(AuthenticationFailed, match="has expired") as failure:
        authn.authenticate(der(cert))
    assert not isinstance(failure.value, CredentialRevoked)
