"""PEM blocks as Go's ``encoding/pem`` sees them.

Upstream checks are phrased in terms of Go's decoder ("the *first* PEM block must be of type
CERTIFICATE REQUEST", "no PEM block headers are permitted"), so this module mirrors it:
text outside blocks is skipped, a block whose body is not valid base64 is skipped, and
RFC 1421 headers (``Key: value`` lines before a blank line) are reported separately.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

__all__ = ["PemBlock", "decode_pem_blocks", "encode_pem"]

_BLOCK = re.compile(
    rb"-----BEGIN (?P<type>[^\r\n-]*)-----\r?\n(?P<body>.*?)-----END (?P=type)-----",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class PemBlock:
    type: str
    der: bytes
    headers: dict[str, str] = field(default_factory=dict)


def decode_pem_blocks(data: bytes) -> list[PemBlock]:
    """All well-formed blocks in order; garbage between them is ignored, as Go does."""
    blocks: list[PemBlock] = []
    for match in _BLOCK.finditer(data):
        lines = match.group("body").splitlines()
        headers: dict[str, str] = {}
        # Go only looks for headers when the first line contains a colon.
        if lines and b":" in lines[0]:
            while lines and lines[0].strip():
                key, sep, value = lines.pop(0).partition(b":")
                if not sep:
                    break
                headers[key.strip().decode("latin-1")] = value.strip().decode("latin-1")
            if lines and not lines[0].strip():
                lines.pop(0)
        try:
            der = base64.b64decode(b"".join(line.strip() for line in lines), validate=True)
        except (binascii.Error, ValueError):
            continue
        blocks.append(PemBlock(match.group("type").decode("latin-1"), der, headers))
    return blocks


def encode_pem(block_type: str, der: bytes) -> bytes:
    """One block with 64-column base64 lines, byte-identical to Go's ``pem.EncodeToMemory``."""
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    head = f"-----BEGIN {block_type}-----\n".encode()
    tail = f"-----END {block_type}-----\n".encode()
    return head + b"".join(line + b"\n" for line in lines) + tail
