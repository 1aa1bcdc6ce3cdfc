"""The frames a server's worker processes and its primary exchange over one Unix socket.

Why a wire of our own: the workers (``kubeboot server --workers N``) need the primary's
``Store`` — with its etcd semantics, revisions and gapless watches — at the cost of a local
function call, not of gRPC or HTTP. A frame is a 4-byte big-endian length and a ``marshal``
-encoded tuple of plain values (ints, strs, bytes, None, tuples), encoded and decoded in C.

``marshal`` is not safe for untrusted input, so the socket is a trust boundary of the same
kind as the database file: it lives in a 0700 directory inside the 0700 data directory, and
the primary also refuses peers of another user (``SO_PEERCRED``). Both ends are the same
interpreter (the primary starts its workers with ``sys.executable``), so the format matches.

Messages (``id`` pairs a reply with its request, or names a watch):

* worker → primary: ``(id, op, *args)`` for the :class:`~kubeboot.storage.interface.Store`
  methods; ``(id, "watch", prefix, start_revision)`` and ``(id, "cancel")``;
  ``(0, "audit", line)``, ``(0, "ready", index)`` and ``(0, "metrics", index, snapshot)``
  expect no reply; ``(id, "merged_metrics", index, snapshot)`` asks for the merged ``/metrics``;
* primary → worker: ``(id, "ok", result)``, ``(id, "err", kind, *args)``, and for a watch
  ``(id, "event", event)`` until ``(id, "err", ...)``.
"""

from __future__ import annotations

import asyncio
import marshal
import struct
from typing import Any

from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatch,
    StoreError,
    StoreUnavailable,
    WatcherLaggingError,
    WatchEvent,
)

__all__ = [
    "FrameReader",
    "Outbox",
    "decode_error",
    "decode_event",
    "decode_kv",
    "encode_error",
    "encode_event",
    "encode_kv",
    "frame",
]

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
"""Far above any object the API accepts (3 MiB bodies) or a page of them: a bigger length
means the stream is corrupt, and the connection is dropped rather than read on."""

Wire = tuple[Any, ...]
KvWire = tuple[str, bytes, int, int]


def frame(message: Wire) -> bytes:
    body = marshal.dumps(message)
    return _LENGTH.pack(len(body)) + body


class Outbox:
    """Frames queued during one turn of the event loop, written with one system call.

    Why: under a storm a worker sends hundreds of small calls per turn, and the primary as
    many replies and watch events; one ``write`` each made the link's ``send`` and the
    primary's replies together ~5 % of all server samples, nearly all of it in the syscall.
    """

    __slots__ = ("_frames", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._frames: list[bytes] = []

    def put(self, message: Wire) -> None:
        if not self._frames:
            self._loop.call_soon(self._flush)
        self._frames.append(frame(message))

    def _flush(self) -> None:
        frames, self._frames = self._frames, []
        if not self._transport.is_closing():
            self._transport.write(b"".join(frames))


class FrameReader:
    """Cuts a byte stream into messages; fed by ``Protocol.data_received``."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Wire]:
        """The messages completed by ``data``; raises ValueError on a corrupt stream."""
        buf = self._buffer
        buf += data
        messages: list[Wire] = []
        offset = 0
        while len(buf) - offset >= 4:
            (size,) = _LENGTH.unpack_from(buf, offset)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME}")
            end = offset + 4 + size
            if end > len(buf):
                break
            message = marshal.loads(bytes(buf[offset + 4 : end]))  # noqa: S302 - see above
            if not isinstance(message, tuple) or len(message) < 2:
                raise ValueError("a frame is not a (id, kind, ...) tuple")
            messages.append(message)
            offset = end
        del buf[:offset]
        return messages


def encode_kv(kv: KeyValue) -> KvWire:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision)


def decode_kv(wire: KvWire) -> KeyValue:
    return KeyValue(wire[0], wire[1], wire[2], wire[3])


def encode_event(event: WatchEvent) -> Wire:
    prev = None if event.prev is None else encode_kv(event.prev)
    return (event.type is EventType.PUT, encode_kv(event.kv), prev)


def decode_event(wire: Wire) -> WatchEvent:
    put, kv, prev = wire
    return WatchEvent(
        EventType.PUT if put else EventType.DELETE,
        decode_kv(kv),
        None if prev is None else decode_kv(prev),
    )


def encode_error(exc: BaseException) -> Wire:
    """``(kind, *args)`` from which :func:`decode_error` rebuilds an equal exception."""
    if isinstance(exc, KeyExistsError):
        return ("exists", exc.key)
    if isinstance(exc, KeyNotFoundError):
        return ("notfound", exc.key)
    if isinstance(exc, RevisionMismatch):
        return ("mismatch", exc.key, encode_kv(exc.current))
    if isinstance(exc, CompactedError):
        return ("compacted", exc.requested, exc.compacted)
    if isinstance(exc, WatcherLaggingError):
        return ("lagging", str(exc))
    if isinstance(exc, StoreUnavailable):
        return ("unavailable", str(exc))
    if isinstance(exc, StoreError):
        return ("store", str(exc))
    return ("internal", f"{type(exc).__name__}: {exc}")


def decode_error(wire: Wire) -> StoreError:
    kind, *args = wire
    if kind == "exists":
        return KeyExistsError(args[0])
    if kind == "notfound":
        return KeyNotFoundError(args[0])
    if kind == "mismatch":
        return RevisionMismatch(args[0], decode_kv(args[1]))
    if kind == "compacted":
        return CompactedError(args[0], args[1])
    if kind == "lagging":
        return WatcherLaggingError(args[0])
    if kind in ("unavailable", "closed"):
        return StoreUnavailable(args[0])
    return StoreError(f"the primary process failed: {args[0]}")
