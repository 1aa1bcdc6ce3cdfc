"""The CSR object name the kubelet derives from its key and request (node-facts §1.6).

``node-csr-`` + unpadded base64url(SHA-512/256 over each item's unpadded base64url followed
by ``|``), the items being the DER SubjectPublicKeyInfo, the CN, each O, each usage in the
order sent. The same key and request always give the same name, which is what makes a
restarted agent find its own pending CSR instead of creating another one.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

__all__ = ["CSR_NAME_PREFIX", "node_csr_name"]

CSR_NAME_PREFIX = "node-csr-"


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def node_csr_name(
    spki_der: bytes, common_name: str, organizations: Sequence[str], usages: Sequence[str]
) -> str:
    digest = hashlib.new("sha512_256")
    for item in (spki_der, common_name.encode(), *(o.encode() for o in organizations)):
        digest.update(_b64url(item) + b"|")
    for usage in usages:
        digest.update(_b64url(usage.encode()) + b"|")
    return CSR_NAME_PREFIX + _b64url(digest.digest()).decode("ascii")
