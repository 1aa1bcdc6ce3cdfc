"""The aiohttp application: one catch-all route, non-resource endpoints, error rendering.

Routing is table-driven (``requestinfo`` + the resource registry) rather than one aiohttp
route per path, so adding a resource never touches this module. Every failure leaves here as
a ``Status`` body with the right code (storage unavailable: 503 with Retry-After); an
unexpected exception is logged and becomes a 500 without leaking internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from kubeboot.api import discovery, openapi
from kubeboot.api.filters import authorize_non_resource, credentials_of
from kubeboot.api.handlers import handle_resource
from kubeboot.api.http_io import error_response, json_response
from kubeboot.api.requestinfo import parse_request_info
from kubeboot.api.rest import RestService
from kubeboot.auth.interface import AuthenticationFailed, Authenticator, UserInfo
from kubeboot.auth.ratelimit import RateLimits
from kubeboot.auth.users import ANONYMOUS_USER
from kubeboot.clock import Clock
from kubeboot.resources.registry import GroupVersion, group_versions
from kubeboot.resources.status import (
    InternalError,
    NotFound,
    ServiceUnavailable,
    StatusError,
    TooManyRequests,
    Unauthorized,
)
from kubeboot.storage.interface import StoreUnavailable

__all__ = ["REQUEST_USER", "ApiContext", "build_app"]

log = logging.getLogger("kubeboot.api")

_HEALTH_PATHS = {"/healthz", "/livez", "/readyz", "/healthz/ping", "/livez/ping", "/readyz/ping"}


@dataclass
class ApiContext:
    rest: RestService
    authenticator: Authenticator
    clock: Clock
    server_address: str = ""
    ready: bool = True
    rate_limits: RateLimits = field(default_factory=RateLimits)


API_CONTEXT = web.AppKey("api_context", ApiContext)
REQUEST_USER = web.RequestKey("kubeboot_user", UserInfo)


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
    ctx = request.app[API_CONTEXT]
    try:
        user = await _authenticate(request, ctx)
        request[REQUEST_USER] = user
        watch = request.query.get("watch", "").lower() in ("true", "1")
        info = parse_request_info(request.method, request.path, watch)
        if info.is_resource:
            return await handle_resource(request, info, user, ctx.rest, ctx.clock)
        return _serve_non_resource(request, ctx, user)
    except StatusError as err:
        return error_response(err)
    except StoreUnavailable as exc:
        # Any storage read not translated deeper down (etcd without quorum, a closed store).
        log.warning("storage unavailable serving %s %s: %s", request.method, request.path, exc)
        return error_response(
            ServiceUnavailable(f"storage is unavailable: {exc}; retry shortly", retry_after=1)
        )
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return error_response(InternalError("an internal error occurred; see the server log"))


async def _authenticate(request: web.Request, ctx: ApiContext) -> UserInfo:
    """Authenticate, charging failures and anonymous requests to the source's rate budgets.

    A source over its failed-authentication budget gets 429 before its credential is even
    looked at, so a token-guessing flood learns nothing more once it is throttled.
    """
    creds = credentials_of(request)
    source = creds.remote_addr
    limits = ctx.rate_limits
    presented = creds.bearer is not None or creds.client_cert_der is not None
    if presented and (wait := limits.failed_auth.retry_after(source)):
        raise TooManyRequests(
            f"too many failed authentication attempts from {source}; retry in {wait}s",
            retry_after=wait,
        )
    try:
        user = await ctx.authenticator.authenticate(creds)
    except AuthenticationFailed as exc:
        log.info("authentication failed from %s: %s", source, exc)
        limits.failed_auth.take(source)
        raise Unauthorized("Unauthorized") from None
    if user.name == ANONYMOUS_USER and (wait := limits.anonymous.take(source)):
        raise TooManyRequests(
            f"too many anonymous requests from {source}; retry in {wait}s", retry_after=wait
        )
    return user


def _serve_non_resource(request: web.Request, ctx: ApiContext, user: UserInfo) -> web.Response:
    if request.method not in ("GET", "HEAD"):
        raise NotFound("the server could not find the requested resource")
    authorize_non_resource(ctx.rest.authorizer, user, "get", request.path)
    response = _non_resource(request.path, ctx)
    if response is None:
        raise NotFound("the server could not find the requested resource")
    return response


def build_app(ctx: ApiContext) -> web.Application:
    # client_max_size is a backstop; read_body enforces the documented 3 MiB with a Status.
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[API_CONTEXT] = ctx
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app
