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

import json
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

__all__ = ["dump", "tabulate"]


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


def dump(obj: Any, fmt: str) -> str:
    """``json`` (indented, as kubectl) or ``yaml`` (block style, keys sorted)."""
    if fmt == "json":
        return json.dumps(obj, indent=4) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(obj, sort_keys=True, default_flow_style=False))
    raise ValueError(f"unknown output format {fmt!r}")
