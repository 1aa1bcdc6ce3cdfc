"""Go and apimachinery duration formats, so flags and columns read as upstream's do.

* :func:`parse_go_duration` is Go's ``time.ParseDuration`` (``8760h``, ``1h30m``, ``90s``),
  the syntax of kubeadm's ``--ttl`` and kube-controller-manager's
  ``--cluster-signing-duration``; :func:`format_go_duration` is ``Duration.String()``
  (``87600h0m0s``), as kubeadm writes durations into its configuration;
* :func:`human_duration` is apimachinery's ``duration.HumanDuration`` (kubectl's AGE column);
* :func:`short_human_duration` is ``duration.ShortHumanDuration`` (kubeadm's TTL column).
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["format_go_duration", "human_duration", "parse_go_duration", "short_human_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> dt.timedelta:
    """Parse like Go's ``time.ParseDuration``; a bare ``0`` is zero. Raises ValueError."""
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return dt.timedelta(0)
    sign = -1.0 if value.startswith("-") else 1.0
    body = value[1:] if value[:1] in ("+", "-") else value
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


def _trimmed(whole: int, frac: int, digits: int) -> str:
    """``whole.frac`` with ``frac`` zero-padded to ``digits`` and trailing zeros dropped."""
    fraction = f"{frac:0{digits}d}".rstrip("0") if frac else ""
    return f"{whole}.{fraction}" if fraction else str(whole)


def format_go_duration(delta: dt.timedelta) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5ms``, ``90s`` → ``1m30s``, ``1h0m0s``."""
    ns = (delta // dt.timedelta(microseconds=1)) * 1000
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trimmed(ns // 1_000, ns % 1_000, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trimmed(ns // 1_000_000, ns % 1_000_000, 6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_trimmed(rest // 1_000_000_000, rest % 1_000_000_000, 9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


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
