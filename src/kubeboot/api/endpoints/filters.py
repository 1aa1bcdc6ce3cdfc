"""Who is asking: credentials from the connection and headers, then the authenticator.

This is the one place the HTTP layer turns a request into a :class:`UserInfo`; the REST
service authorizes resource requests itself and :func:`authorize_non_resource` covers
discovery, health and OpenAPI paths.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from kubeboot.auth.interface import Attributes, Authorizer, Credentials, UserInfo
from kubeboot.resources.status import Forbidden

__all__ = ["EXTRA_SPACE_WARNING", "authorize_non_resource", "bearer_token", "credentials_of"]


# Upstream's warning when "Bearer  <token>" (two spaces) is ignored as no credential.
EXTRA_SPACE_WARNING = (
    "the provided Authorization header contains extra space before the bearer token, and is ignored"
)


def bearer_token(header: str | None) -> tuple[str | None, bool]:
    """The bearer token of an Authorization header, as upstream's bearertoken parser reads it.

    ``Bearer <token>[ <ignored>]``; anything else, or an empty token, is no credential at
    all (anonymous, not a failed authentication). The flag is True for ``Bearer  <token>``
    (an empty first token followed by more), which upstream answers with a warning.
    """
    parts = (header or "").strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None, False
    if not parts[1]:
        return None, len(parts) == 3
    return parts[1], False


def credentials_of(request: web.Request) -> Credentials:
    bearer, _ = bearer_token(request.headers.get("Authorization"))
    der: bytes | None = None
    transport = request.transport
    if transport is not None:
        sslobj = transport.get_extra_info("ssl_object")
        if isinstance(sslobj, ssl.SSLObject | ssl.SSLSocket):
            der = sslobj.getpeercert(binary_form=True) or None
    peer = request.remote or ""
    return Credentials(bearer=bearer, client_cert_der=der, remote_addr=peer)


def authorize_non_resource(authorizer: Authorizer, user: UserInfo, verb: str, path: str) -> None:
    decision = authorizer.authorize(
        Attributes(user=user, verb=verb, resource_request=False, path=path)
    )
    if not decision.allowed:
        raise Forbidden(
            f'forbidden: User "{user.name}" cannot {verb} path "{path}"'
            + (f": {decision.reason}" if decision.reason else ""),
            empty_details=True,  # upstream names an empty GroupResource: "details": {}
        )
