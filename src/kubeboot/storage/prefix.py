"""Key-prefix arithmetic shared by the backends.

Keys are compared as UTF-8 bytes (etcd's order; SQLite's BINARY collation on BLOBs). UTF-8
preserves code-point order, so sorting ``str`` keys in Python gives the same order.
"""

from __future__ import annotations

__all__ = ["prefix_end"]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with ``prefix`` (etcd's GetPrefixRangeEnd).

    ``None`` means "no upper bound": the prefix is empty or all ``0xff`` bytes.
    """
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return None
