"""Issue 22's e2e specs against a fresh real control plane and a fresh kubeboot (``make e2e``).

    .venv/bin/python -m tests.real.e2e.run                    # both, counts and per-spec table
    .venv/bin/python -m tests.real.e2e.run --only kubeboot    # just kubeboot
    .venv/bin/python -m tests.real.e2e.run --only kubeboot --update-expected

``--update-expected`` rewrites ``expected-kubeboot.txt`` with the specs that pass on kubeboot
now. Exit status: 1 when a spec listed there fails (a regression) or the real plane does not
pass every spec (the reference itself is broken here), else 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.real.controlplane import kubeboot_control_plane, real_control_plane
from tests.real.e2e.runner import (
    EXPECTED_FILE,
    SPECS_FILE,
    SpecOutcome,
    read_names,
    run_e2e,
)

__all__ = ["E2eRun", "e2e_against", "main", "table"]


@dataclass(frozen=True)
class E2eRun:
    flavor: str
    outcomes: dict[str, SpecOutcome]
    seconds: float
    log: Path

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes.values())

    @property
    def figure(self) -> str:
        return f"{self.passed}/{len(self.outcomes)}"


def e2e_against(flavor: str, workdir: Path, names: Sequence[str] | None = None) -> E2eRun:
    """A fresh plane of ``flavor`` ("real" or "kubeboot"), the specs run, the plane stopped."""
    specs = list(names if names is not None else read_names(SPECS_FILE))
    start = real_control_plane if flavor == "real" else kubeboot_control_plane
    with start(workdir / f"{flavor}-plane") as plane:
        began = time.monotonic()
        outcomes = run_e2e(plane, specs, workdir / f"{flavor}-e2e")
        seconds = time.monotonic() - began
    return E2eRun(flavor, outcomes, seconds, workdir / f"{flavor}-e2e" / "e2e.log")


def table(runs: Sequence[E2eRun], expected: set[str]) -> str:
    """Counts, then one line per spec: each run's state, and whether kubeboot must pass it."""
    out = [f"e2e on {r.flavor}: {r.figure} passed in {r.seconds:.0f}s (log {r.log})" for r in runs]
    names = list(runs[0].outcomes)
    width = max(len(r.flavor) for r in runs) + 2
    out.append("")
    out.append("".join(r.flavor.ljust(width + 6) for r in runs) + "spec")
    for name in names:
        cells = "".join(r.outcomes[name].state.ljust(width + 6) for r in runs)
        mark = " [expected on kubeboot]" if name in expected else ""
        out.append(f"{cells}{name}{mark}")
    for run in runs:
        failed = [o for o in run.outcomes.values() if o.state != "passed" and o.message]
        reasons = {o.message for o in failed}
        if len(failed) > 1 and len(reasons) == 1:
            out.append("")
            out.append(f"on {run.flavor}, every spec not passed: {reasons.pop()[:400]}")
        elif failed:
            out.append("")
            out.append(f"first lines of the failures on {run.flavor}:")
            for outcome in failed:
                first = outcome.message.splitlines()[0][:240]
                out.append(f"  {outcome.name}\n      {first}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["real", "kubeboot"], default=None)
    parser.add_argument("--update-expected", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.update_expected and args.only == "real":
        parser.error("--update-expected needs the kubeboot run")
    flavors = [args.only] if args.only else ["real", "kubeboot"]
    expected = set(read_names(EXPECTED_FILE))
    # Kept after the run: the logs are what one reads when a spec fails.
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kubeboot-e2e-"))
    runs = [e2e_against(flavor, workdir) for flavor in flavors]
    sys.stdout.write(table(runs, expected))
    status = 0
    for run in runs:
        if run.flavor == "real" and run.passed != len(run.outcomes):
            print(f"the real control plane passes {run.figure}: the reference is broken here")
            status = 1
        if run.flavor == "kubeboot":
            regressed = sorted(n for n in expected if not run.outcomes[n].passed)
            for name in regressed:
                print(f"REGRESSED on kubeboot (listed in {EXPECTED_FILE.name}): {name}")
            status |= bool(regressed)
            if args.update_expected:
                passing = [n for n, o in run.outcomes.items() if o.passed]
                header = (
                    "# e2e specs that pass against kubeboot (make e2e; tests/real/README.md).\n"
                )
                EXPECTED_FILE.write_text(header + "".join(f"{n}\n" for n in passing))
                print(f"wrote {len(passing)} specs to {EXPECTED_FILE}")
    return status


if __name__ == "__main__":
    sys.exit(main())
