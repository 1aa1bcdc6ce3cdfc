"""Fixtures of the real-component tier: the two control planes, started once per session.

Starting kube-apiserver costs seconds to a minute on this machine, so ``real_plane`` and
``kubeboot_plane`` are session-scoped; a test that needs other settings starts its own with
:func:`tests.real.controlplane.real_control_plane`. A failed test gets the log paths and last
lines of every plane it used (fixtures, or started in its body) in its report.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.real.controlplane import (
    ControlPlane,
    kubeboot_control_plane,
    real_control_plane,
    started_planes,
    tail,
)
from tests.real.summary import SUMMARY, summary


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARY:
        terminalreporter.section("real-component tier")
        for line in SUMMARY:
            terminalreporter.write_line(line)


# Session fixtures start processes inside the first test's timeout; e2e runs take minutes.
_DEFAULT_TIMEOUT = 600
_KEEP_RUNS_SECONDS = 2 * 24 * 3600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(_DEFAULT_TIMEOUT))


@pytest.fixture(scope="session")
def real_run_dir() -> Path:
    """This run's directory for planes, logs and reports, outside pytest's basetemp.

    pytest keeps only the last 3 basetemps of a user, and on a machine shared by several
    developers' test runs that is minutes: a failed run's logs would be gone before anyone
    reads them. ``$KUBEBOOT_REAL_RUNS`` (default ``$TMPDIR/kubeboot-real-runs``) keeps each
    run for two days.
    """
    base = Path(os.environ.get("KUBEBOOT_REAL_RUNS") or Path(tempfile.gettempdir()))
    if "KUBEBOOT_REAL_RUNS" not in os.environ:
        base /= "kubeboot-real-runs"
    base.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - _KEEP_RUNS_SECONDS
    for old in base.iterdir():
        if old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    run = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run.mkdir()
    summary(f"logs and reports of this run: {run}")
    return run


@pytest.fixture
def real_tmp(request: pytest.FixtureRequest, real_run_dir: Path) -> Path:
    """A per-test directory under :func:`real_run_dir` (``tmp_path``, but kept)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]
    path = real_run_dir / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def real_plane(real_run_dir: Path) -> Iterator[ControlPlane]:
    with real_control_plane(real_run_dir / "real-plane") as plane:
        yield plane


@pytest.fixture(scope="session")
def kubeboot_plane(real_run_dir: Path) -> Iterator[ControlPlane]:
    with kubeboot_control_plane(real_run_dir / "kubeboot-plane") as plane:
        yield plane


@pytest.fixture(scope="session")
def planes(
    real_plane: ControlPlane, kubeboot_plane: ControlPlane
) -> tuple[ControlPlane, ControlPlane]:
    return real_plane, kubeboot_plane


@pytest.fixture(scope="session", params=["real", "kubeboot"])
def plane(request: pytest.FixtureRequest) -> ControlPlane:
    name = "real_plane" if request.param == "real" else "kubeboot_plane"
    fixture: ControlPlane = request.getfixturevalue(name)
    return fixture


_FIRST_PLANE = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_FIRST_PLANE] = len(started_planes)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    used: list[ControlPlane] = []
    for value in getattr(item, "funcargs", {}).values():
        candidates = value if isinstance(value, tuple) else (value,)
        used += [c for c in candidates if isinstance(c, ControlPlane)]
    used += started_planes[item.stash.get(_FIRST_PLANE, len(started_planes)) :]
    unique = {id(plane): plane for plane in used}
    for plane in unique.values():
        for name, path in plane.logs.items():
            if name == "audit":
                report.sections.append((f"{plane.flavor} audit log", str(path)))
            else:
                report.sections.append((f"{plane.flavor} {name} log ({path})", tail(path, 30)))
