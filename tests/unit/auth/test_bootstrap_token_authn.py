"""The bootstrap-token authenticator, step by step as server-facts §2 (unhappy paths first)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from kubeboot.auth.bootstrap_token import BootstrapTokenAuthenticator
from kubeboot.auth.interface import AuthenticationFailed
from kubeboot.clock import FakeClock
from kubeboot.resources import bootstrap_token as bt
from tests.unit.auth.auth_pki import NOW

TOKEN = "abcdef.0123456789abcdef"
GOOD = bt.build_secret(
    TOKEN,
    extra_groups=["system:bootstrappers:kubeadm:default-node-token"],
    expiration=NOW + dt.timedelta(hours=1),
)
NO_MATCH = "unknown, or the secret does not match"


def _set(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def edit(secret: dict[str, Any]) -> None:
        secret["data"][key] = base64.b64encode(value.encode()).decode()

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda secret: secret["data"].pop(key)


REJECTIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("deleted", lambda s: s["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z"), NO_MATCH),
    ("wrong type", lambda s: s.update(type="Opaque"), NO_MATCH),
    ("no data", lambda s: s.update(data=None), NO_MATCH),
    ("wrong secret", _set("token-secret", "fedcba9876543210"), NO_MATCH),
    ("no secret", _drop("token-secret"), NO_MATCH),
    ("token-id mismatch", _set("token-id", "zzzzzz"), NO_MATCH),
    ("expired", _set("expiration", "2025-12-31T23:00:00Z"), "has expired at 2025-12-31T23:00:00Z"),
    ("expiry now", _set("expiration", "2026-01-01T00:00:00Z"), "has expired"),
    ("bad expiry", _set("expiration", "soon"), "is not RFC 3339"),
    ("usage off", _drop("usage-bootstrap-authentication"), "not for authentication"),
    ("usage True", _set("usage-bootstrap-authentication", "True"), "not for authentication"),
    ("bad group", _set("auth-extra-groups", "system:masters"), "does not match"),
]


@pytest.mark.parametrize(("case", "edit", "message"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections(case: str, edit: Callable[[dict[str, Any]], None], message: str) -> None:
    secret = copy.deepcopy(GOOD)
    edit(secret)
    authn = BootstrapTokenAuthenticator({"abcdef": secret}.get, FakeClock(NOW))
    with pytest.raises(AuthenticationFailed, match=message) as info:
        authn.authenticate_token(TOKEN)
    assert "0123456789abcdef" not in str(info.value)


def test_unknown_id_reads_like_a_wrong_secret() -> None:
    secrets: dict[str, dict[str, Any]] = {}
    authn = BootstrapTokenAuthenticator(secrets.get, FakeClock(NOW))
    with pytest.raises(AuthenticationFailed, match=NO_MATCH):
        authn.authenticate_token(TOKEN)


@pytest.mark.parametrize("token", ["", "abcdef", "ABCDEF.0123456789abcdef", "a.b", TOKEN + "x"])
def test_other_bearers_are_not_mine(token: str) -> None:
    authn = BootstrapTokenAuthenticator({"abcdef": GOOD}.get, FakeClock(NOW))
    assert authn.authenticate_token(token) is None


def test_success_and_expiry_by_the_clock() -> None:
    clock = FakeClock(NOW)
    authn = BootstrapTokenAuthenticator({"abcdef": GOOD}.get, clock)
    user = authn.authenticate_token(TOKEN)
    assert user is not None
    assert user.name == "system:bootstrap:abcdef"
    assert user.groups == (
        "system:bootstrappers",
        "system:bootstrappers:kubeadm:default-node-token",
    )
    assert (user.uid, user.extra) == ("", {})
    clock.advance(3600)
    with pytest.raises(AuthenticationFailed, match="expired"):
        authn.authenticate_token(TOKEN)


def test_no_expiration_never_expires() -> None:
    secret = copy.deepcopy(GOOD)
    _drop("expiration")(secret)
    clock = FakeClock(NOW)
    authn = BootstrapTokenAuthenticator({"abcdef": secret}.get, clock)
    clock.advance(10 * 365 * 86400)
    assert authn.authenticate_token(TOKEN) is not None
