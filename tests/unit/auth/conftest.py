"""Fixtures shared by the auth unit tests."""

from __future__ import annotations

import pytest

from kubeboot.clock import FakeClock
from tests.unit.auth.auth_pki import CA, NOW


@pytest.fixture(scope="session")
def cluster_ca() -> CA:
    return CA.create("kubernetes")


@pytest.fixture(scope="session")
def rogue_ca() -> CA:
    return CA.create("kubernetes")  # same name, different key: only the signature tells


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)
