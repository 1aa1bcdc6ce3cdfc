"""Virtual resources answered by the authorizer: SubjectAccessReview and friends.

``kubectl auth can-i`` sends a SelfSubjectAccessReview, ``kubectl auth whoami`` a
SelfSubjectReview, and the CSR approver a SubjectAccessReview; all are answered from the one
authorizer the request path uses, so their answers can never drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.api.registry.codec import copy_object
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.clock import format_time
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import BadRequest, FieldError, Invalid

__all__ = ["review"]

JsonObj = dict[str, Any]


def _attributes(user: UserInfo, spec: JsonObj, namespace: str | None) -> Attributes:
    ra = spec.get("resourceAttributes")
    nra = spec.get("nonResourceAttributes")
    if isinstance(ra, dict):
        return Attributes(
            user=user,
            verb=str(ra.get("verb") or ""),
            namespace=namespace if namespace is not None else str(ra.get("namespace") or ""),
            api_group=str(ra.get("group") or ""),
            api_version=str(ra.get("version") or ""),
            resource=str(ra.get("resource") or ""),
            subresource=str(ra.get("subresource") or ""),
            name=str(ra.get("name") or ""),
        )
    if isinstance(nra, dict):
        return Attributes(
            user=user,
            verb=str(nra.get("verb") or ""),
            resource_request=False,
            path=str(nra.get("path") or ""),
        )
    raise Invalid.of(
        "",  # upstream names the kind from the decoded object's (empty) TypeMeta
        "authorization.k8s.io",
        "",
        [
            FieldError.invalid(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ],
    )


def _user_from_spec(spec: JsonObj) -> UserInfo:
    if not spec.get("user") and not spec.get("groups"):
        raise Invalid.of(
            "",
            "authorization.k8s.io",
            "",
            [
                FieldError.invalid(
                    "spec.user", "", "at least one of user or group must be specified"
                )
            ],
        )
    extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(
        name=str(spec.get("user") or ""),
        uid=str(spec.get("uid") or ""),
        groups=tuple(spec.get("groups") or ()),
        extra=extra,
    )


def review(
    authorizer: Authorizer,
    requester: UserInfo,
    res: ResourceInfo,
    namespace: str | None,
    body: Any,
    now: dt.datetime,
) -> JsonObj:
    """The answer to a review; a SelfSubjectReview is a new object stamped ``now`` (the
    request's metadata is not echoed, as upstream)."""
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a {res.kind} object")
    out = copy_object(body)
    out["kind"], out["apiVersion"] = res.kind, res.api_version
    out.setdefault("metadata", {})
    if res.plural == "selfsubjectreviews":
        out = {"kind": res.kind, "apiVersion": res.api_version}
        out["metadata"] = {"creationTimestamp": format_time(now)}
        out["status"] = {
            "userInfo": {
                "username": requester.name,
                **({"uid": requester.uid} if requester.uid else {}),
                "groups": list(requester.groups),
                **(
                    {"extra": {k: list(v) for k, v in requester.extra.items()}}
                    if requester.extra
                    else {}
                ),
            }
        }
        return out
    spec = out.get("spec") if isinstance(out.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    user = requester if res.plural == "selfsubjectaccessreviews" else _user_from_spec(spec)
    if res.plural == "localsubjectaccessreviews":
        ra = spec.get("resourceAttributes") or {}
        if ra.get("namespace") not in (None, "", namespace):
            raise BadRequest(
                "spec.resourceAttributes.namespace must match the namespace of the request"
            )
    attrs = _attributes(user, spec, namespace if res.namespaced else None)
    decision = authorizer.authorize(attrs)
    status: JsonObj = {"allowed": decision.allowed}
    if decision.verdict.value == "Deny":
        status["denied"] = True
    if decision.reason:
        status["reason"] = decision.reason
    out["status"] = status
    return out
