"""The bootstrap-token authenticator (``--enable-bootstrap-token-auth``, server-facts §2).

A bearer ``<id>.<secret>`` is checked against the Secret ``kube-system/bootstrap-token-<id>``
in upstream's order: deletion, type, constant-time secret compare, token-id match, expiry (the
injected clock), usage ``"true"``, extra groups. The Secret comes from a
:class:`~kubeboot.auth.mirror.StoreMirror` of the ``bootstrap-token-`` name prefix, so a
request costs one dict read and a deleted Secret stops working as soon as the watch delivers
the deletion (upstream keeps successes for 10 s in its token cache; we have no such cache).

What a rejection tells the client is chosen so it is no oracle: until the presented secret has
matched, every rejection reads the same ("unknown, or the secret does not match"), so an
attacker learns nothing about which ids exist or what state they are in. After a match the
message says what to fix (expired, usage off, bad group). Messages never contain the secret.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

from kubeboot.auth.interface import AuthenticationFailed, UserInfo
from kubeboot.auth.mirror import StoreMirror, resource_info
from kubeboot.clock import Clock, format_time
from kubeboot.resources import bootstrap_token as bt
from kubeboot.storage.interface import Store

__all__ = ["BootstrapTokenAuthenticator", "bootstrap_token_mirror", "mirror_lookup"]

log = logging.getLogger(__name__)

SecretLookup = Callable[[str], dict[str, Any] | None]
"""token id → the Secret ``kube-system/bootstrap-token-<id>`` as served, or None."""

_SECRETS = resource_info("", "v1", "secrets")


def bootstrap_token_mirror(store: Store) -> StoreMirror:
    """A mirror of exactly the ``kube-system/bootstrap-token-*`` Secrets."""
    return StoreMirror(store, _SECRETS.storage_prefix(bt.TOKEN_NAMESPACE) + bt.SECRET_NAME_PREFIX)


def mirror_lookup(mirror: StoreMirror) -> SecretLookup:
    """The authenticator's lookup over a mirror from :func:`bootstrap_token_mirror`."""

    def lookup(token_id: str) -> dict[str, Any] | None:
        return mirror.get(_SECRETS.storage_key(bt.TOKEN_NAMESPACE, bt.secret_name(token_id)))

    return lookup


class BootstrapTokenAuthenticator:
    """Token authenticator: None for "not a bootstrap token", raises for a rejected one."""

    def __init__(self, lookup: SecretLookup, clock: Clock) -> None:
        self._lookup = lookup
        self._clock = clock

    def authenticate_token(self, token: str) -> UserInfo | None:
        parsed = bt.parse_token(token)
        if parsed is None:
            return None
        token_id, presented = parsed
        no_match = AuthenticationFailed(
            f"bootstrap token {token_id} is unknown, or the secret does not match"
        )
        secret = self._lookup(token_id)
        if secret is None:
            raise no_match
        metadata = secret.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            log.debug("bootstrap token %s: secret is being deleted", token_id)
            raise no_match
        if secret.get("type") != bt.SECRET_TYPE or secret.get("data") is None:
            log.debug("bootstrap token %s: secret has type %r", token_id, secret.get("type"))
            raise no_match
        data = bt.decode_data(secret)
        stored = data.get(bt.TOKEN_SECRET_KEY, "")
        if not hmac.compare_digest(stored.encode(), presented.encode()):
            raise no_match
        if data.get(bt.TOKEN_ID_KEY) != token_id:
            log.debug("bootstrap token %s: token-id in the secret does not match", token_id)
            raise no_match
        if bt.is_expired(data, self._clock.now()):
            raise AuthenticationFailed(
                f"bootstrap token {token_id} has expired{_at(data)}; create a new one with "
                "`kubeboot token create`"
            )
        if not bt.has_usage(data, "authentication"):
            raise AuthenticationFailed(
                f"bootstrap token {token_id} is not for authentication "
                f'({bt.USAGE_AUTHENTICATION_KEY} is not "true")'
            )
        try:
            groups = bt.get_groups(data)
        except bt.InvalidExtraGroup as e:
            raise AuthenticationFailed(f"bootstrap token {token_id}: {e}") from None
        return UserInfo(name=bt.user_name(token_id), groups=tuple(groups))


def _at(data: dict[str, str]) -> str:
    try:
        expiration = bt.get_expiration(data)
    except ValueError:
        return f" (its {bt.EXPIRATION_KEY} {data.get(bt.EXPIRATION_KEY)!r} is not RFC 3339)"
    return f" at {format_time(expiration)}" if expiration else ""
