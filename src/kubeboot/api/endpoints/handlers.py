"""Resource requests over HTTP: negotiate, authorize, decode, call the REST service, render.

Handlers only move bytes (style rule 1): every decision is made in ``RestService``, the
strategies or the authorizer. In upstream's order: the router's checks (404/405/415/406,
:mod:`.routes`) and the response type's negotiation (:mod:`.negotiation`) come first, each
refusal preceded by the authorization upstream's filter makes before them (403 wins); the
request is authorized from its path before any body is read (a forbidden delete is 403
whatever its body), then the body is decoded. Responses go
out in the negotiated type (JSON, YAML, protobuf), converted when asked
(:mod:`.transform`). Watches stream events framed for their type (newline-delimited JSON or
length-prefixed protobuf), end after ``timeoutSeconds``, and send bookmarks when allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from aiohttp import web

from kubeboot.api.endpoints.encoding import go_json, in_go_order, object_response, page_not_found
from kubeboot.api.endpoints.fieldvalidation import field_validation, warning_headers
from kubeboot.api.endpoints.http_io import decode_body, read_body, read_raw_body
from kubeboot.api.endpoints.negotiation import (
    PROTOBUF,
    Negotiated,
    negotiate,
    negotiate_stream,
)
from kubeboot.api.endpoints.protobuf import can_encode, encode_protobuf_object, encode_watch_frame
from kubeboot.api.endpoints.requestinfo import RequestInfo
from kubeboot.api.endpoints.routes import check_route
from kubeboot.api.endpoints.transform import include_object_option, transform
from kubeboot.api.registry.conform import conform, conform_delete_options, interpret
from kubeboot.api.registry.deleteoptions import (
    DeleteOptions,
    dry_run_error,
    parse_delete_options,
)
from kubeboot.api.registry.fieldmanager import manager_name
from kubeboot.api.registry.listwatch import bookmark_event
from kubeboot.api.registry.patch import PATCH_CONTENT_TYPES
from kubeboot.api.registry.queryparams import list_options, watch_options
from kubeboot.api.registry.rest import RestService
from kubeboot.api.registry.selectors import parse_field_selector
from kubeboot.api.registry.tokenrequest import TOKEN_REQUEST
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import Clock
from kubeboot.resources.registry import ResourceInfo, served_groups
from kubeboot.resources.status import (
    BadRequest,
    FieldError,
    Invalid,
    MethodNotAllowed,
    StatusError,
)

__all__ = ["handle_resource"]

JsonObj = dict[str, Any]
_BOOKMARK_INTERVAL = 60.0
_MAX_WATCH_SECONDS = 1800
# One generator for the process: seeding a new one per watch read os.urandom and cost
# 1.2 % of the server's CPU in the join storm profile.
_WATCH_END_JITTER = random.Random()  # noqa: S311 - spreading load, not a secret
# Verbs whose request carries a body: authorized before it is read.
_BODY_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def _dry_run(request: web.Request, options_kind: str) -> bool:
    """``dryRun=All`` (the only value upstream accepts; 422 on the options kind otherwise)."""
    values = request.query.getall("dryRun", [])
    invalid = dry_run_error(options_kind, values)
    if invalid is not None:
        raise invalid
    return bool(values)


def _apply_options(request: web.Request, patch_type: str) -> bool:
    """``force`` (apply only) and the field manager an apply must name (422s as upstream)."""
    force = request.query.get("force")
    causes = []
    if patch_type == "apply" and not request.query.get("fieldManager"):
        causes.append(FieldError.required("fieldManager", "is required for apply patch"))
    if force is not None and patch_type != "apply":
        causes.append(FieldError.forbidden("force", "may not be specified for non-apply patch"))
    if causes:
        raise Invalid.of("PatchOptions", "meta.k8s.io", "", causes)
    return (force or "").lower() in ("true", "1")


def _manager(request: web.Request) -> str:
    """The field manager of a write (managedFields): ``fieldManager``, else the User-Agent."""
    return manager_name(request.query.get("fieldManager"), request.headers.get("User-Agent", ""))


class _Responder:
    """Renders objects for one request: negotiated type, conversion, warnings."""

    def __init__(
        self,
        request: web.Request,
        res: ResourceInfo,
        negotiated: Negotiated,
        clock: Clock,
    ) -> None:
        self.request = request
        self.res = res
        self.negotiated = negotiated
        self.clock = clock
        self.include_object = include_object_option(request.query, negotiated)

    def __call__(
        self, obj: JsonObj, status: int = 200, warnings: list[str] | None = None
    ) -> web.Response:
        headers = warning_headers(warnings) if warnings else None
        out = transform(
            obj,
            self.negotiated,
            self.res,
            self.clock.now(),
            include_object=self.include_object,
        )
        return object_response(self.request, self.negotiated, out, status, headers=headers)


async def handle_resource(
    request: web.Request, info: RequestInfo, user: UserInfo, rest: RestService, clock: Clock
) -> web.StreamResponse:
    if info.group and info.group not in served_groups():
        return page_not_found()  # no such group: the mux's text 404
    accept = request.headers.get("Accept", "")
    verb = info.verb
    try:
        check_route(info, request.method, accept, request.headers.get("Content-Type", ""))
        res = info.info
        assert res is not None  # check_route found a route for it
        protobuf = can_encode(res.kind)
        negotiate_for = negotiate_stream if verb == "watch" else negotiate
        negotiated = negotiate_for(accept, table=res.stored, protobuf=protobuf)
    except StatusError:
        _authorize_refused(info, user, rest)
        raise
    ns = info.namespace if res.namespaced else None
    if verb == "watch":
        return await _watch(request, info, res, ns, user, rest, clock, negotiated)
    render = _Responder(request, res, negotiated, clock)
    if verb in _BODY_VERBS:
        # Upstream authorizes in a filter, before any handler reads a byte of the body, with
        # the field selector (a node may delete only its own ResourceSlices); one that does
        # not parse carries no requirements there either.
        fields: tuple[tuple[str, str, str], ...] = ()
        if verb == "deletecollection":
            with contextlib.suppress(BadRequest):
                fields = parse_field_selector(
                    request.query.get("fieldSelector"), res
                ).requirements()
        rest.authorize(user, verb, res, ns, info.name, info.subresource, fields)

    if not res.stored:
        fv = field_validation(request.query, verb)
        body = await read_body(request, res)
        fv.attach(body.decoded, body.raw)
        obj = conform(res, body.value, fv)
        if res.plural == "tokenreviews":
            answer = await rest.review_token(res, obj, manager=_manager(request))
        else:
            answer = rest.review(user, res, ns, obj, manager=_manager(request))
        return render(answer, 201, fv.warnings)
    if verb == "create" and info.subresource == "token":
        assert ns is not None  # serviceaccounts are namespaced: the route needs one
        fv = field_validation(request.query, verb)
        body = await read_body(request, TOKEN_REQUEST)
        fv.attach(body.decoded, body.raw)
        obj = conform(TOKEN_REQUEST, body.value, fv)
        issued = await rest.create_token(user, ns, info.name, obj)
        return render(issued.token_request, 201, [*fv.warnings, *issued.warnings])

    if verb == "get":
        rv = request.query.get("resourceVersion")
        got = await rest.get(user, res, ns, info.name, info.subresource, resource_version=rv)
        return render(got)
    if verb == "list":
        return render(await rest.list(user, res, ns, list_options(request.query)))
    if verb == "create":
        fv = field_validation(request.query, verb)
        body = await read_body(request, res)
        interpret(res, body.value, body.raw)  # its bytes quoted when it is no object at all
        fv.attach(body.decoded, body.raw)
        created = await rest.create(
            user,
            res,
            ns,
            body.value,
            dry_run=_dry_run(request, "CreateOptions"),
            manager=_manager(request),
            validation=fv,
        )
        return render(created, 201, fv.warnings)
    if verb == "update":
        fv = field_validation(request.query, verb)
        body = await read_body(request, res)
        interpret(res, body.value, body.raw)
        fv.attach(body.decoded, body.raw)
        updated = await rest.update(
            user,
            res,
            ns,
            info.name,
            body.value,
            info.subresource,
            dry_run=_dry_run(request, "UpdateOptions"),
            manager=_manager(request),
            validation=fv,
        )
        return render(updated, 200, fv.warnings)
    if verb == "patch":
        patch_type = PATCH_CONTENT_TYPES[request.content_type]  # the route checked it
        fv = field_validation(request.query, verb)
        body = await read_body(request, res, allowed=tuple(PATCH_CONTENT_TYPES), typed=False)
        fv.attach(body.decoded, body.raw)
        force = _apply_options(request, patch_type)
        if patch_type == "apply":
            result, was_created = await rest.apply(
                user,
                res,
                ns,
                info.name,
                body.value,
                info.subresource,
                manager=_manager(request),
                validation=fv,
                dry_run=_dry_run(request, "PatchOptions"),
                force=force,
            )
            return render(result, 201 if was_created else 200, fv.warnings)
        patched = await rest.patch(
            user,
            res,
            ns,
            info.name,
            body.value,
            patch_type,
            info.subresource,
            dry_run=_dry_run(request, "PatchOptions"),
            manager=_manager(request),
            validation=fv,
        )
        return render(patched, 200, fv.warnings)
    if verb == "delete":
        options = await _delete_options(request)
        return render(await rest.delete(user, res, ns, info.name, options))
    if verb == "deletecollection":
        options = await _delete_options(request)
        return render(
            await rest.delete_collection(user, res, ns, list_options(request.query), options)
        )
    raise MethodNotAllowed(f"the server does not allow {request.method} on this path")


def _authorize_refused(info: RequestInfo, user: UserInfo, rest: RestService) -> None:
    """Upstream's authorization filter runs before its router and its handlers' negotiation:
    a request they refuse (404/405/406/415) is authorized first, so a client that may not
    make it learns no more than 403. A resource kubeboot does not serve has no attributes to
    authorize here and keeps its 404."""
    res = info.info
    if res is not None:
        ns = info.namespace if res.namespaced else None
        rest.authorize(user, info.verb, res, ns, info.name, info.subresource)


async def _delete_options(request: web.Request) -> DeleteOptions:
    """The body's DeleteOptions (JSON, YAML or protobuf), else the query's; validated."""
    raw = await read_raw_body(request)
    body = conform_delete_options(decode_body(request, raw).value) if raw.strip() else None
    return parse_delete_options(body, request.query)


def _frame(negotiated: Negotiated, event_type: str, obj: JsonObj) -> bytes:
    if negotiated.media_type == PROTOBUF:
        return encode_watch_frame(event_type, encode_protobuf_object(obj))
    return go_json({"type": event_type, "object": in_go_order(obj)})


async def _watch(
    request: web.Request,
    info: RequestInfo,
    res: ResourceInfo,
    ns: str | None,
    user: UserInfo,
    rest: RestService,
    clock: Clock,
    negotiated: Negotiated,
) -> web.StreamResponse:
    include_object = include_object_option(request.query, negotiated)
    opts, timeout_seconds = watch_options(request.query, info.name)
    # Spread server-chosen watch ends so reconnects do not arrive in one wave.
    timeout = timeout_seconds or _WATCH_END_JITTER.randint(
        _MAX_WATCH_SECONDS // 2, _MAX_WATCH_SECONDS
    )
    timeout = max(timeout, 0)
    stream = await rest.watch(user, res, ns, opts)
    events = stream.events
    ctype = f"{PROTOBUF};stream=watch" if negotiated.media_type == PROTOBUF else "application/json"
    response = web.StreamResponse(status=200, headers={"Content-Type": ctype})
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
                # Upstream sends the Table's column definitions with the first event only.
                obj = transform(
                    obj,
                    negotiated,
                    res,
                    clock.now(),
                    include_object=include_object,
                    with_columns=first,
                )
                first = False
                await response.write(_frame(negotiated, event["type"], obj))
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
