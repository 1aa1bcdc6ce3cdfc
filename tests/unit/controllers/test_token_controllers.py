"""Pure decisions of bootstrapsigner and tokencleaner."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from kubeboot.clock import format_time
from kubeboot.controllers.bootstrapsigner import sign_cluster_info, signing_tokens
from kubeboot.controllers.tokencleaner import Delete, RecheckAfter, token_cleanup
from kubeboot.pki.jws import detached_jws

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
SECRET = "0123456789abcdef"
CONTENT = "apiVersion: v1\nkind: Config\n"


def _token(
    token_id: str = "abcdef",  # noqa: S107 - test data, not a credential
    *,
    name: str | None = None,
    secret: str = SECRET,
    sign: str | None = "true",
    expiration: str | None = None,
    secret_type: str = "bootstrap.kubernetes.io/token",  # noqa: S107
    **extra: str,
) -> dict[str, Any]:
    data = {"token-id": token_id, "token-secret": secret, **extra}
    if sign is not None:
        data["usage-bootstrap-signing"] = sign
    if expiration is not None:
        data["expiration"] = expiration
    return {
        "metadata": {"name": name or f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": secret_type,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items() if v},
    }


def _uses(uses: int, max_uses: int, *, minutes_ago: int = 0) -> dict[str, str]:
    data = {"kubeboot.uses": str(uses), "kubeboot.max-uses": str(max_uses)}
    if uses:
        data["kubeboot.last-used"] = format_time(NOW - dt.timedelta(minutes=minutes_ago))
    return data


def _cm(**extra: str) -> dict[str, Any]:
    return {"metadata": {"name": "cluster-info"}, "data": {"kubeconfig": CONTENT, **extra}}


LATER = format_time(NOW + dt.timedelta(hours=2))
PAST = format_time(NOW - dt.timedelta(seconds=1))


@pytest.mark.parametrize(
    "secret",
    [
        _token(sign=None),
        _token(sign="True"),
        _token(expiration=PAST),
        _token(expiration=format_time(NOW)),  # expiration - now <= 0
        _token(expiration="soon"),
        _token(secret=""),
        _token(name="bootstrap-token-zzzzzz"),
        _token(name="token-abcdef"),
        _token(secret_type="Opaque"),
    ],
    ids=[
        "no-usage",
        "True",
        "past",
        "now",
        "unparseable",
        "no-secret",
        "id-mismatch",
        "bad-name",
        "type",
    ],
)
def test_not_signing_valid(secret: dict[str, Any]) -> None:
    assert signing_tokens([secret], NOW) == ({}, None)


def test_secret_format_is_not_checked_and_first_duplicate_wins() -> None:
    tokens, expiry = signing_tokens(
        [
            _token(secret="short", expiration=LATER),
            _token(secret="other"),
        ],
        NOW,
    )
    assert tokens == {"abcdef": "short"}
    assert expiry == NOW + dt.timedelta(hours=2)


def test_missing_configmap_or_kubeconfig_is_left_alone() -> None:
    assert sign_cluster_info(None, [_token()], NOW).configmap is None
    no_payload = {"metadata": {"name": "cluster-info"}, "data": {"other": "x"}}
    assert sign_cluster_info(no_payload, [_token()], NOW).configmap is None


def test_signs_removes_stale_and_writes_only_on_change() -> None:
    stale = {"jws-kubeconfig-gone00": "x..y", "other": "kept"}
    result = sign_cluster_info(_cm(**stale), [_token(), _token("nosign", sign=None)], NOW)
    assert result.configmap is not None
    assert result.configmap["data"] == {
        "kubeconfig": CONTENT,
        "other": "kept",
        "jws-kubeconfig-abcdef": detached_jws(CONTENT, "abcdef", SECRET),
    }
    again = sign_cluster_info(result.configmap, [_token()], NOW)
    assert again.configmap is None


def test_changed_signature_is_rewritten() -> None:
    current = _cm(**{"jws-kubeconfig-abcdef": detached_jws(CONTENT, "abcdef", "another-secret00")})
    result = sign_cluster_info(current, [_token()], NOW)
    assert result.configmap is not None
    assert result.configmap["data"]["jws-kubeconfig-abcdef"] == detached_jws(
        CONTENT, "abcdef", SECRET
    )


def test_next_expiry_is_reported_for_the_wakeup() -> None:
    result = sign_cluster_info(_cm(), [_token(expiration=LATER)], NOW)
    assert result.next_expiry == NOW + dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("secret", "decision"),
    [
        (_token(expiration=PAST), Delete(f"expired (expiration {PAST})")),
        (_token(expiration=format_time(NOW)), Delete(f"expired (expiration {format_time(NOW)})")),
        (_token(expiration="garbage"), Delete("expired (expiration garbage)")),
        (_token(expiration=LATER), RecheckAfter(dt.timedelta(hours=2))),
        (_token(), None),
        (_token(expiration=PAST, secret_type="Opaque"), None),
        # kubeboot's use limits: spent tokens go SPENT_GRACE (15 min) after their last use.
        (_token(**_uses(1, 1, minutes_ago=20)), Delete("spent (1 of 1 use(s))")),
        (_token(**_uses(1, 1, minutes_ago=5)), RecheckAfter(dt.timedelta(minutes=10))),
        (
            _token(expiration=LATER, **_uses(1, 1, minutes_ago=5)),
            RecheckAfter(dt.timedelta(minutes=10)),
        ),
        (_token(expiration=LATER, **_uses(0, 2)), RecheckAfter(dt.timedelta(hours=2))),
        (_token(**_uses(1, 2, minutes_ago=20)), None),
    ],
)
def test_token_cleanup(secret: dict[str, Any], decision: Delete | RecheckAfter | None) -> None:
    assert token_cleanup(secret, NOW) == decision
