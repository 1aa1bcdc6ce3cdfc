"""Go duration parsing and apimachinery's human durations, unhappy paths first."""

from __future__ import annotations

import datetime as dt

import pytest

from kubeboot.durations import format_go_duration, human_duration, parse_go_duration


@pytest.mark.parametrize("text", ["", "h", "1", "1d", "1h 30m", "--1h", "1.5.2h", "+"])
def test_invalid_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("8760h", 8760 * 3600),
        ("1h30m", 5400),
        ("90s", 90),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("-2m", -120),
        ("15m0s", 900),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == dt.timedelta(seconds=seconds)


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


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.000001, "1µs"),
        (0.0015, "1.5ms"),
        (1.5, "1.5s"),
        (59, "59s"),
        (90, "1m30s"),
        (300, "5m0s"),
        (3600, "1h0m0s"),
        (61.25, "1m1.25s"),
        (87600 * 3600, "87600h0m0s"),
        (-90, "-1m30s"),
    ],
)
def test_format_go_duration_is_durations_string(seconds: float, text: str) -> None:
    assert format_go_duration(dt.timedelta(seconds=seconds)) == text
    if seconds >= 1:
        assert parse_go_duration(text) == dt.timedelta(seconds=seconds)
