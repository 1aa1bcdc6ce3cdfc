"""The SQLite schema and the synchronous transactions of the SQLite backend.

Owns: the on-disk layout and every SQL statement. Each public function is one whole
transaction (or one statement) on a ``sqlite3.Connection`` and does no threading; the async
shell in :mod:`kubeboot.storage.sqlite` decides which thread runs it.

Layout (an MVCC log like kine's, plus an index of current keys)::

    log(rev PK, key, deleted, create_rev, prev_rev, value)   one row per write, ever
    kv(key PK, create_rev, mod_rev)                          current keys -> their log row
    meta(name PK, value)                                     'revision', 'compacted'

Invariants:

* Every write is exactly one ``log`` row whose ``rev`` is the new store revision. A value is
  stored once, in the row that wrote it; ``kv.mod_rev`` and a later row's ``prev_rev`` point to
  it. A DELETE row has ``value`` NULL and ``prev_rev`` = the deleted version.
* The state at revision R (R >= compacted) of key k is: ``kv`` if ``kv.mod_rev <= R``; else the
  version that k's first write after R replaced (its ``prev_rev``; NULL = absent at R).
* ``compact(C)`` deletes rows <= C except each key's latest non-DELETE row <= C: exactly the rows
  that can still be a current value or the ``prev`` of a row > C. So every read at R >= C and
  every replay of events > C stays answerable, and the compacted revision is persisted first.
* Keys are BLOBs of UTF-8, so ``<``/``>=`` compare bytes as etcd does and prefix bounds from
  :func:`~kubeboot.storage.prefix.prefix_end` are exact (``/a/`` never matches ``/ab/``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from enum import Enum

from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    RevisionMismatch,
    StoreError,
    WatchEvent,
)
from kubeboot.storage.prefix import prefix_end

__all__ = [
    "WriteKind",
    "WriteOp",
    "apply_writes",
    "compact_chunk",
    "configure",
    "init_schema",
    "mark_compacted",
    "read_count",
    "read_get",
    "read_history",
    "read_range",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    deleted INTEGER NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev INTEGER,
    value BLOB
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compacted', 0);
"""

_SELECT_CURRENT = (
    "SELECT kv.create_rev, kv.mod_rev, log.value FROM kv JOIN log ON log.rev = kv.mod_rev "
    "WHERE kv.key = ?"
)
_INSERT_LOG = (
    "INSERT INTO log (rev, key, deleted, create_rev, prev_rev, value) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_KV = "INSERT INTO kv (key, create_rev, mod_rev) VALUES (?, ?, ?)"
_UPDATE_KV = "UPDATE kv SET mod_rev = ? WHERE key = ?"
_DELETE_KV = "DELETE FROM kv WHERE key = ?"
_RANGE_CURRENT = (
    "SELECT kv.key, kv.create_rev, kv.mod_rev, log.value FROM kv"
    " JOIN log ON log.rev = kv.mod_rev WHERE kv.key >= ? AND kv.key < ? ORDER BY kv.key LIMIT ?"
)
# State at R = unchanged current keys + what each key's first write after R replaced.
_RANGE_PAST = (
    "SELECT key, create_rev, mod_rev, value FROM ("
    " SELECT kv.key AS key, kv.create_rev AS create_rev, kv.mod_rev AS mod_rev,"
    "  log.value AS value FROM kv JOIN log ON log.rev = kv.mod_rev"
    "  WHERE kv.key >= ? AND kv.key < ? AND kv.mod_rev <= ?"
    " UNION ALL"
    " SELECT p.key, p.create_rev, p.rev, p.value FROM"
    "  (SELECT MIN(rev) AS rev FROM log WHERE key >= ? AND key < ? AND rev > ? GROUP BY key) AS f"
    "  JOIN log AS n ON n.rev = f.rev JOIN log AS p ON p.rev = n.prev_rev"
    ") ORDER BY key LIMIT ?"
)
_COUNT = "SELECT COUNT(*) FROM kv WHERE key >= ? AND key < ?"
_HISTORY = (
    "SELECT n.rev, n.key, n.deleted, n.create_rev, n.value, p.rev, p.create_rev, p.value"
    " FROM log AS n LEFT JOIN log AS p ON p.rev = n.prev_rev"
    " WHERE n.rev > ? AND n.key >= ? AND n.key < ? ORDER BY n.rev LIMIT ?"
)
_SELECT_META = "SELECT value FROM meta WHERE name = ?"
_UPDATE_META = "UPDATE meta SET value = ? WHERE name = ?"


class WriteKind(Enum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3


WriteOp = tuple[WriteKind, str, bytes, int | None]
"""(kind, key, value, expected mod revision). ``value`` is ignored for DELETE."""


def configure(conn: sqlite3.Connection, *, writer: bool) -> None:
    """Pragmas: WAL + ``synchronous=FULL`` so an acknowledged commit survives power loss."""
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA cache_size = -32768")  # 32 MiB per connection
    if writer:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"SQLite refused WAL mode (got {mode!r}); is the file on NFS?")
    conn.execute("PRAGMA synchronous = FULL")


def init_schema(conn: sqlite3.Connection) -> tuple[int, int]:
    """Create tables if missing; return the persisted (revision, compacted revision)."""
    conn.executescript(_SCHEMA)
    return _meta(conn, "revision"), _meta(conn, "compacted")


def apply_writes(
    conn: sqlite3.Connection, revision: int, ops: Sequence[WriteOp]
) -> tuple[int, list[WatchEvent | StoreError]]:
    """Apply ``ops`` in order in ONE transaction (one fsync): group commit.

    Each op gets its own revision and its own outcome; a failed precondition is returned as the
    op's result and does not affect the others. Returns the new store revision. An SQLite error
    rolls the whole transaction back and propagates (nothing was acknowledged).
    """
    results: list[WatchEvent | StoreError] = []
    execute = conn.execute
    execute("BEGIN IMMEDIATE")
    try:
        for kind, key, value, expected in ops:
            try:
                kb = key.encode()
            except UnicodeEncodeError:
                results.append(StoreError(f"key {key!r} is not encodable as UTF-8"))
                continue
            row = execute(_SELECT_CURRENT, (kb,)).fetchone()
            if kind is WriteKind.CREATE:
                if row is not None:
                    results.append(KeyExistsError(key))
                    continue
                revision += 1
                execute(_INSERT_LOG, (revision, kb, 0, revision, None, value))
                execute(_INSERT_KV, (kb, revision, revision))
                kv = KeyValue(key, value, revision, revision)
                results.append(WatchEvent(EventType.PUT, kv, None))
                continue
            if row is None:
                results.append(KeyNotFoundError(key))
                continue
            prev = KeyValue(key, row[2], row[0], row[1])
            if expected is not None and expected != prev.mod_revision:
                results.append(RevisionMismatch(key, prev))
                continue
            revision += 1
            if kind is WriteKind.UPDATE:
                execute(
                    _INSERT_LOG, (revision, kb, 0, prev.create_revision, prev.mod_revision, value)
                )
                execute(_UPDATE_KV, (revision, kb))
                kv = KeyValue(key, value, prev.create_revision, revision)
                results.append(WatchEvent(EventType.PUT, kv, prev))
            else:
                execute(
                    _INSERT_LOG, (revision, kb, 1, prev.create_revision, prev.mod_revision, None)
                )
                execute(_DELETE_KV, (kb,))
                kv = KeyValue(key, prev.value, prev.create_revision, revision)
                results.append(WatchEvent(EventType.DELETE, kv, prev))
        execute(_UPDATE_META, (revision, "revision"))
        execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return revision, results


def read_get(conn: sqlite3.Connection, key: str) -> KeyValue | None:
    row = conn.execute(_SELECT_CURRENT, (key.encode(),)).fetchone()
    return None if row is None else KeyValue(key, row[2], row[0], row[1])


def read_range(
    conn: sqlite3.Connection, prefix: str, start_key: str | None, limit: int, revision: int | None
) -> RangeResult:
    """One snapshot: the keys under ``prefix`` (>= ``start_key``) at ``revision`` (None = now)."""
    lo, hi = _key_bounds(prefix)
    if start_key is not None and start_key.encode() > lo:
        lo = start_key.encode()
    sql_limit = limit + 1 if limit > 0 else -1  # one extra row tells whether more remain
    conn.execute("BEGIN")
    try:
        current = _meta(conn, "revision")
        at = current if revision is None else revision
        _check_not_compacted(conn, at)
        if at > current:
            raise StoreError(f"revision {at} is in the future; the current revision is {current}")
        if at == current:
            rows = conn.execute(_RANGE_CURRENT, (lo, hi, sql_limit)).fetchall()
        else:
            rows = conn.execute(_RANGE_PAST, (lo, hi, at, lo, hi, at, sql_limit)).fetchall()
    finally:
        conn.execute("COMMIT")
    more = 0 < limit < len(rows)
    kvs = [KeyValue(r[0].decode(), r[3], r[1], r[2]) for r in (rows[:limit] if more else rows)]
    return RangeResult(kvs=kvs, revision=at, more=more)


def read_count(conn: sqlite3.Connection, prefix: str) -> int:
    return int(conn.execute(_COUNT, _key_bounds(prefix)).fetchone()[0])


def read_history(conn: sqlite3.Connection, prefix: str, after: int, limit: int) -> list[WatchEvent]:
    """Up to ``limit`` events under ``prefix`` with revision > ``after``, in revision order.

    Raises :class:`CompactedError` if events right after ``after`` may have been compacted.
    """
    lo, hi = _key_bounds(prefix)
    conn.execute("BEGIN")
    try:
        _check_not_compacted(conn, after)
        rows = conn.execute(_HISTORY, (after, lo, hi, limit)).fetchall()
    finally:
        conn.execute("COMMIT")
    events: list[WatchEvent] = []
    for rev, kb, deleted, create_rev, value, prev_rev, prev_create, prev_value in rows:
        key = kb.decode()
        prev = None if prev_rev is None else KeyValue(key, prev_value, prev_create, prev_rev)
        if deleted:
            assert prev is not None  # a DELETE row always points at the deleted version
            events.append(
                WatchEvent(EventType.DELETE, KeyValue(key, prev.value, create_rev, rev), prev)
            )
        else:
            events.append(WatchEvent(EventType.PUT, KeyValue(key, value, create_rev, rev), prev))
    return events


def mark_compacted(conn: sqlite3.Connection, revision: int) -> None:
    """Persist the new compaction point before any row goes, so readers fail cleanly.

    etcd's rules: compacting at or below the current compaction point is CompactedError,
    compacting a future revision is an error.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _meta(conn, "revision")
        compacted = _meta(conn, "compacted")
        if revision <= compacted:
            raise CompactedError(revision, compacted)
        if revision > current:
            raise StoreError(
                f"cannot compact at future revision {revision}; the current revision is {current}"
            )
        conn.execute(_UPDATE_META, (revision, "compacted"))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def compact_chunk(conn: sqlite3.Connection, compacted: int, limit: int) -> int:
    """Delete up to ``limit`` rows that compaction at ``compacted`` makes useless; return how many.

    Callers repeat until fewer than ``limit`` go. One statement is one short autocommit
    transaction, which keeps the single writer available to the hot path; a compaction cut short
    (close, crash) is finished by the next one, since the scan starts from the oldest row.
    """
    cursor = conn.execute(
        "DELETE FROM log WHERE rev IN (SELECT o.rev FROM log AS o WHERE o.rev <= ? AND"
        " (o.deleted = 1 OR EXISTS (SELECT 1 FROM log AS n"
        "  WHERE n.key = o.key AND n.rev > o.rev AND n.rev <= ?)) LIMIT ?)",
        (compacted, compacted, limit),
    )
    return cursor.rowcount


def _key_bounds(prefix: str) -> tuple[bytes, bytes]:
    """[lo, hi) of the keys under ``prefix``.

    UTF-8 never contains the byte 0xFF, so ``b"\\xff"`` is above every key and serves as the
    bound of the empty prefix; that keeps every statement a constant string.
    """
    lo = prefix.encode()
    return lo, prefix_end(lo) or b"\xff"


def _meta(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(_SELECT_META, (name,)).fetchone()[0])


def _check_not_compacted(conn: sqlite3.Connection, revision: int) -> None:
    compacted = _meta(conn, "compacted")
    if revision < compacted:
        raise CompactedError(revision, compacted)
