"""ServiceAccount token claims and their issuer (upstream ``pkg/serviceaccount``), pure.

Bound tokens (TokenRequest) carry the registered claims and upstream's private claim::

    {"aud": [...], "exp": …, "iat": …, "iss": "<--service-account-issuer[0]>", "jti": "<uuid>",
     "kubernetes.io": {"namespace": "ns",
                       "node"|"pod"|"secret": {"name": …, "uid": …},   (the bound object)
                       "serviceaccount": {"name": "sa", "uid": "…"}},
     "nbf": …, "sub": "system:serviceaccount:ns:sa"}

Legacy tokens (the tokens controller's Secrets) carry no audience and no expiry::

    {"iss": "kubernetes/serviceaccount",
     "kubernetes.io/serviceaccount/namespace": "ns",
     "kubernetes.io/serviceaccount/secret.name": "sa-token-abcde",
     "kubernetes.io/serviceaccount/service-account.name": "sa",
     "kubernetes.io/serviceaccount/service-account.uid": "…",
     "sub": "system:serviceaccount:ns:sa"}

Reading claims back is as strict as go-jose's typed decoding: a claim of the wrong JSON type
makes the token unusable (:class:`ClaimsError`). Times are checked with go-jose's one-minute
leeway, as kube-apiserver does: a token is accepted until a minute after ``exp``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubeboot.pki.jwt import key_id, sign_jwt
from kubeboot.pki.keys import PrivateKey
from kubeboot.resources import serviceaccount as sa

__all__ = [
    "KUBERNETES_CLAIM",
    "LEEWAY",
    "BoundClaims",
    "ClaimsError",
    "LegacyClaims",
    "ObjectRef",
    "TokenIssuer",
    "audiences_of",
    "bound_claims",
    "legacy_claims",
    "parse_bound_claims",
    "parse_legacy_claims",
    "time_problem",
]

KUBERNETES_CLAIM = "kubernetes.io"
LEEWAY = dt.timedelta(minutes=1)  # go-jose's jwt.DefaultLeeway
_LEGACY_PREFIX = "kubernetes.io/serviceaccount/"
_LEGACY_NAMESPACE = _LEGACY_PREFIX + "namespace"
_LEGACY_SECRET = _LEGACY_PREFIX + "secret.name"
_LEGACY_SA_NAME = _LEGACY_PREFIX + "service-account.name"
_LEGACY_SA_UID = _LEGACY_PREFIX + "service-account.uid"


class ClaimsError(ValueError):
    """A verified token whose claims do not decode; the message names the claim only."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    name: str
    uid: str = ""

    def to_claim(self) -> dict[str, str]:
        """``ref`` with ``omitempty`` on both fields."""
        return {k: v for k, v in (("name", self.name), ("uid", self.uid)) if v}


def _seconds(when: dt.datetime) -> int:
    return int(when.timestamp())


def bound_claims(
    *,
    namespace: str,
    name: str,
    uid: str,
    audiences: Sequence[str],
    now: dt.datetime,
    expiration_seconds: int,
    pod: ObjectRef | None = None,
    secret: ObjectRef | None = None,
    node: ObjectRef | None = None,
    jti: str | None = None,
) -> dict[str, Any]:
    """``Claims()`` of ``pkg/serviceaccount/claims.go`` (without ``iss``, which the issuer
    adds). ``node`` alongside ``pod`` is the pod's node; alone, a node-bound token."""
    if secret is not None and (pod is not None or node is not None):
        raise ValueError("internal error, token can only be bound to one object type")
    private: dict[str, Any] = {
        "namespace": namespace,
        "serviceaccount": ObjectRef(name, uid).to_claim(),
    }
    for key, ref in (("pod", pod), ("secret", secret), ("node", node)):
        if ref is not None:
            private[key] = ref.to_claim()
    issued = _seconds(now)
    return {
        "sub": sa.username(namespace, name),
        "aud": list(audiences),
        "iat": issued,
        "nbf": issued,
        "exp": issued + expiration_seconds,
        "jti": jti if jti is not None else str(uuid.uuid4()),
        KUBERNETES_CLAIM: private,
    }


def legacy_claims(namespace: str, name: str, uid: str, secret_name: str) -> dict[str, Any]:
    """``LegacyClaims()`` of ``pkg/serviceaccount/legacy.go`` (without ``iss``)."""
    return {
        "sub": sa.username(namespace, name),
        _LEGACY_NAMESPACE: namespace,
        _LEGACY_SA_NAME: name,
        _LEGACY_SA_UID: uid,
        _LEGACY_SECRET: secret_name,
    }


class TokenIssuer:
    """Signs claims as ``issuer`` with the issuer's private key (``JWTTokenGenerator``)."""

    def __init__(self, issuer: str, key: PrivateKey) -> None:
        self.issuer = issuer
        self._key = key
        self._kid = key_id(key)

    def issue(self, claims: Mapping[str, Any]) -> str:
        return sign_jwt({**claims, "iss": self.issuer}, self._key, self._kid)


# --- reading claims back ---------------------------------------------------------------------


def _string(claims: Mapping[str, Any], key: str, where: str = "") -> str:
    value = claims.get(key, "")
    if not isinstance(value, str):
        raise ClaimsError(f"json: cannot unmarshal claim {where}{key!r}: not a string")
    return value


def _number(claims: Mapping[str, Any], key: str) -> int | None:
    value = claims.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimsError(f"square/go-jose/jwt: expected number value to unmarshal {key!r}")
    return int(value)


def audiences_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``aud`` claim: a string or an array of strings (go-jose's ``Audience``)."""
    value = claims.get("aud")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ClaimsError("square/go-jose/jwt: expected string or array value to unmarshal to Audience")


def _ref(private: Mapping[str, Any], key: str) -> ObjectRef | None:
    value = private.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClaimsError(f"json: cannot unmarshal claim 'kubernetes.io.{key}': not an object")
    where = f"'kubernetes.io.{key}.'"
    return ObjectRef(_string(value, "name", where), _string(value, "uid", where))


@dataclass(frozen=True, slots=True)
class BoundClaims:
    subject: str
    audiences: tuple[str, ...]
    expiry: int | None
    not_before: int | None
    issued_at: int | None
    jti: str
    namespace: str
    service_account: ObjectRef
    pod: ObjectRef | None
    secret: ObjectRef | None
    node: ObjectRef | None


def parse_bound_claims(claims: Mapping[str, Any]) -> BoundClaims:
    private = claims.get(KUBERNETES_CLAIM) or {}
    if not isinstance(private, dict):
        raise ClaimsError("json: cannot unmarshal claim 'kubernetes.io': not an object")
    return BoundClaims(
        subject=_string(claims, "sub"),
        audiences=audiences_of(claims),
        expiry=_number(claims, "exp"),
        not_before=_number(claims, "nbf"),
        issued_at=_number(claims, "iat"),
        jti=_string(claims, "jti"),
        namespace=_string(private, "namespace", "'kubernetes.io.'"),
        service_account=_ref(private, "serviceaccount") or ObjectRef(""),
        pod=_ref(private, "pod"),
        secret=_ref(private, "secret"),
        node=_ref(private, "node"),
    )


@dataclass(frozen=True, slots=True)
class LegacyClaims:
    subject: str
    audiences: tuple[str, ...]
    namespace: str
    service_account_name: str
    service_account_uid: str
    secret_name: str


def parse_legacy_claims(claims: Mapping[str, Any]) -> LegacyClaims:
    return LegacyClaims(
        subject=_string(claims, "sub"),
        audiences=audiences_of(claims),
        namespace=_string(claims, _LEGACY_NAMESPACE),
        service_account_name=_string(claims, _LEGACY_SA_NAME),
        service_account_uid=_string(claims, _LEGACY_SA_UID),
        secret_name=_string(claims, _LEGACY_SECRET),
    )


def time_problem(claims: BoundClaims, now: dt.datetime) -> str | None:
    """Upstream's message for a token outside its validity window (with leeway), or None."""
    leeway = LEEWAY.total_seconds()
    at = now.timestamp()  # full precision, as go-jose compares time.Time values
    if claims.not_before is not None and at + leeway < claims.not_before:
        return "service account token is not valid yet"
    if claims.expiry is not None and at - leeway > claims.expiry:
        return "service account token has expired"
    if claims.issued_at is not None and at + leeway < claims.issued_at:
        return "service account token is issued in the future"
    return None
