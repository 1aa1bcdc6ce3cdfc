"""The ``Store`` protocol: what the API layer may assume of any backend.

The semantics are etcd v3's, so the embedded SQLite backend and a real etcd cluster are
interchangeable (design rule 2):

* The store has one global, strictly increasing **revision**. Every successful write
  (create, update, delete) increments it by exactly one and stamps the key with it
  (``mod_revision``). Reads return the revision they observed.
* ``create`` fails with :class:`KeyExistsError` if the key exists. ``update`` and ``delete``
  are compare-and-swap on the key's ``mod_revision``: they fail with :class:`RevisionMismatch`
  (carrying the current value) if it moved, or :class:`KeyNotFoundError` if the key is gone.
* ``range`` lists keys under a prefix in byte order, optionally at a past ``revision``
  (consistent pagination) and from a start key, up to ``limit`` keys, and says whether more
  remain. A revision older than the compaction point raises :class:`CompactedError`.
* ``watch`` yields every change under a prefix with revision > ``start_revision``, in revision
  order, with no gaps and no duplicates, then live changes, until the caller stops iterating.
  Starting at or below the compacted revision raises :class:`CompactedError` (HTTP 410).
  A watcher that falls too far behind is ended with :class:`WatcherLaggingError` rather than
  buffering without bound (design rule 7); the client re-lists, as with a compacted watch.
* ``get_hint`` may answer from a cache that lags behind (never with None for a key that
  exists): a read-modify-write reads with it, and its compare-and-swap catches a stale value.
* ``compact(revision)`` discards history at or below ``revision``; current values stay.

Keys are ``str`` paths without the backend's prefix (``/registry`` for etcd is the backend's
business). Values are the JSON bytes that are served, minus ``metadata.resourceVersion``,
which the API layer sets from ``mod_revision`` on every read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

__all__ = [
    "CompactedError",
    "EventType",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "RangeResult",
    "RevisionMismatch",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WatchEvent",
    "WatcherLaggingError",
]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For PUT, ``kv`` is the new value and ``prev`` the old one (None on create).

    For DELETE, ``kv.value`` is the last value before deletion and ``kv.mod_revision`` is the
    revision of the delete itself (so a DELETED event carries a fresh resourceVersion, as
    kube-apiserver's does).
    """

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int  # the store revision this snapshot was read at
    more: bool  # True if keys after the last returned one remain under the prefix


class StoreError(Exception):
    """Base of storage errors; the API layer translates each into a StatusError once."""


class KeyExistsError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key} already exists")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key} not found")
        self.key = key


class RevisionMismatch(StoreError):
    """CAS failure: ``current`` is the value now stored (its mod_revision moved)."""

    def __init__(self, key: str, current: KeyValue) -> None:
        super().__init__(f"key {key} was modified at revision {current.mod_revision}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted; the oldest available revision is "
            f"{compacted + 1}"
        )
        self.requested = requested
        self.compacted = compacted


class WatcherLaggingError(StoreError):
    """The watcher did not keep up; it must re-list and watch again."""


class StoreUnavailable(StoreError):
    """The backend cannot serve now (etcd without quorum, database closed); retry later."""


class Store(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def get_hint(self, key: str) -> KeyValue | None:
        """A recent value of ``key``, possibly stale: the read of a read-modify-write whose
        compare-and-swap catches staleness (upstream's ``cachedExistingObject``). Backends
        without a cache answer as :meth:`get`; None only if the key is truly absent."""
        ...

    async def create(self, key: str, value: bytes) -> KeyValue: ...

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue: ...

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        """Delete; returns the deleted value with ``mod_revision`` = the delete's revision."""
        ...

    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        limit: int = 0,
        revision: int | None = None,
    ) -> RangeResult:
        """Keys under ``prefix`` that are >= ``start_key``; ``limit`` 0 means no limit."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def current_revision(self) -> int: ...

    async def compacted_revision(self) -> int: ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Changes under ``prefix`` with revision > ``start_revision``."""
        ...

    async def compact(self, revision: int) -> None: ...

    async def close(self) -> None: ...
