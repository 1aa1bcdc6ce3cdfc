"""Builds the authenticator and authorizer the server runs with, from its configuration.

Until the full chain (static tokens, bootstrap tokens, RBAC, Node) is wired, the server is
closed by default: a client certificate from the cluster CA authenticates, everyone else is
anonymous, and only ``system:masters`` may touch resources (discovery and health stay open).
``--authorization-mode=AlwaysAllow`` is the clearly named development escape hatch.
"""

from __future__ import annotations

import logging

from kubeboot.api.config import ServerConfig
from kubeboot.auth.interface import (
    ALLOW_ALL,
    Attributes,
    AuthenticationFailed,
    Authenticator,
    Authorizer,
    Credentials,
    Decision,
    UserInfo,
    Verdict,
)
from kubeboot.auth.x509 import ClientCertAuthenticator, load_ca_bundle
from kubeboot.clock import Clock

__all__ = ["build_security"]

log = logging.getLogger("kubeboot.security")

ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))
_OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/api", "/apis", "/openapi")


class _CertOrAnonymous:
    def __init__(self, certs: ClientCertAuthenticator, anonymous: bool) -> None:
        self._certs = certs
        self._anonymous = anonymous

    async def authenticate(self, creds: Credentials) -> UserInfo:
        user = self._certs.authenticate(creds.client_cert_der)
        if user is not None:
            return UserInfo(user.name, user.uid, (*user.groups, "system:authenticated"), user.extra)
        if creds.bearer is not None:
            raise AuthenticationFailed("invalid bearer token")
        if not self._anonymous:
            raise AuthenticationFailed("anonymous requests are disabled")
        return ANONYMOUS


class _MastersOnly:
    def authorize(self, attrs: Attributes) -> Decision:
        if "system:masters" in attrs.user.groups:
            return Decision(Verdict.ALLOW)
        if not attrs.resource_request and attrs.path.startswith(_OPEN_PATHS):
            return Decision(Verdict.ALLOW)
        return Decision(Verdict.NO_OPINION)


def build_security(
    config: ServerConfig, client_ca_file: str, clock: Clock
) -> tuple[Authenticator, Authorizer]:
    certs = ClientCertAuthenticator(load_ca_bundle(client_ca_file), clock)
    authenticator = _CertOrAnonymous(certs, config.anonymous_auth)
    if "AlwaysAllow" in config.authorization_mode:
        log.warning(
            "--authorization-mode=AlwaysAllow: EVERY AUTHENTICATED OR ANONYMOUS REQUEST IS "
            "ALLOWED. Development only; never expose this server."
        )
        return authenticator, ALLOW_ALL
    return authenticator, _MastersOnly()
