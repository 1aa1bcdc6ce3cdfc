"""Figures the tier's tests report (differential, e2e), printed at the end of the run.

A module of its own, not conftest: tests import it, and pytest's own import of a conftest is not
guaranteed to be the same module object as a test's ``import tests.real.conftest``.
"""

from __future__ import annotations

__all__ = ["SUMMARY", "summary"]

SUMMARY: list[str] = []


def summary(line: str) -> None:
    """Add a line to the end-of-run summary (visible with -q, unlike captured output)."""
    SUMMARY.append(line)
