"""The differential figure, the diffs, and the regressions against the checked-in list.

``expected-same.txt`` lists the pairs known to match (one pair id per line, ``#`` comments).
A listed pair that differs is a regression and fails the tier; a pair that matches but is not
listed is reported as newly matching (add it); a listed id that no case produces is stale
(a case was renamed or removed: update the list), and fails too, so the list stays honest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.real.differential.framework import PairResult

__all__ = ["EXPECTED_FILE", "Verdict", "judge", "read_expected"]

EXPECTED_FILE = Path(__file__).parent / "expected-same.txt"


def read_expected(path: Path = EXPECTED_FILE) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


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
