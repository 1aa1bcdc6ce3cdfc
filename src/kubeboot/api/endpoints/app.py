"""The aiohttp application: one catch-all route, non-resource endpoints, error rendering.

Routing is table-driven (``requestinfo`` + the resource registry) rather than one aiohttp
route per path, so adding a resource never touches this module. Every failure leaves here as
a ``Status`` body with the right code (storage unavailable: 503 with Retry-After); an
unexpected exception is logged and becomes a 500 without leaking internals.

Per request, in upstream's filter order: audit record opened → authentication (with the rate
budgets and anonymous CIDRs, :class:`~kubeboot.auth.gate.AuthenticationGate`) →
impersonation (the headers are dropped once applied) → the handler. With
``--audit-log-path`` every response is audited (:mod:`kubeboot.auth.audit`): watches when
their headers go out and when they end, everything else once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from kubeboot.api.endpoints import discovery, openapi
from kubeboot.api.endpoints.fieldvalidation import warning_headers
from kubeboot.api.endpoints.filters import (
    EXTRA_SPACE_WARNING,
    authorize_non_resource,
    bearer_token,
    credentials_of,
)
from kubeboot.api.endpoints.handlers import handle_resource
from kubeboot.api.endpoints.http_io import error_response, json_response
from kubeboot.api.endpoints.requestinfo import RequestInfo, parse_request_info
from kubeboot.api.registry.rest import RestService
from kubeboot.auth.audit import (
    STAGE_RESPONSE_COMPLETE,
    STAGE_RESPONSE_STARTED,
    AuditRecord,
    AuditSink,
    authentication_failure_message,
)
from kubeboot.auth.auditpolicy import AuditPolicy
from kubeboot.auth.gate import AuthenticationGate
from kubeboot.auth.impersonation import impersonate, is_impersonation_header
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import Clock
from kubeboot.durations import parse_go_duration_ns
from kubeboot.metrics import CONTENT_TYPE
from kubeboot.metrics.apiserver import InflightWatermark, record_request
from kubeboot.resources.registry import GroupVersion, group_versions
from kubeboot.resources.status import (
    BadRequest,
    InternalError,
    NotFound,
    ServiceUnavailable,
    StatusError,
    Unauthorized,
)
from kubeboot.storage.interface import StoreUnavailable

__all__ = ["AUDIT_RECORD", "REQUEST_USER", "ApiContext", "build_app"]

log = logging.getLogger("kubeboot.api")

_READYZ_STORAGE_SECONDS = 2.0
_HEALTH_PATHS = {"/healthz", "/livez", "/readyz", "/healthz/ping", "/livez/ping", "/readyz/ping"}


@dataclass
class ApiContext:
    rest: RestService
    gate: AuthenticationGate
    clock: Clock
    server_address: str = ""
    ready: bool = True
    audit: AuditSink | None = None
    audit_policy: AuditPolicy | None = None  # None: every event at Metadata level
    # The Prometheus text of this server (all its processes), and the in-flight counts.
    metrics: Callable[[], Awaitable[bytes]] | None = None
    inflight: InflightWatermark = field(default_factory=InflightWatermark)


API_CONTEXT = web.AppKey("api_context", ApiContext)
REQUEST_USER = web.RequestKey("kubeboot_user", UserInfo)
REQUEST_INFO = web.RequestKey("kubeboot_request_info", RequestInfo)
AUDIT_RECORD = web.RequestKey("kubeboot_audit", AuditRecord)
# Warnings about the request itself (not its body), added to whatever the answer is.
REQUEST_WARNINGS = web.RequestKey("kubeboot_warnings", list[str])


def _non_resource(path: str, ctx: ApiContext) -> web.Response | None:
    if path in ("/version", "/version/"):
        return json_response(discovery.version_info())
    if path in _HEALTH_PATHS:
        if not ctx.ready and path.startswith("/readyz"):
            return web.Response(status=500, text="not ready", content_type="text/plain")
        return web.Response(text="ok", content_type="text/plain")
    if path in ("/api", "/api/"):
        return json_response(discovery.api_versions(ctx.server_address))
    if path in ("/apis", "/apis/"):
        return json_response(discovery.api_group_list())
    if path == "/openapi/v3" or path == "/openapi/v3/":
        return json_response(openapi.openapi_index())
    if path.startswith("/openapi/v3/"):
        doc = openapi.openapi_document(path[len("/openapi/v3/") :])
        return json_response(doc) if doc is not None else None
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) == 2 and parts[0] == "api" and GroupVersion("", parts[1]) in group_versions():
        return json_response(discovery.api_resource_list(GroupVersion("", parts[1])))
    if len(parts) == 2 and parts[0] == "apis":
        group = discovery.api_group(parts[1])
        return json_response(group) if group else None
    if (
        len(parts) == 3
        and parts[0] == "apis"
        and GroupVersion(parts[1], parts[2]) in group_versions()
    ):
        return json_response(discovery.api_resource_list(GroupVersion(parts[1], parts[2])))
    return None


async def _dispatch(request: web.Request) -> web.StreamResponse:
    """Every request, measured as upstream's ``MonitorRequest`` (count, latency, in flight)."""
    ctx = request.app[API_CONTEXT]
    kind = "readOnly" if request.method in ("GET", "HEAD") else "mutating"
    ctx.inflight.started(kind)
    start = time.perf_counter()
    code = 500
    try:
        response = await _audited(request, ctx)
        code = response.status
        return response
    finally:
        ctx.inflight.finished(kind)
        info = request.get(REQUEST_INFO)
        if info is not None and info.is_resource:
            scope = (
                "resource"
                if info.name or info.verb == "create"
                else ("namespace" if info.namespace else "cluster")
            )
            record_request(
                info.verb,
                info.group,
                info.version,
                info.resource,
                info.subresource,
                scope,
                code,
                time.perf_counter() - start,
            )
        else:
            record_request(request.method, "", "", "", "", "", code, time.perf_counter() - start)


async def _audited(request: web.Request, ctx: ApiContext) -> web.StreamResponse:
    audit = ctx.audit
    if audit is None:
        return await _serve(request, ctx, None)
    record = AuditRecord(
        audit_id=AuditRecord.new_audit_id(request.headers.get("Audit-ID")),
        request_uri=request.raw_path,
        verb=request.method.lower(),
        source_ip=request.remote or "",
        user_agent=request.headers.get("User-Agent", ""),
        received=ctx.clock.now(),
    )
    request[AUDIT_RECORD] = record
    try:
        response = await _serve(request, ctx, record)
        record.code = response.status
        return response
    finally:
        # Upstream: a failed authentication is one ResponseStarted event, nothing more.
        stage = STAGE_RESPONSE_STARTED if record.authentication_failed else STAGE_RESPONSE_COMPLETE
        _audit(ctx, audit, record, stage)


async def _serve(
    request: web.Request, ctx: ApiContext, record: AuditRecord | None
) -> web.StreamResponse:
    try:
        # Upstream's RequestInfo: any value but "", "0" and "false" asks for a watch.
        watch = request.query.get("watch", "").lower() not in ("", "0", "false")
        info = parse_request_info(request.method, request.path, watch)
        if not watch:
            _check_timeout(request.query.get("timeout"))
        request[REQUEST_INFO] = info
        if record is not None:  # known before authentication, as upstream's RequestInfo
            record.verb = info.verb
            record.long_running = info.verb == "watch"
            if info.is_resource:
                record.object_ref = _object_ref(info)
        creds = credentials_of(request)
        if bearer_token(request.headers.get("Authorization"))[1]:
            request[REQUEST_WARNINGS] = [EXTRA_SPACE_WARNING]
        try:
            user = await ctx.gate.authenticate(creds)
        except Unauthorized as err:
            if record is not None:
                record.authentication_failed = True
                record.status = {"message": authentication_failure_message(creds)}
            return error_response(err)
        if record is not None:
            record.user = user
        impersonated = impersonate(user, request.headers.items(), ctx.rest.authorizer)
        if impersonated is not None:
            if record is not None:
                record.impersonated = impersonated
            user = impersonated
            kept = [(k, v) for k, v in request.headers.items() if not is_impersonation_header(k)]
            request = request.clone(headers=kept)
        request[REQUEST_USER] = user
        if info.is_resource:
            return await handle_resource(request, info, user, ctx.rest, ctx.clock)
        return await _serve_non_resource(request, ctx, user)
    except StatusError as err:
        return _failed(record, err)
    except StoreUnavailable as exc:
        # Any storage read not translated deeper down (etcd without quorum, a closed store).
        log.warning("storage unavailable serving %s %s: %s", request.method, request.path, exc)
        return _failed(
            record,
            ServiceUnavailable(f"storage is unavailable: {exc}; retry shortly", retry_after=1),
        )
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _failed(record, InternalError("an internal error occurred; see the server log"))


def _check_timeout(value: str | None) -> None:
    """Upstream's WithRequestDeadline: a ``timeout`` that is not a Go duration is a 400
    before authentication (kubeboot does not shorten requests by it; they are short)."""
    if value:
        try:
            parse_go_duration_ns(value)
        except ValueError as exc:
            raise BadRequest(f"invalid timeout specified in the request URL - {exc}") from None


def _failed(record: AuditRecord | None, err: StatusError) -> web.Response:
    if record is not None:
        record.status = {"status": "Failure", "message": err.message, "reason": err.reason}
    return error_response(err)


def _object_ref(info: RequestInfo) -> dict[str, str]:
    ref = {
        "resource": info.resource,
        "namespace": info.namespace or "",
        "name": info.name,
        "apiGroup": info.group,
        "apiVersion": info.version,
        "subresource": info.subresource,
    }
    return {k: v for k, v in ref.items() if v}


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Request warnings; Audit-ID on every audited response; a watch's ResponseStarted event."""
    for name, value in warning_headers(request.get(REQUEST_WARNINGS) or []).items():
        response.headers.add(name, value)
    record = request.get(AUDIT_RECORD)
    if record is None:
        return
    response.headers["Audit-ID"] = record.audit_id
    ctx = request.app[API_CONTEXT]
    if record.long_running and not record.authentication_failed and ctx.audit is not None:
        record.code = response.status
        _audit(ctx, ctx.audit, record, STAGE_RESPONSE_STARTED)


def _audit(ctx: ApiContext, audit: AuditSink, record: AuditRecord, stage: str) -> None:
    if ctx.audit_policy is None or ctx.audit_policy.logs(record, stage):
        audit.record(record, stage)


async def _storage_problem(ctx: ApiContext) -> str | None:
    """Why storage cannot serve a quorum read now (kube-apiserver's ``etcd`` readyz check)."""
    try:
        async with asyncio.timeout(_READYZ_STORAGE_SECONDS):
            await ctx.rest.store.current_revision()
    except StoreUnavailable as exc:
        return str(exc)
    except TimeoutError:
        return f"no answer within {_READYZ_STORAGE_SECONDS:g}s"
    return None


async def _serve_non_resource(
    request: web.Request, ctx: ApiContext, user: UserInfo
) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        raise NotFound("the server could not find the requested resource")
    authorize_non_resource(ctx.rest.authorizer, user, "get", request.path)
    if request.path == "/metrics" and ctx.metrics is not None:
        return web.Response(body=await ctx.metrics(), headers={"Content-Type": CONTENT_TYPE})
    if request.path == "/readyz" and (problem := await _storage_problem(ctx)):
        # A replica cut off from etcd leaves the load balancer's rotation.
        log.warning("readyz: storage not ready: %s", problem)
        return web.Response(
            status=500, text="[-]etcd failed: reason withheld\nreadyz check failed\n"
        )
    response = _non_resource(request.path, ctx)
    if response is None:
        raise NotFound("the server could not find the requested resource")
    return response


def build_app(ctx: ApiContext) -> web.Application:
    # client_max_size is a backstop; read_body enforces the documented 3 MiB with a Status.
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[API_CONTEXT] = ctx
    # [\s\S]: "." would not match a newline (a %0A in the path), leaving aiohttp's
    # plain-text 404 instead of a Status (found by tests/integration/api/test_fuzz_requests.py).
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _dispatch)
    app.on_response_prepare.append(_on_response_prepare)
    return app
