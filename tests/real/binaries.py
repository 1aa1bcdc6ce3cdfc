"""Where the upstream binaries built by ``hack/real/build.py`` are, and what to do without them.

The tier is never skipped silently: without a binary a test skips locally, saying how to build
it, and fails in CI (``CI=true``), where ``make interop`` has built everything first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["K8S_VERSION", "bin_dir", "in_ci", "real_binary", "unavailable"]

K8S_VERSION = "v1.37.2"
REPO = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    """``$KUBEBOOT_REAL_BIN``, else the build script's cache (same rule as hack/real/build.py)."""
    explicit = os.environ.get("KUBEBOOT_REAL_BIN")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("KUBEBOOT_REAL_CACHE")
    base = Path(cache) if cache else Path.home() / ".cache" / "kubeboot-real"
    return base / K8S_VERSION / "bin"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (in CI) the current test because the tier cannot run."""
    if in_ci():
        pytest.fail(f"real-component tier cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def real_binary(name: str) -> Path:
    """The path of an upstream binary, or skip/fail the test naming the command that builds it."""
    path = bin_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        unavailable(
            f"{path} is not built; run `make interop` or "
            f"`nice -n 10 {REPO / 'hack/real/build.py'} {name}` (~20 min cold for everything)"
        )
    return path
