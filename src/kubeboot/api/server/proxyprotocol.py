"""The PROXY protocol, versions 1 and 2: the header a TCP load balancer puts before a
connection's first byte to say whose connection it is. Pure: bytes in, a header out.

Format (HAProxy's ``proxy-protocol.txt``, the specification every load balancer follows):

* **v1**, one US-ASCII line of at most 107 bytes including its CRLF:
  ``PROXY TCP4 <src> <dst> <srcport> <dstport>\\r\\n`` (``TCP6`` likewise), or
  ``PROXY UNKNOWN`` followed by anything up to the CRLF. Exactly one space between fields;
  IPv4 as four decimal numbers 0-255 and ports 0-65535, both without leading zeros; IPv6 as
  ``inet_pton`` reads it. A lone CR or LF never ends the line.
* **v2**, binary: the 12-byte signature ``\\r\\n\\r\\n\\0\\r\\nQUIT\\n``; a byte whose high
  nibble is the version (2) and low nibble the command (0 LOCAL, 1 PROXY); a byte whose high
  nibble is the address family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and low nibble the transport
  (0 UNSPEC, 1 STREAM, 2 DGRAM); a 16-bit big-endian length of what follows. Then the addresses
  (INET 12 bytes: source, destination, source port, destination port; INET6 36; UNIX 216)
  and TLVs (type, 16-bit length, value) filling the rest exactly.

Which address the header gives (:attr:`ProxyHeader.source`): the client's for v1 ``TCP4``/
``TCP6`` and v2 PROXY over INET/INET6 with STREAM; ``None`` — "use the connection's own
address", as the specification says — for v1 ``UNKNOWN``, v2 LOCAL (a load balancer's own
health check) and the valid v2 combinations that are not TCP (UNSPEC, UNIX, DGRAM). Anything
else is a :class:`ProxyHeaderError`: the connection is dropped, never guessed at.

:func:`parse_proxy_header` reads from the first byte of a connection and is incremental: it
returns ``None`` while ``data`` is a valid beginning of a header, and then every byte of
``data`` belongs to the header, so the caller may consume all of it and read on. The writers
(:func:`encode_v1`, :func:`encode_v2`) are the load balancer's half, for the tests' and the
benchmarks' balancer (``bench/tcp_balancer.py``) and for the round-trip property tests.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_V1_LENGTH",
    "V2_SIGNATURE",
    "Address",
    "ProxyHeader",
    "ProxyHeaderError",
    "encode_v1",
    "encode_v2",
    "parse_proxy_header",
    "starts_like_proxy_header",
]

Address = tuple[str, int]
"""A host (IPv4 or IPv6 address text, as :mod:`ipaddress` writes it) and a port."""

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
MAX_V1_LENGTH = 107  # "PROXY UNKNOWN <39> <39> 65535 65535\r\n"
_V2_FIXED = 16  # signature, version/command, family/transport, length
_V2_VERSION = 0x2
_LOCAL, _PROXY = 0x0, 0x1
_UNSPEC, _INET, _INET6, _UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM, _DGRAM = 0x1, 0x2
_ADDRESS_BLOCK = {_INET: 12, _INET6: 36, _UNIX: 216}
# UNSPEC, then TCP and UDP over IPv4 and IPv6, then UNIX stream and datagram.
_V2_PROTOCOL_BYTES = frozenset((0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32))
_TLV_HEAD = 3


class ProxyHeaderError(ValueError):
    """Not a valid PROXY protocol header; the message says what is wrong, for the log."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    version: Literal[1, 2]
    length: int
    """Bytes the header takes on the wire; the connection's own data starts after them."""
    source: Address | None
    """The client, or None: use the connection's own peer address (see the module)."""
    destination: Address | None


def starts_like_proxy_header(data: bytes) -> bool:
    """Whether a connection's first bytes are (the beginning of) a PROXY protocol header.

    Used on connections from untrusted addresses, which must not send one: a TLS record
    starts with 0x16, so one byte already tells them apart.
    """
    if not data:
        return False
    return V2_SIGNATURE.startswith(data[:12]) or _V1_PREFIX.startswith(data[:6])


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None while ``data`` is an incomplete one."""
    if not data:
        return None
    if V2_SIGNATURE.startswith(data[:12]):
        return _parse_v2(data)
    if _V1_PREFIX.startswith(data[:6]):
        return _parse_v1(data)
    raise ProxyHeaderError(
        f"expected a PROXY protocol header, got {data[:12]!r}: the connection does not start "
        "with PROXY (v1) or the v2 signature"
    )


# -- version 1 -------------------------------------------------------------------------------


def _parse_v1(data: bytes) -> ProxyHeader | None:
    window = data[:MAX_V1_LENGTH]
    end = window.find(b"\r\n")
    if end < 0:
        # A CR may be the first half of the CRLF still to come; anything else that ends a
        # line, or a full window without a CRLF, is never going to be a valid header.
        if b"\n" in window or b"\r" in window[:-1]:
            raise ProxyHeaderError("PROXY v1 line broken by a lone CR or LF")
        if len(window) >= MAX_V1_LENGTH:
            raise ProxyHeaderError(f"PROXY v1 line without CRLF in its first {MAX_V1_LENGTH} bytes")
        return None
    line = window[:end]
    if b"\n" in line or b"\r" in line:
        raise ProxyHeaderError("PROXY v1 line broken by a lone CR or LF")
    length = end + 2
    fields = line.split(b" ")
    protocol = fields[1] if len(fields) > 1 else b""
    if protocol == b"UNKNOWN":
        # The specification: the receiver ignores whatever follows UNKNOWN up to the CRLF.
        return ProxyHeader(1, length, None, None)
    if protocol not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError(
            f"PROXY v1 protocol {protocol.decode('ascii', 'replace')!r} is not TCP4, TCP6 or "
            "UNKNOWN"
        )
    if len(fields) != 6:
        raise ProxyHeaderError(
            f"PROXY v1 {protocol.decode()} needs exactly 4 fields after the protocol, separated "
            f"by single spaces; got {len(fields) - 2}"
        )
    family = 4 if protocol == b"TCP4" else 6
    source = (_v1_address(fields[2], family), _v1_port(fields[4]))
    destination = (_v1_address(fields[3], family), _v1_port(fields[5]))
    return ProxyHeader(1, length, source, destination)


def _v1_address(field: bytes, family: int) -> str:
    text = field.decode("ascii", "replace")
    if family == 4:
        parts = field.split(b".")
        if len(parts) != 4 or not all(_decimal(p, 255) is not None for p in parts):
            raise ProxyHeaderError(
                f"PROXY v1 TCP4 address {text!r} is not four decimal numbers 0-255 without "
                "leading zeros"
            )
        return text
    if not field or any(c not in b"0123456789abcdefABCDEF:." for c in field):
        raise ProxyHeaderError(f"PROXY v1 TCP6 address {text!r} is not an IPv6 address")
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        raise ProxyHeaderError(f"PROXY v1 TCP6 address {text!r} is not an IPv6 address") from None
    return str(ipaddress.IPv6Address(packed))


def _v1_port(field: bytes) -> int:
    port = _decimal(field, 65535)
    if port is None:
        raise ProxyHeaderError(
            f"PROXY v1 port {field.decode('ascii', 'replace')!r} is not a decimal number "
            "0-65535 without leading zeros"
        )
    return port


def _decimal(field: bytes, maximum: int) -> int | None:
    """ASCII digits without a leading zero (``0`` itself is fine), at most ``maximum``."""
    if not field or len(field) > len(str(maximum)) or not all(48 <= c <= 57 for c in field):
        return None
    if len(field) > 1 and field[0] == 48:
        return None
    value = int(field)
    return value if value <= maximum else None


def encode_v1(source: Address | None, destination: Address | None) -> bytes:
    """A v1 line; ``None`` addresses give ``PROXY UNKNOWN``."""
    if source is None or destination is None:
        return b"PROXY UNKNOWN\r\n"
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError(f"source {src} and destination {dst} are not of one family")
    protocol = "TCP4" if src.version == 4 else "TCP6"
    line = f"PROXY {protocol} {src} {dst} {source[1]} {destination[1]}\r\n"
    return line.encode("ascii")


# -- version 2 -------------------------------------------------------------------------------


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < _V2_FIXED:
        return None
    if data[:12] != V2_SIGNATURE:  # pragma: no cover - the caller matched the prefix
        raise ProxyHeaderError("PROXY v2 signature mismatch")
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != _V2_VERSION:
        raise ProxyHeaderError(f"PROXY v2 header with version {version}; only 2 is defined")
    if command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(f"PROXY v2 command {command} is neither LOCAL (0) nor PROXY (1)")
    (rest,) = struct.unpack_from("!H", data, 14)
    length = _V2_FIXED + rest
    if len(data) < length:
        return None
    if command == _LOCAL:
        # The specification: a LOCAL connection's family and address block are ignored.
        return ProxyHeader(2, length, None, None)
    if data[13] not in _V2_PROTOCOL_BYTES:
        raise ProxyHeaderError(
            f"PROXY v2 family/transport byte 0x{data[13]:02x} is not one the specification "
            "defines (0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32)"
        )
    family, transport = data[13] >> 4, data[13] & 0x0F
    block = data[_V2_FIXED:length]
    size = _ADDRESS_BLOCK.get(family, 0)
    if len(block) < size:
        raise ProxyHeaderError(
            f"PROXY v2 address block of {len(block)} bytes; family {family} needs {size}"
        )
    _check_tlvs(block[size:])
    if transport != _STREAM or family not in (_INET, _INET6):
        return ProxyHeader(2, length, None, None)  # valid, not TCP: the connection's own
    width = 4 if family == _INET else 16
    src = ipaddress.ip_address(block[:width])
    dst = ipaddress.ip_address(block[width : 2 * width])
    sport, dport = struct.unpack_from("!HH", block, 2 * width)
    return ProxyHeader(2, length, (str(src), sport), (str(dst), dport))


def _check_tlvs(tlvs: bytes) -> None:
    """TLVs must fill the rest of the header exactly; their contents are not used."""
    offset = 0
    while offset < len(tlvs):
        if len(tlvs) - offset < _TLV_HEAD:
            raise ProxyHeaderError("PROXY v2 TLV cut short in its type/length")
        (value_length,) = struct.unpack_from("!H", tlvs, offset + 1)
        offset += _TLV_HEAD + value_length
        if offset > len(tlvs):
            raise ProxyHeaderError("PROXY v2 TLV longer than the header")


def encode_v2(
    source: Address | None,
    destination: Address | None,
    *,
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A v2 header: PROXY over TCP for two addresses, LOCAL when they are ``None``."""
    body = b"".join(struct.pack("!BH", kind, len(value)) + value for kind, value in tlvs)
    if source is None or destination is None:
        return V2_SIGNATURE + bytes([0x20 | _LOCAL, 0x00]) + struct.pack("!H", len(body)) + body
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError(f"source {src} and destination {dst} are not of one family")
    family = _INET if src.version == 4 else _INET6
    block = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1]) + body
    head = bytes([0x20 | _PROXY, family << 4 | _STREAM]) + struct.pack("!H", len(block))
    return V2_SIGNATURE + head + block
