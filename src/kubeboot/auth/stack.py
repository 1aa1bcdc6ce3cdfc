"""Everything the server needs from this package, built from its settings in one place.

The server owns the lifecycle: it runs :meth:`AuthStack.background` as tasks, waits for
:meth:`AuthStack.wait_synced` before serving (so a fresh server never answers 401 for a token
that exists, nor 403 for a binding that exists), and hands ``gate`` (authentication with the
rate budgets and anonymous CIDRs), ``authorizer``, ``admission`` and ``audit`` to the API
layer. :meth:`AuthStack.close` flushes and closes the audit log; call it after the last
request has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeboot.auth.admission import AdmissionHook, CsrAdmission, MutatingAdmission
from kubeboot.auth.audit import AuditForwarder, AuditLog, AuditSink
from kubeboot.auth.auditpolicy import AuditPolicy, load_audit_policy
from kubeboot.auth.authz import build_authorizer
from kubeboot.auth.bootstrap_token import (
    BootstrapTokenAuthenticator,
    bootstrap_token_mirror,
    mirror_lookup,
)
from kubeboot.auth.chain import AnyTokenAuthenticator, AuthenticatorChain
from kubeboot.auth.gate import AuthenticationGate
from kubeboot.auth.joinpolicy import JoinAdmission, rejoin_denial_mirror
from kubeboot.auth.mirror import StoreMirror
from kubeboot.auth.noderestriction import NodeRestriction
from kubeboot.auth.ratelimit import (
    DEFAULT_ANONYMOUS,
    DEFAULT_FAILED_AUTH,
    BucketPolicy,
    RateLimits,
)
from kubeboot.auth.rbac import MirroredRbac
from kubeboot.auth.revocation import RevocationList
from kubeboot.auth.serviceaccount_tokens import (
    ServiceAccountTokens,
    ServiceAccountTokenSettings,
    load_keys,
)
from kubeboot.auth.sources import SourceNetworks
from kubeboot.auth.static_token import StaticTokenAuthenticator
from kubeboot.auth.x509 import ClientCertAuthenticator, load_ca_bundle
from kubeboot.clock import Clock
from kubeboot.storage.interface import Store

__all__ = ["AuthSettings", "AuthStack"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The kube-apiserver flags this package reads (names as upstream's)."""

    client_ca_file: Path
    token_auth_file: Path | None = None
    enable_bootstrap_token_auth: bool = True
    anonymous_auth: bool = True
    authorization_mode: Sequence[str] = ("Node", "RBAC")
    anonymous_allowed_cidrs: Sequence[str] = ()  # empty: every address
    anonymous_rate: BucketPolicy = DEFAULT_ANONYMOUS
    failed_auth_rate: BucketPolicy = DEFAULT_FAILED_AUTH
    audit_log_path: Path | None = None  # "-" is standard out, as upstream
    audit_log_maxsize: int = 0  # MB; 0 means 100, as upstream (lumberjack)
    audit_log_maxbackup: int = 0  # rotated files kept; 0 keeps all, as upstream
    audit_policy_file: Path | None = None  # None: every request at Metadata level
    audit_forward: Callable[[bytes], None] | None = None
    """A worker process's way to the primary's audit log (instead of ``audit_log_path``)."""
    certificate_revocation: bool = True
    """kubeboot's revocation list in the x509 authenticator and RejoinDenials at CSR
    admission (docs/beyond-upstream.md); node-bound tokens are checked either way."""
    service_accounts: ServiceAccountTokenSettings | None = None
    """ServiceAccount token signing and authentication (None: no such tokens)."""


class AuthStack:
    def __init__(self, settings: AuthSettings, store: Store, clock: Clock) -> None:
        self.rbac = MirroredRbac(store)
        mirrors: list[StoreMirror] = list(self.rbac.mirrors)
        tokens: list[AnyTokenAuthenticator] = []
        if settings.token_auth_file is not None:
            tokens.append(StaticTokenAuthenticator.from_file(settings.token_auth_file))
        token_mirror: StoreMirror | None = None
        self.service_accounts: ServiceAccountTokens | None = None
        if settings.service_accounts is not None:
            sa_settings = settings.service_accounts
            self.service_accounts = ServiceAccountTokens(
                sa_settings, load_keys(sa_settings), store, clock
            )
            mirrors += self.service_accounts.mirrors
            tokens += self.service_accounts.authenticators
        if settings.enable_bootstrap_token_auth:
            token_mirror = bootstrap_token_mirror(store)
            mirrors.append(token_mirror)
            tokens.append(BootstrapTokenAuthenticator(mirror_lookup(token_mirror), clock))
        revocations: RevocationList | None = None
        denials = rejoin_denial_mirror(store)
        if settings.certificate_revocation:
            revocations = RevocationList(store)
            mirrors += [revocations.mirror, denials]
        self.mirrors = tuple(mirrors)
        networks = SourceNetworks(settings.anonymous_allowed_cidrs)
        self.authenticator = AuthenticatorChain(
            client_certs=ClientCertAuthenticator(
                load_ca_bundle(settings.client_ca_file),
                clock,
                revoked=revocations.check if revocations is not None else None,
            ),
            tokens=tokens,
            anonymous=settings.anonymous_auth,
            api_audiences=(
                self.service_accounts.api_audiences if self.service_accounts is not None else ()
            ),
        )
        self.rate_limits = RateLimits.build(
            clock, settings.anonymous_rate, settings.failed_auth_rate
        )
        self.gate = AuthenticationGate(self.authenticator, self.rate_limits, networks)
        self.authorizer = build_authorizer(settings.authorization_mode, self.rbac.index)
        self.mutating_admission: list[MutatingAdmission] = [NodeRestriction()]
        self.admission: list[AdmissionHook] = [CsrAdmission(self.authorizer)]
        # Run only for creates that will be stored: the token-use count is a side effect.
        # Without revocation the denial mirror is never run, so it stays empty.
        self.side_effect_admission: list[AdmissionHook] = [
            JoinAdmission(store, denials, token_mirror, clock)
        ]
        self.audit: AuditSink | None = None
        self.audit_log: AuditLog | None = None
        self.audit_policy: AuditPolicy | None = None
        if settings.audit_policy_file is not None:
            self.audit_policy = load_audit_policy(settings.audit_policy_file)
        if settings.audit_forward is not None:
            self.audit = AuditForwarder(settings.audit_forward, clock)
        elif settings.audit_log_path is not None:
            self.audit = self.audit_log = AuditLog(
                settings.audit_log_path,
                clock,
                max_size_mb=settings.audit_log_maxsize,
                max_backups=settings.audit_log_maxbackup,
            )

    def background(self) -> list[Coroutine[Any, Any, None]]:
        return [m.run() for m in self.mirrors]

    async def wait_synced(self) -> None:
        await asyncio.gather(*(m.synced.wait() for m in self.mirrors))

    async def close(self) -> None:
        if self.audit is not None:
            await asyncio.to_thread(self.audit.close)
