"""The ``Store`` contract (etcd v3 semantics), run against every backend in conftest.

Unhappy paths first. Revisions are asserted relative to the store's current revision, because
the etcd backend shares one server (one global revision) across tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatch,
    Store,
    StoreUnavailable,
    WatcherLaggingError,
    WatchEvent,
)


@contextlib.asynccontextmanager
async def watching(
    store: Store, prefix: str, start: int
) -> AsyncIterator[AsyncIterator[WatchEvent]]:
    """A watch that is closed deterministically when the block ends."""
    events = store.watch(prefix, start)
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


async def take(events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    async with asyncio.timeout(10):
        return [await anext(events) for _ in range(n)]


# -- writes: unhappy paths ---------------------------------------------------------------


async def test_create_of_existing_key_fails_and_keeps_the_value(store: Store) -> None:
    kv = await store.create("/a/x", b"1")
    with pytest.raises(KeyExistsError) as caught:
        await store.create("/a/x", b"2")
    assert caught.value.key == "/a/x"
    assert await store.get("/a/x") == kv


async def test_update_and_delete_of_missing_key_fail_not_found(store: Store) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update("/a/missing", b"1", 2)
    with pytest.raises(KeyNotFoundError):
        await store.delete("/a/missing")
    with pytest.raises(KeyNotFoundError):
        await store.delete("/a/missing", 2)


async def test_update_with_stale_revision_conflicts_and_carries_current(store: Store) -> None:
    first = await store.create("/a/x", b"1")
    second = await store.update("/a/x", b"2", first.mod_revision)
    with pytest.raises(RevisionMismatch) as caught:
        await store.update("/a/x", b"3", first.mod_revision)
    assert caught.value.current == second
    assert await store.get("/a/x") == second


async def test_delete_with_stale_revision_conflicts_and_keeps_key(store: Store) -> None:
    first = await store.create("/a/x", b"1")
    second = await store.update("/a/x", b"2", first.mod_revision)
    with pytest.raises(RevisionMismatch) as caught:
        await store.delete("/a/x", first.mod_revision)
    assert caught.value.current == second
    assert await store.get("/a/x") == second


async def test_failed_writes_do_not_consume_revisions(store: Store) -> None:
    kv = await store.create("/a/x", b"1")
    with pytest.raises(KeyExistsError):
        await store.create("/a/x", b"1")
    with pytest.raises(RevisionMismatch):
        await store.update("/a/x", b"2", kv.mod_revision - 1)
    assert await store.current_revision() == kv.mod_revision


# -- writes: happy paths -----------------------------------------------------------------


async def test_each_write_takes_the_next_revision(store: Store) -> None:
    start = await store.current_revision()
    created = await store.create("/a/x", b"1")
    assert created == KeyValue("/a/x", b"1", start + 1, start + 1)
    updated = await store.update("/a/x", b"2", created.mod_revision)
    assert updated == KeyValue("/a/x", b"2", start + 1, start + 2)
    assert await store.get("/a/x") == updated
    assert await store.current_revision() == start + 2


async def test_delete_returns_last_value_at_the_delete_revision(store: Store) -> None:
    created = await store.create("/a/x", b"1")
    deleted = await store.delete("/a/x", created.mod_revision)
    assert deleted == KeyValue("/a/x", b"1", created.mod_revision, created.mod_revision + 1)
    assert await store.get("/a/x") is None
    recreated = await store.create("/a/x", b"again")
    assert recreated.create_revision == deleted.mod_revision + 1


async def test_unconditional_delete(store: Store) -> None:
    await store.create("/a/x", b"1")
    deleted = await store.delete("/a/x")
    assert deleted.value == b"1"
    assert await store.get("/a/x") is None


# -- range ---------------------------------------------------------------------------------


async def test_range_at_compacted_revision_raises(store: Store) -> None:
    first = await store.create("/a/x", b"1")
    second = await store.update("/a/x", b"2", first.mod_revision)
    await store.compact(second.mod_revision)
    with pytest.raises(CompactedError) as caught:
        await store.range("/a/", revision=first.mod_revision)
    assert caught.value.compacted == second.mod_revision
    at_compaction_point = await store.range("/a/", revision=second.mod_revision)
    assert at_compaction_point.kvs == [second]


async def test_range_is_ordered_and_prefix_isolated(store: Store) -> None:
    for key in ["/a/c", "/ab/x", "/a/a", "/a", "/a/b/deep", "/b/a", "/a/b"]:
        await store.create(key, key.encode())
    result = await store.range("/a/")
    assert [kv.key for kv in result.kvs] == ["/a/a", "/a/b", "/a/b/deep", "/a/c"]
    assert result.more is False
    assert result.revision == await store.current_revision()
    assert await store.count("/a/") == 4
    assert await store.count("/ab/") == 1
    everything = await store.range("")
    assert [kv.key for kv in everything.kvs] == sorted(
        ["/a/c", "/ab/x", "/a/a", "/a", "/a/b/deep", "/b/a", "/a/b"]
    )


async def test_range_orders_by_utf8_bytes(store: Store) -> None:
    for key in ["/u/é", "/u/z", "/u/Z", "/u/😀", "/u/ÿ"]:
        await store.create(key, b"v")
    result = await store.range("/u/")
    keys = [kv.key for kv in result.kvs]
    assert keys == sorted(keys, key=str.encode)
    assert keys[0] == "/u/Z"


async def test_range_pagination_with_limit_start_key_and_revision(store: Store) -> None:
    for i in range(7):
        await store.create(f"/p/{i}", str(i).encode())
    page = await store.range("/p/", limit=3)
    assert [kv.key for kv in page.kvs] == ["/p/0", "/p/1", "/p/2"]
    assert page.more is True
    # Writes between pages must not show in later pages read at the first page's revision.
    await store.create("/p/3a", b"late")
    await store.delete("/p/4")
    latest = await store.get("/p/5")
    assert latest is not None
    await store.update("/p/5", b"changed", latest.mod_revision)
    pages = [page]
    while pages[-1].more:
        start_key = pages[-1].kvs[-1].key + "\x00"
        pages.append(await store.range("/p/", start_key=start_key, limit=3, revision=page.revision))
    keys = [kv.key for p in pages for kv in p.kvs]
    assert keys == [f"/p/{i}" for i in range(7)]
    assert all(p.revision == page.revision for p in pages)
    assert [kv.value for p in pages for kv in p.kvs][5] == b"5"
    exact = await store.range("/p/", limit=8)
    assert [kv.key for kv in exact.kvs] == ["/p/0", "/p/1", "/p/2", "/p/3", "/p/3a", "/p/5", "/p/6"]
    assert exact.more is False


async def test_range_at_past_revision_sees_deleted_and_old_values(store: Store) -> None:
    a = await store.create("/r/a", b"a1")
    b = await store.create("/r/b", b"b1")
    snapshot = b.mod_revision
    await store.update("/r/a", b"a2", a.mod_revision)
    await store.delete("/r/b")
    await store.create("/r/c", b"c1")
    past = await store.range("/r/", revision=snapshot)
    assert past.kvs == [a, b]
    assert past.revision == snapshot
    before_b = await store.range("/r/", revision=a.mod_revision)
    assert before_b.kvs == [a]


# -- watch ---------------------------------------------------------------------------------


async def test_watch_from_compacted_revision_raises(store: Store) -> None:
    first = await store.create("/w/x", b"1")
    second = await store.update("/w/x", b"2", first.mod_revision)
    third = await store.update("/w/x", b"3", second.mod_revision)
    await store.compact(third.mod_revision)
    assert await store.compacted_revision() == third.mod_revision
    async with watching(store, "/w/", first.mod_revision - 1) as events:
        with pytest.raises(CompactedError):
            await take(events, 1)


async def test_compacting_at_or_below_compaction_point_raises(store: Store) -> None:
    first = await store.create("/w/x", b"1")
    await store.update("/w/x", b"2", first.mod_revision)
    await store.compact(first.mod_revision)
    with pytest.raises(CompactedError):
        await store.compact(first.mod_revision)


async def test_lagging_watcher_is_ended(store: Store, watch_queue_limit: int) -> None:
    start = await store.current_revision()
    async with watching(store, "/lag/", start) as events:
        first = await store.create("/lag/0", b"0")
        assert (await take(events, 1))[0].kv == first
        for i in range(1, 3 * watch_queue_limit):
            await store.create(f"/lag/{i}", b"x")
        await asyncio.sleep(0.2)  # let a remote backend deliver what it committed
        with pytest.raises(WatcherLaggingError):
            await take(events, 3 * watch_queue_limit)


async def test_watch_replays_history_then_goes_live(store: Store) -> None:
    created = await store.create("/w/x", b"1")
    await store.create("/wx/other", b"not under /w/")
    updated = await store.update("/w/x", b"2", created.mod_revision)
    deleted = await store.delete("/w/x")
    async with watching(store, "/w/", created.mod_revision - 1) as events:
        replayed = await take(events, 3)
        assert [(e.type, e.kv, e.prev) for e in replayed] == [
            (EventType.PUT, created, None),
            (EventType.PUT, updated, created),
            (EventType.DELETE, deleted, updated),
        ]
        live = await store.create("/w/y", b"live")
        await store.create("/wx/ignored", b"x")
        again = await store.update("/w/y", b"live2", live.mod_revision)
        got = await take(events, 2)
        assert [e.kv for e in got] == [live, again]
        assert [e.revision for e in got] == [live.mod_revision, again.mod_revision]


async def test_watch_from_now_sees_only_later_writes(store: Store) -> None:
    await store.create("/w/old", b"1")
    now = await store.current_revision()
    async with watching(store, "/w/", now) as events:
        new = await store.create("/w/new", b"2")
        assert [e.kv for e in await take(events, 1)] == [new]


async def test_watch_resumes_without_gaps_or_duplicates_under_concurrent_writes(
    store: Store,
) -> None:
    writers, per_writer = 4, 30
    committed: list[int] = []

    async def write(w: int) -> None:
        kv = await store.create(f"/c/{w}", b"0")
        committed.append(kv.mod_revision)
        for i in range(per_writer - 1):
            kv = await store.update(f"/c/{w}", str(i).encode(), kv.mod_revision)
            committed.append(kv.mod_revision)

    base = await store.current_revision()
    tasks = [asyncio.create_task(write(w)) for w in range(writers)]
    starts = [base]
    watchers: list[tuple[int, list[int]]] = []

    async def collect(start: int, into: list[int]) -> None:
        async with watching(store, "/c/", start) as events:
            while len(into) < writers * per_writer - (start - base):
                into.append((await anext(events)).revision)

    collectors = []
    for _ in range(5):
        start = max(starts[-1], await store.current_revision() - 3)
        starts.append(start)
        got: list[int] = []
        watchers.append((start, got))
        collectors.append(asyncio.create_task(collect(start, got)))
        await asyncio.sleep(0.005)
    await asyncio.gather(*tasks)
    async with asyncio.timeout(10):
        await asyncio.gather(*collectors)
    all_revisions = sorted(committed)
    assert all_revisions == list(range(base + 1, base + 1 + writers * per_writer))
    for start, got in watchers:
        assert got == [r for r in all_revisions if r > start], f"watch from {start}"


# -- compaction, reopen, close ---------------------------------------------------------------


async def test_compaction_keeps_current_values(store: Store) -> None:
    a = await store.create("/k/a", b"a1")
    a2 = await store.update("/k/a", b"a2", a.mod_revision)
    b = await store.create("/k/b", b"b1")
    await store.delete("/k/b", b.mod_revision)
    c = await store.create("/k/c", b"c1")
    await store.compact(c.mod_revision)
    assert (await store.range("/k/")).kvs == [a2, c]
    assert await store.get("/k/a") == a2
    a3 = await store.update("/k/a", b"a3", a2.mod_revision)
    async with watching(store, "/k/", c.mod_revision) as events:
        event = (await take(events, 1))[0]
        assert (event.kv, event.prev) == (a3, a2)


async def test_reopen_keeps_data_and_revision(reopen: Callable[[], Awaitable[Store]]) -> None:
    first = await reopen()
    try:
        kv = await first.create("/re/x", b"1")
        await first.compact(kv.mod_revision)
    finally:
        await first.close()
    second = await reopen()
    try:
        assert await second.get("/re/x") == kv
        assert await second.current_revision() >= kv.mod_revision
        assert await second.compacted_revision() >= kv.mod_revision
        after = await second.update("/re/x", b"2", kv.mod_revision)
        assert after.mod_revision > kv.mod_revision
    finally:
        await second.close()


async def test_closed_store_refuses_work_and_ends_watches(
    reopen: Callable[[], Awaitable[Store]],
) -> None:
    store = await reopen()
    start = await store.current_revision()
    events = store.watch("/z/", start)
    pending = asyncio.ensure_future(anext(events))
    await store.create("/z/a", b"1")
    assert (await asyncio.wait_for(pending, 10)).kv.key == "/z/a"
    pending = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(pending, 10)
    with pytest.raises(StoreUnavailable):
        await store.create("/z/b", b"2")
    with pytest.raises(StoreUnavailable):
        await store.get("/z/a")


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_cas_increments_lose_no_update(store: Store) -> None:
    workers, increments = 16, 10
    await store.create("/counter", b"0")
    successes = 0
    conflicts = 0

    async def increment() -> None:
        nonlocal successes, conflicts
        for _ in range(increments):
            while True:
                kv = await store.get("/counter")
                assert kv is not None
                try:
                    await store.update("/counter", str(int(kv.value) + 1).encode(), kv.mod_revision)
                except RevisionMismatch:
                    conflicts += 1
                    continue
                successes += 1
                break

    async with asyncio.timeout(30):
        await asyncio.gather(*(increment() for _ in range(workers)))
    final = await store.get("/counter")
    assert final is not None
    assert int(final.value) == workers * increments == successes
    assert conflicts > 0  # the test really raced
