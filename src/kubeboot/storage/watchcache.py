"""``CachedEtcdStore``: kube-apiserver's watch cache (the *cacher*) in front of etcd.

Why: on etcd every read and every watch was its own gRPC call or stream, and the Python gRPC
client's per-call cost, not etcd, was the largest part of a join's CPU (docs/performance.md).
This keeps one etcd watch on the whole key space, feeding an in-memory copy of every current
key plus a bounded, revision-ordered history of recent events, and serves from it:

* **watch**: from the cache when ``start_revision`` is inside the history (or ahead of the
  cache: events up to it are skipped as they arrive); older starts, and any watch while the
  cache is (re)building, go to etcd as before. Events are the very ``WatchEvent`` objects etcd's
  stream produced, fanned out by a :class:`~kubeboot.storage.watchhub.WatchHub` with the same
  bound per watcher (:class:`WatcherLaggingError`).
* **consistent get and range** (upstream's ``ConsistentListFromCache``): read etcd's current
  revision with a quorum read, then wait until the cache has applied every event up to it and
  answer from memory. Concurrent readers share one revision read (a read joins the next one to
  be *sent*, never one already in flight, so it cannot miss a write acknowledged before it
  started). The cache learns that it has caught up from its own events or, when nothing under
  the prefix changed, from an etcd progress notification — which etcd orders after the events
  only from 3.4.31 / 3.5.13 on (etcd-io/etcd#15220), the versions upstream requires too; with
  an older etcd, or when the cache does not catch up within :data:`CATCH_UP_WAIT`, the read goes
  to etcd.
* **get_hint**: the cached value as is, for read-modify-write loops whose compare-and-swap
  catches a stale value (upstream's ``cachedExistingObject`` in ``GuaranteedUpdate``).

Writes, ranges at a past revision, count, compaction and the revision queries go to etcd. If
the cache's own stream fails for good (compacted while disconnected, canceled), every watch it
serves ends with :class:`StoreUnavailable` (clients watch again from their last
resourceVersion, as when etcd drops a watch), reads go to etcd, and the cache re-lists.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from kubeboot.storage.etcd import EtcdStore
from kubeboot.storage.interface import (
    EventType,
    KeyValue,
    RangeResult,
    StoreError,
    StoreUnavailable,
    WatchEvent,
)
from kubeboot.storage.watchhub import WatchHub

__all__ = ["CATCH_UP_WAIT", "HISTORY_EVENTS", "CachedEtcdStore", "progress_is_ordered"]

log = logging.getLogger("kubeboot.storage")

HISTORY_EVENTS = 5_000
"""Events kept for watches that start in the past (trimmed back to this beyond twice this).
An event holds the value and the previous one (a CSR's pair ~6 KB), so 10,000 cost ~60 MB at
most; a watch from further back is its own etcd watch."""
CATCH_UP_WAIT = 1.0
"""Seconds a consistent read waits for the cache before it reads etcd instead."""
PROGRESS_GRACE = 0.05
"""Seconds a reader waits for the cache's own events before it asks etcd for progress (in a
storm the events nearly always arrive first; a request per waiting read cost ~5 % of the
samples, and at 10 ms a loaded loop still sent them for 1.5 %)."""
PROGRESS_RETRY = 0.2
"""Seconds between progress requests while a reader waits (one may be lost in a failover)."""
LIST_PAGE = 5000
"""Keys per page of the cache's initial list (all pages at one revision)."""
RELIST_PAUSE = 1.0
"""Seconds between attempts to rebuild the cache after its stream failed."""


def progress_is_ordered(version: str) -> bool:
    """Whether this etcd sends progress notifications only after the events they cover."""
    try:
        major, minor, patch = (int(p) for p in version.split("-")[0].split(".")[:3])
    except ValueError:
        return False
    if (major, minor) == (3, 4):
        return patch >= 31
    if (major, minor) == (3, 5):
        return patch >= 13
    return (major, minor) > (3, 5)


class CachedEtcdStore:
    """A :class:`~kubeboot.storage.interface.Store`: ``backend`` behind a watch cache."""

    def __init__(self, backend: EtcdStore, *, watch_queue_limit: int, ordered_progress: bool):
        self._backend = backend
        self._limit = watch_queue_limit
        self._ordered_progress = ordered_progress
        self._loop = asyncio.get_running_loop()
        self._hub = WatchHub()
        self._values: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted, for ranges
        self._history: list[WatchEvent] = []
        self._history_from = 0  # every event after this revision is in _history
        self._revision = 0  # the cache reflects etcd at this revision
        self._ready = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._progress_wanted = asyncio.Event()
        self._feed: asyncio.Task[None] | None = None
        self._failed: asyncio.Future[StoreError] | None = None
        self._runner: asyncio.Task[None] | None = None
        # Shared revision reads: the batch not yet sent, and whether one is in flight.
        self._next_read: asyncio.Future[int] | None = None
        self._read_in_flight = False
        # Counters (as upstream's apiserver_watch_cache_consistent_read_total): consistent
        # reads answered from memory / from etcd, and the revision reads they shared.
        self.reads_from_cache = 0
        self.reads_from_etcd = 0
        self.revision_reads = 0

    @property
    def ready(self) -> bool:
        """The cache follows etcd's stream (False while it is rebuilt)."""
        return self._ready

    @property
    def ordered_progress(self) -> bool:
        """This etcd orders progress notifications: consistent reads can use the cache."""
        return self._ordered_progress

    @classmethod
    async def open(cls, backend: EtcdStore, *, watch_queue_limit: int) -> CachedEtcdStore:
        """Build the cache (one list, one watch) before serving from it."""
        version = await backend.server_version()
        ordered = progress_is_ordered(version)
        if not ordered:
            log.info(
                "etcd %s sends progress notifications out of order (fixed in 3.4.31/3.5.13): "
                "consistent reads go to etcd, the watch cache serves watches only",
                version,
            )
        store = cls(backend, watch_queue_limit=watch_queue_limit, ordered_progress=ordered)
        await store._build()
        store._runner = asyncio.create_task(store._run())
        return store

    # -- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        if await self._consistent():
            self.reads_from_cache += 1
            return self._values.get(key)
        self.reads_from_etcd += 1
        return await self._backend.get(key)

    async def get_hint(self, key: str) -> KeyValue | None:
        if self._ready and key in self._values:
            return self._values[key]
        return await self._backend.get(key)

    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        limit: int = 0,
        revision: int | None = None,
    ) -> RangeResult:
        if revision is not None or not await self._consistent():
            self.reads_from_etcd += revision is None
            return await self._backend.range(
                prefix, start_key=start_key, limit=limit, revision=revision
            )
        self.reads_from_cache += 1
        lo = prefix if start_key is None or start_key < prefix else start_key
        i = bisect.bisect_left(self._keys, lo)
        kvs: list[KeyValue] = []
        keys, values = self._keys, self._values
        while i < len(keys) and keys[i].startswith(prefix):
            if limit > 0 and len(kvs) == limit:
                return RangeResult(kvs, self._revision, True)
            kvs.append(values[keys[i]])
            i += 1
        return RangeResult(kvs, self._revision, False)

    async def count(self, prefix: str) -> int:
        return await self._backend.count(prefix)

    async def current_revision(self) -> int:
        return await self._backend.current_revision()

    async def compacted_revision(self) -> int:
        return await self._backend.compacted_revision()

    # -- writes and compaction: etcd's ----------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        return await self._backend.create(key, value)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        return await self._backend.update(key, value, expected_mod_revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        return await self._backend.delete(key, expected_mod_revision)

    async def compact(self, revision: int) -> None:
        """Compact etcd, and forget the cache's history up to ``revision`` too, so a watch
        from a compacted revision fails as it would on etcd (a compaction made through
        another replica is not seen: those watches are served from this history, as
        kube-apiserver's cacher serves them)."""
        await self._backend.compact(revision)
        if revision > self._history_from:
            i = bisect.bisect_right(self._history, revision, key=_revision_of)
            del self._history[:i]
            self._history_from = revision

    # -- watch ----------------------------------------------------------------------------

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        if not self._ready or start_revision < self._history_from:
            async for ev in self._backend.watch(prefix, start_revision):
                yield ev
            return
        sub = self._hub.subscribe(prefix, self._limit)
        try:
            # Synchronously with the subscription, so no event falls between the two.
            i = bisect.bisect_right(self._history, start_revision, key=_revision_of)
            sub.push_many([ev for ev in self._history[i:] if ev.kv.key.startswith(prefix)])
            while True:
                ev = await sub.next()
                if ev.kv.mod_revision > start_revision:
                    yield ev
        finally:
            self._hub.unsubscribe(sub)

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._stop_feed(StoreUnavailable("etcd store was closed"))
        await self._backend.close()

    async def _build(self) -> None:
        """List every key at one revision, then follow etcd's stream from there."""
        first = await self._backend.range("", limit=LIST_PAGE)
        kvs, revision, more = list(first.kvs), first.revision, first.more
        while more:
            page = await self._backend.range(
                "", start_key=kvs[-1].key + "\x00", limit=LIST_PAGE, revision=revision
            )
            kvs.extend(page.kvs)
            more = page.more
        self._values = {kv.key: kv for kv in kvs}
        self._keys = sorted(self._values)
        self._history = []
        self._history_from = self._revision = revision
        self._failed = self._loop.create_future()
        self._feed = self._backend.feed(
            "",
            revision,
            self,
            on_progress=self._progressed,
            progress_wanted=self._progress_wanted,
        )
        self._ready = True

    async def _run(self) -> None:
        """Rebuild the cache whenever its stream fails for good."""
        while True:
            assert self._failed is not None
            error = await self._failed
            log.warning("watch cache stream ended (%s); rebuilding the cache", error)
            while True:
                await asyncio.sleep(RELIST_PAUSE)
                try:
                    await self._build()
                    break
                except StoreError as e:
                    log.warning("watch cache rebuild failed: %s", e)

    def _stop_feed(self, error: StoreError) -> None:
        self._ready = False
        if self._feed is not None:
            self._feed.cancel()
            self._feed = None
        self._hub.close(error)
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # the reader finds the cache not ready: etcd then
        self._waiters.clear()

    # -- the sink of the cache's stream (called by EtcdStore._pump, in revision order) ----

    def push_many(self, events: Sequence[WatchEvent]) -> bool:
        values, keys = self._values, self._keys
        for ev in events:
            key = ev.kv.key
            if ev.type is EventType.PUT:
                if key not in values:
                    bisect.insort(keys, key)
                values[key] = ev.kv
            elif values.pop(key, None) is not None:
                del keys[bisect.bisect_left(keys, key)]
            self._history.append(ev)
            self._hub.publish(ev)
        if len(self._history) > 2 * HISTORY_EVENTS:
            drop = len(self._history) - HISTORY_EVENTS
            self._history_from = self._history[drop - 1].kv.mod_revision
            del self._history[:drop]
        self._advance(events[-1].kv.mod_revision)
        return True

    def fail(self, error: StoreError) -> None:
        """The stream ended for good: stop serving from the cache at once, then rebuild."""
        if self._failed is not None and not self._failed.done():
            self._stop_feed(StoreUnavailable(f"the watch cache restarts: {error}"))
            self._failed.set_result(error)

    def _progressed(self, revision: int) -> None:
        self._advance(revision)
        if self._waiters:
            self._progress_wanted.set()  # some reader waits for a later revision still

    def _advance(self, revision: int) -> None:
        if revision <= self._revision:
            return
        self._revision = revision
        if self._waiters:
            still = []
            for wanted, waiter in self._waiters:
                if wanted <= revision:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    still.append((wanted, waiter))
            self._waiters = still

    # -- consistent reads -----------------------------------------------------------------

    async def _consistent(self) -> bool:
        """Wait until the cache holds every write acknowledged before this call.

        False when the read must go to etcd instead: the cache is rebuilding, this etcd's
        progress notifications are unordered, or the cache did not catch up in time.
        """
        if not (self._ready and self._ordered_progress):
            return False
        wanted = await self._shared_revision()
        if wanted <= self._revision:
            return self._ready
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((wanted, waiter))
        timers: list[asyncio.TimerHandle] = []

        def nudge() -> None:
            """No event brought the cache there yet: ask etcd for a progress notification."""
            if not waiter.done():
                self._progress_wanted.set()
                timers.append(self._loop.call_later(PROGRESS_RETRY, nudge))

        def give_up() -> None:
            if not waiter.done():
                waiter.set_result(None)

        timers.append(self._loop.call_later(PROGRESS_GRACE, nudge))
        timers.append(self._loop.call_later(CATCH_UP_WAIT, give_up))
        try:
            await waiter
        finally:
            for timer in timers:
                timer.cancel()
        return self._ready and wanted <= self._revision

    async def _shared_revision(self) -> int:
        """etcd's current revision (a quorum read), one read per batch of concurrent callers."""
        batch = self._next_read
        if batch is None:
            batch = self._next_read = self._loop.create_future()
            if not self._read_in_flight:
                self._send_read()
        return await asyncio.shield(batch)

    def _send_read(self) -> None:
        batch = self._next_read
        assert batch is not None
        self._next_read = None
        self._read_in_flight = True
        self.revision_reads += 1
        task = asyncio.ensure_future(self._backend.current_revision())

        def done(t: asyncio.Future[int]) -> None:
            self._read_in_flight = False
            if t.cancelled():
                batch.cancel()
            elif (e := t.exception()) is not None:
                batch.set_exception(e)
                # The readers queued behind a read that failed (etcd without quorum, after
                # the whole failover window) fail with it rather than wait that long again.
                if self._next_read is not None:
                    self._next_read.set_exception(e)
                    self._next_read = None
            else:
                batch.set_result(t.result())
            if self._next_read is not None:
                self._send_read()

        task.add_done_callback(done)


def _revision_of(ev: WatchEvent) -> int:
    return ev.kv.mod_revision
