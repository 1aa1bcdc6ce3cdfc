"""``serviceaccounts/<name>/token``: TokenRequest (upstream
``pkg/registry/core/serviceaccount/storage/token.go``).

The request is an ``authentication.k8s.io/v1`` TokenRequest; the answer is the same object
with the defaults filled in (audiences: ``--api-audiences``; ``expirationSeconds``: 3600), the
ServiceAccount's name, namespace and UID in its metadata, and ``status.token`` /
``status.expirationTimestamp``. Checks, in upstream's order and words:

* ``metadata.name`` / ``metadata.namespace``, when set, name this ServiceAccount (422), which
  must exist (404) with the request's UID when one is given (409,
  TokenRequestServiceAccountUIDValidation is on by default since 1.34);
* ``expirationSeconds`` within 10 minutes .. 2^32 s, no ``attestations`` (422);
* ``boundObjectRef``: a Secret (the token dies with it), a Node (with its UID), or a Pod
  (kubeboot has none, so 404); any other kind is 400; a UID that is not the object's is 409;
* ``--service-account-max-token-expiration`` shortens a longer request, with a warning.

kube-apiserver authorizes ``create serviceaccounts/token`` before this runs (the handler
does). The ServiceAccount and bound object are read from storage directly, as upstream's
getters are not authorized again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kubeboot.api.registry import codec
from kubeboot.auth.satokens import ObjectRef, bound_claims
from kubeboot.auth.serviceaccount_tokens import (
    DEFAULT_TOKEN_SECONDS,
    MAX_TOKEN_SECONDS,
    MIN_TOKEN_SECONDS,
    ServiceAccountTokens,
)
from kubeboot.clock import format_time
from kubeboot.resources.goshape import go_shape
from kubeboot.resources.registry import (
    AUTHENTICATION,
    CREATE_ONLY,
    ResourceInfo,
    find_resource,
)
from kubeboot.resources.schemas import authentication_v1
from kubeboot.resources.status import BadRequest, Conflict, FieldError, Invalid, NotFound
from kubeboot.storage.interface import Store

__all__ = ["TOKEN_REQUEST", "TokenRequestAnswer", "create_token"]

JsonObj = dict[str, Any]
_GROUP = "authentication.k8s.io"
# The body and answer of serviceaccounts/token: a kind without a row of its own.
TOKEN_REQUEST = ResourceInfo(
    AUTHENTICATION,
    "TokenRequest",
    "tokenrequests",
    "tokenrequest",
    namespaced=True,
    verbs=CREATE_ONLY,
    stored=False,
)


@dataclass(frozen=True, slots=True)
class TokenRequestAnswer:
    token_request: JsonObj
    warnings: list[str]


async def _read(store: Store, plural: str, namespace: str | None, name: str) -> JsonObj:
    res = find_resource("", "v1", plural)
    if res is None or not res.stored:  # pods: kubeboot runs no workloads
        raise NotFound.of(plural, "", name)
    kv = await store.get(res.storage_key(namespace if res.namespaced else None, name))
    if kv is None:
        raise NotFound.of(plural, "", name)
    return codec.decode(kv)


def _uid(obj: JsonObj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _gvk_string(api_version: str, kind: str) -> str:
    """Go's ``GroupVersionKind.String()`` of ``schema.FromAPIVersionAndKind``."""
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _validate(spec: JsonObj) -> None:
    """``ValidateTokenRequest`` (no webhook-bound tokens in kubeboot)."""
    seconds = spec["expirationSeconds"]
    errors = []
    if seconds < MIN_TOKEN_SECONDS:
        errors.append(
            FieldError.invalid(
                "spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"
            )
        )
    if seconds > MAX_TOKEN_SECONDS:
        errors.append(
            FieldError.invalid(
                "spec.expirationSeconds",
                seconds,
                "may not specify a duration larger than 2^32 seconds",
            )
        )
    if spec.get("attestations"):
        errors = [
            FieldError.invalid(
                "spec.attestations",
                spec["attestations"],
                "attestations may only be specified with a webhook bound object reference",
            )
        ]
    if errors:
        raise Invalid.of("TokenRequest", _GROUP, "", errors)


async def _bound(store: Store, sa_name: str, namespace: str, ref: JsonObj) -> dict[str, ObjectRef]:
    """The claims' bound objects (``secret``, ``node``, or a pod's ``pod`` and ``node``)."""
    api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
    name = str(ref.get("name") or "")
    group = api_version.rpartition("/")[0]
    bound: dict[str, ObjectRef]
    if group == "" and kind == "Pod":
        pod = await _read(store, "pods", namespace, name)
        if (pod.get("spec") or {}).get("serviceAccountName") != sa_name:
            raise BadRequest(
                f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                "different serviceaccount name."
            )
        bound = {"pod": ObjectRef(name, _uid(pod))}
        uid = _uid(pod)
    elif group == "" and kind == "Node":
        node = await _read(store, "nodes", None, name)
        uid = _uid(node)
        bound = {"node": ObjectRef(name, uid)}
    elif group == "" and kind == "Secret":
        secret = await _read(store, "secrets", namespace, name)
        uid = _uid(secret)
        bound = {"secret": ObjectRef(name, uid)}
    else:
        raise BadRequest(f"cannot bind token to object of type {_gvk_string(api_version, kind)}")
    wanted = str(ref.get("uid") or "")
    if wanted and wanted != uid:
        raise Conflict.of(
            kind,
            group,
            name,
            f"the UID in the bound object reference ({wanted}) does not match the UID in "
            "record. The object might have been deleted and then recreated",
        )
    return bound


async def create_token(
    tokens: ServiceAccountTokens,
    store: Store,
    namespace: str,
    name: str,
    request: JsonObj,
    now: dt.datetime,
) -> TokenRequestAnswer:
    """Issue a token for ServiceAccount ``namespace/name`` as ``request`` (a conformed
    TokenRequest) asks."""
    meta = dict(request.get("metadata") or {})
    if meta.get("name") and meta["name"] != name:
        raise Invalid.of(
            "TokenRequest",
            _GROUP,
            name,
            [
                FieldError.invalid(
                    "metadata.name",
                    meta["name"],
                    "must match the service account name if specified",
                )
            ],
        )
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise Invalid.of(
            "TokenRequest",
            _GROUP,
            name,
            [
                FieldError.invalid(
                    "metadata.namespace",
                    meta["namespace"],
                    "must match the service account namespace if specified",
                )
            ],
        )
    account = await _read(store, "serviceaccounts", namespace, name)
    sa_uid = _uid(account)
    if meta.get("uid") and meta["uid"] != sa_uid:
        raise Conflict.of(
            "TokenRequest",
            _GROUP,
            name,
            f"the UID in the token request ({meta['uid']}) does not match the UID of the "
            f"service account ({sa_uid})",
        )
    spec = dict(request.get("spec") or {})
    if not spec.get("audiences"):
        spec["audiences"] = list(tokens.api_audiences)
    if spec.get("expirationSeconds") is None:
        spec["expirationSeconds"] = DEFAULT_TOKEN_SECONDS
    meta |= {"name": name, "namespace": namespace, "uid": sa_uid}
    meta["creationTimestamp"] = format_time(now)
    _validate(spec)
    bound: dict[str, ObjectRef] = {}
    if isinstance(spec.get("boundObjectRef"), dict):
        bound = await _bound(store, name, namespace, spec["boundObjectRef"])
    warnings = []
    cap = tokens.max_expiration_seconds
    if cap and spec["expirationSeconds"] > cap:
        warnings.append(
            f"requested expiration of {spec['expirationSeconds']} seconds shortened to {cap} "
            "seconds"
        )
        spec["expirationSeconds"] = cap
    seconds = int(spec["expirationSeconds"])
    claims = bound_claims(
        namespace=namespace,
        name=name,
        uid=sa_uid,
        audiences=spec["audiences"],
        now=now,
        expiration_seconds=seconds,
        pod=bound.get("pod"),
        secret=bound.get("secret"),
        node=bound.get("node"),
    )
    answer = {
        "kind": "TokenRequest",
        "apiVersion": TOKEN_REQUEST.api_version,
        "metadata": meta,
        "spec": spec,
        "status": {
            "token": tokens.issuer.issue(claims),
            "expirationTimestamp": format_time(now + dt.timedelta(seconds=seconds)),
        },
    }
    return TokenRequestAnswer(go_shape(answer, authentication_v1.TOKEN_REQUEST), warnings)
