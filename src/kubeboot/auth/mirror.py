"""An in-memory mirror of the objects under one store prefix, kept current by list + watch.

This is kubeboot's informer for the authentication and authorization caches: the bootstrap
token Secrets, the ServiceAccounts and their token Secrets, and the four RBAC collections each
have one :class:`StoreMirror` (optionally keeping only the objects a predicate accepts, such
as Secrets of one type), so a request reads a dict and never waits on storage (issue 3: "a
cache kept current by a watch, not a storage read per request").

Invariants:

* :meth:`StoreMirror.run` lists the prefix (paginated, at one revision), swaps the result in
  whole, then watches from that revision. ``CompactedError`` or ``WatcherLaggingError`` on the
  watch, or any other ``StoreError``, start over with a fresh list after a short delay; the
  mirror is therefore eventually consistent, as upstream's informer-backed caches are.
* ``generation`` increases on every change, so indexes derived from the mirror (RBAC's subject
  index) can rebuild lazily when, and only when, something changed.
* A value that is not a JSON object is logged (by key only) and treated as absent: the cache
  fails closed and never holds anything it could not parse.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.storage.interface import (
    EventType,
    KeyValue,
    Store,
    StoreError,
    WatchEvent,
)

__all__ = ["Keep", "StoreMirror", "apply_event", "resource_info"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def resource_info(group: str, version: str, plural: str) -> ResourceInfo:
    """A row of the resource table that this package cannot work without."""
    info = find_resource(group, version, plural)
    if info is None:
        raise LookupError(f"resource {plural}.{group}/{version} is missing from the table")
    return info


def _decode(kv: KeyValue) -> Obj | None:
    try:
        obj = json.loads(kv.value)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        log.warning("ignoring undecodable object at %s (revision %d)", kv.key, kv.mod_revision)
        return None
    return obj


Keep = Callable[[Obj], bool]
"""Which objects a mirror holds (others under its prefix are treated as absent)."""


def apply_event(objects: dict[str, Obj], event: WatchEvent, keep: Keep | None = None) -> None:
    """Apply one watch event to a key → object map (the pure half of the mirror)."""
    if event.type is EventType.DELETE:
        objects.pop(event.kv.key, None)
        return
    obj = _decode(event.kv)
    if obj is None or (keep is not None and not keep(obj)):
        objects.pop(event.kv.key, None)
    else:
        objects[event.kv.key] = obj


class StoreMirror:
    """The objects under ``prefix``, by store key; read with :meth:`get` and :meth:`values`."""

    def __init__(
        self,
        store: Store,
        prefix: str,
        *,
        keep: Keep | None = None,
        page_size: int = 500,
        retry_delay: float = 1.0,
    ) -> None:
        self._store = store
        self.prefix = prefix
        self._keep = keep
        self._page_size = page_size
        self._retry_delay = retry_delay
        self._objects: dict[str, Obj] = {}
        self.generation = 0
        self.synced = asyncio.Event()

    def get(self, key: str) -> Obj | None:
        return self._objects.get(key)

    def values(self) -> Iterator[Obj]:
        return iter(self._objects.values())

    def __len__(self) -> int:
        return len(self._objects)

    async def run(self) -> None:
        """List then watch until cancelled, re-listing whenever the watch cannot continue."""
        while True:
            try:
                revision = await self._list()
                self.synced.set()
                async for event in self._store.watch(self.prefix, revision):
                    apply_event(self._objects, event, self._keep)
                    self.generation += 1
            except StoreError as e:
                log.info("re-listing %s after %s: %s", self.prefix, type(e).__name__, e)
            await asyncio.sleep(self._retry_delay)

    async def _list(self) -> int:
        objects: dict[str, Obj] = {}
        start: str | None = None
        revision: int | None = None
        while True:
            page = await self._store.range(
                self.prefix, start_key=start, limit=self._page_size, revision=revision
            )
            revision = page.revision
            for kv in page.kvs:
                obj = _decode(kv)
                if obj is not None and (self._keep is None or self._keep(obj)):
                    objects[kv.key] = obj
            if not page.more or not page.kvs:
                break
            start = page.kvs[-1].key + "\x00"
        self._objects = objects
        self.generation += 1
        return revision
