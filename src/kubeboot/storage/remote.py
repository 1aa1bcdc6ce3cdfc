"""``RemoteStore``: a worker process's ``Store``, served by the primary over a Unix socket.

The semantics are the primary's store's, unchanged (revisions, CAS, gapless watches,
compaction errors): every call is forwarded as one frame (:mod:`kubeboot.storage.wire`) and
its outcome — value or the same ``StoreError`` — comes back. Each watch is buffered here in a
:class:`~kubeboot.storage.watchhub.Subscription` with the usual bound, so a slow consumer in
the worker is ended as lagging exactly as it would be in one process.

If the link drops (the primary exited or was killed), pending calls and watches fail with
``StoreUnavailable`` and ``on_lost`` runs: a worker must not go on serving from caches that
no longer follow the store, so the server stops it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Self, cast

from kubeboot.storage.interface import KeyValue, RangeResult, StoreUnavailable, WatchEvent
from kubeboot.storage.watchhub import Subscription
from kubeboot.storage.wire import (
    FrameReader,
    Outbox,
    Wire,
    decode_error,
    decode_event,
    decode_kv,
)

__all__ = ["RemoteStore"]


class _Link(asyncio.Protocol):
    def __init__(self, on_lost: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self._outbox: Outbox | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.watches: dict[int, Subscription] = {}
        self._reader = FrameReader()
        self._on_lost = on_lost
        self.lost: StoreUnavailable | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self._outbox = Outbox(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.lost = StoreUnavailable("the link to the primary server process is gone")
        for future in self.pending.values():
            if not future.done():
                future.set_exception(self.lost)
        self.pending.clear()
        for sub in self.watches.values():
            sub.fail(self.lost)
        self.watches.clear()
        self._on_lost()

    def send(self, message: Wire) -> None:
        if self.transport is None or self._outbox is None:
            raise self.lost or StoreUnavailable("not connected to the primary server process")
        self._outbox.put(message)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except ValueError:
            assert self.transport is not None
            self.transport.abort()  # connection_lost fails everything that waits
            return
        for ident, kind, *args in messages:
            if kind == "event":
                sub = self.watches.get(ident)
                if sub is not None and not sub.push(decode_event(args[0])):
                    self.end_watch(ident)  # the subscription failed itself as lagging
                continue
            future = self.pending.pop(ident, None)
            if future is not None:
                if kind == "ok":
                    future.set_result(args[0])
                else:
                    future.set_exception(decode_error(tuple(args)))
                continue
            sub = self.watches.pop(ident, None)
            if sub is not None and kind == "err":
                sub.fail(decode_error(tuple(args)))

    def end_watch(self, ident: int) -> None:
        if self.watches.pop(ident, None) is not None and self.transport is not None:
            self.send((ident, "cancel"))


class RemoteStore:
    """A :class:`~kubeboot.storage.interface.Store`; open with :meth:`connect`."""

    def __init__(self, link: _Link, watch_queue_limit: int) -> None:
        self._link = link
        self._ids = itertools.count(1)
        self._watch_queue_limit = watch_queue_limit

    @classmethod
    async def connect(
        cls, path: Path, *, on_lost: Callable[[], None], watch_queue_limit: int = 1000
    ) -> Self:
        loop = asyncio.get_running_loop()
        _, link = await loop.create_unix_connection(lambda: _Link(on_lost), str(path))
        return cls(link, watch_queue_limit)

    def notify(self, kind: str, *args: Any) -> None:
        """Tell the primary something that needs no answer (an audit line, readiness).

        Dropped if the link is gone: the worker is stopping then, and has no one to tell.
        """
        if self._link.transport is not None:
            self._link.send((0, kind, *args))

    async def call(self, kind: str, *args: Any) -> Any:
        """One of the primary's extra calls (not a store call), e.g. ``metrics``."""
        return await self._call(kind, *args)

    async def _call(self, kind: str, *args: Any) -> Any:
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._link.send((ident, kind, *args))
        self._link.pending[ident] = future
        try:
            return await future
        finally:
            # A caller that gave up (a cancelled request) leaves no entry behind; the
            # primary's reply for it is then dropped on arrival.
            self._link.pending.pop(ident, None)

    async def get(self, key: str) -> KeyValue | None:
        wire = await self._call("get", key)
        return None if wire is None else decode_kv(wire)

    async def get_hint(self, key: str) -> KeyValue | None:
        wire = await self._call("get_hint", key)
        return None if wire is None else decode_kv(wire)

    async def create(self, key: str, value: bytes) -> KeyValue:
        return decode_kv(await self._call("create", key, value))

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        return decode_kv(await self._call("update", key, value, expected_mod_revision))

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        return decode_kv(await self._call("delete", key, expected_mod_revision))

    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        limit: int = 0,
        revision: int | None = None,
    ) -> RangeResult:
        kvs, rev, more = await self._call("range", prefix, start_key, limit, revision)
        return RangeResult([decode_kv(kv) for kv in kvs], rev, more)

    async def count(self, prefix: str) -> int:
        result: int = await self._call("count", prefix)
        return result

    async def current_revision(self) -> int:
        result: int = await self._call("current_revision")
        return result

    async def compacted_revision(self) -> int:
        result: int = await self._call("compacted_revision")
        return result

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        link = self._link
        ident = next(self._ids)
        sub = Subscription(prefix, self._watch_queue_limit)
        link.send((ident, "watch", prefix, start_revision))
        link.watches[ident] = sub
        try:
            while True:
                yield await sub.next()
        finally:
            link.end_watch(ident)

    async def compact(self, revision: int) -> None:
        await self._call("compact", revision)

    async def close(self) -> None:
        if self._link.transport is not None:
            self._link.transport.close()
