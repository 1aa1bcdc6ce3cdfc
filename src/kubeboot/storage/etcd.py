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
  A broken stream (member killed, leader lost) is re-opened, on the next member, from one
  past the last *delivered event* — not from a response header's revision, which for a
  catching-up watch is ahead of the events sent so far — so a failover never skips an event.
* one gRPC channel per member, each verified against its own URL's host name (so TLS works
  with per-member serving certificates, as kubeadm lays them out); a request that finds its
  member unreachable or leaderless moves to the next member. Every call carries etcd's
  ``hasleader`` metadata (clientv3's ``WithRequireLeader``): a member cut off from quorum
  answers "no leader" at once instead of letting the request hang, and cancels its watches.
* etcd does not report its compaction point, so :meth:`EtcdStore.compact` records it under the
  cluster-wide key ``kubeboot/compacted-revision`` (outside every prefix: compaction is
  cluster-wide, as kube-apiserver's ``compact_rev_key``). Reads and watches below an
  unrecorded compaction (``etcdctl compact``) still fail with CompactedError from etcd itself.
  Boundary difference: etcd still serves a watch from exactly the compaction point minus one
  (it keeps revision C's versions); SQLite refuses it. Both agree everywhere else.

Connection failures, lost quorum and timeouts become :class:`StoreUnavailable` (retry later;
the API answers 503). Retried writes are safe: every write is a Txn compare-and-swap, so a
write that reached etcd before its connection broke cannot apply twice; its retry finds our
own value there and reports the success (``_Attempts``). A non-CAS delete whose outcome was
unknown may report NotFound.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import grpc.aio  # type: ignore[import-untyped]
from etcd3aio._protobuf import (
    CompactionRequest,
    Compare,
    DeleteRangeRequest,
    KVStub,
    MaintenanceStub,
    RangeRequest,
    StatusRequest,
    TxnRequest,
    WatchCreateRequest,
    WatchRequest,
    WatchStub,
)
from etcd3aio._protobuf import rpc_pb2 as _rpc  # type: ignore[attr-defined]  # not re-exported
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

__all__ = ["COMPACTED_REVISION_KEY", "EtcdStore", "WatchSink"]

COMPACTED_REVISION_KEY = b"kubeboot/compacted-revision"
FAILOVER_WINDOW = 5.0
"""Seconds a request keeps trying other members before it fails with StoreUnavailable."""
ATTEMPT_TIMEOUT = 2.5
"""Seconds one member gets to answer before the request moves to the next member. A write
sent just after the etcd leader died hangs on a follower until etcd's own request timeout
(5 s + 2 election timeouts); moving on sooner lets the retry reach the new leader. With
FAILOVER_WINDOW this bounds a call at about 7.5 s, so a partitioned cluster surfaces as
StoreUnavailable, not a hang."""
WATCH_RETRY_MAX = 2.0
"""Longest pause between attempts to re-open a broken watch stream."""

_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
_REQUIRE_LEADER = (("hasleader", "true"),)  # etcd rpctypes.MetadataRequireLeaderKey
# INTERNAL: grpc-core's "Internal error from Core", seen on a channel whose member was just
# killed; another member (or the same one a moment later) answers.
_RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
)
_T = TypeVar("_T")


class WatchSink(Protocol):
    """Where a watch's events go: a bounded :class:`Subscription`, or the watch cache."""

    def push_many(self, events: Sequence[WatchEvent]) -> bool: ...

    def fail(self, error: StoreError) -> None: ...


class _KV:
    """etcd's KV service called on the generated stub, with require-leader metadata.

    Thinner than etcd3aio's ``KVService`` (which adds an ``asyncio.timeout``, a retry loop
    and error mapping we do not use, ``_call`` does those) and without a gRPC interceptor:
    measured ~0.4 ms less CPU per join (docs/performance.md).
    """

    __slots__ = ("_stub",)

    def __init__(self, channel: Any) -> None:
        self._stub = KVStub(channel)

    def get(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
    ) -> Any:  # a grpc.aio call: await it
        request = RangeRequest(
            key=key, range_end=range_end, revision=revision, limit=limit, count_only=count_only
        )
        return self._stub.Range(request, timeout=ATTEMPT_TIMEOUT, metadata=_REQUIRE_LEADER)

    def txn(
        self, compare: Sequence[Any], success: Sequence[Any], failure: Sequence[Any] = ()
    ) -> Any:  # a grpc.aio call: await it
        request = TxnRequest(compare=compare, success=success, failure=failure)
        return self._stub.Txn(request, timeout=ATTEMPT_TIMEOUT, metadata=_REQUIRE_LEADER)

    def delete(self, key: bytes) -> Any:  # a grpc.aio call: await it
        request = DeleteRangeRequest(key=key, prev_kv=True)
        return self._stub.DeleteRange(request, timeout=ATTEMPT_TIMEOUT, metadata=_REQUIRE_LEADER)

    def compact(self, revision: int) -> Any:  # a grpc.aio call: await it
        request = CompactionRequest(revision=revision)
        return self._stub.Compact(request, timeout=ATTEMPT_TIMEOUT, metadata=_REQUIRE_LEADER)


@dataclass(slots=True)
class _Attempts:
    """How many times :meth:`EtcdStore._call` sent a write.

    A write whose attempt timed out or lost its connection may still have been applied. When
    the retry's compare then fails, the value found is compared with ours: the API layer's
    values carry a fresh ``uid`` (and, for updates, the read ``resourceVersion`` moved past
    ``expected``), so an identical value can only be our own first attempt, and the write is
    reported as the success it was instead of a spurious AlreadyExists or Conflict.
    """

    count: int = 0

    @property
    def retried(self) -> bool:
        return self.count > 1


@dataclass(frozen=True, slots=True)
class _Member:
    """One etcd member's channel: its KV facade (no retries of its own) and Watch stub."""

    url: str
    channel: Any  # grpc.aio.Channel
    kv: _KV
    watch: Any  # WatchStub
    maintenance: Any  # MaintenanceStub


class EtcdStore:
    """A :class:`~kubeboot.storage.interface.Store` on etcd v3. Open with :meth:`open`."""

    def __init__(self, members: Sequence[_Member], prefix: str, limit: int) -> None:
        self._members = list(members)
        self._current = 0  # the member requests go to first; moves on failure
        self._prefix = prefix.encode()
        self._watch_queue_limit = limit
        self._watches: set[asyncio.Task[None]] = set()
        self._subs: set[WatchSink] = set()
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
        if not servers:
            raise ValueError("no etcd servers given")
        targets = [_target(s, tls=cafile is not None) for s in servers]
        ca, cert, key = await asyncio.to_thread(_read_tls, cafile, certfile, keyfile)
        members = [
            _member(url, target, ca, cert, key)
            for url, target in zip(servers, targets, strict=True)
        ]
        store = cls(members, prefix, watch_queue_limit)
        try:
            await store.current_revision()
        except BaseException:
            await store.close()
            raise
        return store

    # -- writes ---------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        full = self._full(key)
        attempts = _Attempts()
        resp = await self._call(
            key,
            lambda kv: kv.txn(
                [KVService.txn_compare_create_revision(full, 0)],
                [KVService.txn_op_put(full, value)],
                [KVService.txn_op_get(full)],
            ),
            attempts=attempts,
        )
        if not resp.succeeded:
            found = resp.responses[0].response_range.kvs
            if attempts.retried and found and found[0].value == value:
                return self._kv_of(found[0])  # our own earlier attempt landed (see _Attempts)
            raise KeyExistsError(key)
        revision = resp.header.revision
        return KeyValue(key, value, revision, revision)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        full = self._full(key)
        attempts = _Attempts()
        resp = await self._call(
            key,
            lambda kv: kv.txn(
                _compare_mod(full, expected_mod_revision),
                [KVService.txn_op_put(full, value, prev_kv=True)],
                [KVService.txn_op_get(full)],
            ),
            attempts=attempts,
        )
        if not resp.succeeded:
            found = resp.responses[0].response_range.kvs
            if (
                attempts.retried
                and found
                and found[0].value == value
                and found[0].mod_revision > expected_mod_revision
            ):
                return self._kv_of(found[0])  # our own earlier attempt landed (see _Attempts)
            raise self._cas_failure(key, resp.responses[0].response_range)
        prev = resp.responses[0].response_put.prev_kv
        return KeyValue(key, value, prev.create_revision, resp.header.revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> KeyValue:
        full = self._full(key)
        if expected_mod_revision is None:
            deleted = await self._call(
                key,
                lambda kv: kv.delete(full),
            )
            if not deleted.prev_kvs:
                raise KeyNotFoundError(key)
            prev, revision = deleted.prev_kvs[0], deleted.header.revision
        else:
            resp = await self._call(
                key,
                lambda kv: kv.txn(
                    _compare_mod(full, expected_mod_revision),
                    [KVService.txn_op_delete(full, prev_kv=True)],
                    [KVService.txn_op_get(full)],
                ),
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
        full = self._full(key)
        resp = await self._call(key, lambda kv: kv.get(full))
        return self._kv_of(resp.kvs[0]) if resp.kvs else None

    async def get_hint(self, key: str) -> KeyValue | None:
        return await self.get(key)

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
            resp = await self._call(
                prefix,
                lambda kv: kv.get(
                    lo,
                    hi,
                    revision=revision or 0,
                    limit=max(limit, 0),
                ),
                revision,
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
        resp = await self._call(
            prefix,
            lambda kv: kv.get(lo, hi, count_only=True),
        )
        return int(resp.count)

    async def current_revision(self) -> int:
        resp = await self._call(
            "",
            lambda kv: kv.get(
                self._prefix,
                count_only=True,
            ),
        )
        return int(resp.header.revision)

    async def compacted_revision(self) -> int:
        resp = await self._call(
            "",
            lambda kv: kv.get(COMPACTED_REVISION_KEY),
        )
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

    def feed(
        self,
        prefix: str,
        start_revision: int,
        sink: WatchSink,
        *,
        on_progress: Callable[[int], None],
        progress_wanted: asyncio.Event,
    ) -> asyncio.Task[None]:
        """Push the changes under ``prefix`` after ``start_revision`` into ``sink`` (the watch
        cache's one stream), with etcd progress notifications.

        Setting ``progress_wanted`` sends a progress request on the stream; etcd answers once
        every event up to its current revision has been sent (etcd >= 3.4.31 / 3.5.13, see
        :meth:`server_version`), and ``on_progress`` gets that revision, in order with the
        events. The task ends when ``sink`` is failed or the store closes.
        """
        task = asyncio.create_task(
            self._pump(sink, prefix, start_revision, on_progress, progress_wanted)
        )
        self._subs.add(sink)
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)
        task.add_done_callback(lambda _: self._subs.discard(sink))
        return task

    async def server_version(self) -> str:
        """The etcd version of the member requests go to (``3.5.17``)."""
        resp = await self._call(
            "",
            lambda _kv: self._members[self._current].maintenance.Status(
                StatusRequest(), timeout=ATTEMPT_TIMEOUT, metadata=_REQUIRE_LEADER
            ),
        )
        return str(resp.version)

    async def _pump(
        self,
        sub: WatchSink,
        prefix: str,
        start_revision: int,
        on_progress: Callable[[int], None] | None = None,
        progress_wanted: asyncio.Event | None = None,
    ) -> None:
        """Move etcd watch responses into ``sub`` until it fails or the watch is closed.

        A stream that breaks for a retryable reason is re-opened on the next member from one
        past the last delivered event, so events are neither skipped nor repeated.
        """
        lo, hi = self._bounds(prefix)
        strip = len(self._prefix)
        next_revision = start_revision + 1
        pause = 0.05
        while True:
            member = self._members[self._current]
            try:
                async for resp in _watch_stream(member, lo, hi, next_revision, progress_wanted):
                    if resp.canceled:
                        if resp.compact_revision:
                            sub.fail(CompactedError(next_revision - 1, resp.compact_revision))
                        else:
                            reason = resp.cancel_reason or "no reason given"
                            sub.fail(StoreUnavailable(f"etcd canceled the watch: {reason}"))
                        return
                    if resp.events:
                        if not sub.push_many([_event(ev, strip) for ev in resp.events]):
                            return
                        next_revision = resp.events[-1].kv.mod_revision + 1
                    elif on_progress is not None and resp.watch_id == -1 and not resp.created:
                        # A progress notification (clientv3.InvalidWatchID): every event up
                        # to its revision has been sent on this stream.
                        on_progress(resp.header.revision)
                    pause = 0.05
            except grpc.aio.AioRpcError as e:
                if e.code() not in _RETRYABLE:
                    sub.fail(StoreUnavailable(f"etcd watch on {prefix!r} failed: {_rpc_text(e)}"))
                    return
                self._move_on(member)
            await asyncio.sleep(pause)
            pause = min(pause * 2, WATCH_RETRY_MAX)

    # -- compaction and lifecycle ---------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """etcd Compact(revision), then record the point (monotonically) for compacted_revision."""
        try:
            await self._call(
                "",
                lambda kv: kv.compact(revision),
                revision,
            )
        except CompactedError as e:
            raise CompactedError(revision, await self._known_compaction(revision)) from e
        while True:
            current = await self._call(
                "",
                lambda kv: kv.get(COMPACTED_REVISION_KEY),
            )
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
            resp = await self._call(
                "",
                lambda kv, check=check, put=put: kv.txn(  # type: ignore[misc]
                    [check], [put]
                ),
            )
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
        for member in self._members:
            await member.channel.close()

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

    def _move_on(self, failed: _Member) -> None:
        """Send later requests to the member after ``failed`` (unless another moved on)."""
        if self._members[self._current] is failed:
            self._current = (self._current + 1) % len(self._members)

    async def _call(
        self,
        key: str,
        call: Callable[[_KV], Awaitable[_T]],
        revision: int | None = None,
        *,
        attempts: _Attempts | None = None,
    ) -> _T:
        """One KV request, failed over between members, with errors mapped onto StoreError.

        Unreachable, leaderless or slow members are skipped in turn for up to
        ``FAILOVER_WINDOW`` seconds (long enough for an etcd leader election), then the
        request fails with :class:`StoreUnavailable`.
        """
        if self._closed:
            raise StoreUnavailable("etcd store is closed")
        deadline = asyncio.get_running_loop().time() + FAILOVER_WINDOW
        pause = 0.02
        while True:
            member = self._members[self._current]
            if attempts is not None:
                attempts.count += 1
            try:
                return await call(member.kv)
            except grpc.aio.AioRpcError as e:
                detail = e.details() or ""
                if _COMPACTED in detail:
                    raise CompactedError(revision or 0, revision or 0) from e
                if _FUTURE in detail:
                    raise StoreError(f"revision {revision} is in the future") from e
                failure: Exception = e
                text = _rpc_text(e)
                if e.code() not in _RETRYABLE:
                    raise StoreUnavailable(f"etcd request for {key!r} failed: {text}") from e
            self._move_on(member)
            if self._closed or asyncio.get_running_loop().time() + pause > deadline:
                raise StoreUnavailable(
                    f"etcd request for {key!r} failed on every member for "
                    f"{FAILOVER_WINDOW:.0f}s (last, at {member.url}: {text})"
                ) from failure
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)


def _rpc_text(e: Any) -> str:
    return f"{e.code().name} {e.details() or ''}".strip()


async def _watch_stream(
    member: _Member, lo: bytes, hi: bytes, start: int, progress_wanted: asyncio.Event | None
) -> AsyncIterator[Any]:
    """One etcd Watch stream (require-leader) from ``start``; ends or raises AioRpcError.

    Each time ``progress_wanted`` is set, a progress request goes out (and the flag is
    cleared); without it the request side just stays open for the stream's lifetime.
    """

    async def requests() -> AsyncIterator[Any]:
        create = WatchCreateRequest(key=lo, range_end=hi, start_revision=start, prev_kv=True)
        yield WatchRequest(create_request=create)
        if progress_wanted is None:
            await asyncio.Future()
            return
        while True:
            await progress_wanted.wait()
            progress_wanted.clear()
            yield WatchRequest(progress_request=_rpc.WatchProgressRequest())

    call = member.watch.Watch(requests(), metadata=_REQUIRE_LEADER)
    try:
        async for resp in call:
            yield resp
    finally:
        call.cancel()


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


def _target(server: str, *, tls: bool) -> str:
    """``https://host:port`` -> a gRPC target; the scheme must agree with the TLS options."""
    url = urlsplit(server if "://" in server else f"http://{server}")
    if url.scheme not in ("http", "https") or url.hostname is None:
        raise ValueError(f"etcd server {server!r} is not an http(s)://host:port URL")
    if (url.scheme == "https") != tls:
        raise ValueError(
            f"etcd server {server!r}: https needs --etcd-cafile, and --etcd-cafile needs https"
        )
    host, port = url.hostname, url.port or 2379
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"ipv6:[{host}]:{port}"
        return f"ipv4:{host}:{port}"
    except ValueError:
        return f"dns:///{host}:{port}"


def _member(
    url: str, target: str, ca: bytes | None, cert: bytes | None, key: bytes | None
) -> _Member:
    """A channel to one member, verified (with TLS) against that member's own host name."""
    options = [
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # A killed member should be retried soon after it comes back, not minutes later.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    if ca is None:
        channel = grpc.aio.insecure_channel(target, options=options)
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        channel = grpc.aio.secure_channel(target, creds, options=options)
    return _Member(
        url,
        channel,
        _KV(channel),
        WatchStub(channel),
        MaintenanceStub(channel),
    )
