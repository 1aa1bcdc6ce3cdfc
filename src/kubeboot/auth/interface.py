"""What the API layer needs from authentication and authorization.

Authenticators separate "not mine" (return ``None``) from "failed" (raise
:class:`AuthenticationFailed`): a presented credential that nobody accepts is a 401, never
anonymous (server-facts §3.5). Authorizers answer a :class:`Decision` for
:class:`Attributes`, the same record a SubjectAccessReview carries, so ``kubectl auth can-i``,
the CSR approver and request handling all ask one question in one shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

__all__ = [
    "ALLOW_ALL",
    "AllowAll",
    "Attributes",
    "AuthenticationFailed",
    "Authenticator",
    "Authorizer",
    "CredentialRevoked",
    "Credentials",
    "Decision",
    "UserInfo",
    "Verdict",
]


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: a bearer token and/or a client certificate (leaf, DER)."""

    bearer: str | None
    client_cert_der: bytes | None
    remote_addr: str


class AuthenticationFailed(Exception):
    """A presented credential was rejected. The message must never contain the credential."""


class CredentialRevoked(AuthenticationFailed):
    """A credential that verified but was revoked (kubeboot's revocation list).

    Unlike other failures, its message is sent in the 401: the holder of a revoked
    certificate should learn that it was revoked and why, and the message holds no secret.
    """


class Authenticator(Protocol):
    async def authenticate(self, creds: Credentials) -> UserInfo:
        """The user for these credentials (anonymous when none); raises AuthenticationFailed."""
        ...


@dataclass(frozen=True, slots=True)
class Attributes:
    """authorizer.Attributes: a resource request (``resource`` set) or a non-resource one."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    # The request's field selector as (field, "=" or "!=", value) requirements (upstream's
    # GetFieldSelector): the Node authorizer lets a node list pods with spec.nodeName=<self>.
    field_selector: tuple[tuple[str, str, str], ...] = ()


class Verdict(Enum):
    ALLOW = "Allow"
    DENY = "Deny"
    NO_OPINION = "NoOpinion"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> Decision: ...


class AllowAll:
    """``--authorization-mode=AlwaysAllow``: development only; the server logs it loudly."""

    def authorize(self, attrs: Attributes) -> Decision:
        return Decision(Verdict.ALLOW, "AlwaysAllow")


ALLOW_ALL = AllowAll()
