"""StoreMirror against the real SQLite store: list, watch, and re-list when history is gone.

The SQLite store runs here, so nothing is mocked. To make "compaction while the mirror lists"
deterministic, ``CompactingStore`` delegates to the real store and compacts it for real at one
chosen moment: between the first and the second page of the mirror's list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubeboot.auth.mirror import StoreMirror
from kubeboot.storage.interface import RangeResult, WatchEvent
from kubeboot.storage.sqlite import SqliteStore

PREFIX = "/registry/secrets/kube-system/"


class CompactingStore:
    """The real store; the first paged read at a fixed revision compacts past it first."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.compactions = 0

    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        limit: int = 0,
        revision: int | None = None,
    ) -> RangeResult:
        if revision is not None and self.compactions == 0:
            self.compactions += 1
            current = await self.store.get(PREFIX + "a")
            assert current is not None
            await self.store.update(PREFIX + "a", b'{"v": 2}', current.mod_revision)
            await self.store.compact(await self.store.current_revision())
        return await self.store.range(prefix, start_key=start_key, limit=limit, revision=revision)

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        return self.store.watch(prefix, start_revision)


async def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "state.db", watch_queue_limit=1000)
    try:
        yield s
    finally:
        await s.close()


async def test_relists_when_compaction_overtakes_the_list(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("a", "b", "c"):
        await store.create(PREFIX + name, json.dumps({"v": 1}).encode())
    compacting = CompactingStore(store)
    mirror = StoreMirror(compacting, PREFIX, page_size=1, retry_delay=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(mirror.run())
    try:
        with caplog.at_level(logging.INFO, logger="kubeboot.auth.mirror"):
            await asyncio.wait_for(mirror.synced.wait(), 5)
        assert compacting.compactions == 1
        assert "re-listing" in caplog.text and "CompactedError" in caplog.text
        assert mirror.get(PREFIX + "a") == {"v": 2}  # the second list saw the write
        assert len(mirror) == 3
        # and the watch that follows the successful list is live
        await store.create(PREFIX + "d", b'{"v": 1}')
        kv = await store.get(PREFIX + "b")
        assert kv is not None
        await store.delete(PREFIX + "b", kv.mod_revision)
        await store.create(PREFIX + "bad", b"not json")
        await _until(lambda: mirror.get(PREFIX + "d") is not None, "the watch delivered d")
        await _until(lambda: mirror.get(PREFIX + "b") is None, "the watch delivered b's delete")
        assert mirror.get(PREFIX + "bad") is None  # undecodable: absent, never cached
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_relists_after_a_lagging_watch_across_a_compaction(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await SqliteStore.open(tmp_path / "lag.db", watch_queue_limit=1)
    mirror = StoreMirror(store, PREFIX, retry_delay=0.01)
    task = asyncio.create_task(mirror.run())
    try:
        await asyncio.wait_for(mirror.synced.wait(), 5)
        with caplog.at_level(logging.INFO, logger="kubeboot.auth.mirror"):
            # written concurrently, faster than the mirror is scheduled: it falls behind
            writes = [store.create(f"{PREFIX}s{i:02d}", b'{"i": %d}' % i) for i in range(30)]
            await asyncio.gather(*writes)
            await store.compact(await store.current_revision())  # old revisions are gone
            await store.create(PREFIX + "late", b'{"i": 99}')
            await _until(lambda: len(mirror) == 31, "the mirror converged on the store")
        assert "WatcherLaggingError" in caplog.text  # it re-listed rather than resumed
        assert sorted(o["i"] for o in mirror.values())[-1] == 99
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()
