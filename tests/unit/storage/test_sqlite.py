"""SQLite-specific behaviour beyond the shared contract: fresh revisions, group-commit
isolation of outcomes, physical compaction, paged replay, on-disk settings."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kubeboot.storage import sqlite_sql as sql
from kubeboot.storage.interface import (
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatch,
    StoreError,
    WatchEvent,
)
from kubeboot.storage.sqlite import HISTORY_PAGE, SqliteStore


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(tmp_path / "core.db", isolation_level=None)
    sql.configure(c, writer=True)
    sql.init_schema(c)
    return c


def test_one_transaction_gives_each_write_its_own_outcome(conn: sqlite3.Connection) -> None:
    ops: list[sql.WriteOp] = [
        (sql.WriteKind.CREATE, "/a", b"1", None),
        (sql.WriteKind.CREATE, "/a", b"again", None),
        (sql.WriteKind.UPDATE, "/a", b"2", 1),
        (sql.WriteKind.UPDATE, "/a", b"2", 2),
        (sql.WriteKind.CREATE, "/bad\ud800", b"x", None),
        (sql.WriteKind.DELETE, "/missing", b"", None),
        (sql.WriteKind.DELETE, "/a", b"", 3),
    ]
    try:
        revision, results = sql.apply_writes(conn, 1, ops)
    finally:
        conn.close()
    assert revision == 4
    assert [type(r) for r in results] == [
        WatchEvent,
        KeyExistsError,
        RevisionMismatch,
        WatchEvent,
        StoreError,
        KeyNotFoundError,
        WatchEvent,
    ]
    events = [r for r in results if isinstance(r, WatchEvent)]
    assert [e.revision for e in events] == [2, 3, 4]
    assert events[2].type is EventType.DELETE
    assert events[2].kv.value == b"2"


async def test_fresh_store_is_at_revision_one_and_first_write_gets_two(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        assert await store.current_revision() == 1
        assert await store.compacted_revision() == 0
        assert (await store.create("/x", b"1")).mod_revision == 2
    finally:
        await store.close()


async def test_database_uses_wal_with_full_sync(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    await store.close()
    c = sqlite3.connect(tmp_path / "s.db")
    try:
        assert c.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        c.close()


async def test_concurrent_writes_keep_independent_outcomes(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        base = await store.create("/k", b"0")
        results = await asyncio.gather(
            *(store.update("/k", str(i).encode(), base.mod_revision) for i in range(20)),
            *(store.create(f"/n/{i}", b"v") for i in range(40)),
            return_exceptions=True,
        )
        updates, creates = results[:20], results[20:]
        assert sum(not isinstance(r, BaseException) for r in updates) == 1
        assert all(isinstance(r, RevisionMismatch) for r in updates if isinstance(r, BaseException))
        assert not any(isinstance(r, BaseException) for r in creates)
        assert await store.current_revision() == base.mod_revision + 41
    finally:
        await store.close()


async def test_future_revisions_are_refused(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        current = await store.current_revision()
        with pytest.raises(StoreError, match="future"):
            await store.range("/", revision=current + 1)
        with pytest.raises(StoreError, match="future"):
            await store.compact(current + 1)
    finally:
        await store.close()


async def test_compaction_removes_history_rows_and_keeps_what_reads_need(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        kv = await store.create("/a", b"0")
        for i in range(50):
            kv = await store.update("/a", str(i).encode(), kv.mod_revision)
        gone = await store.create("/gone", b"x")
        await store.delete("/gone", gone.mod_revision)
        mid = await store.current_revision()
        after = await store.update("/a", b"after", kv.mod_revision)
        await store.compact(mid)
        assert (await store.range("/", revision=mid)).kvs == [kv]
    finally:
        await store.close()
    c = sqlite3.connect(tmp_path / "s.db")
    try:
        revisions = [r for (r,) in c.execute("SELECT rev FROM log ORDER BY rev")]
    finally:
        c.close()
    # Left: /a's value at the compaction point (the prev of the later write) and that write.
    assert revisions == [kv.mod_revision, after.mod_revision]


async def test_replay_longer_than_one_page_has_no_gap(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        start = await store.current_revision()
        total = HISTORY_PAGE * 2 + 7
        for chunk in range(0, total, 100):
            await asyncio.gather(
                *(store.create(f"/h/{i:05d}", b"v") for i in range(chunk, min(chunk + 100, total)))
            )
        got: list[int] = []
        async with asyncio.timeout(10):
            async for event in store.watch("/h/", start):
                got.append(event.revision)
                if len(got) == total:
                    break
        assert got == list(range(start + 1, start + 1 + total))
    finally:
        await store.close()
