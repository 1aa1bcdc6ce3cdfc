"""ServiceAccount token authentication (upstream ``pkg/serviceaccount/jwt.go``, ``claims.go``,
``legacy.go``), as two token authenticators in the chain, like kube-apiserver's:

* **legacy** (``iss: kubernetes/serviceaccount``, the tokens controller's Secrets): the Secret
  named in the token must still exist and hold exactly this token (constant-time compare), its
  ServiceAccount must exist with the UID in the token, and the Secret must not carry
  ``kubernetes.io/legacy-token-invalid-since``; a use stamps the Secret's
  ``kubernetes.io/legacy-token-last-used`` label with the day (UTC, at most once a day). With
  ``--service-account-lookup=false`` only the signature and claims are checked, as upstream.
* **bound** (``iss`` one of ``--service-account-issuer``, TokenRequest tokens): within
  ``nbf``/``exp`` (one minute of leeway, as go-jose), the ServiceAccount exists with the UID in
  the token, and a bound Secret / Node / Pod exists with its UID.

Both: a token whose unverified ``iss`` is not theirs is "not mine" (other authenticators may
take it); the ``kid`` picks the keys to try; the signature must verify with one of them under
the key's own algorithm; the audiences must meet the requested ones (the API's
``--api-audiences`` unless a TokenReview names others; a token without ``aud`` counts as one
for the API). Rejections raise :class:`AuthenticationFailed` with upstream's words, never the
token.

Objects come from watch-fed mirrors (ServiceAccounts, and Secrets of type
``kubernetes.io/service-account-token``) with a storage read when the mirror has not seen an
object yet; bound Secrets of other types, Nodes and Pods are read from storage (rare, and a
Node cache would cost memory in proportion to the cluster). A deleted object is refused as
soon as the watch delivers the deletion: kubeboot deletes synchronously, and keeps no 10 s
cache of successes as upstream's token cache does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kubeboot.auth.interface import AuthenticationFailed, UserInfo
from kubeboot.auth.mirror import StoreMirror, resource_info
from kubeboot.auth.satokens import (
    BoundClaims,
    ClaimsError,
    ObjectRef,
    audiences_of,
    parse_bound_claims,
    parse_legacy_claims,
    time_problem,
)
from kubeboot.clock import Clock
from kubeboot.pki.jwt import JwtError, UnverifiedJwt, key_id, parse_jwt, verify_jwt
from kubeboot.pki.keys import PublicKey
from kubeboot.resources import serviceaccount as sa
from kubeboot.resources.registry import find_resource
from kubeboot.storage.interface import KeyNotFoundError, RevisionMismatch, Store, StoreError

__all__ = [
    "BoundValidator",
    "LegacyValidator",
    "ObjectSource",
    "ServiceAccountTokenAuthenticator",
    "StoreObjects",
    "TokenResult",
    "service_account_user",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
T = TypeVar("T")
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
_INVALIDATED = "service account token has been invalidated"


def _go_quote(values: Iterable[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def service_account_user(
    namespace: str,
    name: str,
    uid: str,
    *,
    jti: str = "",
    pod: ObjectRef | None = None,
    node: ObjectRef | None = None,
) -> UserInfo:
    """``ServiceAccountInfo.UserInfo()``: the name, UID, both groups and the extras."""
    extra: dict[str, tuple[str, ...]] = {}
    if pod is not None and pod.name and pod.uid:
        extra[POD_NAME_KEY], extra[POD_UID_KEY] = (pod.name,), (pod.uid,)
    if jti:
        extra[CREDENTIAL_ID_KEY] = (f"JTI={jti}",)
    if node is not None and node.name:
        extra[NODE_NAME_KEY] = (node.name,)
        if node.uid:
            extra[NODE_UID_KEY] = (node.uid,)
    return UserInfo(
        name=sa.username(namespace, name), uid=uid, groups=sa.group_names(namespace), extra=extra
    )


# --- where objects come from -----------------------------------------------------------------


class ObjectSource(Protocol):
    """Reads the objects tokens refer to (``ServiceAccountTokenGetter``) and records legacy
    token use."""

    async def service_account(self, namespace: str, name: str) -> Obj | None: ...

    async def secret(self, namespace: str, name: str) -> Obj | None: ...

    async def node(self, name: str) -> Obj | None: ...

    async def pod(self, namespace: str, name: str) -> Obj | None: ...

    async def mark_used(self, namespace: str, name: str, uid: str, day: str) -> None: ...


def _is_token_secret(obj: Obj) -> bool:
    return obj.get("type") == sa.TOKEN_SECRET_TYPE


class StoreObjects:
    """Mirror first, then storage: upstream's lister-with-live-fallback getter."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sas = resource_info("", "v1", "serviceaccounts")
        self._secrets = resource_info("", "v1", "secrets")
        self.service_accounts = StoreMirror(store, self._sas.storage_prefix())
        self.token_secrets = StoreMirror(
            store, self._secrets.storage_prefix(), keep=_is_token_secret
        )

    @property
    def mirrors(self) -> tuple[StoreMirror, ...]:
        return (self.service_accounts, self.token_secrets)

    async def _read(self, key: str) -> Obj | None:
        kv = await self._store.get(key)
        if kv is None:
            return None
        try:
            obj = json.loads(kv.value)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    async def service_account(self, namespace: str, name: str) -> Obj | None:
        key = self._sas.storage_key(namespace, name)
        return self.service_accounts.get(key) or await self._read(key)

    async def secret(self, namespace: str, name: str) -> Obj | None:
        key = self._secrets.storage_key(namespace, name)
        return self.token_secrets.get(key) or await self._read(key)

    async def node(self, name: str) -> Obj | None:
        return await self._read(resource_info("", "v1", "nodes").storage_key(None, name))

    async def pod(self, namespace: str, name: str) -> Obj | None:
        pods = find_resource("", "v1", "pods")
        if pods is None or not pods.stored:  # kubeboot runs no workloads
            return None
        return await self._read(pods.storage_key(namespace, name))

    async def mark_used(self, namespace: str, name: str, uid: str, day: str) -> None:
        """Set the last-used label with a compare-and-swap on the Secret as stored; a lost
        race or a deleted Secret is left for the next use (upstream only logs too)."""
        key = self._secrets.storage_key(namespace, name)
        try:
            kv = await self._store.get(key)
            if kv is None:
                return
            obj = json.loads(kv.value)
            meta = obj.get("metadata") or {}
            if meta.get("uid") != uid:
                return
            meta.setdefault("labels", {})[sa.LAST_USED_LABEL] = day
            obj["metadata"] = meta
            data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
            await self._store.update(key, data, kv.mod_revision)
        except (RevisionMismatch, KeyNotFoundError):
            return
        except (StoreError, ValueError) as exc:
            log.warning(
                "could not label legacy token %s/%s with its last use: %s", namespace, name, exc
            )


def _decoded(parse: Callable[[Obj], T], claims: Obj) -> T:
    """Claims decoded by ``parse``; a claim of the wrong type rejects the token."""
    try:
        return parse(claims)
    except ClaimsError as exc:
        raise AuthenticationFailed(str(exc)) from None


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _not_found(resource: str, name: str) -> AuthenticationFailed:
    return AuthenticationFailed(f'{resource} "{name}" not found')


# --- validators ------------------------------------------------------------------------------


class BoundValidator:
    """``validator.Validate`` of ``claims.go`` for TokenRequest tokens."""

    def __init__(self, objects: ObjectSource, clock: Clock) -> None:
        self._objects = objects
        self._clock = clock

    async def validate(self, token: str, claims: Obj) -> UserInfo:
        parsed = _decoded(parse_bound_claims, claims)
        problem = time_problem(parsed, self._clock.now())
        if problem is not None:
            raise AuthenticationFailed(problem)
        ref = parsed.service_account
        account = await self._objects.service_account(parsed.namespace, ref.name)
        if account is None:
            raise _not_found("serviceaccounts", ref.name)
        if _uid(account) != ref.uid:
            raise AuthenticationFailed(
                f"service account UID ({_uid(account)}) does not match claim ({ref.uid})"
            )
        await self._check_bound(parsed)
        # A pod-bound token's node is taken from the claims; a node-bound one was checked.
        return service_account_user(
            parsed.namespace, ref.name, ref.uid, jti=parsed.jti, pod=parsed.pod, node=parsed.node
        )

    async def _check_bound(self, parsed: BoundClaims) -> None:
        ns = parsed.namespace
        if parsed.secret is not None:
            await self._same(
                "secret", parsed.secret, await self._objects.secret(ns, parsed.secret.name)
            )
        if parsed.pod is not None:
            await self._same("pod", parsed.pod, await self._objects.pod(ns, parsed.pod.name))
        elif parsed.node is not None:
            await self._same("node", parsed.node, await self._objects.node(parsed.node.name))

    @staticmethod
    async def _same(kind: str, ref: ObjectRef, obj: Obj | None) -> None:
        if obj is None:
            raise AuthenticationFailed(_INVALIDATED)
        if _uid(obj) != ref.uid:
            raise AuthenticationFailed(
                f"{kind} UID ({_uid(obj)}) does not match service account {kind} ref claim "
                f"({ref.uid})"
            )


class LegacyValidator:
    """``legacyValidator.Validate`` of ``legacy.go`` for token-Secret tokens."""

    def __init__(self, objects: ObjectSource, clock: Clock, *, lookup: bool = True) -> None:
        self._objects = objects
        self._clock = clock
        self._lookup = lookup

    async def validate(self, token: str, claims: Obj) -> UserInfo:
        parsed = _decoded(parse_legacy_claims, claims)
        for value, claim in (
            (parsed.subject, "sub claim"),
            (parsed.namespace, "namespace claim"),
            (parsed.secret_name, "secretName claim"),
            (parsed.service_account_name, "serviceAccountName claim"),
            (parsed.service_account_uid, "serviceAccountUID claim"),
        ):
            if not value:
                raise AuthenticationFailed(f"{claim} is missing")
        if sa.split_username(parsed.subject) != (parsed.namespace, parsed.service_account_name):
            raise AuthenticationFailed("sub claim is invalid")
        ns, name, uid = parsed.namespace, parsed.service_account_name, parsed.service_account_uid
        if self._lookup:
            await self._check(token, ns, name, uid, parsed.secret_name)
        return service_account_user(ns, name, uid)

    async def _check(self, token: str, ns: str, name: str, uid: str, secret_name: str) -> None:
        secret = await self._objects.secret(ns, secret_name)
        if secret is None:
            raise AuthenticationFailed("Token has been invalidated")
        stored = sa.secret_data(secret, sa.TOKEN_KEY)
        if not hmac.compare_digest(stored, token.encode()):
            raise AuthenticationFailed("Token does not match server's copy")
        account = await self._objects.service_account(ns, name)
        if account is None:
            raise _not_found("serviceaccounts", name)
        if _uid(account) != uid:
            raise AuthenticationFailed(
                f"ServiceAccount UID ({_uid(account)}) does not match claim ({uid})"
            )
        labels = (secret.get("metadata") or {}).get("labels") or {}
        await self._stamp(secret, labels)
        if labels.get(sa.INVALID_SINCE_LABEL):
            raise AuthenticationFailed(
                f"the token in secret {ns}/{secret_name} for service account {ns}/{name} has "
                "been marked invalid. Use tokens from the TokenRequest API or manually created "
                "secret-based tokens, or remove the "
                f"'{sa.INVALID_SINCE_LABEL}' label from the secret to temporarily allow use of "
                "this token"
            )

    async def _stamp(self, secret: Obj, labels: dict[str, Any]) -> None:
        now = self._clock.now().astimezone(dt.UTC)
        today = now.strftime("%Y-%m-%d")
        tomorrow = (now + dt.timedelta(days=1)).strftime("%Y-%m-%d")
        if labels.get(sa.LAST_USED_LABEL) in (today, tomorrow):
            return
        meta = secret.get("metadata") or {}
        await self._objects.mark_used(
            str(meta.get("namespace")), str(meta.get("name")), _uid(secret), today
        )


class Validator(Protocol):
    async def validate(self, token: str, claims: Obj) -> UserInfo: ...


# --- the authenticator -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenResult:
    user: UserInfo
    audiences: tuple[str, ...]
    """The audiences the token was accepted for (a TokenReview's ``status.audiences``)."""


class ServiceAccountTokenAuthenticator:
    """``jwtTokenAuthenticator``: issuer, key, signature and audience, then ``validator``."""

    def __init__(
        self,
        issuers: Sequence[str],
        keys: Sequence[PublicKey],
        api_audiences: Sequence[str],
        validator: Validator,
    ) -> None:
        self._issuers = frozenset(issuers)
        self._keys: dict[str, list[PublicKey]] = {}
        for key in keys:
            self._keys.setdefault(key_id(key), []).append(key)
        self._all_keys = list(keys)
        self._api_audiences = tuple(api_audiences)
        self._validator = validator

    def _parse_if_mine(self, token: str) -> UnverifiedJwt | None:
        """``hasCorrectIssuer`` plus parsing: None when the token is not ours to judge."""
        if token.lstrip().startswith("{"):
            return None
        try:
            parsed = parse_jwt(token)
        except JwtError:
            return None
        return parsed if parsed.claims.get("iss") in self._issuers else None

    def _verify(self, parsed: UnverifiedJwt) -> None:
        keys = self._keys.get(parsed.kid, []) if parsed.kid else self._all_keys
        if not keys:
            raise AuthenticationFailed("invalid signature, no keys found")
        errors = []
        for key in keys:
            try:
                verify_jwt(parsed, key)
                return
            except JwtError:
                errors.append("square/go-jose: error in cryptographic primitive")
        raise AuthenticationFailed(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")

    async def review(
        self, token: str, audiences: Sequence[str] | None = None
    ) -> TokenResult | None:
        """The token's user and accepted audiences for ``audiences`` (default: the API's)."""
        parsed = self._parse_if_mine(token)
        if parsed is None:
            return None
        self._verify(parsed)
        token_audiences = _decoded(audiences_of, parsed.claims)
        if not token_audiences:  # legacy tokens: for the API only
            token_audiences = self._api_audiences
        requested = tuple(audiences) if audiences else self._api_audiences
        accepted = tuple(a for a in token_audiences if a in requested)
        if not accepted and self._api_audiences:
            raise AuthenticationFailed(
                f"token audiences {_go_quote(token_audiences)} is invalid for the target "
                f"audiences {_go_quote(requested)}"
            )
        user = await self._validator.validate(token, parsed.claims)
        return TokenResult(user, accepted)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        result = await self.review(token)
        return None if result is None else result.user
