"""TokenReview (``authentication.k8s.io/v1``, upstream
``pkg/registry/authentication/tokenreview/storage.go``): is this bearer token good, and for
whom?

The answer is the request with a status: ``authenticated``, the ``user`` (with
``system:authenticated``, as the request chain adds it), the ``audiences`` the token is good
for, or the ``error`` the chain gave. Every bearer-token authenticator of the server takes
part (token file, ServiceAccount tokens legacy and bound, bootstrap tokens), with the
requested audiences (``spec.audiences``, default ``--api-audiences``), so the real kubelet's
``--authentication-token-webhook`` and external verifiers get kube-apiserver's answers. A
request without ``spec.token`` is 400 in upstream's words. Who may ask is RBAC's business
(``create tokenreviews``: ``system:auth-delegator``, kube-controller-manager, nodes).
"""

from __future__ import annotations

from typing import Any

from kubeboot.auth.chain import AuthenticatorChain
from kubeboot.resources.status import BadRequest, InternalError

__all__ = ["token_review"]

JsonObj = dict[str, Any]


async def token_review(chain: AuthenticatorChain | None, request: JsonObj) -> JsonObj:
    """``request`` (a conformed TokenReview) with its status."""
    spec = request.get("spec") or {}
    token = str(spec.get("token") or "")
    if not token:
        raise BadRequest("token is required for TokenReview in authentication")
    out = {**request, "metadata": dict(request.get("metadata") or {})}
    if chain is None:  # no token authenticator at all: the request comes back as sent
        return out
    requested = tuple(spec.get("audiences") or ()) or chain.api_audiences
    answer = await chain.review_token(token, requested)
    status: JsonObj = {"authenticated": answer.user is not None}
    if answer.error and answer.user is None:
        status["error"] = answer.error
    if answer.user is not None:
        if requested and not set(requested) & set(answer.audiences):
            raise InternalError("error validating audiences")
        user = answer.user
        status["user"] = {
            "username": user.name,
            "uid": user.uid,
            "groups": list(user.groups),
            "extra": {k: list(v) for k, v in user.extra.items()},
        }
        status["audiences"] = list(answer.audiences)
    out["status"] = status
    return out
