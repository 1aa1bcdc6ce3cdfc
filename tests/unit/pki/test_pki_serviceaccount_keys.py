"""ServiceAccount key files: first-start generation, reuse, and keyutil-style reading."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeboot.clock import FakeClock
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.jwt import key_id
from kubeboot.pki.keys import dump_private_key_pem
from kubeboot.pki.serviceaccount_keys import (
    ServiceAccountKeyError,
    ensure_service_account_key,
    load_public_keys,
    load_signing_key,
)


def test_first_start_generates_an_rsa_pair_0600_and_reuses_it(tmp_path: Path) -> None:
    key_path, pub_path = ensure_service_account_key(tmp_path)
    assert (key_path.name, pub_path.name) == ("sa.key", "sa.pub")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub_path.stat().st_mode) == 0o644
    assert key_path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")
    key = load_signing_key(key_path)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    (public,) = load_public_keys(pub_path)
    assert key_id(public) == key_id(key)
    before = key_path.read_bytes()
    assert ensure_service_account_key(tmp_path) == (key_path, pub_path)
    assert key_path.read_bytes() == before  # never regenerated


@pytest.mark.parametrize("keep", ["sa.key", "sa.pub"])
def test_half_a_pair_is_an_error_naming_both_files(tmp_path: Path, keep: str) -> None:
    ensure_service_account_key(tmp_path)
    (tmp_path / ({"sa.key", "sa.pub"} - {keep}).pop()).unlink()
    with pytest.raises(ServiceAccountKeyError, match=f"{keep} exists but .* does not"):
        ensure_service_account_key(tmp_path)


def test_signing_key_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(ServiceAccountKeyError, match=f"cannot read {missing}"):
        load_signing_key(missing)
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ServiceAccountKeyError, match=f"failed to parse {garbage}"):
        load_signing_key(garbage)
    k1 = tmp_path / "k1.key"
    k1.write_bytes(dump_private_key_pem(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(ServiceAccountKeyError, match="must be 256, 384, or 521"):
        load_signing_key(k1)


def test_verification_files_hold_any_mix_of_keys_and_certificates(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    ca = create_self_signed_ca(clock=FakeClock())
    bundle = b"".join(
        [
            b"some text before\n",
            dump_private_key_pem(rsa_key),  # a private key counts as its public half
            ec_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            b"-----BEGIN NOTHING USEFUL-----\nAAAA\n-----END NOTHING USEFUL-----\n",
            ca.certificate_pem,
        ]
    )
    path = tmp_path / "keys.pem"
    path.write_bytes(bundle)
    assert [key_id(k) for k in load_public_keys(path)] == [
        key_id(rsa_key),
        key_id(ec_key),
        key_id(ca.private_key),
    ]


def test_a_verification_file_without_keys_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ServiceAccountKeyError, match="does not contain any valid RSA or ECDSA"):
        load_public_keys(path)
