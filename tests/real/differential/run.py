"""Run the differential tier: fresh real and kubeboot planes, every case, the verdict.

Fresh planes (not the session fixtures): lists of Nodes, CSRs or tokens must start the same on
both sides, and other tests leave objects behind.

    .venv/bin/python -m tests.real.differential.run            # all cases, report on stdout
    .venv/bin/python -m tests.real.differential.run -k csr     # sequences whose id matches
    .venv/bin/python -m tests.real.differential.run --update-expected

``--update-expected`` rewrites ``expected-same.txt`` with the pairs that match now (only after a
full run: it refuses with ``-k``).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from tests.real.controlplane import kubeboot_control_plane, real_control_plane
from tests.real.differential.framework import (
    PlaneClient,
    load_cases,
    make_material,
    prepare_plane,
    run_sequences,
)
from tests.real.differential.report import EXPECTED_FILE, Verdict, judge, read_expected

__all__ = ["differential", "main"]


def differential(workdir: Path, select: str = "") -> Verdict:
    sequences = [
        s
        for s in load_cases()
        if not select or re.search(select, f"{s.file}:{s.name}", re.IGNORECASE)
    ]
    material = make_material()
    with (
        real_control_plane(workdir / "real") as real,
        kubeboot_control_plane(workdir / "kubeboot") as kubeboot,
    ):
        for plane in (real, kubeboot):
            prepare_plane(plane, material)
        results = run_sequences(
            sequences,
            PlaneClient(real, material, workdir / "clients-real"),
            PlaneClient(kubeboot, material, workdir / "clients-kubeboot"),
            material,
        )
    expected = read_expected()
    if select:
        produced = {r.pair_id for r in results}
        expected &= produced
    return judge(results, expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", default="", help="regex over <file>:<sequence>")
    parser.add_argument("--update-expected", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.update_expected and args.select:
        parser.error("--update-expected needs a full run (no -k)")
    # Kept after the run: the planes' logs explain a surprising answer.
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kubeboot-diff-"))
    verdict = differential(workdir, args.select)
    sys.stdout.write(verdict.text())
    print(f"logs: {workdir}")
    if args.update_expected:
        same = sorted(r.pair_id for r in verdict.results if r.same)
        header = "# Pairs of the differential tier known to be the same (report.py).\n"
        EXPECTED_FILE.write_text(header + "".join(f"{i}\n" for i in same))
        print(f"wrote {len(same)} ids to {EXPECTED_FILE}")
        return 0
    return 1 if verdict.regressions or verdict.stale else 0


if __name__ == "__main__":
    sys.exit(main())
