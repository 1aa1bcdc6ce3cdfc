"""Everything the server needs from this package, built from its settings in one place.

The server owns the lifecycle: it runs :meth:`AuthStack.background` as tasks, waits for
:meth:`AuthStack.wait_synced` before serving (so a fresh server never answers 401 for a token
that exists, nor 403 for a binding that exists), and hands ``authenticator``, ``authorizer``
and ``admission`` to the API layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeboot.auth.admission import AdmissionHook, CsrAdmission, node_restriction_admission
from kubeboot.auth.authz import build_authorizer
from kubeboot.auth.bootstrap_token import (
    BootstrapTokenAuthenticator,
    bootstrap_token_mirror,
    mirror_lookup,
)
from kubeboot.auth.chain import AuthenticatorChain, TokenAuthenticator
from kubeboot.auth.mirror import StoreMirror
from kubeboot.auth.rbac import MirroredRbac
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


class AuthStack:
    def __init__(self, settings: AuthSettings, store: Store, clock: Clock) -> None:
        self.rbac = MirroredRbac(store)
        mirrors: list[StoreMirror] = list(self.rbac.mirrors)
        tokens: list[TokenAuthenticator] = []
        if settings.token_auth_file is not None:
            tokens.append(StaticTokenAuthenticator.from_file(settings.token_auth_file))
        if settings.enable_bootstrap_token_auth:
            token_mirror = bootstrap_token_mirror(store)
            mirrors.append(token_mirror)
            tokens.append(BootstrapTokenAuthenticator(mirror_lookup(token_mirror), clock))
        self.mirrors = tuple(mirrors)
        self.authenticator = AuthenticatorChain(
            client_certs=ClientCertAuthenticator(load_ca_bundle(settings.client_ca_file), clock),
            tokens=tokens,
            anonymous=settings.anonymous_auth,
        )
        self.authorizer = build_authorizer(settings.authorization_mode, self.rbac.index)
        self.admission: list[AdmissionHook] = [
            CsrAdmission(self.authorizer),
            node_restriction_admission,
        ]

    def background(self) -> list[Coroutine[Any, Any, None]]:
        return [m.run() for m in self.mirrors]

    async def wait_synced(self) -> None:
        await asyncio.gather(*(m.synced.wait() for m in self.mirrors))
