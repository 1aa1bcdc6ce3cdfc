"""Every ```sh block of the docs, run against a real server (rules: ``doctest_runner``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.docs.doctest_runner import DOCS, blocks_of, check_page

# page -> the blocks it may skip (index: why), so a new skip is a visible change.
PAGES: dict[str, set[int]] = {
    "quickstart.md": {0, 8},
    "guides/bootstrap-token.md": set(),
    "guides/krustlet.md": set(),
    "guides/static-token.md": set(),
    "guides/serviceaccount-tokens.md": set(),
    # the real kubelet and kubeadm (root, containerd, upstream binaries): tests/real runs them
    "guides/real-kubelet-and-kubeadm.md": {6, 7, 8, 9},
    "cli.md": set(),
}


@pytest.mark.timeout(150)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_runs(page: str, tmp_path: Path) -> None:
    skipped = check_page(DOCS / page, tmp_path, timeout=120)
    assert {b.index for b in skipped} == PAGES[page]


def test_every_page_with_shell_blocks_is_tested() -> None:
    with_blocks = {
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.md")
        if blocks_of(p) and p.name != "flags.md"
    }
    mine = {"quickstart.md", "cli.md"} | {p for p in with_blocks if p.startswith("guides/")}
    assert mine <= set(PAGES), sorted(mine - set(PAGES))
