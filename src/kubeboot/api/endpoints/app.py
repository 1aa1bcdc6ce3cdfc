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

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubeboot.api.endpoints import discovery, openapi
from kubeboot.api.endpoints.encoding import (
    encode,
    error_response,
    is_pretty,
    object_response,
    page_not_found,
)
from kubeboot.api.endpoints.fieldvalidation import warning_headers
from kubeboot.api.endpoints.filters import (
    EXTRA_SPACE_WARNING,
    authorize_non_resource,
    bearer_token,
    credentials_of,
)
from kubeboot.api.endpoints.handlers import handle_resource
from kubeboot.api.endpoints.health import HEALTH_ENDPOINTS, HealthState, health_response
from kubeboot.api.endpoints.negotiation import negotiate_plain, wants_aggregated_discovery
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
from kubeboot.auth.serviceaccount_tokens import JWKS_PATH, OPENID_CONFIG_PATH
from kubeboot.clock import Clock
from kubeboot.durations import parse_go_duration_ns
from kubeboot.ledger.recorder import REQUEST_SOURCE
from kubeboot.metrics import CONTENT_TYPE
from kubeboot.metrics.apiserver import InflightWatermark, record_request
from kubeboot.resources.registry import GroupVersion, group_versions, served_groups
from kubeboot.resources.status import (
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    StatusError,
    Unauthorized,
)
from kubeboot.storage.interface import StoreUnavailable

__all__ = ["AUDIT_RECORD", "REQUEST_USER", "ApiContext", "build_app"]

log = logging.getLogger("kubeboot.api")

HEALTH_PREFIXES = tuple(f"/{e}" for e in HEALTH_ENDPOINTS)


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
    # Why the embedded controller manager is unwell (None: well), in the process running it.
    controllers: Callable[[], str | None] | None = None


API_CONTEXT = web.AppKey("api_context", ApiContext)
REQUEST_USER = web.RequestKey("kubeboot_user", UserInfo)
REQUEST_INFO = web.RequestKey("kubeboot_request_info", RequestInfo)
AUDIT_RECORD = web.RequestKey("kubeboot_audit", AuditRecord)
# Warnings about the request itself (not its body), added to whatever the answer is.
REQUEST_WARNINGS = web.RequestKey("kubeboot_warnings", list[str])


def _not_found(path: str) -> web.Response:
    """Under ``/api/`` or a served group, upstream's router answers a JSON 404 Status; any
    other unknown path is its mux's text 404."""
    parts = [p for p in path.split("/") if p]
    routed = parts[:1] == ["api"] and len(parts) > 1
    routed |= len(parts) > 1 and parts[0] == "apis" and parts[1] in served_groups()
    if routed:
        raise NotFound("the server could not find the requested resource", empty_details=True)
    return page_not_found()


def _openapi_document(request: web.Request, key: str) -> web.Response:
    """A group version's document; a stale ``?hash=`` is redirected to the current one and a
    current one may be cached for a year, as kube-openapi's handler does."""
    doc = openapi.openapi_document(key)
    if doc is None:
        return web.Response(status=404)  # upstream: an empty 404
    digest = openapi.document_hash(doc)
    headers = {"ETag": f'"{digest}"', "Vary": "Accept"}
    wanted = request.query.get("hash")
    if wanted:
        if wanted != digest:
            location = f"/openapi/v3/{key}?hash={digest}"
            headers["Location"] = location
            headers["Content-Type"] = "application/json"  # upstream's, on an empty body
            return web.Response(status=301, headers=headers)
        headers["Cache-Control"] = "public, immutable"
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=doc, content_type="application/json", headers=headers)


def _raw_json(data: Any) -> web.Response:
    """upstream's WriteRawJSON (``/version``): indented, no trailing newline."""
    return web.Response(body=json.dumps(data, indent=2).encode(), content_type="application/json")


def _discovery(
    request: web.Request, doc: dict[str, Any], *, aggregated_core: bool | None = None
) -> web.Response:
    """A discovery document, negotiated; ``/api`` and ``/apis`` also speak aggregated v2."""
    accept = request.headers.get("Accept", "")
    if aggregated_core is not None and (chosen := wants_aggregated_discovery(accept)):
        etag = discovery.discovery_etag(aggregated_core)
        headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": "public"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        body, ctype = encode(
            discovery.aggregated_discovery(aggregated_core),
            chosen.media_type,
            pretty=is_pretty(request, chosen),
        )
        response = web.Response(body=body, headers=headers)
        response.content_type = ctype
        response.headers["Content-Type"] = (
            f"{ctype};g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        )
        return response
    negotiated = negotiate_plain(accept)
    return object_response(request, negotiated, doc)


def _service_account_issuer(path: str, ctx: ApiContext) -> web.Response | None:
    """The ServiceAccount issuer's OIDC discovery document and JWKS (upstream
    ``pkg/routes/openidmetadata.go``): cacheable for an hour; none without an https issuer."""
    tokens = ctx.rest.service_accounts
    if tokens is None:
        return None
    if path == OPENID_CONFIG_PATH:
        body, content_type = tokens.openid_configuration(ctx.server_address), "application/json"
    else:
        body, content_type = tokens.jwks(), "application/jwk-set+json"
    if body is None:
        return None
    headers = {
        "Content-Type": content_type,
        "Cache-Control": f"public, max-age={tokens.discovery_max_age}",
    }
    return web.Response(body=body, headers=headers)


async def _non_resource(request: web.Request, ctx: ApiContext) -> web.Response | None:
    path = request.path
    if path in ("/version", "/version/"):
        return _raw_json(discovery.version_info())
    parts = [p for p in path.strip("/").split("/") if p]
    if parts and parts[0] in HEALTH_ENDPOINTS:
        if path.endswith("/") and len(parts) == 1:
            return None  # "/healthz/" is no check, as upstream's mux says
        state = HealthState(ctx.rest.store, lambda: not ctx.ready, ctx.controllers)
        return await health_response(request, parts[0], "/".join(parts[1:]), state)
    if path.rstrip("/") in (OPENID_CONFIG_PATH, JWKS_PATH):
        return _service_account_issuer(path.rstrip("/"), ctx)
    if path in ("/api", "/api/"):
        return _discovery(request, discovery.api_versions(ctx.server_address), aggregated_core=True)
    if path in ("/apis", "/apis/"):
        return _discovery(request, discovery.api_group_list(), aggregated_core=False)
    if path in ("/openapi/v3", "/openapi/v3/"):
        # Upstream writes the index without a Content-Type: Go's sniffing names it text.
        return web.Response(
            body=openapi.openapi_index(), headers={"Content-Type": "text/plain; charset=utf-8"}
        )
    if path.startswith("/openapi/v3/"):
        return _openapi_document(request, path[len("/openapi/v3/") :])
    if len(parts) == 2 and parts[0] == "api" and GroupVersion("", parts[1]) in group_versions():
        return _discovery(request, discovery.api_resource_list(GroupVersion("", parts[1])))
    if len(parts) == 2 and parts[0] == "apis":
        group = discovery.api_group(parts[1])
        return _discovery(request, group) if group else None
    if (
        len(parts) == 3
        and parts[0] == "apis"
        and GroupVersion(parts[1], parts[2]) in group_versions()
    ):
        return _discovery(request, discovery.api_resource_list(GroupVersion(parts[1], parts[2])))
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
        request[REQUEST_INFO] = info
        if record is not None:  # known before authentication, as upstream's RequestInfo
            record.verb = info.verb
            record.long_running = info.verb == "watch"
            if info.is_resource:
                record.object_ref = _object_ref(info)
        _check_timeout(request, info)
        creds = credentials_of(request)
        if bearer_token(request.headers.get("Authorization"))[1]:
            request[REQUEST_WARNINGS] = [EXTRA_SPACE_WARNING]
        try:
            user = await ctx.gate.authenticate(creds)
        except Unauthorized as err:
            if record is not None:
                record.authentication_failed = True
                record.status = {"message": authentication_failure_message(creds)}
            return error_response(err, request)
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
        # Per request (each runs in its own task): the issuance ledger's source address.
        REQUEST_SOURCE.set(request.remote or "")
        if info.is_resource:
            return await handle_resource(request, info, user, ctx.rest, ctx.clock)
        return await _serve_non_resource(request, ctx, user)
    except StatusError as err:
        return _failed(request, record, err)
    except StoreUnavailable as exc:
        # Any storage read not translated deeper down (etcd without quorum, a closed store).
        log.warning("storage unavailable serving %s %s: %s", request.method, request.path, exc)
        return _failed(
            request,
            record,
            ServiceUnavailable(f"storage is unavailable: {exc}; retry shortly", retry_after=1),
        )
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _failed(
            request, record, InternalError("an internal error occurred; see the server log")
        )


def _check_timeout(request: web.Request, info: RequestInfo) -> None:
    """``?timeout=`` is a Go duration; a bad one is 400 before authentication, as upstream's
    request-deadline filter (long-running requests — watches — are not checked)."""
    raw = request.query.get("timeout", "")
    if raw and info.verb != "watch":
        try:
            parse_go_duration_ns(raw)
        except ValueError as exc:
            raise BadRequest(f"invalid timeout specified in the request URL - {exc}") from exc


def _failed(request: web.Request, record: AuditRecord | None, err: StatusError) -> web.Response:
    if record is not None:
        record.status = {"status": "Failure", "message": err.message, "reason": err.reason}
    return error_response(err, request)


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


def _restful_route(path: str) -> bool:
    parts = [p for p in path.strip("/").split("/") if p]
    if parts in (["version"], ["api"]) or path.rstrip("/") in (OPENID_CONFIG_PATH, JWKS_PATH):
        return True
    if len(parts) == 2 and parts[0] == "api":
        return GroupVersion("", parts[1]) in group_versions()
    return (
        len(parts) == 3
        and parts[0] == "apis"
        and GroupVersion(parts[1], parts[2]) in group_versions()
    )


async def _serve_non_resource(
    request: web.Request, ctx: ApiContext, user: UserInfo
) -> web.Response:
    authorize_non_resource(ctx.rest.authorizer, user, request.method.lower(), request.path)
    if request.method not in ("GET", "HEAD") and _restful_route(request.path):
        # go-restful's routes (/version, /api, group versions) take GET only; the mux's own
        # handlers (/apis, /apis/<group>, health, OpenAPI, metrics) answer any method.
        return error_response(
            MethodNotAllowed(
                "the server does not allow this method on the requested resource",
                empty_details=True,
            ),
            request,
        )
    if request.path == "/metrics" and ctx.metrics is not None:
        return web.Response(body=await ctx.metrics(), headers={"Content-Type": CONTENT_TYPE})
    response = await _non_resource(request, ctx)
    if response is None:
        return _not_found(request.path)
    if response.status == 500 and request.path.startswith(HEALTH_PREFIXES):
        log.warning("%s failed: %s", request.path, (response.text or "").replace("\n", "; "))
    return response


def build_app(ctx: ApiContext) -> web.Application:
    # client_max_size is a backstop; read_body enforces the documented 3 MiB with a Status.
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[API_CONTEXT] = ctx
    # [\s\S]: "." would not match a newline (a %0A in the path), leaving aiohttp's
    # plain-text 404 instead of a Status (found by tests/integration/api/test_fuzz_requests.py).
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _dispatch)
    app.on_response_prepare.append(_cache_control)
    app.on_response_prepare.append(_on_response_prepare)
    return app


async def _cache_control(request: web.Request, response: web.StreamResponse) -> None:
    """Upstream's WithCacheControl: nothing the API answers is cached unless it says so."""
    response.headers.setdefault("Cache-Control", "no-cache, private")
