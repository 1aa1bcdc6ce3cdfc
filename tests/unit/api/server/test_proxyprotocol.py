"""The PROXY protocol parser: every malformed header refused with a reason, valid ones read
exactly (never a byte past the header), and properties over generated headers and bytes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kubeboot.api.server.proxyprotocol import (
    MAX_V1_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    encode_v1,
    encode_v2,
    parse_proxy_header,
    starts_like_proxy_header,
)

TLS_CLIENT_HELLO = bytes.fromhex("160301020001") + b"\x00" * 16


def _v2(command: int, fam: int, block: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, fam]) + struct.pack("!H", len(block)) + block


INET_BLOCK = bytes([10, 0, 0, 7, 10, 0, 0, 1]) + struct.pack("!HH", 51000, 6443)

# -- refused ---------------------------------------------------------------------------------

BAD_V1 = [
    (b"PROXY TCP4 010.0.0.7 10.0.0.1 51000 6443\r\n", "leading zeros"),
    (b"PROXY TCP4 10.0.0.256 10.0.0.1 51000 6443\r\n", "0-255"),
    (b"PROXY TCP4 10.0.0 10.0.0.1 51000 6443\r\n", "four decimal numbers"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 051000 6443\r\n", "port"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 65536 6443\r\n", "port"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 +80 6443\r\n", "port"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 \xd9\xa3 6443\r\n", "port"),  # an Arabic-Indic 3
    (b"PROXY TCP4 10.0.0.7  10.0.0.1 51000 6443\r\n", "exactly 4 fields"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 51000 6443 \r\n", "exactly 4 fields"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 51000\r\n", "exactly 4 fields"),
    (b"PROXY TCP4 fd00::7 fd00::1 51000 6443\r\n", "four decimal numbers"),
    (b"PROXY TCP6 10.0.0.7 10.0.0.1 51000 6443\r\n", "not an IPv6 address"),
    (b"PROXY TCP6 fe80::1%eth0 fe80::2 51000 6443\r\n", "not an IPv6 address"),
    (b"PROXY TCP6 fd00:::7 fd00::1 51000 6443\r\n", "not an IPv6 address"),
    (b"PROXY TCP5 10.0.0.7 10.0.0.1 51000 6443\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    (b"PROXY tcp4 10.0.0.7 10.0.0.1 51000 6443\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    (b"PROXY UNKNOWNX\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    (b"PROXY  UNKNOWN\r\n", "is not TCP4, TCP6 or UNKNOWN"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 51000 6443\n", "lone CR or LF"),
    (b"PROXY TCP4 10.0.0.7 10.0.0.1 51000 6443\r\r\n", "lone CR or LF"),
    (b"PROXY UNKNOWN \n stuff\r\n", "lone CR or LF"),
    (b"PROXY UNKNOWN " + b"f" * (MAX_V1_LENGTH - 14), "without CRLF"),
    (b"proxy TCP4 10.0.0.7 10.0.0.1 51000 6443\r\n", "expected a PROXY protocol header"),
    (b"PROXYTCP4\r\n", "expected a PROXY protocol header"),
    (TLS_CLIENT_HELLO, "expected a PROXY protocol header"),
    (b"GET / HTTP/1.1\r\n\r\n", "expected a PROXY protocol header"),
]

BAD_V2 = [
    (V2_SIGNATURE + bytes([0x10, 0x11, 0, 12]) + INET_BLOCK, "version 1"),
    (V2_SIGNATURE + bytes([0x31, 0x11, 0, 12]) + INET_BLOCK, "version 3"),
    (_v2(0x2, 0x11, INET_BLOCK), "command 2"),
    (_v2(0xF, 0x11, INET_BLOCK), "command 15"),
    (_v2(0x1, 0x41, INET_BLOCK), "0x41"),
    (_v2(0x1, 0x13, INET_BLOCK), "0x13"),
    (_v2(0x1, 0x10, INET_BLOCK), "0x10"),  # INET with an unspecified transport
    (_v2(0x1, 0x01, INET_BLOCK), "0x01"),
    (_v2(0x1, 0x11, INET_BLOCK[:11]), "needs 12"),
    (_v2(0x1, 0x21, INET_BLOCK), "needs 36"),
    (_v2(0x1, 0x31, b"\x00" * 215), "needs 216"),
    (_v2(0x1, 0x11, INET_BLOCK + b"\x04\x00"), "cut short"),
    (_v2(0x1, 0x11, INET_BLOCK + b"\x04\x00\x05abcd"), "longer than the header"),
    (_v2(0x1, 0x00, b"\x04\x00\x09"), "longer than the header"),
]


@pytest.mark.parametrize(("data", "why"), BAD_V1 + BAD_V2)
def test_malformed_headers_are_refused_saying_why(data: bytes, why: str) -> None:
    with pytest.raises(ProxyHeaderError, match=why.replace("+", r"\+")):
        parse_proxy_header(data)


# -- accepted --------------------------------------------------------------------------------

GOOD = [
    (
        b"PROXY TCP4 10.0.0.7 10.0.0.1 51000 6443\r\n",
        ProxyHeader(1, 41, ("10.0.0.7", 51000), ("10.0.0.1", 6443)),
    ),
    (
        b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
        ProxyHeader(1, 44, ("0.0.0.0", 0), ("255.255.255.255", 65535)),  # noqa: S104
    ),
    (
        b"PROXY TCP6 FD00:0000::0007 fd00::1 51000 6443\r\n",
        ProxyHeader(1, 47, ("fd00::7", 51000), ("fd00::1", 6443)),
    ),
    (
        b"PROXY TCP6 ::ffff:10.0.0.7 ::1 1 2\r\n",
        ProxyHeader(1, 36, (str(ipaddress.IPv6Address("::ffff:10.0.0.7")), 1), ("::1", 2)),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, 15, None, None)),
    (
        b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535 whatever\r\n",
        ProxyHeader(1, 56, None, None),
    ),
    (
        _v2(0x1, 0x11, INET_BLOCK),
        ProxyHeader(2, 28, ("10.0.0.7", 51000), ("10.0.0.1", 6443)),
    ),
    # LOCAL (a health check): the family byte and the block are ignored, whatever they say.
    (_v2(0x0, 0x00, b""), ProxyHeader(2, 16, None, None)),
    (_v2(0x0, 0xFF, b"\x01\x02\x03"), ProxyHeader(2, 19, None, None)),
    # Valid but not TCP over IP: the connection's own address.
    (_v2(0x1, 0x00, b""), ProxyHeader(2, 16, None, None)),
    (_v2(0x1, 0x12, INET_BLOCK), ProxyHeader(2, 28, None, None)),
    (_v2(0x1, 0x31, b"/run/lb.sock".ljust(216, b"\x00")), ProxyHeader(2, 232, None, None)),
    # TLVs (an NLB's endpoint id, a NOOP) are skipped.
    (
        _v2(0x1, 0x11, INET_BLOCK + b"\xea\x00\x05\x01vpce" + b"\x04\x00\x00"),
        ProxyHeader(2, 39, ("10.0.0.7", 51000), ("10.0.0.1", 6443)),
    ),
]


@pytest.mark.parametrize(("data", "header"), GOOD)
def test_valid_headers_are_read_exactly(data: bytes, header: ProxyHeader) -> None:
    assert parse_proxy_header(data) == header
    assert header.length == len(data)
    # The client's TLS handshake after it is not part of the header, and not looked at.
    assert parse_proxy_header(data + TLS_CLIENT_HELLO) == header
    for cut in range(len(data)):
        assert parse_proxy_header(data[:cut]) is None, cut


def test_first_bytes_tell_a_header_from_tls() -> None:
    assert not starts_like_proxy_header(b"")
    assert not starts_like_proxy_header(TLS_CLIENT_HELLO)
    assert not starts_like_proxy_header(b"GET / HTTP/1.1\r\n")
    assert not starts_like_proxy_header(b"\r\n\r\n\x00\r\nQUIZ")
    for header in (b"PROXY UNKNOWN\r\n", encode_v2(None, None)):
        for cut in range(1, 13):
            assert starts_like_proxy_header(header[:cut]), header[:cut]


# -- properties ------------------------------------------------------------------------------

ports = st.integers(0, 65535)
ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)).map(str)
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1)).map(str)
address_pairs = st.one_of(
    st.tuples(st.tuples(ipv4, ports), st.tuples(ipv4, ports)),
    st.tuples(st.tuples(ipv6, ports), st.tuples(ipv6, ports)),
)
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4).map(tuple)


@given(address_pairs, st.sampled_from([1, 2]), tlvs, st.binary(max_size=64))
@example((("10.0.0.7", 1), ("10.0.0.1", 2)), 1, (), b"")
def test_round_trip_through_the_writers(
    pair: tuple[tuple[str, int], tuple[str, int]],
    version: int,
    extra: tuple[tuple[int, bytes], ...],
    after: bytes,
) -> None:
    source, destination = pair
    data = (
        encode_v1(source, destination)
        if version == 1
        else encode_v2(source, destination, tlvs=extra)
    )
    header = parse_proxy_header(data + after)
    assert header == ProxyHeader(version, len(data), source, destination)  # type: ignore[arg-type]
    if version == 1:
        assert len(data) <= MAX_V1_LENGTH


@given(st.binary(max_size=300))
@example(V2_SIGNATURE + b"\x21\x11\xff\xff")
@example(b"PROXY TCP6 " + b"1" * 120)
def test_arbitrary_bytes_give_a_header_none_or_the_one_error(data: bytes) -> None:
    try:
        header = parse_proxy_header(data)
    except ProxyHeaderError:
        return
    if header is None:
        # Every byte so far belongs to a header: it can be consumed without losing data.
        assert starts_like_proxy_header(data) or data == b""
        assert not data.startswith(b"PROXY") or len(data) < MAX_V1_LENGTH
    else:
        assert 15 <= header.length <= len(data)
        assert parse_proxy_header(data[: header.length]) == header


@given(st.binary(min_size=1, max_size=80))
def test_a_header_with_bytes_changed_is_refused_or_read_as_another(noise: bytes) -> None:
    """Flipping bytes inside a valid header never makes the parser read past its end."""
    data = bytearray(encode_v2(("10.0.0.7", 51000), ("10.0.0.1", 6443)))
    for i, b in enumerate(noise):
        data[i % len(data)] ^= b
    try:
        header = parse_proxy_header(bytes(data))
    except ProxyHeaderError:
        return
    assert header is None or header.length <= len(data)
