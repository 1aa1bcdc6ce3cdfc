"""Upstream's e2e suite (``e2e.test`` v1.37.2) against one control plane, outcomes per spec.

Issue 22's 58 specs are listed by full name in ``specs.txt`` (found with ``e2e.test
--ginkgo.dry-run``). One run focuses exactly those (each name escaped, anchored at the end:
spec names carry a prefix, so a leading ``^`` would match nothing), with the suite's defaults
(protobuf, ServiceAccount verification on), and reads ginkgo's JUnit report. A spec that the
report does not mention (the suite stopped before it) counts as ``not-run``, never as passed.

Setup done for the suite, on both planes alike: a Node object (the NodeAuthorizer specs
impersonate the first Node, the nodes-Table spec lists it), because neither plane runs a
kubelet. Flags for a cluster without nodes: ``--allowed-not-ready-nodes=-1
--minStartupPods=-1 --num-nodes=0``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.real.binaries import real_binary
from tests.real.controlplane import ControlPlane

__all__ = [
    "EXPECTED_FILE",
    "SPECS_FILE",
    "SpecOutcome",
    "focus_regex",
    "go_quote_meta",
    "parse_junit",
    "read_names",
    "run_e2e",
]

HERE = Path(__file__).parent
SPECS_FILE = HERE / "specs.txt"
EXPECTED_FILE = HERE / "expected-kubeboot.txt"
E2E_NODE = "e2e-node-1"
# The whole focused run; a spec that hangs on kubeboot must not hold the tier for an hour.
SUITE_TIMEOUT = "25m"


@dataclass(frozen=True)
class SpecOutcome:
    name: str
    state: str  # passed | failed | skipped | not-run
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.state == "passed"


def read_names(path: Path) -> list[str]:
    """Spec names, one per line; blank lines and ``#`` comments ignored."""
    if not path.exists():
        return []
    lines = (line.rstrip() for line in path.read_text().splitlines())
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


_GO_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def go_quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: Python's ``re.escape`` also escapes spaces, which RE2
    (ginkgo's regex engine) refuses as an invalid escape."""
    return _GO_META.sub(r"\\\1", text)


def focus_regex(names: Iterable[str]) -> str:
    """A ginkgo focus matching exactly these full spec names (anchored at the end only)."""
    return "(" + "|".join(go_quote_meta(name) + "$" for name in names) + ")"


_LABELS = re.compile(r" \[[^\[\]]*\]$")


def _listed_name(testcase_name: str, listed: set[str]) -> str | None:
    """The spec a ginkgo v2 JUnit testcase is, if listed: its name is ``[It] <full text>``
    followed by the label list (``[sig-auth, Conformance]``), which the listed names omit.
    Exact, not a substring: ``.../authentication/v1`` must not claim ``.../v1beta1``."""
    text = testcase_name.removeprefix("[It] ")
    if text in listed:
        return text
    stripped = _LABELS.sub("", text)
    return stripped if stripped in listed else None


def parse_junit(report: Path, names: Sequence[str]) -> dict[str, SpecOutcome]:
    """Outcome of each of ``names`` from a ginkgo JUnit report (``not-run`` when absent)."""
    outcomes = {name: SpecOutcome(name, "not-run") for name in names}
    listed = set(names)
    if not report.exists():
        return outcomes
    root = ET.parse(report).getroot()  # noqa: S314
    suite_failures = [
        f"{case.get('name')} failed: {failure.get('message', '')}"
        for case in root.iter("testcase")
        if "Suite]" in case.get("name", "") and (failure := case.find("failure")) is not None
    ]
    if suite_failures:
        # Every spec the suite did not reach says why (a failed BeforeSuite skips them all).
        reason = "; ".join(suite_failures)
        outcomes = {name: SpecOutcome(name, "not-run", reason) for name in names}
    for case in root.iter("testcase"):
        match = _listed_name(case.get("name", ""), listed)
        if match is None:
            continue
        status = case.get("status") or (
            "failed"
            if case.find("failure") is not None or case.find("error") is not None
            else "skipped"
            if case.find("skipped") is not None
            else "passed"
        )
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        message = (failure.get("message") or "") if failure is not None else ""
        state = {"passed": "passed", "skipped": "skipped", "pending": "skipped"}.get(
            status, "failed"
        )
        outcomes[match] = SpecOutcome(match, state, message.strip(), float(case.get("time") or 0))
    return outcomes


def ensure_node(plane: ControlPlane) -> None:
    """A Node object if the plane has none (no kubelet runs on either plane)."""
    nodes = json.loads(plane.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    if nodes:
        return
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": E2E_NODE, "labels": {"kubernetes.io/hostname": E2E_NODE}},
    }
    plane.kubectl("create", "-f", "-", input=json.dumps(node))


def run_e2e(
    plane: ControlPlane, names: Sequence[str], workdir: Path, *, timeout: float = 1800
) -> dict[str, SpecOutcome]:
    """Run ``names`` against ``plane``; the suite's log is ``workdir/e2e.log``."""
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_node(plane)
    report = workdir / "junit.xml"
    log = workdir / "e2e.log"
    args = [
        str(real_binary("e2e.test")),
        f"--kubeconfig={plane.admin_kubeconfig}",
        "--provider=skeleton",
        f"--kubectl-path={real_binary('kubectl')}",
        "--allowed-not-ready-nodes=-1",
        "--minStartupPods=-1",
        "--num-nodes=0",
        f"--report-dir={workdir}",
        f"--ginkgo.focus={focus_regex(names)}",
        f"--ginkgo.junit-report={report}",
        f"--ginkgo.timeout={SUITE_TIMEOUT}",
        "--ginkgo.no-color",
        "--ginkgo.v",
    ]
    env = {**os.environ, "HOME": str(workdir), "KUBECONFIG": str(plane.admin_kubeconfig)}
    with log.open("wb") as out:
        try:
            subprocess.run(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            out.write(f"\n[runner] e2e.test killed after {timeout:.0f}s\n".encode())
    return parse_junit(report, names)
