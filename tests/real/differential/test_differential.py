"""The differential tier in the suite: a listed pair that differs now fails; the rest is reported.

The figure and every mismatch's diff go to ``differential-report.txt`` in the test's directory,
and the figure to the end-of-run summary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real.binaries import real_binary
from tests.real.differential.run import differential
from tests.real.summary import summary


@pytest.mark.timeout(1200)
def test_listed_pairs_stay_the_same_as_kube_apiserver(real_tmp: Path) -> None:
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl"):
        real_binary(name)
    verdict = differential(real_tmp)
    report = real_tmp / "differential-report.txt"
    report.write_text(verdict.text())
    summary(f"differential: {verdict.figure} pairs the same as kube-apiserver ({report})")
    if verdict.newly_same:
        summary(f"differential: {len(verdict.newly_same)} pairs newly the same; add them")
    assert not verdict.stale, f"stale ids in expected-same.txt: {verdict.stale}"
    assert not verdict.regressions, (
        f"{len(verdict.regressions)} listed pairs now differ:\n"
        + "\n".join(
            f"=== {r.pair_id}\n{r.diff()}"
            for r in verdict.results
            if r.pair_id in verdict.regressions
        )
    )
