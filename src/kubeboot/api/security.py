"""Builds the server's authentication, authorization and admission from its configuration.

The pieces live in :mod:`kubeboot.auth` (``AuthStack``); this module only maps
``ServerConfig``'s flags onto them, so the API layer has one import for security.
"""

from __future__ import annotations

from pathlib import Path

from kubeboot.api.config import ServerConfig
from kubeboot.auth.stack import AuthSettings, AuthStack
from kubeboot.clock import Clock
from kubeboot.storage.interface import Store

__all__ = ["build_security"]


def build_security(
    config: ServerConfig, client_ca_file: str | Path, clock: Clock, store: Store
) -> AuthStack:
    settings = AuthSettings(
        client_ca_file=Path(client_ca_file),
        token_auth_file=config.token_auth_file,
        enable_bootstrap_token_auth=config.enable_bootstrap_token_auth,
        anonymous_auth=config.anonymous_auth,
        authorization_mode=config.authorization_mode,
    )
    return AuthStack(settings, store, clock)
