"""The primary's end of the worker link: serves its ``Store`` on a Unix socket.

Why: with ``kubeboot server --workers N`` the HTTPS traffic (TLS handshakes, HTTP, auth,
REST) runs in N worker processes, so a join storm uses every core, while storage stays in the
one process that owns it — SQLite has one writer and one watch hub, and they cannot be shared
between processes. Each worker holds one connection; :mod:`kubeboot.storage.remote` is its
client and :mod:`kubeboot.storage.wire` the frames.

Per message the cost is one ``marshal`` decode and, for a store call, one task; replies go
back as soon as the call finishes, in any order (ids pair them). A watch is a task that
forwards events from the store's own bounded watch: a worker that stops reading makes the
socket's buffer fill, the forwarder waits for it to drain, the store's watch queue fills, and
the store ends that watch as lagging — so a stuck worker never makes the primary buffer
without bound. Messages that are not store calls (audit lines, readiness) go to ``on_notice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

from kubeboot.storage.interface import Store
from kubeboot.storage.wire import (
    FrameReader,
    Outbox,
    Wire,
    encode_error,
    encode_event,
    encode_kv,
)

__all__ = ["StoreServer"]

log = logging.getLogger("kubeboot.storage.remote")

Notice = Callable[[str, tuple[Any, ...]], None]
# Calls a worker makes that are not store calls (the merged /metrics), by name.
ExtraCall = Callable[..., Awaitable[Any]]


class _Connection(asyncio.Protocol):
    def __init__(
        self,
        store: Store,
        on_notice: Notice,
        live: set[_Connection],
        extra_calls: Mapping[str, ExtraCall],
    ) -> None:
        self._store = store
        self._extra_calls = extra_calls
        self._on_notice = on_notice
        self._live = live
        self._reader = FrameReader()
        self._transport: asyncio.Transport | None = None
        self._outbox: Outbox | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        transport = cast(asyncio.Transport, base)
        sock = transport.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            log.error("refused a worker link from uid %d (the server's is %d)", uid, os.getuid())
            transport.abort()
            return
        self._transport = transport
        self._outbox = Outbox(transport)
        self._live.add(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self)
        self._transport = None
        for task in (*self._tasks.values(), *self._calls):
            task.cancel()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except ValueError as exc:
            log.error("dropping a worker link with a corrupt stream: %s", exc)
            if self._transport is not None:
                self._transport.abort()
            return
        for message in messages:
            self._dispatch(message)

    def _send(self, message: Wire) -> None:
        if self._transport is not None and self._outbox is not None:
            self._outbox.put(message)

    def _dispatch(self, message: Wire) -> None:
        ident, kind, *args = message
        if kind == "watch":
            self._tasks[ident] = asyncio.create_task(self._forward(ident, args[0], args[1]))
        elif kind == "cancel":
            task = self._tasks.pop(ident, None)
            if task is not None:
                task.cancel()
        elif kind in ("audit", "ready", "metrics"):
            self._on_notice(kind, tuple(args))
        else:
            task = asyncio.create_task(self._call(ident, kind, args))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call(self, ident: int, kind: str, args: list[Any]) -> None:
        store = self._store
        try:
            result: Any
            if kind in ("get", "get_hint"):
                kv = await (store.get if kind == "get" else store.get_hint)(args[0])
                result = None if kv is None else encode_kv(kv)
            elif kind == "create":
                result = encode_kv(await store.create(args[0], args[1]))
            elif kind == "update":
                result = encode_kv(await store.update(args[0], args[1], args[2]))
            elif kind == "delete":
                result = encode_kv(await store.delete(args[0], args[1]))
            elif kind == "range":
                r = await store.range(args[0], start_key=args[1], limit=args[2], revision=args[3])
                result = (tuple(encode_kv(kv) for kv in r.kvs), r.revision, r.more)
            elif kind == "count":
                result = await store.count(args[0])
            elif kind == "current_revision":
                result = await store.current_revision()
            elif kind == "compacted_revision":
                result = await store.compacted_revision()
            elif kind == "compact":
                await store.compact(args[0])
                result = None
            elif kind in self._extra_calls:
                result = await self._extra_calls[kind](*args)
            else:
                raise ValueError(f"unknown call {kind!r}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure goes back to the caller, as a local one would
            self._send((ident, "err", *encode_error(exc)))
            return
        self._send((ident, "ok", result))

    async def _forward(self, ident: int, prefix: str, start: int) -> None:
        try:
            async for event in self._store.watch(prefix, start):
                if not self._writable.is_set():
                    await self._writable.wait()
                self._send((ident, "event", encode_event(event)))
            self._send((ident, "err", "unavailable", "the primary's store closed"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._send((ident, "err", *encode_error(exc)))
        finally:
            self._tasks.pop(ident, None)


_SUN_PATH_MAX = 107
"""Linux's ``sockaddr_un.sun_path`` holds 108 bytes including the terminating NUL."""


class StoreServer:
    """Listens on ``path`` (created 0600 in a directory only this user can enter).

    A path too long for a Unix socket (a deep ``--data-dir``) is replaced by one in a fresh
    private temporary directory, removed again on :meth:`close`.
    """

    def __init__(
        self,
        store: Store,
        path: Path,
        on_notice: Notice,
        extra_calls: Mapping[str, ExtraCall] | None = None,
    ) -> None:
        self._store = store
        self._extra_calls = dict(extra_calls or {})
        self._temp_dir: Path | None = None
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="kubeboot-"))
            path = self._temp_dir / path.name
        self.path = path
        self._on_notice = on_notice
        self._server: asyncio.AbstractServer | None = None
        self._live: set[_Connection] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a primary that was killed
        loop = asyncio.get_running_loop()
        old_umask = os.umask(0o177)
        try:
            self._server = await loop.create_unix_server(self._connect, str(self.path))
        finally:
            os.umask(old_umask)

    def _connect(self) -> _Connection:
        return _Connection(self._store, self._on_notice, self._live, self._extra_calls)

    async def close(self) -> None:
        """Stop listening and drop every link still open (its worker then stops)."""
        for conn in list(self._live):
            conn.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._temp_dir is not None:
            with contextlib.suppress(OSError):
                self._temp_dir.rmdir()
