"""``open_store`` refuses unusable option combinations with a message naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (StorageOptions(backend="nosuch"), "unknown storage backend"),  # type: ignore[arg-type]
        (StorageOptions(backend="etcd3"), "needs --etcd-servers"),
        (StorageOptions(backend="etcd3", etcd_servers=("ftp://x:1",)), "not an http"),
        (StorageOptions(backend="etcd3", etcd_servers=("https://x:1",)), "needs --etcd-cafile"),
        (
            StorageOptions(
                backend="etcd3",
                etcd_servers=("https://x:1",),
                etcd_cafile=Path("/nonexistent/ca.crt"),
                etcd_certfile=Path("/nonexistent/c.crt"),
            ),
            "must be given together",
        ),
        (StorageOptions(watch_queue_limit=0), "watch_queue_limit"),
    ],
    ids=["backend", "servers", "scheme", "https-no-ca", "cert-no-key", "queue"],
)
async def test_unusable_options_are_refused(options: StorageOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await open_store(options)


async def test_sqlite_is_the_default_and_creates_its_directory(tmp_path: Path) -> None:
    store = await open_store(StorageOptions(sqlite_path=tmp_path / "data" / "state.db"))
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "data" / "state.db").exists()
    finally:
        await store.close()
