"""Copy every object from one store to another: ``kubeboot storage migrate`` (SQLite → etcd).

Owns the copy and its proof. Invariants:

* The source is read at **one revision** (the first page's), so the copy is a consistent
  snapshot even if something still writes to the source; the caller is told to stop the
  server first, because writes after that revision are not copied.
* The target must hold no key under its prefix unless ``force`` is given; with ``force`` a
  key that exists there is overwritten (compare-and-swap on what was read), keys that exist
  only in the target are left alone.
* Values are copied byte for byte (they are the served JSON minus ``resourceVersion``).
  Revisions cannot be copied: every object gets the target's next revision as its new
  ``resourceVersion``, so clients must re-list after the switch (watches from old
  resourceVersions make no sense on the new store).
* Afterwards every source key is read back from the target and compared; any missing or
  different value fails the migration with the first few keys named.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kubeboot.storage.interface import (
    KeyExistsError,
    KeyValue,
    RevisionMismatch,
    Store,
)

__all__ = ["KEYSPACE", "MigrationError", "MigrationReport", "migrate_store"]

KEYSPACE = "/"
"""Every API object's key starts with ``/<group>/<plural>/``."""

PAGE_SIZE = 500
CONCURRENCY = 32
"""Writes in flight at once: enough to fill etcd's group commit, few enough to stay polite."""

Progress = Callable[[str, int, int], None]
"""``(phase, done, total)``, phase ``copy`` or ``verify``; called after each page."""


class MigrationError(Exception):
    """The migration did not (or must not) happen; the message says what to do."""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    keys: int  # copied from the source
    overwritten: int  # of those, keys that already existed in the target (force only)
    source_revision: int  # the snapshot that was copied
    target_revision: int  # the target's revision after the copy


async def _pages(store: Store, revision: int | None) -> AsyncIterator[tuple[int, list[KeyValue]]]:
    start: str | None = None
    while True:
        page = await store.range(KEYSPACE, start_key=start, limit=PAGE_SIZE, revision=revision)
        revision = page.revision
        yield revision, page.kvs
        if not page.more or not page.kvs:
            return
        start = page.kvs[-1].key + "\x00"


async def _put(target: Store, kv: KeyValue, force: bool) -> bool:
    """Write one key; True if it overwrote an existing one."""
    try:
        await target.create(kv.key, kv.value)
        return False
    except KeyExistsError:
        if not force:
            raise MigrationError(
                f"{kv.key} appeared in the target during the migration; something else is "
                "writing to it (stop every server using the target) or run again with --force"
            ) from None
    while True:
        current = await target.get(kv.key)
        if current is None:
            try:
                await target.create(kv.key, kv.value)
            except KeyExistsError:
                continue
            return True
        if current.value == kv.value:
            return True
        try:
            await target.update(kv.key, kv.value, current.mod_revision)
        except RevisionMismatch:
            continue
        return True


async def migrate_store(
    source: Store,
    target: Store,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy every key of ``source`` into ``target``, then verify; see the module docstring."""
    existing = await target.count(KEYSPACE)
    if existing and not force:
        raise MigrationError(
            f"the target already holds {existing} keys under its prefix; refusing to mix two "
            "installations. Use an empty etcd (or another --etcd-prefix), or pass --force to "
            "overwrite the keys that both hold"
        )
    total = await source.count(KEYSPACE)
    report = progress or (lambda _phase, _done, _total: None)
    copied = overwritten = 0
    snapshot = 0
    limit = asyncio.Semaphore(CONCURRENCY)

    async def put(kv: KeyValue) -> bool:
        async with limit:
            return await _put(target, kv, force)

    async for revision, kvs in _pages(source, None):
        snapshot = revision
        results = await asyncio.gather(*(put(kv) for kv in kvs))
        copied += len(kvs)
        overwritten += sum(results)
        report("copy", copied, max(total, copied))
    await _verify(source, target, snapshot, copied, report)
    return MigrationReport(copied, overwritten, snapshot, await target.current_revision())


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


async def _verify(
    source: Store, target: Store, snapshot: int, expected: int, report: Progress
) -> None:
    in_target: dict[str, bytes] = {}
    async for _rev, kvs in _pages(target, None):
        in_target.update((kv.key, _digest(kv.value)) for kv in kvs)
    missing: list[str] = []
    different: list[str] = []
    checked = 0
    async for _rev, kvs in _pages(source, snapshot):
        for kv in kvs:
            found = in_target.get(kv.key)
            if found is None:
                missing.append(kv.key)
            elif found != _digest(kv.value):
                different.append(kv.key)
        checked += len(kvs)
        report("verify", checked, expected)
    if checked != expected:
        raise MigrationError(
            f"verification read {checked} keys from the source but {expected} were copied"
        )
    if missing or different:
        raise MigrationError(
            f"verification failed: {len(missing)} keys missing from the target "
            f"(e.g. {', '.join(missing[:3]) or '-'}), {len(different)} with different values "
            f"(e.g. {', '.join(different[:3]) or '-'})"
        )
