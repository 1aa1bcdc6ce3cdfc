"""Go ``time.Duration`` strings (``8760h``, ``1h30m``, ``90s``, ``500ms``), as upstream flags take.

kubeadm and kube-controller-manager flags such as ``--ttl`` and ``--cluster-signing-duration``
are Go durations; accepting the same spelling lets upstream command lines work verbatim.
"""

from __future__ import annotations

import datetime as dt
import re

import click

__all__ = ["GoDuration", "format_go_duration", "parse_go_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> dt.timedelta:
    """Parse like Go's ``time.ParseDuration``; a bare ``0`` is zero. Raises ValueError."""
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return dt.timedelta(0)
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    pos, seconds = 0, 0.0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise ValueError(f'time: invalid duration "{text}" (examples: 24h, 1h30m, 90s)')
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    return dt.timedelta(seconds=sign * seconds)


def format_go_duration(delta: dt.timedelta) -> str:
    """Go's ``Duration.String`` for whole seconds: ``8760h0m0s``, ``1h0m0s``, ``0s``."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


class GoDuration(click.ParamType[dt.timedelta]):
    """A click parameter type for Go duration flags."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_go_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
