"""Builds the server's authentication, authorization and admission from its configuration.

The pieces live in :mod:`kubeboot.auth` (``AuthStack``); this module only maps
``ServerConfig``'s flags onto them, so the API layer has one import for security.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubeboot.api.registry.inprocess import InProcessClient
from kubeboot.api.registry.rest import RestService
from kubeboot.api.server.config import ServerConfig
from kubeboot.auth.ratelimit import BucketPolicy
from kubeboot.auth.serviceaccount_tokens import DEFAULT_ISSUER, ServiceAccountTokenSettings
from kubeboot.auth.stack import AuthSettings, AuthStack
from kubeboot.clock import Clock
from kubeboot.ledger.recorder import LedgerRecorder
from kubeboot.ledger.revoke import REVOKER, NodeRevoker
from kubeboot.storage.interface import Store

__all__ = ["build_rest", "build_security", "service_account_settings"]


def service_account_settings(config: ServerConfig) -> ServiceAccountTokenSettings | None:
    """The ServiceAccount token flags, once the server has chosen the key files (None
    before: a config that was never started signs nothing)."""
    if config.service_account_signing_key_file is None:
        return None
    return ServiceAccountTokenSettings(
        signing_key_file=config.service_account_signing_key_file,
        key_files=config.service_account_key_files,
        issuers=config.service_account_issuers or (DEFAULT_ISSUER,),
        api_audiences=config.api_audiences,
        max_expiration=config.service_account_max_token_expiration,
        lookup=config.service_account_lookup,
    )


def build_security(
    config: ServerConfig,
    client_ca_file: str | Path,
    clock: Clock,
    store: Store,
    *,
    worker_of: int = 1,
    audit_forward: Callable[[bytes], None] | None = None,
) -> AuthStack:
    """The stack for one serving process; a worker (one of ``worker_of`` processes) gets
    its share of each per-source rate budget and forwards its audit events."""
    settings = AuthSettings(
        client_ca_file=Path(client_ca_file),
        token_auth_file=config.token_auth_file,
        enable_bootstrap_token_auth=config.enable_bootstrap_token_auth,
        anonymous_auth=config.anonymous_auth,
        authorization_mode=config.authorization_mode,
        anonymous_allowed_cidrs=config.anonymous_allowed_cidrs,
        anonymous_rate=BucketPolicy(config.anonymous_rate, config.anonymous_burst).share(worker_of),
        failed_auth_rate=BucketPolicy(config.failed_auth_rate, config.failed_auth_burst).share(
            worker_of
        ),
        audit_log_path=config.audit_log_path,
        audit_log_maxsize=config.audit_log_maxsize,
        audit_log_maxbackup=config.audit_log_maxbackup,
        audit_policy_file=config.audit_policy_file,
        audit_forward=audit_forward,
        certificate_revocation=config.certificate_revocation,
        service_accounts=service_account_settings(config),
    )
    return AuthStack(settings, store, clock)


def build_rest(
    store: Store, security: AuthStack, clock: Clock, config: ServerConfig
) -> RestService:
    """The REST service of one serving process, with that process's security stack and
    kubeboot's write observers: the issuance ledger, and revoking a deleted Node's
    certificates (docs/beyond-upstream.md)."""
    rest = RestService(
        store,
        security.authorizer,
        clock,
        admission=list(security.admission),
        mutating_admission=list(security.mutating_admission),
        side_effect_admission=list(security.side_effect_admission),
        service_accounts=security.service_accounts,
        token_reviews=security.authenticator,
        rules=security.authorizer,
    )
    if config.issuance_ledger:
        rest.observers.append(LedgerRecorder(store, clock))
    if config.revoke_on_node_delete:
        rest.observers.append(
            NodeRevoker(InProcessClient(rest, REVOKER, manager="kubeboot"), clock)
        )
    return rest
