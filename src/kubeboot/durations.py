"""Go and apimachinery duration formats, so flags and columns read as upstream's do.

* :func:`parse_go_duration_ns` is Go's ``time.ParseDuration``, byte for byte: a sign, then
  one or more ``<decimal><unit>`` parts (``8760h``, ``1h30m``, ``.5s``, ``-1.5h``), units
  ``ns us µs μs ms s m h``, a bare ``0`` is zero, no blanks, int64 nanoseconds with Go's
  overflow rules, and Go's error texts (``time: missing unit in duration "25"``). Every
  duration flag (``--ttl``, ``--cluster-signing-duration``, ``--bootstrap-timeout``…) and
  every ``metav1.Duration`` in a config file goes through it;
* :func:`parse_go_duration` is the same as a :class:`datetime.timedelta` (microseconds:
  sub-microsecond parts are truncated toward zero);
* :func:`format_go_duration` is ``time.Duration.String`` (``24h0m0s``, ``1.5s``, ``300ms``);
* :func:`human_duration` is apimachinery's ``duration.HumanDuration`` (kubectl's AGE column);
* :func:`short_human_duration` is ``duration.ShortHumanDuration`` (kubeadm's TTL column).
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "format_go_duration",
    "human_duration",
    "parse_go_duration",
    "parse_go_duration_ns",
    "short_human_duration",
    "timedelta_ns",
]

_NS_PER_US = 1_000
_UNITS: dict[bytes, int] = {
    b"ns": 1,
    b"us": 1_000,
    "µ".encode() + b"s": 1_000,  # U+00B5 micro sign
    "μ".encode() + b"s": 1_000,  # U+03BC Greek small letter mu
    b"ms": 1_000_000,
    b"s": 1_000_000_000,
    b"m": 60_000_000_000,
    b"h": 3_600_000_000_000,
}
_TWO_63 = 1 << 63
_DIGITS = b"0123456789"


def _go_quote(text: bytes) -> str:
    """Go's ``time.quote``: printable ASCII as is (``"`` and ``\\`` escaped), other bytes \\xNN."""
    out = ['"']
    for byte in text:
        if byte >= 0x80 or byte < 0x20:
            out.append(f"\\x{byte:02x}")
        else:
            if byte in b'"\\':
                out.append("\\")
            out.append(chr(byte))
    out.append('"')
    return "".join(out)


def _leading_int(s: bytes) -> tuple[int, bytes]:
    """Go's ``leadingInt``: the leading digits; ValueError past 1<<63."""
    x, i = 0, 0
    while i < len(s) and s[i] in _DIGITS:
        if x > _TWO_63 // 10:
            raise ValueError
        x = x * 10 + s[i] - 48
        if x > _TWO_63:
            raise ValueError
        i += 1
    return x, s[i:]


def _leading_fraction(s: bytes) -> tuple[int, float, bytes]:
    """Go's ``leadingFraction``: digits after the point; stops gaining precision on overflow."""
    x, scale, i, overflow = 0, 1.0, 0, False
    while i < len(s) and s[i] in _DIGITS:
        if not overflow:
            if x > (_TWO_63 - 1) // 10:
                overflow = True
            else:
                y = x * 10 + s[i] - 48
                if y > _TWO_63:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, s[i:]


def parse_go_duration_ns(text: str) -> int:
    """Nanoseconds, exactly as Go's ``time.ParseDuration``; ValueError with Go's message."""
    orig = text.encode("utf-8", "surrogateescape")
    s = orig

    def error(message: str) -> ValueError:
        return ValueError(f"time: {message} {_go_quote(orig)}")

    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    if s == b"0":
        return 0
    if not s:
        raise error("invalid duration")
    total = 0
    while s:
        if not (s[0] == 0x2E or s[0] in _DIGITS):  # [0-9.]
            raise error("invalid duration")
        before = len(s)
        try:
            whole, s = _leading_int(s)
        except ValueError:
            raise error("invalid duration") from None
        pre = before != len(s)
        frac, scale, post = 0, 1.0, False
        if s[:1] == b".":
            s = s[1:]
            before = len(s)
            frac, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise error("invalid duration")
        i = 0
        while i < len(s) and not (s[i] == 0x2E or s[i] in _DIGITS):
            i += 1
        if i == 0:
            raise error("missing unit in duration")
        name, s = s[:i], s[i:]
        unit = _UNITS.get(name)
        if unit is None:
            raise error(f"unknown unit {_go_quote(name)} in duration")
        if whole > _TWO_63 // unit:
            raise error("invalid duration")
        whole *= unit
        if frac > 0:
            # Go computes fractions in float64 (exact to the nanosecond for hours); so do we.
            whole += int(float(frac) * (float(unit) / scale))
            if whole > _TWO_63:
                raise error("invalid duration")
        total += whole
        if total > _TWO_63:
            raise error("invalid duration")
    if neg:
        return -total
    if total > _TWO_63 - 1:
        raise error("invalid duration")
    return total


def parse_go_duration(text: str) -> dt.timedelta:
    """:func:`parse_go_duration_ns` as a timedelta (truncated toward zero to microseconds)."""
    ns = parse_go_duration_ns(text)
    micros = ns // _NS_PER_US if ns >= 0 else -(-ns // _NS_PER_US)
    return dt.timedelta(microseconds=micros)


def _frac(value: int, prec: int) -> tuple[str, int]:
    """Go's ``fmtFrac``: the fraction of ``value`` / 10**prec without trailing zeros."""
    digits = []
    printed = False
    for _ in range(prec):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits.append(str(digit))
        value //= 10
    text = "".join(reversed(digits))
    return ("." + text if printed else ""), value


def format_go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` for ``ns`` nanoseconds (``1h30m0s``, ``1.5µs``, ``0s``)."""
    u = -ns if ns < 0 else ns
    sign = "-" if ns < 0 else ""
    if u == 0:
        return "0s"
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        prec, unit = (3, "µs") if u < 1_000_000 else (6, "ms")
        frac, whole = _frac(u, prec)
        return f"{sign}{whole}{frac}{unit}"
    frac, whole = _frac(u, 9)
    out = f"{whole % 60}{frac}s"
    minutes = whole // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours:
            out = f"{hours}h{out}"
    return sign + out


def timedelta_ns(delta: dt.timedelta) -> int:
    """A timedelta as integer nanoseconds (exact: timedelta has microsecond resolution)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def short_human_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def human_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"
