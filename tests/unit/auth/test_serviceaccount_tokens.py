"""ServiceAccount token flags, keys and discovery documents (``auth/serviceaccount_tokens``),
the tokens controller's decision, and TokenReview through the chain; unhappy paths first."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kubeboot.auth.chain import AuthenticatorChain
from kubeboot.auth.interface import UserInfo
from kubeboot.auth.satokens import TokenIssuer, bound_claims
from kubeboot.auth.serviceaccount import BoundValidator, ServiceAccountTokenAuthenticator
from kubeboot.auth.serviceaccount_tokens import (
    ServiceAccountTokens,
    ServiceAccountTokenSettings,
    issuer_problem,
    load_keys,
    max_expiration_problem,
)
from kubeboot.auth.static_token import StaticTokenAuthenticator
from kubeboot.clock import FakeClock
from kubeboot.controllers.tokens import token_secret_change
from kubeboot.pki.keys import dump_private_key_pem, generate_private_key
from kubeboot.pki.serviceaccount_keys import ServiceAccountKeyError, ensure_service_account_key
from kubeboot.storage.sqlite import SqliteStore
from tests.unit.auth.test_serviceaccount_authn import ISSUER, SA_UID, Objects

CA = b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("issuers", "problem"),
    [
        ([""], "service-account-issuer should not be an empty string"),
        (["https://a", "https://a"], 'service-account-issuer "https://a" is already specified'),
        ([":nope"], "service-account-issuer \":nope\" contained a ':' but was not a valid URL"),
        (["https://a", "api"], None),
    ],
)
def test_issuer_problems(issuers: list[str], problem: str | None) -> None:
    found = issuer_problem(issuers)
    assert (found is None) if problem is None else (found or "").startswith(problem)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (dt.timedelta(minutes=59), False),
        (dt.timedelta(seconds=(1 << 32) + 1), False),
        (dt.timedelta(hours=1), True),
        (None, True),
    ],
)
def test_max_expiration_bounds(value: dt.timedelta | None, ok: bool) -> None:
    problem = max_expiration_problem(value)
    assert (problem is None) == ok
    if not ok:
        assert problem == (
            "the service-account-max-token-expiration must be between 1 hour and 2^32 seconds"
        )


def test_signing_key_must_be_among_the_verification_keys(tmp_path: Path) -> None:
    key, pub = ensure_service_account_key(tmp_path)
    other = tmp_path / "other.key"
    other.write_bytes(dump_private_key_pem(generate_private_key()))
    with pytest.raises(ServiceAccountKeyError, match="is in no --service-account-key-file"):
        load_keys(ServiceAccountTokenSettings(signing_key_file=key, key_files=(other,)))
    # an old key kept for verification beside the current one is fine
    keys = load_keys(ServiceAccountTokenSettings(signing_key_file=key, key_files=(other, pub)))
    assert len(keys.verifying) == 2
    alone = load_keys(ServiceAccountTokenSettings(signing_key_file=key, key_files=()))
    assert len(alone.verifying) == 1


def _settings(directory: Path, issuers: tuple[str, ...]) -> ServiceAccountTokenSettings:
    directory.mkdir()
    key, pub = ensure_service_account_key(directory)
    return ServiceAccountTokenSettings(signing_key_file=key, key_files=(pub,), issuers=issuers)


async def _tokens(directory: Path, issuers: tuple[str, ...]) -> ServiceAccountTokens:
    """The tokens of a fresh key pair (the store is never read: closed at once)."""
    settings = _settings(directory, issuers)
    store = await SqliteStore.open(directory / "state.db")
    await store.close()
    return ServiceAccountTokens(settings, load_keys(settings), store, FakeClock())


async def test_discovery_only_for_an_https_issuer(tmp_path: Path) -> None:
    plain = await _tokens(tmp_path / "a", ("kubernetes/serviceaccount-ish",))
    assert plain.openid_configuration("h:6443") is None and plain.jwks() is None
    tokens = await _tokens(tmp_path / "b", (ISSUER, "https://old.example"))
    assert tokens.api_audiences == (ISSUER, "https://old.example")
    doc = tokens.openid_configuration("10.0.0.1:6443")
    assert doc is not None
    assert list(json.loads(doc)) == [  # Go's field order
        "issuer",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ]
    assert json.loads(doc)["jwks_uri"] == "https://10.0.0.1:6443/openid/v1/jwks"
    jwks = tokens.jwks()
    assert jwks is not None
    (jwk,) = json.loads(jwks)["keys"]
    assert list(jwk) == ["use", "kty", "kid", "alg", "n", "e"]


def _secret(annotations: dict[str, str], data: dict[str, bytes] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "ci-token",
            "namespace": "ns",
            "uid": "s1",
            "annotations": annotations,
        },
        "type": "kubernetes.io/service-account-token",
        "data": {k: base64.b64encode(v).decode() for k, v in (data or {}).items()},
    }


def _sign(namespace: str, name: str, uid: str, secret: str) -> str:
    return f"jwt:{namespace}:{name}:{uid}:{secret}"


ACCOUNT = {"metadata": {"name": "ci", "namespace": "ns", "uid": "u1"}}
NAME = {"kubernetes.io/service-account.name": "ci"}


def test_token_secret_change_deletes_without_the_account_or_with_another_uid() -> None:
    gone = token_secret_change(_secret(NAME), None, CA, _sign)
    assert gone is not None and gone.action == "delete"
    stale = _secret({**NAME, "kubernetes.io/service-account.uid": "old"})
    change = token_secret_change(stale, ACCOUNT, CA, _sign)
    assert change is not None and change.action == "delete"


def test_token_secret_change_fills_in_then_leaves_alone() -> None:
    change = token_secret_change(_secret(NAME), ACCOUNT, CA, _sign)
    assert change is not None and change.action == "update"
    data = {k: base64.b64decode(v) for k, v in change.secret["data"].items()}
    assert data == {"token": b"jwt:ns:ci:u1:ci-token", "ca.crt": CA, "namespace": b"ns"}
    assert change.secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == "u1"
    assert token_secret_change(change.secret, ACCOUNT, CA, _sign) is None
    # a token already there is kept; a changed CA is rewritten
    moved = token_secret_change(change.secret, ACCOUNT, CA + b"\n", _sign)
    assert moved is not None
    assert moved.secret["data"]["token"] == change.secret["data"]["token"]


async def test_token_review_audiences_through_the_chain() -> None:
    objects = Objects()
    objects.add_sa("default", "demo")
    clock = FakeClock(dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC))
    key = ec.generate_private_key(ec.SECP256R1())
    bound = ServiceAccountTokenAuthenticator(
        (ISSUER,), (key.public_key(),), (ISSUER,), BoundValidator(objects, clock)
    )
    static = StaticTokenAuthenticator({})
    chain = AuthenticatorChain(tokens=(static, bound), api_audiences=(ISSUER,))
    claims = bound_claims(
        namespace="default",
        name="demo",
        uid=SA_UID,
        audiences=["vault", ISSUER],
        now=clock.now(),
        expiration_seconds=600,
    )
    token = TokenIssuer(ISSUER, key).issue(claims)
    answer = await chain.review_token(token, ("vault",))
    assert answer.audiences == ("vault",)
    assert answer.user is not None and "system:authenticated" in answer.user.groups
    assert (await chain.review_token(token)).audiences == (ISSUER,)
    refused = await chain.review_token(token, ("other",))
    assert refused.user is None
    assert refused.error == (
        f'token audiences ["vault" "{ISSUER}"] is invalid for the target audiences ["other"]'
    )
    assert (await chain.review_token("garbage")).error == "invalid bearer token"
    assert isinstance(answer.user, UserInfo)
