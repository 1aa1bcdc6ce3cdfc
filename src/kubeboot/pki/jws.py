"""Detached HS256 JWS over cluster-info, byte-identical to cluster-bootstrap's ``jws.go``.

Format (server-facts §6.4, node-facts §3.4)::

    b64url('{"alg":"HS256","kid":"<token-id>"}') + ".." + b64url(HMAC-SHA256(secret, signing input))
    signing input = b64url(header) + "." + b64url(kubeconfig bytes)

base64url without padding. Upstream zero-pads the secret to 32 bytes for go-jose; HMAC
zero-pads keys to its 64-byte block anyway, so the unpadded secret gives the same MAC.

Verification parses strictly (exactly the ``alg`` and ``kid`` header parameters, ``alg`` must
be HS256, ``kid`` must be the expected token id, empty payload segment, canonical base64url)
and compares MACs with :func:`hmac.compare_digest`. Errors never include the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from kubeboot.pki.b64url import b64url_decode, b64url_encode

__all__ = ["JwsError", "detached_jws", "verify_detached_jws"]


class JwsError(ValueError):
    """A malformed or non-matching detached JWS; the message is safe to log."""


def _b64url_decode(segment: str, what: str) -> bytes:
    try:
        decoded = b64url_decode(segment)
    except ValueError as exc:
        raise JwsError(f"the JWS {what} is not base64url without padding") from exc
    if b64url_encode(decoded) != segment:
        raise JwsError(f"the JWS {what} is not canonical base64url")
    return decoded


def _header(token_id: str) -> str:
    # json.dumps keeps insertion order; Go's map encoding sorts keys, and "alg" < "kid".
    return b64url_encode(
        json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode()
    )


def _mac(header_segment: str, content: bytes, token_secret: str) -> bytes:
    signing_input = f"{header_segment}.{b64url_encode(content)}".encode("ascii")
    return hmac.new(token_secret.encode(), signing_input, hashlib.sha256).digest()


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def detached_jws(content: str | bytes, token_id: str, token_secret: str) -> str:
    """The value stored under ``jws-kubeconfig-<token-id>`` in cluster-info."""
    header = _header(token_id)
    return f"{header}..{b64url_encode(_mac(header, _as_bytes(content), token_secret))}"


def verify_detached_jws(jws: str, content: str | bytes, token_id: str, token_secret: str) -> None:
    """Raise :class:`JwsError` unless ``jws`` is a valid detached HS256 JWS for the token."""
    parts = jws.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise JwsError("the JWS is not in detached compact form <header>..<signature>")
    header_segment, _, signature_segment = parts
    try:
        header = json.loads(_b64url_decode(header_segment, "header"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JwsError("the JWS header is not JSON") from exc
    if not isinstance(header, dict) or set(header) != {"alg", "kid"}:
        raise JwsError('the JWS header must hold exactly "alg" and "kid"')
    if header["alg"] != "HS256":
        raise JwsError(f"the JWS algorithm must be HS256, not {header['alg']!r}")
    kid = header["kid"]
    # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a crash).
    if not isinstance(kid, str) or not hmac.compare_digest(
        kid.encode("utf-8", "surrogatepass"), token_id.encode("utf-8", "surrogatepass")
    ):
        raise JwsError(f"the JWS key id does not match token {token_id}")
    signature = _b64url_decode(signature_segment, "signature")
    expected = _mac(header_segment, _as_bytes(content), token_secret)
    if not hmac.compare_digest(signature, expected):
        raise JwsError(f"the JWS signature does not verify with token {token_id}")
