"""Compact JWS for JWTs (RFC 7515/7519) with ``cryptography``: sign, verify, key ids, JWKs.

What kube-apiserver's ServiceAccount tokens need, as go-jose produces and checks them
(``pkg/serviceaccount/jwt.go``, ``openidmetadata.go``):

* algorithms by key: RSA → ``RS256``; ECDSA P-256/P-384/P-521 → ``ES256``/``ES384``/``ES512``
  (raw ``r||s`` signatures of the curve's size, RFC 7518 §3.4);
* header ``{"alg":…,"kid":…}``; payload JSON with keys sorted at every level (what go-jose's
  claim merging through ``map[string]interface{}`` gives), compact separators;
* key id = base64url(SHA-256(DER SubjectPublicKeyInfo)), upstream's ``keyIDFromPublicKey``:
  non-reversible, stable across restarts;
* verification parses strictly: three base64url segments without padding, a JSON object
  header whose ``alg`` must be exactly the algorithm of the key tried (no ``none``, no HMAC,
  no algorithm confusion), no ``crit``; the payload must be a JSON object.

Errors never contain the token. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kubeboot.pki.b64url import b64url_decode, b64url_encode
from kubeboot.pki.keys import PrivateKey, PublicKey

__all__ = [
    "JwtError",
    "UnverifiedJwt",
    "algorithm_for",
    "jwk",
    "key_id",
    "parse_jwt",
    "sign_jwt",
    "verify_jwt",
]

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "RS256": hashes.SHA256,
    "ES256": hashes.SHA256,
    "ES384": hashes.SHA384,
    "ES512": hashes.SHA512,
}


class JwtError(ValueError):
    """A token that is malformed, or whose signature does not verify; safe to log."""


def _b64url_decode(segment: str, what: str) -> bytes:
    try:
        return b64url_decode(segment)
    except ValueError as exc:
        raise JwtError(f"the JWT {what} is not base64url") from exc


def _canonical_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    """The JWS algorithm upstream uses for this key; raises for other key types/curves."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        if alg is not None:
            return alg
        raise JwtError(f"unknown private key curve {key.curve.name}, must be 256, 384, or 521")
    raise JwtError(f"unsupported key type {type(key).__name__}, must be RSA or ECDSA")


def _public(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    return key


def key_id(key: PrivateKey | PublicKey) -> str:
    """base64url(SHA-256(DER SubjectPublicKeyInfo)) of the (public half of the) key."""
    der = _public(key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url_encode(hashlib.sha256(der).digest())


def _uint(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


def jwk(key: PublicKey) -> dict[str, str]:
    """The public JWK as upstream's JWKS serves it, in go-jose's field order: ``use``,
    ``kty``, ``kid``, (``crv``), ``alg``, then the key's parameters."""
    alg, kid = algorithm_for(key), key_id(key)
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {
            "use": "sig",
            "kty": "RSA",
            "kid": kid,
            "alg": alg,
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }
    size = (key.curve.key_size + 7) // 8
    point = key.public_numbers()
    return {
        "use": "sig",
        "kty": "EC",
        "kid": kid,
        "crv": _EC_CURVES[key.curve.name],
        "alg": alg,
        "x": _uint(point.x, size),
        "y": _uint(point.y, size),
    }


def sign_jwt(claims: Mapping[str, Any], key: PrivateKey, kid: str | None = None) -> str:
    """A compact JWS over ``claims`` with ``{"alg","kid"}`` (``kid`` defaults to
    :func:`key_id`)."""
    alg = algorithm_for(key)
    header = b64url_encode(
        _canonical_json({"alg": alg, "kid": kid if kid is not None else key_id(key)})
    )
    signing_input = f"{header}.{b64url_encode(_canonical_json(claims))}".encode("ascii")
    digest = _HASHES[alg]()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), digest)
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


@dataclass(frozen=True, slots=True)
class UnverifiedJwt:
    """A parsed token whose signature has not been checked yet: trust nothing in it."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def kid(self) -> str:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else ""


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment, what))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JwtError(f"the JWT {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise JwtError(f"the JWT {what} is not a JSON object")
    return value


def parse_jwt(token: str) -> UnverifiedJwt:
    """Split and decode a compact JWS; raises :class:`JwtError` if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("the token is not a compact JWS (three dot-separated parts)")
    header = _json_object(parts[0], "header")
    if "crit" in header:
        raise JwtError("the JWT header has critical extensions, which are not supported")
    claims = _json_object(parts[1], "payload")
    signature = _b64url_decode(parts[2], "signature")
    return UnverifiedJwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def verify_jwt(token: UnverifiedJwt, key: PublicKey) -> None:
    """Raise :class:`JwtError` unless ``key`` made ``token``'s signature with the algorithm
    its header names, and that algorithm is the key's."""
    alg = algorithm_for(key)
    if token.header.get("alg") != alg:
        raise JwtError(f"the JWT algorithm {token.header.get('alg')!r} is not the key's {alg}")
    digest = _HASHES[alg]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(token.signature, token.signing_input, padding.PKCS1v15(), digest)
            return
        size = (key.curve.key_size + 7) // 8
        if len(token.signature) != 2 * size:
            raise JwtError("the JWT signature does not verify")
        r = int.from_bytes(token.signature[:size], "big")
        s = int.from_bytes(token.signature[size:], "big")
        key.verify(encode_dss_signature(r, s), token.signing_input, ec.ECDSA(digest))
    except InvalidSignature as exc:
        raise JwtError("the JWT signature does not verify") from exc
