"""Key PEM formats the kubelet accepts, and Go-compatible PEM block decoding."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from kubeboot.pki.keys import (
    InvalidKeyError,
    dump_private_key_pem,
    generate_private_key,
    load_private_key_pem,
)
from kubeboot.pki.pem import decode_pem_blocks, encode_pem

KEY = generate_private_key()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "does not contain a valid RSA or ECDSA private key"),
        (encode_pem("CERTIFICATE", b"\x30\x00"), "does not contain a valid RSA or ECDSA"),
        (encode_pem("EC PRIVATE KEY", b"\x30\x00"), "cannot parse the EC PRIVATE KEY PEM block"),
        (
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "unsupported private key type",
        ),
    ],
)
def test_rejects(data: bytes, message: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        load_private_key_pem(data)
    assert message in str(info.value)


def test_sec1_dump_and_every_accepted_format_loads() -> None:
    sec1 = dump_private_key_pem(KEY)
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    pkcs8 = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    params = encode_pem("EC PARAMETERS", b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07")
    for data in (sec1, pkcs8, params + sec1):
        loaded = load_private_key_pem(data)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        assert loaded.private_numbers() == KEY.private_numbers()


def test_pem_blocks_like_go() -> None:
    data = (
        b"leading text\n"
        + encode_pem("A", b"one")
        + b"-----BEGIN B-----\n!!!not base64!!!\n-----END B-----\n"
        + b"-----BEGIN C-----\nKey: value\n\nY29udGVudA==\n-----END C-----\n"
    )
    blocks = decode_pem_blocks(data)
    assert [(b.type, b.der, b.headers) for b in blocks] == [
        ("A", b"one", {}),
        ("C", b"content", {"Key": "value"}),
    ]


def test_encode_pem_wraps_at_64_columns() -> None:
    lines = encode_pem("X", bytes(100)).splitlines()
    assert [len(line) for line in lines[1:-1]] == [64, 64, 8]  # 136 base64 chars
