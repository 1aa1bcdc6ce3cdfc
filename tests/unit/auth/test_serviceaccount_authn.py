"""ServiceAccount token claims and authentication, unhappy paths first, with upstream's words.

Objects come from an in-memory :class:`ObjectSource` (the store-backed one is exercised by
the integration tests); time from a :class:`FakeClock`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeboot.auth.interface import AuthenticationFailed, UserInfo
from kubeboot.auth.satokens import ObjectRef, TokenIssuer, bound_claims, legacy_claims
from kubeboot.auth.serviceaccount import (
    BoundValidator,
    LegacyValidator,
    ServiceAccountTokenAuthenticator,
)
from kubeboot.clock import FakeClock
from kubeboot.pki.jwt import sign_jwt

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
ISSUER = "https://kubernetes.default.svc.cluster.local"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
SA_UID = "6f1b1c8e-0000-4000-8000-000000000001"
Obj = dict[str, Any]


class Objects:
    """An in-memory ObjectSource: dicts keyed like the store, plus the labels it stamped."""

    def __init__(self) -> None:
        self.service_accounts: dict[tuple[str, str], Obj] = {}
        self.secrets: dict[tuple[str, str], Obj] = {}
        self.nodes: dict[str, Obj] = {}
        self.stamped: list[tuple[str, str, str, str]] = []

    def add_sa(self, ns: str, name: str, uid: str = SA_UID) -> None:
        self.service_accounts[ns, name] = {"metadata": {"name": name, "namespace": ns, "uid": uid}}

    async def service_account(self, namespace: str, name: str) -> Obj | None:
        return self.service_accounts.get((namespace, name))

    async def secret(self, namespace: str, name: str) -> Obj | None:
        return self.secrets.get((namespace, name))

    async def node(self, name: str) -> Obj | None:
        return self.nodes.get(name)

    async def pod(self, namespace: str, name: str) -> Obj | None:
        return None

    async def mark_used(self, namespace: str, name: str, uid: str, day: str) -> None:
        self.stamped.append((namespace, name, uid, day))


@pytest.fixture
def objects() -> Objects:
    objs = Objects()
    objs.add_sa("ci", "builder")
    return objs


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def bound_authn(objects: Objects, clock: FakeClock) -> ServiceAccountTokenAuthenticator:
    return ServiceAccountTokenAuthenticator(
        [ISSUER], [KEY.public_key()], [ISSUER], BoundValidator(objects, clock)
    )


def legacy_authn(
    objects: Objects, clock: FakeClock, *, lookup: bool = True
) -> ServiceAccountTokenAuthenticator:
    return ServiceAccountTokenAuthenticator(
        ["kubernetes/serviceaccount"],
        [KEY.public_key()],
        [ISSUER],
        LegacyValidator(objects, clock, lookup=lookup),
    )


def bound_token(
    *, seconds: int = 3600, audiences: tuple[str, ...] = (ISSUER,), **refs: ObjectRef
) -> str:
    claims = bound_claims(
        namespace="ci",
        name="builder",
        uid=SA_UID,
        audiences=audiences,
        now=NOW,
        expiration_seconds=seconds,
        jti="jti-1",
        **refs,
    )
    return TokenIssuer(ISSUER, KEY).issue(claims)


def legacy_token() -> str:
    claims = legacy_claims("ci", "builder", SA_UID, "builder-token-abcde")
    return TokenIssuer("kubernetes/serviceaccount", KEY).issue(claims)


def _payload(token: str) -> Obj:
    segment = token.split(".")[1]
    decoded: Obj = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def test_bound_claims_are_upstreams() -> None:
    token = bound_token(secret=ObjectRef("s", "uid-s"))
    assert _payload(token) == {
        "aud": [ISSUER],
        "exp": int(NOW.timestamp()) + 3600,
        "iat": int(NOW.timestamp()),
        "iss": ISSUER,
        "jti": "jti-1",
        "kubernetes.io": {
            "namespace": "ci",
            "secret": {"name": "s", "uid": "uid-s"},
            "serviceaccount": {"name": "builder", "uid": SA_UID},
        },
        "nbf": int(NOW.timestamp()),
        "sub": "system:serviceaccount:ci:builder",
    }
    with pytest.raises(ValueError, match="only be bound to one object type"):
        bound_claims(
            namespace="ci",
            name="b",
            uid="u",
            audiences=(),
            now=NOW,
            expiration_seconds=600,
            secret=ObjectRef("s"),
            node=ObjectRef("n"),
        )


def test_legacy_claims_are_upstreams() -> None:
    assert _payload(legacy_token()) == {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "ci",
        "kubernetes.io/serviceaccount/secret.name": "builder-token-abcde",
        "kubernetes.io/serviceaccount/service-account.name": "builder",
        "kubernetes.io/serviceaccount/service-account.uid": SA_UID,
        "sub": "system:serviceaccount:ci:builder",
    }


# --- not mine ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "abcdef.0123456789abcdef",  # a bootstrap token
        "not-a-jwt",
        '{"iss": "' + ISSUER + '"}',
        sign_jwt({"iss": "https://someone-else.example"}, KEY),
        sign_jwt({"sub": "no issuer"}, KEY),
    ],
)
async def test_tokens_of_other_issuers_are_not_mine(
    token: str, objects: Objects, clock: FakeClock
) -> None:
    assert await bound_authn(objects, clock).authenticate_token(token) is None


# --- rejections --------------------------------------------------------------------------------


def _rejected(message: str) -> Any:
    return pytest.raises(AuthenticationFailed, match=message)


async def test_signature_checks(objects: Objects, clock: FakeClock) -> None:
    authn = bound_authn(objects, clock)
    foreign = TokenIssuer(ISSUER, OTHER_KEY).issue({"sub": "x"})
    with _rejected("^invalid signature, no keys found$"):
        await authn.authenticate_token(foreign)  # its kid names no key of ours
    signature = foreign.split(".")[2]
    no_kid = sign_jwt({"iss": ISSUER}, OTHER_KEY, kid="")
    with _rejected("^square/go-jose: error in cryptographic primitive$"):
        await authn.authenticate_token(no_kid)  # no kid: every key is tried
    good = bound_token()
    forged = ".".join([*good.split(".")[:2], signature])
    with _rejected("^square/go-jose: error in cryptographic primitive$") as info:
        await authn.authenticate_token(forged)
    assert forged not in str(info.value)


async def test_audiences(objects: Objects, clock: FakeClock) -> None:
    authn = bound_authn(objects, clock)
    token = bound_token(audiences=("vault",))
    with _rejected(
        '^token audiences \\["vault"\\] is invalid for the target audiences \\["' + ISSUER
    ):
        await authn.authenticate_token(token)
    result = await authn.review(token, ["other", "vault"])
    assert result is not None
    assert result.audiences == ("vault",)
    both = await authn.review(bound_token(audiences=(ISSUER, "vault")))
    assert both is not None
    assert both.audiences == (ISSUER,)


async def test_expiry_with_upstreams_one_minute_leeway(objects: Objects, clock: FakeClock) -> None:
    authn = bound_authn(objects, clock)
    token = bound_token(seconds=600)
    clock.advance(600 + 60)
    assert await authn.authenticate_token(token) is not None  # exp + leeway: still good
    clock.advance(1)
    with _rejected("^service account token has expired$"):
        await authn.authenticate_token(token)


async def test_not_yet_valid_and_issued_in_the_future(clock: FakeClock, objects: Objects) -> None:
    authn = bound_authn(objects, clock)
    early = TokenIssuer(ISSUER, KEY).issue(
        {**_payload(bound_token()), "nbf": int(NOW.timestamp()) + 61}
    )
    with _rejected("^service account token is not valid yet$"):
        await authn.authenticate_token(early)
    future = TokenIssuer(ISSUER, KEY).issue(
        {**_payload(bound_token()), "iat": int(NOW.timestamp()) + 61}
    )
    with _rejected("^service account token is issued in the future$"):
        await authn.authenticate_token(future)


async def test_deleted_or_recreated_service_account(objects: Objects, clock: FakeClock) -> None:
    authn = bound_authn(objects, clock)
    token = bound_token()
    objects.add_sa("ci", "builder", uid="recreated")
    with _rejected(f"^service account UID \\(recreated\\) does not match claim \\({SA_UID}\\)$"):
        await authn.authenticate_token(token)
    del objects.service_accounts["ci", "builder"]
    with _rejected('^serviceaccounts "builder" not found$'):
        await authn.authenticate_token(token)


async def test_bound_objects_must_exist_with_their_uid(objects: Objects, clock: FakeClock) -> None:
    authn = bound_authn(objects, clock)
    secret_bound = bound_token(secret=ObjectRef("s", "uid-s"))
    with _rejected("^service account token has been invalidated$"):
        await authn.authenticate_token(secret_bound)
    objects.secrets["ci", "s"] = {"metadata": {"name": "s", "uid": "other"}}
    with _rejected("^secret UID \\(other\\) does not match service account secret ref claim"):
        await authn.authenticate_token(secret_bound)
    node_bound = bound_token(node=ObjectRef("w1", "uid-n"))
    with _rejected("^service account token has been invalidated$"):
        await authn.authenticate_token(node_bound)
    objects.nodes["w1"] = {"metadata": {"name": "w1", "uid": "uid-n"}}
    user = await authn.authenticate_token(node_bound)
    assert user is not None
    assert user.extra["authentication.kubernetes.io/node-name"] == ("w1",)
    assert user.extra["authentication.kubernetes.io/node-uid"] == ("uid-n",)
    pod_bound = bound_token(pod=ObjectRef("p", "uid-p"))
    with _rejected("^service account token has been invalidated$"):
        await authn.authenticate_token(pod_bound)  # kubeboot serves no pods


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": "soon"}, "expected number value"),
        ({"aud": [1]}, "Audience"),
        ({"kubernetes.io": "x"}, "'kubernetes.io': not an object"),
        ({"kubernetes.io": {"serviceaccount": {"name": 1}}}, "'kubernetes.io.serviceaccount.'"),
        ({"sub": ["x"]}, "'sub': not a string"),
    ],
)
async def test_claims_of_the_wrong_type_are_refused(
    claims: Obj, message: str, objects: Objects, clock: FakeClock
) -> None:
    token = TokenIssuer(ISSUER, KEY).issue({**_payload(bound_token()), **claims})
    with _rejected(message):
        await bound_authn(objects, clock).authenticate_token(token)


# --- success -----------------------------------------------------------------------------------


async def test_bound_token_user(objects: Objects, clock: FakeClock) -> None:
    user = await bound_authn(objects, clock).authenticate_token(bound_token())
    assert user == UserInfo(
        name="system:serviceaccount:ci:builder",
        uid=SA_UID,
        groups=("system:serviceaccounts", "system:serviceaccounts:ci"),
        extra={"authentication.kubernetes.io/credential-id": ("JTI=jti-1",)},
    )


# --- legacy tokens -----------------------------------------------------------------------------


def _token_secret(token: str, **labels: str) -> Obj:
    return {
        "metadata": {
            "name": "builder-token-abcde",
            "namespace": "ci",
            "uid": "uid-secret",
            "labels": labels,
        },
        "type": "kubernetes.io/service-account-token",
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }


async def test_legacy_token_lifecycle(objects: Objects, clock: FakeClock) -> None:
    authn = legacy_authn(objects, clock)
    token = legacy_token()
    with _rejected("^Token has been invalidated$"):
        await authn.authenticate_token(token)  # no Secret
    objects.secrets["ci", "builder-token-abcde"] = _token_secret("something else")
    with _rejected("^Token does not match server's copy$"):
        await authn.authenticate_token(token)
    objects.secrets["ci", "builder-token-abcde"] = _token_secret(token)
    user = await authn.authenticate_token(token)
    assert user == UserInfo(
        "system:serviceaccount:ci:builder",
        SA_UID,
        ("system:serviceaccounts", "system:serviceaccounts:ci"),
    )
    assert objects.stamped == [("ci", "builder-token-abcde", "uid-secret", "2026-05-01")]
    objects.secrets["ci", "builder-token-abcde"] = _token_secret(
        token, **{"kubernetes.io/legacy-token-last-used": "2026-05-01"}
    )
    await authn.authenticate_token(token)
    assert len(objects.stamped) == 1  # once a day at most
    objects.add_sa("ci", "builder", uid="recreated")
    with _rejected("^ServiceAccount UID \\(recreated\\) does not match claim"):
        await authn.authenticate_token(token)
    del objects.service_accounts["ci", "builder"]
    with _rejected('^serviceaccounts "builder" not found$'):
        await authn.authenticate_token(token)


async def test_legacy_token_marked_invalid_is_refused(objects: Objects, clock: FakeClock) -> None:
    token = legacy_token()
    objects.secrets["ci", "builder-token-abcde"] = _token_secret(
        token, **{"kubernetes.io/legacy-token-invalid-since": "2026-01-01"}
    )
    with _rejected(
        "has been marked invalid.*remove the 'kubernetes.io/legacy-token-invalid-since'"
    ):
        await legacy_authn(objects, clock).authenticate_token(token)


async def test_legacy_token_without_lookup_checks_claims_only(
    objects: Objects, clock: FakeClock
) -> None:
    user = await legacy_authn(objects, clock, lookup=False).authenticate_token(legacy_token())
    assert user is not None
    assert user.name == "system:serviceaccount:ci:builder"
    assert objects.stamped == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sub": ""}, "^sub claim is missing$"),
        ({"kubernetes.io/serviceaccount/namespace": ""}, "^namespace claim is missing$"),
        ({"kubernetes.io/serviceaccount/secret.name": ""}, "^secretName claim is missing$"),
        ({"kubernetes.io/serviceaccount/service-account.uid": ""}, "serviceAccountUID claim"),
        ({"sub": "system:serviceaccount:other:builder"}, "^sub claim is invalid$"),
        ({"sub": "system:serviceaccount:ci:builder:x"}, "^sub claim is invalid$"),
    ],
)
async def test_legacy_claims_must_agree(
    change: Obj, message: str, objects: Objects, clock: FakeClock
) -> None:
    token = TokenIssuer("kubernetes/serviceaccount", KEY).issue(
        {**_payload(legacy_token()), **change}
    )
    with _rejected(message):
        await legacy_authn(objects, clock, lookup=False).authenticate_token(token)


async def test_legacy_tokens_are_for_the_api_audiences_only(
    objects: Objects, clock: FakeClock
) -> None:
    with _rejected('is invalid for the target audiences \\["vault"\\]'):
        await legacy_authn(objects, clock, lookup=False).review(legacy_token(), ["vault"])
