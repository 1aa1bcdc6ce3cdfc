"""Private keys: ECDSA P-256 generation and PEM load/dump in the kubelet's formats.

New keys are always P-256 (node-facts §1.4: what the kubelet and kubeadm generate; 3000 times
cheaper than RSA-2048). Loading accepts what ``keyutil.ParsePrivateKeyPEM`` accepts: the first
block of type ``EC PRIVATE KEY`` (SEC1), ``RSA PRIVATE KEY`` (PKCS#1) or ``PRIVATE KEY``
(unencrypted PKCS#8); other blocks such as ``EC PARAMETERS`` are skipped.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeboot.pki.pem import decode_pem_blocks, encode_pem

__all__ = [
    "InvalidKeyError",
    "PrivateKey",
    "PublicKey",
    "dump_private_key_pem",
    "generate_private_key",
    "load_private_key_pem",
    "signature_hash",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_KEY_BLOCK_TYPES = ("EC PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY")


class InvalidKeyError(ValueError):
    """A key file that does not hold a usable private key; the message names no key bytes."""


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def dump_private_key_pem(key: PrivateKey) -> bytes:
    """SEC1 ``EC PRIVATE KEY`` or PKCS#1 ``RSA PRIVATE KEY``, as keyutil writes them."""
    block_type = (
        "EC PRIVATE KEY" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSA PRIVATE KEY"
    )
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return encode_pem(block_type, der)


def load_private_key_pem(data: bytes) -> PrivateKey:
    """The first private-key block in ``data``; raises :class:`InvalidKeyError`."""
    for block in decode_pem_blocks(data):
        if block.type not in _KEY_BLOCK_TYPES:
            continue
        try:
            key = serialization.load_der_private_key(block.der, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyError(f"cannot parse the {block.type} PEM block") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise InvalidKeyError(f"unsupported private key type {type(key).__name__}")
        return key
    raise InvalidKeyError("data does not contain a valid RSA or ECDSA private key")


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The digest Go's x509 picks for a signer key: SHA-256, or SHA-384/512 on P-384/P-521."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size > 384:
            return hashes.SHA512()
        if key.curve.key_size > 256:
            return hashes.SHA384()
    return hashes.SHA256()
