"""The e2e runner's pure parts: the focus list, the regex ginkgo gets, the JUnit reading.

A focus that matched one spec too many or too few, or a report read by substring, would make
the pass counts wrong without any run failing; these need no binaries.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.real.e2e.runner import (
    EXPECTED_FILE,
    SPECS_FILE,
    focus_regex,
    go_quote_meta,
    parse_junit,
    read_names,
)

V1 = "[sig-auth] SelfSubjectReview testing SSR in different API groups authentication/v1"


def test_the_focus_list_is_issue_22s_58_specs_and_the_expected_list_a_subset_of_it() -> None:
    specs = read_names(SPECS_FILE)
    assert len(specs) == len(set(specs)) == 58
    stale = set(read_names(EXPECTED_FILE)) - set(specs)
    assert not stale, f"{EXPECTED_FILE.name} names specs not in {SPECS_FILE.name}: {stale}"


def test_go_quote_meta_escapes_what_re2_needs_and_leaves_spaces() -> None:
    assert go_quote_meta("[sig-auth] a.b (c) `x` $") == r"\[sig-auth\] a\.b \(c\) `x` \$"
    # RE2 and Python agree on this subset, so Python can check what ginkgo will match.
    regex = re.compile(focus_regex([V1]))
    assert regex.search(f"prefix {V1}")
    assert not regex.search(f"{V1}beta1")


def _junit(tmp_path: Path, cases: str) -> Path:
    report = tmp_path / "junit.xml"
    report.write_text(f'<testsuites><testsuite name="e2e">{cases}</testsuite></testsuites>')
    return report


def test_testcases_are_matched_exactly_with_their_label_lists(tmp_path: Path) -> None:
    report = _junit(
        tmp_path,
        f'<testcase name="[It] {V1}beta1 [sig-auth]" status="failed">'
        '<failure message="beta"/></testcase>'
        f'<testcase name="[It] {V1} [sig-auth]" status="passed" time="1.5"/>',
    )
    outcome = parse_junit(report, [V1, "[sig-x] absent spec"])
    assert outcome[V1].state == "passed"
    assert outcome[V1].seconds == 1.5
    assert outcome["[sig-x] absent spec"].state == "not-run"


def test_a_failed_suite_setup_is_the_reason_of_every_spec_not_run(tmp_path: Path) -> None:
    report = _junit(
        tmp_path,
        '<testcase name="[SynchronizedBeforeSuite]" status="failed">'
        '<failure message="Failed to get kubernetes service ClusterIP"/></testcase>',
    )
    outcome = parse_junit(report, [V1])[V1]
    assert outcome.state == "not-run"
    assert "SynchronizedBeforeSuite] failed: Failed to get kubernetes service" in outcome.message


def test_a_missing_report_leaves_every_spec_not_run(tmp_path: Path) -> None:
    assert parse_junit(tmp_path / "none.xml", [V1])[V1].state == "not-run"
