"""``EtcdStore``: the distributed backend, a real etcd v3 cluster through ``etcd3aio`` (pinned).

Owns the translation between the ``Store`` contract and etcd's API. The mapping is the one
kube-apiserver's etcd3 storage uses, so semantics are etcd's own, not emulated:

* resourceVersion is the etcd revision; keys are ``prefix + key`` (``--etcd-prefix``,
  default ``/registry``).
* create = Txn(If CREATE(key) == 0, Then Put); update = Txn(If MOD(key) == expected and the
  key exists, Then Put, Else Get) — the Else branch hands back the current value for the
  Conflict; delete likewise with DeleteRange(prev_kv).
* range at a revision is etcd's Range(revision=R): consistent pagination for free.
* every watch is its own etcd watch from ``start_revision + 1`` with ``prev_kv``; a response
  with ``canceled`` + ``compact_revision`` becomes :class:`CompactedError`. Its events go
  through the same bounded :class:`~kubeboot.storage.watchhub.Subscription` as SQLite's, so a
  slow consumer ends with :class:`WatcherLaggingError` instead of buffering without bound.
* etcd does not report its compaction point, so :meth:`EtcdStore.compact` records it under the
  cluster-wide key ``kubeboot/compacted-revision`` (outside every prefix: compaction is
  cluster-wide, as kube-apiserver's ``compact_rev_key``). Reads and watches below an
  unrecorded compaction (``etcdctl compact``) still fail with CompactedError from etcd itself.
  Boundary difference: etcd still serves a watch from exactly the compaction point minus one
  (it keeps revision C's versions); SQLite refuses it. Both agree everywhere else.

Connection failures and timeouts become :class:`StoreUnavailable` (retry later).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import grpc.aio  # type: ignore[import-untyped]  # grpcio ships no type stubs
from etcd3aio import Etcd3Client, EtcdError
from etcd3aio._protobuf import Compare
from etcd3aio.kv import KVService

from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RangeResult,
    RevisionMismatch,
    StoreError,
    StoreUnavailable,
    WatchEvent,
)
from kubeboot.storage.prefix import prefix_end
from kubeboot.storage.watchhub import Subscription

__all__ = ["COMPACTED_REVISION_KEY", "EtcdStore"]

COMPACTED_REVISION_KEY = b"kubeboot/compacted-revision"
REQUEST_TIMEOUT = 10.0
"""Seconds per etcd call: a partitioned cluster surfaces as StoreUnavailable, not a hang."""

_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"


class EtcdStore:
    """A :class:`~kubeboot.storage.interface.Store` on etcd v3. Open with :meth:`open`."""

    def __init__(self, client: Etcd3Client, kv: KVService, prefix: str, limit: int) -> None:
        self._client = client
        self._kv = kv
        self._prefix = prefix.encode()
        self._watch_queue_limit = limit
        self._watches: set[asyncio.Task[None]] = set()
        self._subs: set[Subscription] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        servers: Sequence[str],
        *,
        prefix: str = "/registry",
        cafile: Path | None = None,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        watch_queue_limit: int = 1000,
    ) -> EtcdStore:
        """Connect to ``servers`` (``http(s)://host:port``) and check that etcd answers."""
        endpoints = [_endpoint(s, tls=cafile is not None) for s in servers]
        ca, cert, key = await asyncio.to_thread(_read_tls, cafile, certfile, keyfile)
        client = Etcd3Client(endpoints, ca_cert=ca, cert_chain=cert, cert_key=key)
        await client.connect()
        assert client.kv is not None  # set by connect()
        store = cls(client, client.kv, prefix, watch_queue_limit)
        try:
            await store.current_revision()
        except BaseException:
            await client.close()
            raise
        return store

    # -- writes ---------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        full = self._full(key)
        with self._translate(key):
            resp = await self._kv.txn(
                [KVService.txn_compare_create_revision(full, 0)],
                [KVService.txn_op_put(full, value)],
                timeout=REQUEST_TIMEOUT,
            )
        if not resp.succeeded:
            raise KeyExistsError(key)
        revision = resp.header.revision
        return KeyValue(key, value, revision, revision)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        full = self._full(key)
        with self._translate(key):
            resp = await self._kv.txn(
                _compare_mod(full, expected_mod_revision),
                [KVService.txn_op_put(full, value, prev_kv=True)],
                [KVService.txn_op_get(full)],
                timeout=REQUEST_TIMEOUT,
            )
        if not resp.succeeded:
            raise self._cas_failure(key, resp.responses[0].response_range)
        prev = resp.responses[0].response_put.prev_kv
        return KeyValue(key, value, prev.create_revision, resp.header.revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        full = self._full(key)
        with self._translate(key):
            if expected_mod_revision is None:
                deleted = await self._kv.delete(full, prev_kv=True, timeout=REQUEST_TIMEOUT)
                if not deleted.prev_kvs:
                    raise KeyNotFoundError(key)
                prev, revision = deleted.prev_kvs[0], deleted.header.revision
            else:
                resp = await self._kv.txn(
                    _compare_mod(full, expected_mod_revision),
                    [KVService.txn_op_delete(full, prev_kv=True)],
                    [KVService.txn_op_get(full)],
                    timeout=REQUEST_TIMEOUT,
                )
                if not resp.succeeded:
                    raise self._cas_failure(key, resp.responses[0].response_range)
                prev = resp.responses[0].response_delete_range.prev_kvs[0]
                revision = resp.header.revision
        return KeyValue(key, prev.value, prev.create_revision, revision)

    def _cas_failure(self, key: str, current: Any) -> StoreError:
        if not current.kvs:
            return KeyNotFoundError(key)
        return RevisionMismatch(key, self._kv_of(current.kvs[0]))

    # -- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        with self._translate(key):
            resp = await self._kv.get(self._full(key), timeout=REQUEST_TIMEOUT)
        return self._kv_of(resp.kvs[0]) if resp.kvs else None

    async def range(
        self,
        prefix: str,
        *,
        start_key: str | None = None,
        limit: int = 0,
        revision: int | None = None,
    ) -> RangeResult:
        lo, hi = self._bounds(prefix)
        if start_key is not None and self._full(start_key) > lo:
            lo = self._full(start_key)
        try:
            with self._translate(prefix, revision):
                resp = await self._kv.get(
                    lo, hi, revision=revision or 0, limit=max(limit, 0), timeout=REQUEST_TIMEOUT
                )
        except CompactedError as e:
            raise CompactedError(e.requested, await self._known_compaction(e.requested)) from e
        return RangeResult(
            kvs=[self._kv_of(kv) for kv in resp.kvs],
            revision=revision or resp.header.revision,
            more=resp.more,
        )

    async def count(self, prefix: str) -> int:
        lo, hi = self._bounds(prefix)
        with self._translate(prefix):
            resp = await self._kv.get(lo, hi, count_only=True, timeout=REQUEST_TIMEOUT)
        return int(resp.count)

    async def current_revision(self) -> int:
        with self._translate(""):
            resp = await self._kv.get(self._prefix, count_only=True, timeout=REQUEST_TIMEOUT)
        return int(resp.header.revision)

    async def compacted_revision(self) -> int:
        with self._translate(""):
            resp = await self._kv.get(COMPACTED_REVISION_KEY, timeout=REQUEST_TIMEOUT)
        return int(resp.kvs[0].value) if resp.kvs else 0

    async def _known_compaction(self, at_least: int) -> int:
        """The recorded compaction point, or ``at_least`` if etcd was compacted unrecorded."""
        return max(await self.compacted_revision(), at_least)

    # -- watch ----------------------------------------------------------------------------

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        if self._closed:
            raise StoreUnavailable("etcd store is closed")
        sub = Subscription(prefix, self._watch_queue_limit)
        pump = asyncio.create_task(self._pump(sub, prefix, start_revision))
        self._subs.add(sub)
        self._watches.add(pump)
        try:
            while True:
                yield await sub.next()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            self._watches.discard(pump)
            self._subs.discard(sub)

    async def _pump(self, sub: Subscription, prefix: str, start_revision: int) -> None:
        """Move one etcd watch stream into ``sub`` until it fails or the watch is closed."""
        assert self._client.watch is not None
        lo, hi = self._bounds(prefix)
        strip = len(self._prefix)
        stream = cast(
            AsyncGenerator[Any, None],
            self._client.watch.watch(lo, hi, start_revision=start_revision + 1, prev_kv=True),
        )
        try:
            async for resp in stream:
                if resp.canceled:
                    if resp.compact_revision:
                        sub.fail(CompactedError(start_revision, resp.compact_revision))
                    else:
                        sub.fail(StoreUnavailable(f"etcd canceled the watch: {resp.cancel_reason}"))
                    return
                if not sub.push_many([_event(ev, strip) for ev in resp.events]):
                    return
        except (EtcdError, grpc.aio.AioRpcError) as e:
            sub.fail(StoreUnavailable(f"etcd watch on {prefix!r} failed: {e}"))
        finally:
            await stream.aclose()

    # -- compaction and lifecycle ---------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """etcd Compact(revision), then record the point (monotonically) for compacted_revision."""
        try:
            with self._translate("", revision):
                await self._kv.compact(revision, timeout=REQUEST_TIMEOUT)
        except CompactedError as e:
            raise CompactedError(revision, await self._known_compaction(revision)) from e
        with self._translate(""):
            while True:
                current = await self._kv.get(COMPACTED_REVISION_KEY, timeout=REQUEST_TIMEOUT)
                if current.kvs and int(current.kvs[0].value) >= revision:
                    return
                mod = current.kvs[0].mod_revision if current.kvs else 0
                check = Compare(
                    key=COMPACTED_REVISION_KEY,
                    target=Compare.MOD,
                    result=Compare.EQUAL,
                    mod_revision=mod,
                )
                put = KVService.txn_op_put(COMPACTED_REVISION_KEY, str(revision).encode())
                resp = await self._kv.txn([check], [put], timeout=REQUEST_TIMEOUT)
                if resp.succeeded:
                    return

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in self._subs:
            sub.fail(StoreUnavailable("etcd store was closed"))
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await self._client.close()

    # -- helpers --------------------------------------------------------------------------

    def _full(self, key: str) -> bytes:
        return self._prefix + key.encode()

    def _bounds(self, prefix: str) -> tuple[bytes, bytes]:
        lo = self._full(prefix)
        hi = prefix_end(lo)
        if hi is None:
            raise ValueError(f"prefix {prefix!r} has no upper bound")
        return lo, hi

    def _kv_of(self, kv: Any) -> KeyValue:
        key = kv.key[len(self._prefix) :].decode()
        return KeyValue(key, kv.value, kv.create_revision, kv.mod_revision)

    @contextlib.contextmanager
    def _translate(self, key: str, revision: int | None = None) -> Iterator[None]:
        """Map etcd and gRPC failures onto the StoreError tree (once, here)."""
        if self._closed:
            raise StoreUnavailable("etcd store is closed")
        try:
            yield
        except grpc.aio.AioRpcError as e:
            detail = e.details() or ""
            if _COMPACTED in detail:
                raise CompactedError(revision or 0, revision or 0) from e
            if _FUTURE in detail:
                raise StoreError(f"revision {revision} is in the future") from e
            raise StoreUnavailable(
                f"etcd request for {key!r} failed: {e.code().name} {detail}"
            ) from e
        except (EtcdError, TimeoutError) as e:
            raise StoreUnavailable(f"etcd request for {key!r} failed: {e}") from e


def _compare_mod(full: bytes, expected: int) -> list[Any]:
    """CAS on the mod revision; ``VERSION > 0`` so an absent key never matches."""
    return [
        Compare(key=full, target=Compare.MOD, result=Compare.EQUAL, mod_revision=expected),
        KVService.txn_compare_version(full, 0, result=Compare.GREATER),
    ]


def _event(ev: Any, strip: int) -> WatchEvent:
    key = ev.kv.key[strip:].decode()
    prev = None
    if ev.HasField("prev_kv") and ev.prev_kv.mod_revision:
        prev = KeyValue(key, ev.prev_kv.value, ev.prev_kv.create_revision, ev.prev_kv.mod_revision)
    if ev.type == 1:  # mvccpb.Event.DELETE
        value = prev.value if prev is not None else b""
        create = prev.create_revision if prev is not None else ev.kv.create_revision
        return WatchEvent(EventType.DELETE, KeyValue(key, value, create, ev.kv.mod_revision), prev)
    kv = KeyValue(key, ev.kv.value, ev.kv.create_revision, ev.kv.mod_revision)
    return WatchEvent(EventType.PUT, kv, prev)


def _read_tls(
    cafile: Path | None, certfile: Path | None, keyfile: Path | None
) -> tuple[bytes | None, bytes | None, bytes | None]:
    """PEM bytes for gRPC: CA for server verification, cert+key for mTLS (both or neither)."""
    if (certfile is None) != (keyfile is None):
        raise ValueError("--etcd-certfile and --etcd-keyfile must be given together")
    if cafile is None:
        if certfile is not None:
            raise ValueError("--etcd-certfile needs --etcd-cafile (client certs need TLS)")
        return None, None, None
    cert = certfile.read_bytes() if certfile is not None else None
    key = keyfile.read_bytes() if keyfile is not None else None
    return cafile.read_bytes(), cert, key


def _endpoint(server: str, *, tls: bool) -> str:
    """``https://host:port`` -> ``host:port``; the scheme must agree with the TLS options."""
    url = urlsplit(server if "://" in server else f"http://{server}")
    if url.scheme not in ("http", "https") or url.hostname is None:
        raise ValueError(f"etcd server {server!r} is not an http(s)://host:port URL")
    if (url.scheme == "https") != tls:
        raise ValueError(
            f"etcd server {server!r}: https needs --etcd-cafile, and --etcd-cafile needs https"
        )
    return f"{url.hostname}:{url.port or 2379}"
