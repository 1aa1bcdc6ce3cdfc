"""The authenticator chain with upstream's composition and failure rules (server-facts §3.5).

::

    anonymous fail-on-error union (if --anonymous-auth)
    └── group adder (system:authenticated)
        └── union, not short-circuiting on errors
            ├── x509 client certificate
            └── bearer token → union of token authenticators (token file, ServiceAccount
                tokens (legacy, then bound), bootstrap tokens: upstream's order)

Consequences that clients and tests depend on:

* no credential at all → ``system:anonymous`` / ``system:unauthenticated`` when anonymous auth
  is on, else 401;
* a bearer that no token authenticator accepts → 401 ("invalid bearer token" when none even
  recognised it), never anonymous;
* an unverifiable client certificate with nothing else succeeding → 401; together with a good
  bearer → success as the bearer's user; a good certificate wins over any bearer;
* a revoked certificate is an unverifiable one, except that the failure is
  :class:`~kubeboot.auth.interface.CredentialRevoked`, whose message the 401 carries.

Sub-authenticators answer None for "not mine" and raise
:class:`~kubeboot.auth.interface.AuthenticationFailed` for "mine, rejected". Their messages
never contain the presented token, so :class:`AuthenticationFailed` from this chain is safe to
log, audit and show.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeGuard

from kubeboot.auth.interface import (
    AuthenticationFailed,
    CredentialRevoked,
    Credentials,
    UserInfo,
)
from kubeboot.auth.serviceaccount import TokenResult
from kubeboot.auth.users import ANONYMOUS, add_authenticated_group
from kubeboot.auth.x509 import ClientCertAuthenticator

__all__ = [
    "AnyTokenAuthenticator",
    "AsyncTokenAuthenticator",
    "AudienceAwareAuthenticator",
    "AuthenticatorChain",
    "TokenAuthenticator",
    "TokenReviewAnswer",
]


class TokenAuthenticator(Protocol):
    def authenticate_token(self, token: str) -> UserInfo | None:
        """The token's user; None if the token is not of this kind; raises if rejected."""
        ...


class AsyncTokenAuthenticator(Protocol):
    """A token authenticator that may have to read storage (ServiceAccount tokens)."""

    async def authenticate_token(self, token: str) -> UserInfo | None: ...


class AudienceAwareAuthenticator(Protocol):
    """A token authenticator that checks audiences itself (ServiceAccount tokens): ``review``
    answers the user and the audiences accepted out of those requested."""

    async def review(
        self, token: str, audiences: Sequence[str] | None = None
    ) -> TokenResult | None: ...

    async def authenticate_token(self, token: str) -> UserInfo | None: ...


AnyTokenAuthenticator = TokenAuthenticator | AsyncTokenAuthenticator | AudienceAwareAuthenticator


@dataclass(frozen=True, slots=True)
class TokenReviewAnswer:
    """A TokenReview's status: the user (with ``system:authenticated``) and the audiences the
    token is good for, or why not (``invalid bearer token`` when nobody recognised it)."""

    user: UserInfo | None
    audiences: tuple[str, ...] = ()
    error: str = ""


class AuthenticatorChain:
    """Implements :class:`~kubeboot.auth.interface.Authenticator` for the server."""

    def __init__(
        self,
        *,
        client_certs: ClientCertAuthenticator | None = None,
        tokens: Sequence[AnyTokenAuthenticator] = (),
        anonymous: bool = True,
        api_audiences: Sequence[str] = (),
    ) -> None:
        self._client_certs = client_certs
        self._tokens = tuple(tokens)
        self.anonymous = anonymous
        self.api_audiences = tuple(api_audiences)

    async def authenticate(self, creds: Credentials) -> UserInfo:
        errors: list[str] = []
        revoked = False
        if self._client_certs is not None and creds.client_cert_der is not None:
            try:
                user = self._client_certs.authenticate(creds.client_cert_der)
            except AuthenticationFailed as e:
                errors.append(str(e))
                revoked = isinstance(e, CredentialRevoked)
            else:
                if user is not None:
                    return add_authenticated_group(user)
        if creds.bearer:
            token_errors: list[str] = []
            for authenticator in self._tokens:
                try:
                    found = await _ask(authenticator, creds.bearer)
                except AuthenticationFailed as e:
                    token_errors.append(str(e))
                    continue
                if found is not None:
                    return add_authenticated_group(found)
            errors.extend(token_errors or ["invalid bearer token"])
        if errors:
            raise (CredentialRevoked if revoked else AuthenticationFailed)("; ".join(errors))
        if self.anonymous:
            return ANONYMOUS
        raise AuthenticationFailed("no credentials were presented and anonymous access is off")

    async def review_token(self, token: str, audiences: Sequence[str] = ()) -> TokenReviewAnswer:
        """A TokenReview (upstream ``pkg/registry/authentication/tokenreview``): the bearer
        part of the chain for ``audiences`` (default: the API's). Audience-agnostic
        authenticators (token file, bootstrap tokens) answer only for requested audiences
        that are the API's, and then the token is good for exactly those
        (``WrapAudienceAgnosticToken``)."""
        requested = tuple(audiences) or self.api_audiences
        implicit = tuple(a for a in self.api_audiences if a in requested)
        errors: list[str] = []
        for authenticator in self._tokens:
            try:
                if _audience_aware(authenticator):
                    result = await authenticator.review(token, requested or None)
                    if result is not None:
                        user = add_authenticated_group(result.user)
                        return TokenReviewAnswer(user, result.audiences)
                    continue
                if requested and not implicit:
                    continue
                found = await _ask(authenticator, token)
            except AuthenticationFailed as e:
                errors.append(str(e))
                continue
            if found is not None:
                return TokenReviewAnswer(add_authenticated_group(found), implicit)
        return TokenReviewAnswer(None, error="; ".join(errors) or "invalid bearer token")


async def _ask(authenticator: AnyTokenAuthenticator, token: str) -> UserInfo | None:
    """One token authenticator's answer, awaited when it reads storage."""
    answer = authenticator.authenticate_token(token)
    return await answer if inspect.isawaitable(answer) else answer


def _audience_aware(
    authenticator: AnyTokenAuthenticator,
) -> TypeGuard[AudienceAwareAuthenticator]:
    return callable(getattr(authenticator, "review", None))
