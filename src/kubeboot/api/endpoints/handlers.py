"""Resource requests over HTTP: parse query and body, call the REST service, render.

Handlers only move bytes (style rule 1): every decision is made in ``RestService``, the
strategies or the authorizer. Watches stream newline-delimited JSON events with chunked
encoding, end after ``timeoutSeconds``, and send bookmarks when the client allows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from aiohttp import web

from kubeboot.api.endpoints.fieldvalidation import enforce_field_validation
from kubeboot.api.endpoints.http_io import json_response, read_body
from kubeboot.api.endpoints.protobuf import PROTOBUF, decode_protobuf_object
from kubeboot.api.endpoints.requestinfo import RequestInfo
from kubeboot.api.endpoints.tables import to_table, wants_table
from kubeboot.api.registry.listwatch import ListOptions, WatchOptions, bookmark_event
from kubeboot.api.registry.patch import PATCH_CONTENT_TYPES
from kubeboot.api.registry.rest import RestService
from kubeboot.api.registry.reviews import review
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import Clock
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)

__all__ = ["handle_resource"]

JsonObj = dict[str, Any]
_BOOKMARK_INTERVAL = 60.0
_MAX_WATCH_SECONDS = 1800
# One generator for the process: seeding a new one per watch read os.urandom and cost
# 1.2 % of the server's CPU in the join storm profile.
_WATCH_END_JITTER = random.Random()  # noqa: S311 - spreading load, not a secret


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.lower() in ("true", "1")


def _int(query: Any, name: str) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return 0
    if not str(raw).isdigit():
        raise BadRequest(f'{name} must be a non-negative integer, not "{raw}"')
    return int(raw)


def _list_options(request: web.Request) -> ListOptions:
    q = request.query
    return ListOptions(
        label_selector=q.get("labelSelector"),
        field_selector=q.get("fieldSelector"),
        limit=_int(q, "limit"),
        continue_token=q.get("continue") or None,
        resource_version=q.get("resourceVersion"),
        resource_version_match=q.get("resourceVersionMatch"),
    )


def _render(
    request: web.Request,
    res: ResourceInfo,
    obj: JsonObj,
    clock: Clock,
    status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    headers = {"Warning": ", ".join(f'299 - "{w}"' for w in warnings)} if warnings else None
    if wants_table(request.headers.get("Accept", "")) and obj.get("kind") == res.kind:
        table = to_table(
            res,
            [obj],
            clock.now(),
            list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")},
            include_object=request.query.get("includeObject", "Metadata"),
        )
        return json_response(table, status, headers=headers)
    return json_response(obj, status, headers=headers)


async def handle_resource(
    request: web.Request, info: RequestInfo, user: UserInfo, rest: RestService, clock: Clock
) -> web.StreamResponse:
    res = info.info
    if res is None:
        raise NotFound(
            f"the server could not find the requested resource ({info.resource} in "
            f"{(info.group + '/') if info.group else ''}{info.version})"
        )
    if res.namespaced and info.namespace is None and info.verb not in ("list", "watch"):
        raise NotFound(
            f"{res.plural} are namespaced: use /{res.gv.path.strip('/')}/namespaces/<namespace>/"
            f"{res.plural}"
        )
    if not res.namespaced and info.namespace is not None:
        raise NotFound(
            f"{res.plural} are cluster-scoped; drop /namespaces/{info.namespace} from the path"
        )
    if info.verb not in res.verbs and not (
        info.subresource and info.verb in ("get", "update", "patch")
    ):
        raise MethodNotAllowed(res.verb_refused(info.verb))
    ns = info.namespace if res.namespaced else None
    verb = info.verb

    if not res.stored:
        if verb != "create":
            raise MethodNotAllowed(f"{res.plural} only support create")
        body = await read_body(request)
        return json_response(review(rest.authorizer, user, res, ns, body), 201)

    if verb == "get":
        return _render(
            request, res, await rest.get(user, res, ns, info.name, info.subresource), clock
        )
    if verb == "list":
        listed = await rest.list(user, res, ns, _list_options(request))
        if wants_table(request.headers.get("Accept", "")):
            table = to_table(
                res,
                listed["items"],
                clock.now(),
                list_meta=listed["metadata"],
                include_object=request.query.get("includeObject", "Metadata"),
            )
            return json_response(table)
        return json_response(listed)
    if verb == "watch":
        return await _watch(request, info, res, ns, user, rest, clock)
    if verb == "create":
        body = await read_body(request)
        warnings = enforce_field_validation(request.query.get("fieldValidation"), res.kind, body)
        if request.query.get("dryRun"):
            raise BadRequest("dryRun is not supported by kubeboot; drop --dry-run=server")
        created = await rest.create(user, res, ns, body)
        return _render(request, res, created, clock, 201, warnings)
    if verb == "update":
        body = await read_body(request)
        warnings = enforce_field_validation(request.query.get("fieldValidation"), res.kind, body)
        updated = await rest.update(user, res, ns, info.name, body, info.subresource)
        return _render(request, res, updated, clock, 200, warnings)
    if verb == "patch":
        patch_type = PATCH_CONTENT_TYPES.get(request.content_type)
        if patch_type is None:
            raise UnsupportedMediaType(
                f'the body of the request was in an unknown format "{request.content_type}"; '
                "accepted media types include: " + ", ".join(PATCH_CONTENT_TYPES)
            )
        body = await read_body(request, allowed=tuple(PATCH_CONTENT_TYPES))
        patched = await rest.patch(user, res, ns, info.name, body, patch_type, info.subresource)
        return _render(request, res, patched, clock)
    if verb == "delete":
        uid = rv = None
        if request.can_read_body:
            raw = await request.content.read(64 * 1024)
            if raw.strip() and request.content_type == PROTOBUF:
                opts = decode_protobuf_object(raw)  # a kubelet's typed client sends protobuf
            elif raw.strip():
                try:
                    opts = json.loads(raw)
                except ValueError as exc:
                    raise BadRequest(f"the DeleteOptions body is not valid JSON: {exc}") from exc
                pre = (opts or {}).get("preconditions") or {}
                uid, rv = pre.get("uid"), pre.get("resourceVersion")
        deleted = await rest.delete(user, res, ns, info.name, uid=uid, resource_version=rv)
        return _render(request, res, deleted, clock)
    if verb == "deletecollection":
        return json_response(await rest.delete_collection(user, res, ns, _list_options(request)))
    raise MethodNotAllowed(f"the server does not allow {request.method} on this path")


async def _watch(
    request: web.Request,
    info: RequestInfo,
    res: ResourceInfo,
    ns: str | None,
    user: UserInfo,
    rest: RestService,
    clock: Clock,
) -> web.StreamResponse:
    q = request.query
    field_selector = q.get("fieldSelector")
    if info.name:
        pin = f"metadata.name={info.name}"
        field_selector = f"{field_selector},{pin}" if field_selector else pin
    opts = WatchOptions(
        label_selector=q.get("labelSelector"),
        field_selector=field_selector,
        resource_version=q.get("resourceVersion"),
        resource_version_match=q.get("resourceVersionMatch"),
        send_initial_events=_bool(q.get("sendInitialEvents")),
        allow_bookmarks=bool(_bool(q.get("allowWatchBookmarks"))),
    )
    # Spread server-chosen watch ends so reconnects do not arrive in one wave.
    timeout = _int(q, "timeoutSeconds") or _WATCH_END_JITTER.randint(
        _MAX_WATCH_SECONDS // 2, _MAX_WATCH_SECONDS
    )
    stream = await rest.watch(user, res, ns, opts)
    events = stream.events
    as_table = wants_table(request.headers.get("Accept", ""))
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    first = True
    last_rv = str(stream.start_revision)
    ticker = _with_bookmarks(events, opts.allow_bookmarks)
    try:
        async with asyncio.timeout(min(timeout, _MAX_WATCH_SECONDS * 2)):
            async for event in ticker:
                if event is None:
                    event = bookmark_event(res, int(last_rv))
                obj = event["object"]
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    last_rv = rv
                if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    obj = to_table(res, [obj], clock.now(), with_columns=first)
                    first = False
                    event = {"type": event["type"], "object": obj}
                await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
    except TimeoutError:
        pass  # timeoutSeconds elapsed: end the stream cleanly, the client re-watches
    finally:
        # Unregister from the storage watch hub now, not whenever the GC finds the generator;
        # the ticker first, so no read of ``events`` is still in flight.
        await ticker.aclose()
        await events.aclose()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _with_bookmarks(
    events: AsyncIterator[JsonObj], enabled: bool
) -> AsyncGenerator[JsonObj | None, None]:
    """Yield events; when idle for the bookmark interval, yield ``None`` (send a bookmark).

    Without bookmarks the events pass straight through (no task per event on the hot path).
    """
    if not enabled:
        async for event in events:
            yield event
        return
    iterator = events.__aiter__()
    pending: asyncio.Task[JsonObj] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=_BOOKMARK_INTERVAL)
            if not done:
                yield None
                continue
            task, pending = pending, None
            try:
                event = task.result()
            except StopAsyncIteration:
                return
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
