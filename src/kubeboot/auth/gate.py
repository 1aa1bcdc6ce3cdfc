"""The authentication step of every request: rate budgets, the chain, the anonymous rules.

Order, and why:

1. A source over its **failed-authentication** budget gets 429 before its credential is even
   looked at, so a token-guessing flood learns nothing more once it is throttled and costs
   one dict lookup per request.
2. The authenticator chain (:mod:`kubeboot.auth.chain`). A rejected credential is 401 and
   charges the failed-authentication budget.
3. An **anonymous** request spends from the source's anonymous budget (429 when empty), then
   must come from ``--anonymous-allowed-cidrs`` (401 otherwise, saying why: for that source
   anonymous access is off, exactly as ``--anonymous-auth=false`` would make it).

Authenticated requests that succeed are never limited here. Messages name the source and the
fix, never the credential.
"""

from __future__ import annotations

import logging

from kubeboot.auth.interface import (
    AuthenticationFailed,
    Authenticator,
    CredentialRevoked,
    Credentials,
    UserInfo,
)
from kubeboot.auth.ratelimit import RateLimits
from kubeboot.auth.sources import SourceNetworks
from kubeboot.auth.users import ANONYMOUS_USER
from kubeboot.resources.status import TooManyRequests, Unauthorized

__all__ = ["AuthenticationGate"]

log = logging.getLogger("kubeboot.api")


class AuthenticationGate:
    def __init__(
        self,
        authenticator: Authenticator,
        limits: RateLimits,
        anonymous_networks: SourceNetworks | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.limits = limits
        self.anonymous_networks = anonymous_networks or SourceNetworks()

    async def authenticate(self, creds: Credentials) -> UserInfo:
        """The request's user; raises Unauthorized (401) or TooManyRequests (429)."""
        source = creds.remote_addr
        presented = creds.bearer is not None or creds.client_cert_der is not None
        if presented and (wait := self.limits.failed_auth.retry_after(source)):
            raise TooManyRequests(
                f"too many failed authentication attempts from {source}; retry in {wait}s",
                retry_after=wait,
            )
        try:
            user = await self.authenticator.authenticate(creds)
        except AuthenticationFailed as exc:
            log.info("authentication failed from %s: %s", source, exc)
            self.limits.failed_auth.take(source)
            # The holder of a revoked credential learns why; other failures say no more.
            revoked = isinstance(exc, CredentialRevoked)
            raise Unauthorized(f"Unauthorized: {exc}" if revoked else "Unauthorized") from None
        if user.name != ANONYMOUS_USER:
            return user
        if wait := self.limits.anonymous.take(source):
            raise TooManyRequests(
                f"too many anonymous requests from {source}; retry in {wait}s", retry_after=wait
            )
        if not self.anonymous_networks.allows(source):
            raise Unauthorized(
                f"anonymous requests are not accepted from {source or 'an unknown address'} "
                f"(--anonymous-allowed-cidrs={self.anonymous_networks}); present a bearer "
                "token or a client certificate"
            )
        return user
