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

from kubeboot.api.endpoints.fieldvalidation import field_validation, warning_headers
from kubeboot.api.endpoints.http_io import (
    decode_body,
    json_response,
    read_body,
    read_raw_body,
)
from kubeboot.api.endpoints.negotiation import check_acceptable, check_content_type
from kubeboot.api.endpoints.requestinfo import RequestInfo
from kubeboot.api.endpoints.tables import to_table, wants_table
from kubeboot.api.registry.conform import conform, conform_delete_options
from kubeboot.api.registry.listwatch import bookmark_event
from kubeboot.api.registry.patch import PATCH_CONTENT_TYPES
from kubeboot.api.registry.queryparams import list_options, watch_options
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
    qualified_resource,
)

__all__ = ["handle_resource"]

JsonObj = dict[str, Any]
_BOOKMARK_INTERVAL = 60.0
_MAX_WATCH_SECONDS = 1800
# One generator for the process: seeding a new one per watch read os.urandom and cost
# 1.2 % of the server's CPU in the join storm profile.
_WATCH_END_JITTER = random.Random()  # noqa: S311 - spreading load, not a secret
# The verbs a resource path can mean (requestinfo); anything else is 405 after authorization.
_VERBS = frozenset(
    ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
)
_BODY_VERBS = frozenset(("create", "update", "patch"))
# go-restful's 405 as kube-apiserver renders it (NewGenericServerResponse).
_METHOD_NOT_ALLOWED = "the server does not allow this method on the requested resource"


def _render(
    request: web.Request,
    res: ResourceInfo,
    obj: JsonObj,
    clock: Clock,
    status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    headers = warning_headers(warnings) if warnings else None
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
    ns = info.namespace if res.namespaced else None
    verb = info.verb
    if verb in _BODY_VERBS or verb in ("delete", "deletecollection") or verb not in _VERBS:
        # Upstream authorizes in a filter, before any handler reads a byte of the body.
        rest.authorize(user, verb, res, ns, info.name, info.subresource)
    _check_method(request.method, info, res)
    accept = request.headers.get("Accept")
    if verb == "patch":  # its route declares the patch types (POST/PUT negotiate later)
        check_content_type(request.headers.get("Content-Type"), tuple(PATCH_CONTENT_TYPES))
    if verb not in ("get", "list", "watch"):
        check_acceptable(accept)

    if not res.stored:
        fv = field_validation(request.query, verb)
        body = await read_body(request, res)
        fv.attach(body.decoded, body.raw)
        obj = conform(res, body.value, fv)
        return json_response(
            review(rest.authorizer, user, res, ns, obj), 201, headers=warning_headers(fv.warnings)
        )

    if verb == "get":
        rv = request.query.get("resourceVersion")
        got = await rest.get(user, res, ns, info.name, info.subresource, resource_version=rv)
        check_acceptable(accept)  # after authorization, as upstream's filters run first
        return _render(request, res, got, clock)
    if verb == "list":
        listed = await rest.list(user, res, ns, list_options(request.query))
        check_acceptable(accept)
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
        if request.query.get("dryRun"):
            raise BadRequest("dryRun is not supported by kubeboot; drop --dry-run=server")
        fv = field_validation(request.query, verb)
        body = await read_body(request, res)
        fv.attach(body.decoded, body.raw)
        created = await rest.create(user, res, ns, body.value, validation=fv)
        return _render(request, res, created, clock, 201, fv.warnings)
    if verb == "update":
        fv = field_validation(request.query, verb)
        body = await read_body(request, res)
        fv.attach(body.decoded, body.raw)
        updated = await rest.update(
            user, res, ns, info.name, body.value, info.subresource, validation=fv
        )
        return _render(request, res, updated, clock, 200, fv.warnings)
    if verb == "patch":
        patch_type = PATCH_CONTENT_TYPES.get(request.content_type)
        if patch_type is None:  # no Content-Type at all
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join(PATCH_CONTENT_TYPES)
            )
        fv = field_validation(request.query, verb)
        body = await read_body(request, res, allowed=tuple(PATCH_CONTENT_TYPES), typed=False)
        fv.attach(body.decoded, body.raw)
        patched = await rest.patch(
            user, res, ns, info.name, body.value, patch_type, info.subresource, validation=fv
        )
        return _render(request, res, patched, clock, 200, fv.warnings)
    if verb == "delete":
        uid = rv = None
        raw = await read_raw_body(request)
        if raw:
            opts = conform_delete_options(decode_body(request, raw).value)
            pre = opts.get("preconditions") or {}
            uid, rv = pre.get("uid"), pre.get("resourceVersion")
        deleted = await rest.delete(user, res, ns, info.name, uid=uid, resource_version=rv)
        return _render(request, res, deleted, clock)
    if verb == "deletecollection":
        return json_response(
            await rest.delete_collection(user, res, ns, list_options(request.query))
        )
    raise MethodNotAllowed(_METHOD_NOT_ALLOWED, generic=True)


def _check_method(method: str, info: RequestInfo, res: ResourceInfo) -> None:
    """405 for a method the path does not take (go-restful's answer upstream)."""
    verb = info.verb
    not_allowed = MethodNotAllowed(_METHOD_NOT_ALLOWED, generic=True)
    if verb not in _VERBS:
        raise not_allowed
    if info.subresource:
        if info.subresource not in res.subresources:
            raise NotFound("the server could not find the requested resource", generic=True)
        if verb not in ("get", "update", "patch"):
            raise not_allowed
        return
    named = bool(info.name)
    if (verb == "create" and named) or (verb in ("update", "patch") and not named):
        raise not_allowed
    if verb not in res.verbs:
        kind = qualified_resource(res.plural, res.group)
        raise MethodNotAllowed(f'{verb} is not supported on resources of kind "{kind}"')


async def _watch(
    request: web.Request,
    info: RequestInfo,
    res: ResourceInfo,
    ns: str | None,
    user: UserInfo,
    rest: RestService,
    clock: Clock,
) -> web.StreamResponse:
    opts, timeout_seconds = watch_options(request.query, info.name)
    # Spread server-chosen watch ends so reconnects do not arrive in one wave.
    timeout = timeout_seconds or _WATCH_END_JITTER.randint(
        _MAX_WATCH_SECONDS // 2, _MAX_WATCH_SECONDS
    )
    timeout = max(timeout, 0)
    stream = await rest.watch(user, res, ns, opts)
    check_acceptable(request.headers.get("Accept"))
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
