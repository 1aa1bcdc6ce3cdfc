"""The differential figure, the diffs, and the regressions against the checked-in list.

``expected-same.txt`` lists the pairs known to match (one pair id per line, ``#`` comments).
A listed pair that differs is a regression and fails the tier; a pair that matches but is not
listed is reported as newly matching (add it); a listed id that no case produces is stale
(a case was renamed or removed: update the list), and fails too, so the list stays honest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.real.differential.framework import PairResult

__all__ = ["EXPECTED_FILE", "Verdict", "differing_paths", "judge", "read_expected"]

EXPECTED_FILE = Path(__file__).parent / "expected-same.txt"


def read_expected(path: Path = EXPECTED_FILE) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


_PATH_DEPTH = 3


def _paths(real: Any, kubeboot: Any, prefix: str, depth: int) -> set[str]:
    if real == kubeboot:
        return set()
    if depth >= _PATH_DEPTH or type(real) is not type(kubeboot):
        return {prefix or "body"}
    if isinstance(real, dict):
        out: set[str] = set()
        for key in set(real) | set(kubeboot):
            where = f"{prefix}.{key}" if prefix else key
            if key not in real or key not in kubeboot:
                out.add(where + (" (kubeboot only)" if key not in real else " (real only)"))
            else:
                out |= _paths(real[key], kubeboot[key], where, depth + 1)
        return out
    if isinstance(real, list) and len(real) == len(kubeboot):
        out = set()
        for a, b in zip(real, kubeboot, strict=True):
            out |= _paths(a, b, f"{prefix}[]", depth + 1)
        return out
    return {prefix or "body"}


def differing_paths(result: PairResult) -> set[str]:
    """Where a pair differs: code, content type, warnings, or dotted paths in the body (to
    depth 3; ``[]`` for any list item), so one cause shared by many pairs stands out."""
    real, kubeboot = result.real, result.kubeboot
    out = set()
    if real.code != kubeboot.code:
        out.add("HTTP code")
    if real.content_type != kubeboot.content_type:
        out.add("Content-Type")
    if real.warnings != kubeboot.warnings:
        out.add("Warning headers")
    return out | _paths(real.body, kubeboot.body, "", 0)


@dataclass(frozen=True)
class Verdict:
    results: Sequence[PairResult]
    regressions: list[str]
    newly_same: list[str]
    stale: list[str]

    @property
    def same(self) -> int:
        return sum(r.same for r in self.results)

    @property
    def figure(self) -> str:
        return f"{self.same}/{len(self.results)}"

    def text(self) -> str:
        """The whole report: figure, per-file counts, every mismatch with its diff."""
        out = [f"differential: {self.figure} request/response pairs the same"]
        files: dict[str, list[PairResult]] = {}
        for result in self.results:
            files.setdefault(result.pair_id.split(":", 1)[0], []).append(result)
        for name, group in files.items():
            out.append(f"  {name}: {sum(r.same for r in group)}/{len(group)}")
        causes = Counter(
            path for result in self.results if not result.same for path in differing_paths(result)
        )
        if causes:
            out.append("where the differing pairs differ (pairs per place):")
            out += [f"  {count:4d}  {path}" for path, count in causes.most_common(25)]
        for label, ids in (
            ("REGRESSED (listed in expected-same.txt, now different)", self.regressions),
            ("newly the same (add to expected-same.txt)", self.newly_same),
            ("stale ids in expected-same.txt", self.stale),
        ):
            if ids:
                out.append(f"{label}:")
                out += [f"  {i}" for i in ids]
        for result in self.results:
            if not result.same:
                out.append("")
                out.append(f"=== {result.pair_id}: {result.request}")
                out.append(result.diff())
        return "\n".join(out) + "\n"


def judge(results: Sequence[PairResult], expected: set[str]) -> Verdict:
    produced = {r.pair_id for r in results}
    return Verdict(
        results,
        regressions=[r.pair_id for r in results if r.pair_id in expected and not r.same],
        newly_same=[r.pair_id for r in results if r.pair_id not in expected and r.same],
        stale=sorted(expected - produced),
    )
