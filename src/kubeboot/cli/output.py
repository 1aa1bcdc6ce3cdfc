"""Printing for the admin commands: Go's tabwriter layout, Go's human durations, JSON and YAML.

Pure functions from data to text, so the table layouts are tested without a server.

* :func:`tabulate` is ``text/tabwriter`` with ``AlignLeft``: every column but the last is
  padded to ``max(minwidth, widest cell + padding)``; the last column is never padded.
  kubeadm's ``token list`` uses minwidth 10, tabwidth 4, padding 3; kubectl's printers use
  minwidth 0, padding 3.
* :func:`short_human_duration` is apimachinery's ``duration.ShortHumanDuration`` (kubeadm's
  TTL column), :func:`human_duration` is ``duration.HumanDuration`` (kubectl's AGE column).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

__all__ = ["dump", "human_duration", "short_human_duration", "tabulate"]


def tabulate(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, minwidth: int = 0, padding: int = 3
) -> str:
    lines = [list(header), *(list(r) for r in rows)]
    columns = max(len(line) for line in lines)
    widths = [minwidth] * columns
    for line in lines:
        for i, cell in enumerate(line[:-1]):
            widths[i] = max(widths[i], len(cell) + padding)
    out = []
    for line in lines:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
        cells.append(line[-1])
        out.append("".join(cells))
    return "\n".join(out) + "\n"


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


def dump(obj: Any, fmt: str) -> str:
    """``json`` (indented, as kubectl) or ``yaml`` (block style, keys sorted)."""
    if fmt == "json":
        return json.dumps(obj, indent=4) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(obj, sort_keys=True, default_flow_style=False))
    raise ValueError(f"unknown output format {fmt!r}")
