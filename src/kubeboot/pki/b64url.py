"""base64url without padding (RFC 7515 §2), the one encoding JWS segments use.

Shared by the detached cluster-info JWS and the ServiceAccount JWTs, so both read segments
by the same rules: only the URL-safe alphabet, no ``=``, no length that cannot be a valid
encoding.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["b64url_decode", "b64url_encode"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Decode one segment; raises :class:`ValueError` when it is not base64url."""
    if not _ALPHABET.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url without padding") from exc
