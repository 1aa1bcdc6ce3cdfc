"""``docs/flags.md`` is generated from the click commands; fail when it is stale."""

from __future__ import annotations

from kubeboot.cli.reference import render_reference
from tests.integration.docs.doctest_runner import DOCS


def test_flag_reference_is_current() -> None:
    committed = (DOCS / "flags.md").read_text()
    assert committed == render_reference(), (
        "docs/flags.md is stale; regenerate it with "
        "`.venv/bin/python -m kubeboot.cli.reference > docs/flags.md`"
    )


def test_flag_reference_covers_every_command_and_flag() -> None:
    text = render_reference()
    for heading in ("## kubeboot token create", "## kubeboot csr approve", "## kubeboot server"):
        assert heading in text
    assert "| `--ttl` | duration | 24h0m0s |" in text
    assert "| `--ttl` | duration | 1h |" in text
