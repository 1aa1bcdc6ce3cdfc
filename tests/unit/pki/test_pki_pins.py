"""SPKI pins in kubeadm's ``sha256:<hex>`` format, checked against the openssl recipe."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from kubeboot.clock import FakeClock
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.pins import PinError, PinSet, spki_der, spki_pin

CA = create_self_signed_ca(clock=FakeClock()).certificate
OTHER = create_self_signed_ca(clock=FakeClock()).certificate


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        ("abc", 'invalid hash, expected "format:hex-value". Known format(s) are: sha256'),
        ("sha256:aa:bb", 'invalid hash, expected "format:hex-value"'),
        ("md5:" + "00" * 16, 'unknown hash format "md5". Known format(s) are: sha256'),
        ("sha256:" + "00" * 31, "expected a 32 byte SHA-256 hash, found 31 bytes"),
        ("sha256:" + "zz" * 32, "could not decode SHA-256 from hex"),
    ],
)
def test_bad_pins(pin: str, message: str) -> None:
    with pytest.raises(PinError) as info:
        PinSet([pin])
    assert message in str(info.value)


def test_no_pinned_key_lists_what_was_seen() -> None:
    pins = PinSet([spki_pin(OTHER)])
    with pytest.raises(PinError) as info:
        pins.check_any([CA])
    assert str(info.value) == f'none of the public keys "{spki_pin(CA)}" are pinned'


def test_pin_matches_the_openssl_recipe() -> None:
    """``openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`` (kubeadm docs)."""
    pem = CA.public_bytes(serialization.Encoding.PEM)
    pubkey = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout"], input=pem, capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pubkey,
        capture_output=True,
        check=True,
    ).stdout
    assert spki_der(CA) == der
    assert spki_pin(CA) == "sha256:" + hashlib.sha256(der).hexdigest()


def test_format_is_case_insensitive_and_value_lowercased() -> None:
    pin = spki_pin(CA)
    pins = PinSet(["SHA256:" + pin.split(":")[1].upper()])
    assert pins
    assert pins.matches(CA)
    assert not pins.matches(OTHER)
    pins.check_any([OTHER, CA])
    assert not PinSet()
