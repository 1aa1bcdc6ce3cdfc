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

__all__ = ["authorize_non_resource", "credentials_of"]


def credentials_of(request: web.Request) -> Credentials:
    bearer: str | None = None
    header = request.headers.get("Authorization", "").strip()
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            bearer = token.strip() or None
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
