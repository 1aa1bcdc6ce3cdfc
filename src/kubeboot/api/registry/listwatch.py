"""Reads of collections: list with snapshot-consistent pages, and watch (server-facts §8.4).

* A list reads one store revision: the ``continue`` token carries that revision and the next
  key, so every page of one list comes from the same snapshot; a token older than the
  compaction point is 410 ``Expired``. Selectors filter after the range, and pages are read
  until ``limit`` matching objects are found.
* A watch without a resourceVersion (or ``0``) sends the current state as ADDED first; with
  one, it resumes after it with no gap; ``sendInitialEvents`` ends the initial state with the
  ``k8s.io/initial-events-end`` bookmark. A ``metadata.name`` field selector narrows the
  storage watch to that key. An object moving in or out of the selectors becomes ADDED or
  DELETED, as upstream. A watch behind compaction, or one that lagged, ends with an ERROR
  event carrying 410, after which clients re-list.

Authorization is the caller's (``RestService``); nothing here knows who asks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import posixpath
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from kubeboot.api.registry import codec
from kubeboot.api.registry.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from kubeboot.api.registry.store_errors import status_error_for
from kubeboot.resources.decoding import DecodeError, decode_json, go_quote
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.schema import INT64, STRING, Field, Struct
from kubeboot.resources.status import BadRequest, Expired, FieldError, Timeout
from kubeboot.resources.typecheck import TypeMismatch, typecheck
from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyValue,
    Store,
    StoreUnavailable,
    WatcherLaggingError,
)

__all__ = [
    "INITIAL_EVENTS_END",
    "ListOptions",
    "Selectors",
    "WatchOptions",
    "WatchStream",
    "bookmark_event",
    "list_objects",
    "open_watch",
    "parse_resource_version",
    "wait_for_revision",
]

log = logging.getLogger("kubeboot.api")
# kube-apiserver's watch cache waits this long for a resourceVersion it has not seen yet.
FUTURE_REVISION_WAIT = 3.0
_UINT64_MAX = 2**64 - 1

JsonObj = dict[str, Any]
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None


@dataclass(frozen=True, slots=True)
class WatchOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None
    send_initial_events: bool | None = None
    allow_bookmarks: bool = False


@dataclass(frozen=True, slots=True)
class WatchStream:
    """A watch's events, and the revision it starts after (the first bookmark's version)."""

    start_revision: int
    events: AsyncGenerator[JsonObj, None]


@dataclass(frozen=True, slots=True)
class Selectors:
    labels: LabelSelector
    fields: FieldSelector

    @classmethod
    def parse(cls, res: ResourceInfo, labels: str | None, fields: str | None) -> Selectors:
        return cls(parse_label_selector(labels), parse_field_selector(fields, res))

    @property
    def empty(self) -> bool:
        return self.labels.empty and self.fields.empty

    def matches(self, obj: JsonObj) -> bool:
        if self.empty:
            return True
        meta = obj.get("metadata") or {}
        return self.labels.matches(meta.get("labels")) and self.fields.matches(obj)


def parse_resource_version(rv: str | None) -> int | None:
    """A resourceVersion as upstream's storage parses it (``strconv.ParseUint``).

    None for absent or ""; 400 ``invalid resource version: ...`` if unparseable. The value
    may be beyond any revision issued (see :func:`wait_for_revision`).
    """
    if rv is None or rv == "":
        return None
    if rv.isascii() and rv.isdigit() and int(rv) <= _UINT64_MAX:
        return int(rv)
    reason = "value out of range" if rv.isascii() and rv.isdigit() else "invalid syntax"
    raise BadRequest(
        f"invalid resource version: resourceVersion: Invalid value: {go_quote(rv)}: "
        f"strconv.ParseUint: parsing {go_quote(rv)}: {reason}"
    )


async def wait_for_revision(store: Store, revision: int) -> None:
    """Return once the store has reached ``revision``; 504 after upstream's 3 s wait.

    A client may read a resourceVersion from one replica and ask another that has not
    caught up yet: like kube-apiserver's watch cache, wait briefly for it, then answer
    ``Timeout: Too large resource version`` with ``ResourceVersionTooLarge`` and
    ``retryAfterSeconds: 1`` (client-go retries).
    """
    current = await store.current_revision()
    if revision <= current:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FUTURE_REVISION_WAIT
    delay = 0.02
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, 0.25)
        current = await store.current_revision()
        if revision <= current:
            return
    raise Timeout(
        f"Timeout: Too large resource version: {revision}, current: {current}",
        causes=[FieldError("ResourceVersionTooLarge", "", "Too large resource version")],
        retry_after=1,
    )


_LIST_TOO_OLD = "The resourceVersion for the provided list is too old."
_INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)
# upstream's storage.continueToken (apiserver/pkg/storage/continue.go), for Go's error texts.
_CONTINUE_TOKEN = Struct(
    "",
    "storage.continueToken",
    (Field("v", STRING), Field("rv", INT64), Field("start", STRING)),
)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _encode_continue(revision: int, start_key: str, prefix: str) -> str:
    """Upstream's token: unpadded base64url of ``{"v", "rv", "start"}`` (start relative to the
    list's key prefix); rv -1 continues at the latest revision."""
    # relative to the prefix without its last "/", as upstream's: "/name\x00", "/ns/name\x00"
    start = "/" + start_key.removeprefix(prefix).lstrip("/")
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": start}
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _invalid_continue(detail: str) -> BadRequest:
    return BadRequest(f"invalid continue token: continue key is not valid: {detail}")


def _decode_continue(token: str, prefix: str) -> tuple[int | None, str]:
    """(revision, or None for the latest, and the first key) of a continue token; a bad one
    is upstream's 400 with Go's texts (base64.RawURLEncoding, encoding/json, DecodeContinue).
    """
    if not _BASE64URL.fullmatch(token):
        bad = next(i for i, c in enumerate(token) if not _BASE64URL.fullmatch(c))
        raise _invalid_continue(f"illegal base64 data at input byte {bad}")
    if len(token) % 4 == 1:  # a lone final character: Go names its offset
        raise _invalid_continue(f"illegal base64 data at input byte {len(token) - 1}")
    data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    try:
        fields = typecheck(decode_json(data).value, _CONTINUE_TOKEN).obj
    except (DecodeError, TypeMismatch) as exc:
        raise _invalid_continue(str(exc)) from None
    version = fields.get("v", "")
    if version != "meta.k8s.io/v1":
        raise _invalid_continue(f"server does not recognize this encoded version {version}")
    revision, start = fields.get("rv", 0), fields.get("start", "")
    if revision == 0:
        raise _invalid_continue("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    if not start:
        raise _invalid_continue("encoded start key empty (version meta.k8s.io/v1)")
    key = start if start.startswith("/") else "/" + start
    if posixpath.normpath(key) != key or key.startswith("//"):
        raise _invalid_continue(start)  # a path trying to leave the list's prefix
    # A negative revision is upstream's token for an inconsistent continuation (after a 410).
    return (revision if revision > 0 else None), prefix + key[1:]


def _strip_type_meta(obj: JsonObj) -> JsonObj:
    """List items carry no kind/apiVersion: the list's own say what they are."""
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    return obj


async def list_objects(
    store: Store, res: ResourceInfo, namespace: str | None, sel: Selectors, opts: ListOptions
) -> JsonObj:
    prefix = res.storage_prefix(namespace)
    revision: int | None = None
    start_key: str | None = None
    if opts.continue_token:
        if opts.resource_version not in (None, "", "0"):
            raise BadRequest("specifying resource version is not allowed when using continue")
        revision, start_key = _decode_continue(opts.continue_token, prefix)
        if revision is not None:  # None: continue at the latest revision
            await wait_for_revision(store, revision)
    else:
        wanted = parse_resource_version(opts.resource_version)
        if wanted:
            await wait_for_revision(store, wanted)
            if opts.resource_version_match == "Exact":
                revision = wanted
    items: list[JsonObj] = []
    more = False
    last_key = ""
    read_rev = revision
    try:
        while True:
            page = max(opts.limit - len(items), 0) if opts.limit else 0
            result = await store.range(prefix, start_key=start_key, limit=page, revision=read_rev)
            read_rev = result.revision
            for kv in result.kvs:
                last_key = kv.key
                obj = codec.decode(kv)
                if sel.matches(obj):
                    items.append(_strip_type_meta(obj))
            if not result.more:
                break
            start_key = last_key + "\x00"
            if opts.limit and len(items) >= opts.limit:
                more = True
                break
        remaining = None
        if more and sel.empty:
            rest = await store.range(prefix, start_key=start_key, revision=read_rev)
            remaining = len(rest.kvs)
    except CompactedError as exc:
        if opts.continue_token and start_key is not None:
            token = _encode_continue(-1, start_key, prefix)
            raise Expired(_INCONSISTENT_CONTINUE, list_meta={"continue": token}) from exc
        raise Expired(_LIST_TOO_OLD) from exc
    except StoreUnavailable as exc:
        raise status_error_for(exc, res, "") from exc
    assert read_rev is not None
    list_meta: JsonObj = {"resourceVersion": str(read_rev)}
    if more:
        list_meta["continue"] = _encode_continue(read_rev, last_key + "\x00", prefix)
        if remaining is not None:
            list_meta["remainingItemCount"] = remaining
    return {
        "kind": res.list_kind,
        "apiVersion": res.api_version,
        "metadata": list_meta,
        "items": items,
    }


async def open_watch(
    store: Store, res: ResourceInfo, namespace: str | None, sel: Selectors, opts: WatchOptions
) -> WatchStream:
    """Validate and read the starting point eagerly (errors are HTTP errors, not events)."""
    rv = parse_resource_version(opts.resource_version)
    if rv:
        await wait_for_revision(store, rv)
    prefix = res.storage_prefix(namespace)
    exact = sel.fields.exact_name()
    # A name pins one key only within one namespace (or for a cluster-scoped resource); a
    # watch across all namespaces filters by name instead.
    key = prefix + exact if exact and (namespace or not res.namespaced) else None
    watch_prefix = key or prefix
    initial = opts.send_initial_events or (rv in (None, 0) and opts.send_initial_events is None)
    start = rv or 0
    snapshot: list[KeyValue] = []
    if initial or start == 0:
        result = await store.range(watch_prefix)
        snapshot = [kv for kv in result.kvs if key is None or kv.key == key]
        start = result.revision
    else:
        compacted = await store.compacted_revision()
        if start < compacted:
            raise Expired(f"too old resource version: {start} ({compacted})")
    if exact and key is not None:
        # The key pins the name: with no other selector, every event on it matches, and a
        # MODIFIED one needs no decode of the previous version (a joining node's watch on its
        # own CSR saves two decodes).
        sel = Selectors(sel.labels, sel.fields.without_name(exact))
    events = _stream(store, res, sel, watch_prefix, key, start, snapshot if initial else [], opts)
    return WatchStream(start, events)


async def _stream(
    store: Store,
    res: ResourceInfo,
    sel: Selectors,
    watch_prefix: str,
    key: str | None,
    start: int,
    snapshot: list[KeyValue],
    opts: WatchOptions,
) -> AsyncGenerator[JsonObj, None]:
    for kv in snapshot:
        obj = codec.decode(kv)
        if sel.matches(obj):
            yield {"type": "ADDED", "object": obj}
    if opts.send_initial_events:
        yield bookmark_event(res, start, initial_end=True)
    try:
        async for ev in store.watch(watch_prefix, start):
            if key is not None and ev.kv.key != key:
                continue  # a longer name under the same prefix
            event = _translate_event(ev.type, ev.kv, ev.prev, sel)
            if event is not None:
                yield event
    except (CompactedError, WatcherLaggingError) as exc:
        message = (
            f"too old resource version: {exc.requested} ({exc.compacted})"
            if isinstance(exc, CompactedError)
            else "the watch fell too far behind; re-list and watch again"
        )
        yield {"type": "ERROR", "object": Expired(message).to_status()}
    except StoreUnavailable as exc:
        # End the stream as kube-apiserver does when etcd drops a watch: clients watch
        # again from the last resourceVersion they saw, so nothing is skipped.
        log.warning("ending watch on %s: %s", watch_prefix, exc)


def bookmark_event(res: ResourceInfo, revision: int, *, initial_end: bool = False) -> JsonObj:
    meta: JsonObj = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {
        "type": "BOOKMARK",
        "object": {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta},
    }


def _translate_event(
    etype: EventType, kv: KeyValue, prev: KeyValue | None, sel: Selectors
) -> JsonObj | None:
    obj = codec.decode(kv)
    if etype is EventType.DELETE:
        return {"type": "DELETED", "object": obj} if sel.matches(obj) else None
    if prev is None:
        return {"type": "ADDED", "object": obj} if sel.matches(obj) else None
    if sel.empty:  # no selectors: no need to decode the previous version
        return {"type": "MODIFIED", "object": obj}
    now_matches, before = sel.matches(obj), sel.matches(codec.decode(prev))
    if now_matches and before:
        return {"type": "MODIFIED", "object": obj}
    if now_matches:
        return {"type": "ADDED", "object": obj}
    if before:
        return {"type": "DELETED", "object": obj}
    return None
