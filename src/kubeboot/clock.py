"""The injected clock.

Every decision that depends on time (token expiry, certificate validity, rotation deadlines,
lease expiry, cleaner schedules) takes a :class:`Clock` so tests can warp time without
sleeping. Wall-clock time is always timezone-aware UTC; ``monotonic`` is for measuring
intervals only.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "format_micro_time", "format_time", "parse_time"]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._mono = 1000.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)
        self._mono += seconds


def format_time(t: dt.datetime) -> str:
    """metav1.Time wire format: RFC 3339, UTC, whole seconds (``2024-05-01T12:00:00Z``).

    The one formatter of API times. Years are always four digits, as Go's RFC 3339 writes
    them (``0001-01-01T00:00:02Z``); ``strftime("%Y")`` would write ``1`` on glibc and give
    every client a time it cannot parse.
    """
    u = t.astimezone(dt.UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def format_micro_time(t: dt.datetime) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with exactly six fractional digits."""
    return format_time(t)[:-1] + f".{t.astimezone(dt.UTC).microsecond:06d}Z"


def parse_time(s: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp as Go's ``time.RFC3339`` does; raises ValueError."""
    if not s or "T" not in s:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"RFC 3339 time without an offset: {s!r}")
    return t.astimezone(dt.UTC)
