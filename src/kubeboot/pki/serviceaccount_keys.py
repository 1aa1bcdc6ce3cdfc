"""ServiceAccount token keys: generated on first start, or read from the files flags name.

Like kubeadm, the server keeps the issuer's pair as ``pki/sa.key`` (RSA 2048, PKCS#1,
0600) and ``pki/sa.pub`` (PKIX ``PUBLIC KEY``, 0644). RSA rather than the P-256 the rest of
the PKI uses because ``RS256`` is the one algorithm every OIDC relying party accepts (cloud
IAM federation, Vault, most JOSE libraries), and kubeadm makes the same choice. Files are
created atomically and create-only; an existing pair is reused, never regenerated, and half
a pair is an error (the tokens already handed out would stop verifying).

Reading follows ``k8s.io/client-go/util/keyutil``: a signing key is the first private-key
PEM block (``RSA PRIVATE KEY``, ``EC PRIVATE KEY``, ``PRIVATE KEY``); a verification file may
hold any number of blocks, each an RSA or ECDSA private key, public key or certificate
(content decides, not the block type), other blocks are skipped, and a file without one key
is an error naming the file.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeboot.pki.files import PUBLIC_FILE_MODE, write_atomic
from kubeboot.pki.jwt import JwtError, algorithm_for
from kubeboot.pki.keys import (
    InvalidKeyError,
    PrivateKey,
    PublicKey,
    dump_private_key_pem,
    load_private_key_pem,
)
from kubeboot.pki.pem import decode_pem_blocks, encode_pem

__all__ = [
    "SA_KEY_BITS",
    "ServiceAccountKeyError",
    "ensure_service_account_key",
    "load_public_keys",
    "load_signing_key",
]

SA_KEY_BITS = 2048
_KEY_NAME, _PUB_NAME = "sa.key", "sa.pub"


class ServiceAccountKeyError(ValueError):
    """A key file that is missing, unreadable or holds no usable key; names the file."""


def _public_pem(key: PublicKey) -> bytes:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encode_pem("PUBLIC KEY", der)


def ensure_service_account_key(pki_dir: Path) -> tuple[Path, Path]:
    """``(sa.key, sa.pub)`` under ``pki_dir``, generating the pair when neither exists."""
    key_path, pub_path = pki_dir / _KEY_NAME, pki_dir / _PUB_NAME
    if key_path.exists() and pub_path.exists():
        return key_path, pub_path
    if key_path.exists() or pub_path.exists():
        present, missing = (key_path, pub_path) if key_path.exists() else (pub_path, key_path)
        raise ServiceAccountKeyError(
            f"{present} exists but {missing} does not; restore it, or remove both to generate "
            "a new pair (every ServiceAccount token issued so far would stop working)"
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=SA_KEY_BITS)
    write_atomic(key_path, dump_private_key_pem(key), overwrite=False)
    write_atomic(pub_path, _public_pem(key.public_key()), mode=PUBLIC_FILE_MODE, overwrite=False)
    return key_path, pub_path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ServiceAccountKeyError(f"cannot read {path}: {exc.strerror}") from exc


def load_signing_key(path: Path) -> PrivateKey:
    """The issuer's private key (``--service-account-signing-key-file``)."""
    try:
        key = load_private_key_pem(_read(path))
    except InvalidKeyError as exc:
        raise ServiceAccountKeyError(f"failed to parse {path}: {exc}") from exc
    try:
        algorithm_for(key)
    except JwtError as exc:
        raise ServiceAccountKeyError(f"{path}: {exc}") from exc
    return key


def _key_of_block(der: bytes) -> PublicKey | None:
    try:
        private = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        pass
    else:
        if isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            return private.public_key()
        return None
    try:
        public = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        try:
            public = x509.load_der_x509_certificate(der).public_key()
        except ValueError:
            return None
    return public if isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) else None


def load_public_keys(path: Path) -> list[PublicKey]:
    """Every verification key in a ``--service-account-key-file``."""
    keys = [k for b in decode_pem_blocks(_read(path)) if (k := _key_of_block(b.der)) is not None]
    if not keys:
        raise ServiceAccountKeyError(
            f"error reading public key file {path}: data does not contain any valid RSA or "
            "ECDSA public keys"
        )
    return keys
