"""The worker link's own behaviour, beyond the Store contract it passes like any backend."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import StoreUnavailable
from kubeboot.storage.remote import RemoteStore
from kubeboot.storage.remote_server import StoreServer


async def test_a_socket_path_too_long_for_unix_moves_to_a_private_temp_dir(
    tmp_path: Path,
) -> None:
    backing = await open_store(StorageOptions(sqlite_path=tmp_path / "state.db"))
    deep = tmp_path / ("d" * 120) / "run" / "store.sock"
    server = StoreServer(backing, deep, lambda *_: None)
    assert server.path != deep and len(str(server.path)) < 108
    await server.start()
    try:
        assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
        remote = await RemoteStore.connect(server.path, on_lost=lambda: None)
        created = await remote.create("/k", b"v")
        assert (await remote.get("/k")) == created
        await remote.close()
    finally:
        await server.close()
        await backing.close()
    assert not server.path.parent.exists()


async def test_losing_the_primary_fails_calls_and_watches_and_says_so(tmp_path: Path) -> None:
    backing = await open_store(StorageOptions(sqlite_path=tmp_path / "state.db"))
    server = StoreServer(backing, tmp_path / "run" / "store.sock", lambda *_: None)
    await server.start()
    lost = asyncio.Event()
    remote = await RemoteStore.connect(server.path, on_lost=lost.set)
    rev = await remote.current_revision()
    watch = remote.watch("/", rev)
    first = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0.05)
    await server.close()
    await asyncio.wait_for(lost.wait(), 5)
    await backing.close()
    with pytest.raises(StoreUnavailable):
        await first
    with pytest.raises(StoreUnavailable):
        await remote.get("/k")
    remote.notify("audit", b"dropped, not raised\n")
