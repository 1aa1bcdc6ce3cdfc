"""Fixtures shared by the auth unit tests.

The suite runs with ``--import-mode=importlib``, which leaves ``sys.path`` alone; the helper
modules next to this file (``auth_pki``, ``rbac_fixtures``) are made importable here, once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from auth_pki import CA, NOW

from kubeboot.clock import FakeClock


@pytest.fixture(scope="session")
def cluster_ca() -> CA:
    return CA.create("kubernetes")


@pytest.fixture(scope="session")
def rogue_ca() -> CA:
    return CA.create("kubernetes")  # same name, different key: only the signature tells


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)
