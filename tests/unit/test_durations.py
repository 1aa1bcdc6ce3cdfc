"""Go duration parsing and apimachinery's human durations, unhappy paths first.

The parser is a port of Go's ``time.ParseDuration``; besides the tables, Hypothesis checks
the properties that pin it down (round trip through ``Duration.String``, the exact integer
sum of integer parts, Go's overflow bounds, nothing but ValueError on any text), and
``tests/interop/test_go_durations.py`` compares it with Go itself.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kubeboot.durations import (
    format_go_duration,
    human_duration,
    parse_go_duration,
    parse_go_duration_ns,
)

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
UNITS |= {"m": 60 * 10**9, "h": 3600 * 10**9}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("h", 'time: invalid duration "h"'),
        ("1", 'time: missing unit in duration "1"'),
        ("25", 'time: missing unit in duration "25"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1h 30m", 'time: unknown unit "h " in duration "1h 30m"'),
        (" 1h", 'time: invalid duration " 1h"'),
        ("1h ", 'time: unknown unit "h " in duration "1h "'),
        ("--1h", 'time: invalid duration "--1h"'),
        ("1.5.2h", 'time: missing unit in duration "1.5.2h"'),
        ("+", 'time: invalid duration "+"'),
        (".s", 'time: invalid duration ".s"'),
        ("1H", 'time: unknown unit "H" in duration "1H"'),
        ("1é", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("-0.5", 'time: missing unit in duration "-0.5"'),
    ],
)
def test_invalid_go_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_go_duration_ns(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("0s", 0),
        ("8760h", 8760 * 3600 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("90s", 90 * 10**9),
        ("1.5h", 5400 * 10**9),
        (".5s", 5 * 10**8),
        ("5.s", 5 * 10**9),
        ("500ms", 5 * 10**8),
        ("-2m", -120 * 10**9),
        ("15m0s", 900 * 10**9),
        ("1h1h", 7200 * 10**9),
        ("1µs", 1000),
        ("1μs", 1000),
        ("1.0000000001s", 10**9),
        ("9223372036854775807ns", INT64_MAX),
        ("-9223372036854775808ns", INT64_MIN),
        ("2562047h47m16.854775807s", INT64_MAX),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration_ns(text) == ns


def test_timedelta_truncates_toward_zero() -> None:
    assert parse_go_duration("1500ns") == dt.timedelta(microseconds=1)
    assert parse_go_duration("-1500ns") == dt.timedelta(microseconds=-1)
    assert parse_go_duration("24h") == dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1µs"),
        (2_200_000, "2.2ms"),
        (3_300_000_000, "3.3s"),
        (24 * 3600 * 10**9, "24h0m0s"),
        (-90 * 10**9, "-1m30s"),
        (INT64_MIN, "-2562047h47m16.854775808s"),
        (INT64_MAX, "2562047h47m16.854775807s"),
    ],
)
def test_format_go_duration(ns: int, text: str) -> None:
    assert format_go_duration(ns) == text


@given(st.integers(INT64_MIN, INT64_MAX))
@example(INT64_MIN)
@example(999)
def test_string_round_trips(ns: int) -> None:
    """Go's Duration.String output always parses back to the same value."""
    assert parse_go_duration_ns(format_go_duration(ns)) == ns


_parts = st.lists(
    st.tuples(st.integers(0, 10**6), st.sampled_from(sorted(UNITS))), min_size=1, max_size=6
)


@given(st.sampled_from(["", "+", "-"]), _parts)
def test_integer_parts_sum_exactly(sign: str, parts: list[tuple[int, str]]) -> None:
    text = sign + "".join(f"{n}{unit}" for n, unit in parts)
    expected = sum(n * UNITS[unit] for n, unit in parts)
    if expected > (1 << 63 if sign == "-" else INT64_MAX):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_go_duration_ns(text)
    else:
        assert parse_go_duration_ns(text) == (-expected if sign == "-" else expected)


@given(
    st.integers(0, 10**5),
    st.text("0123456789", min_size=1, max_size=30),
    st.sampled_from(sorted(UNITS)),
)
def test_fractions_within_a_nanosecond(whole: int, digits: str, unit: str) -> None:
    """Go computes fractions in float64; the result is the exact value truncated, ±1 ns."""
    exact_num = (whole * 10 ** len(digits) + int(digits)) * UNITS[unit]
    exact = exact_num // 10 ** len(digits)
    assert abs(parse_go_duration_ns(f"{whole}.{digits}{unit}") - exact) <= 1


@given(st.integers(INT64_MAX // 10**9 + 1, 10**30))
def test_overflow_is_refused(seconds: int) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration_ns(f"{seconds}s")


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    error = ""
    try:
        ns = parse_go_duration_ns(text)
    except ValueError as e:
        error = str(e)
    if error:
        assert error.startswith("time: ")
    else:
        assert INT64_MIN <= ns <= INT64_MAX


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400, "3y"),
        (86400 * 800, "2y70d"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(dt.timedelta(seconds=seconds)) == text
