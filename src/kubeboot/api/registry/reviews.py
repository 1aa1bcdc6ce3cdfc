"""Virtual resources answered by the authorizer: SubjectAccessReview and friends.

``kubectl auth can-i`` sends a SelfSubjectAccessReview, ``kubectl auth can-i --list`` a
SelfSubjectRulesReview, ``kubectl auth whoami`` a SelfSubjectReview, and the CSR approver a
SubjectAccessReview; all are answered from the one authorizer (and its rule resolvers) the
request path uses, so their answers can never drift apart.

Validation is upstream's ``pkg/apis/authorization/validation`` (v1.37): every problem of a
review is reported in one 422 whose kind is empty (the decoded object's TypeMeta is), so the
message reads ``.authorization.k8s.io "" is invalid: …``; a LocalSubjectAccessReview whose
``metadata.namespace`` is not the request's is the generic create handler's 400.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.api.registry.codec import copy_object
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.auth.rbac import RuleResolver, RuleSet
from kubeboot.clock import format_time
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import BadRequest, FieldError, Invalid
from kubeboot.resources.validation import is_label_value, is_qualified_name

__all__ = ["review"]

JsonObj = dict[str, Any]
_GROUP = "authorization.k8s.io"
_ONE_OF = "exactly one of nonResourceAttributes or resourceAttributes must be specified"
# metav1.ObjectMeta's JSON field order, for printing a metadata that must be empty.
_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def _non_resource_value(spec: JsonObj) -> Any:
    """The internal ``*NonResourceAttributes`` as field.Error prints it (json.Marshal): null,
    or its fields, which have no JSON tags."""
    nra = spec.get("nonResourceAttributes")
    if not isinstance(nra, dict):
        return None
    return {"Path": str(nra.get("path") or ""), "Verb": str(nra.get("verb") or "")}


def _meta_value(meta: JsonObj) -> JsonObj:
    """``metav1.ObjectMeta`` as json.Marshal writes it: its fields in order, empty ones out."""
    return {k: meta[k] for k in _META_ORDER if meta.get(k) not in (None, "", {}, [], 0)}


def _requirement_errors(req: Any, path: str, *, label: bool) -> list[FieldError]:
    """``ValidateFieldSelectorRequirement`` / ``ValidateLabelSelectorRequirement`` with
    unknown operators allowed (a newer client's may be authorized)."""
    req = req if isinstance(req, dict) else {}
    key, op = str(req.get("key") or ""), str(req.get("operator") or "")
    values = [str(v) for v in req.get("values") or ()]
    errors: list[FieldError] = []
    if not label and not key:
        errors.append(FieldError.required(f"{path}.key", "must be specified"))
    if op in ("In", "NotIn") and not values:
        errors.append(
            FieldError.required(
                f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
            )
        )
    elif op in ("Exists", "DoesNotExist") and values:
        errors.append(
            FieldError.forbidden(
                f"{path}.values",
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        )
    if label:
        errors += [FieldError.invalid(f"{path}.key", key, m) for m in is_qualified_name(key)]
        errors += [
            FieldError.invalid(f"{path}.values[{i}]", v, m)
            for i, v in enumerate(values)
            for m in is_label_value(v)
        ]
    return errors


def _selector_errors(spec: JsonObj) -> list[FieldError]:
    """``validateResourceAttributes``: the field and label selectors a review may carry."""
    ra = spec.get("resourceAttributes")
    if not isinstance(ra, dict):
        return []
    errors: list[FieldError] = []
    for name, label in (("fieldSelector", False), ("labelSelector", True)):
        selector = ra.get(name)
        if not isinstance(selector, dict):
            continue
        path = f"spec.resourceAttributes.{name}"
        raw, requirements = selector.get("rawSelector"), selector.get("requirements") or []
        if raw and requirements:
            errors.append(
                FieldError.invalid(
                    f"{path}.rawSelector", raw, "may not specified at the same time as requirements"
                )
            )
        if not raw and not requirements:
            errors.append(
                FieldError.required(
                    f"{path}.requirements",
                    f"when {path} is specified, requirements or rawSelector is required",
                )
            )
        for i, req in enumerate(requirements):
            errors += _requirement_errors(req, f"{path}.requirements[{i}]", label=label)
    return errors


def _spec_errors(spec: JsonObj, *, with_subject: bool) -> list[FieldError]:
    """``ValidateSubjectAccessReviewSpec`` (``with_subject``) or its self-review twin."""
    errors: list[FieldError] = []
    has_ra = isinstance(spec.get("resourceAttributes"), dict)
    has_nra = isinstance(spec.get("nonResourceAttributes"), dict)
    if has_ra == has_nra:
        errors.append(FieldError.invalid("spec", _non_resource_value(spec), _ONE_OF))
    if with_subject and not spec.get("user") and not spec.get("groups"):
        errors.append(
            FieldError.invalid(
                "spec.user",
                str(spec.get("user") or ""),
                "at least one of user or group must be specified",
            )
        )
    return errors + _selector_errors(spec)


def _validate(res: ResourceInfo, obj: JsonObj, spec: JsonObj) -> None:
    """The kind's ``Validate…Review``: a 422 listing every problem."""
    # Emptiness ignores managedFields (the server's own record); the printed value shows them.
    full = obj.get("metadata") or {}
    meta = {k: v for k, v in full.items() if k != "managedFields"}
    errors = _spec_errors(spec, with_subject=res.plural != "selfsubjectaccessreviews")
    if res.plural == "localsubjectaccessreviews":
        if _meta_value(meta).keys() - {"namespace"}:
            errors.append(
                FieldError.invalid(
                    "metadata", _meta_value(full), "must be empty except for namespace"
                )
            )
        ra = spec.get("resourceAttributes")
        if isinstance(ra, dict) and str(ra.get("namespace") or "") != meta.get("namespace"):
            errors.append(
                FieldError.invalid(
                    "spec.resourceAttributes.namespace",
                    str(ra.get("namespace") or ""),
                    "must match metadata.namespace",
                )
            )
        if isinstance(spec.get("nonResourceAttributes"), dict):
            errors.append(
                FieldError.invalid(
                    "spec.nonResourceAttributes",
                    _non_resource_value(spec),
                    "disallowed on this kind of request",
                )
            )
    elif _meta_value(meta):
        errors.append(FieldError.invalid("metadata", _meta_value(full), "must be empty"))
    if errors:
        raise Invalid.of("", _GROUP, "", errors)


_FieldRequirements = tuple[tuple[str, str, str], ...]


def _parse_raw_field_selector(raw: str) -> _FieldRequirements | None:
    """``fields.ParseSelector`` for the plain forms (``a=b,c!=d``); None if it does not parse."""
    terms: list[tuple[str, str, str]] = []
    for part in raw.split(","):
        for op in ("!=", "==", "="):
            field, found, value = part.partition(op)
            if found:
                terms.append((field.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            return None
    return tuple(terms)


def _field_selector(ra: JsonObj) -> tuple[_FieldRequirements, str]:
    """The requirements a review's ``fieldSelector`` adds to the attributes, and upstream's
    evaluation error when part or all of it could not be used (``fieldSelectorAsSelector``:
    In/NotIn with one value become = and !=, anything else is an error)."""
    selector = ra.get("fieldSelector")
    if not isinstance(selector, dict):
        return (), ""
    reqs: list[tuple[str, str, str]] = []
    broken = False
    raw = str(selector.get("rawSelector") or "")
    if raw:
        parsed = _parse_raw_field_selector(raw)
        broken = parsed is None
        reqs = list(parsed or ())
    requirements = selector.get("requirements") or []
    if requirements:
        reqs, broken = [], False
        for req in requirements:
            op, values = req.get("operator"), [str(v) for v in req.get("values") or ()]
            if op in ("In", "NotIn") and len(values) == 1:
                reqs.append((str(req.get("key") or ""), "=" if op == "In" else "!=", values[0]))
            else:
                broken = True
    if not broken:
        return tuple(reqs), ""
    how = "partially ignored" if reqs else "ignored"
    return tuple(reqs), f"spec.resourceAttributes.fieldSelector {how} due to parse error"


def _attributes(user: UserInfo, spec: JsonObj) -> tuple[Attributes, str]:
    """``AuthorizationAttributesFrom``: the attributes a validated spec asks about, and what
    of its field selector had to be ignored (for ``BuildEvaluationError``)."""
    ra = spec.get("resourceAttributes")
    if isinstance(ra, dict):
        fields, ignored = _field_selector(ra)
        attrs = Attributes(
            user=user,
            verb=str(ra.get("verb") or ""),
            namespace=str(ra.get("namespace") or ""),
            api_group=str(ra.get("group") or ""),
            api_version=str(ra.get("version") or "*"),
            resource=str(ra.get("resource") or ""),
            subresource=str(ra.get("subresource") or ""),
            name=str(ra.get("name") or ""),
            field_selector=fields,
        )
        return attrs, ignored
    nra = spec.get("nonResourceAttributes") or {}
    attrs = Attributes(
        user=user,
        verb=str(nra.get("verb") or ""),
        resource_request=False,
        path=str(nra.get("path") or ""),
    )
    return attrs, ""


def _user_from_spec(spec: JsonObj) -> UserInfo:
    extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(
        name=str(spec.get("user") or ""),
        uid=str(spec.get("uid") or ""),
        groups=tuple(spec.get("groups") or ()),
        extra=extra,
    )


def _self_subject_review(requester: UserInfo, res: ResourceInfo, now: dt.datetime) -> JsonObj:
    """A new object stamped ``now`` (the request's metadata is not echoed, as upstream)."""
    user_info: JsonObj = {"username": requester.name}
    if requester.uid:
        user_info["uid"] = requester.uid
    user_info["groups"] = list(requester.groups)
    if requester.extra:
        user_info["extra"] = {k: list(v) for k, v in requester.extra.items()}
    return {
        "kind": res.kind,
        "apiVersion": res.api_version,
        "metadata": {"creationTimestamp": format_time(now)},
        "status": {"userInfo": user_info},
    }


def _rules_review(
    rules: RuleResolver | None, requester: UserInfo, res: ResourceInfo, spec: JsonObj
) -> JsonObj:
    """Upstream's ``selfsubjectrulesreview`` REST: a new object carrying only the status
    (spec and metadata are not echoed); a rule with both resources and nonResourceURLs is
    listed under both, as ``RBACAuthorizer.RulesFor`` splits them."""
    namespace = str(spec.get("namespace") or "")
    if not namespace:
        raise BadRequest("no namespace on request")
    found = rules.rules_for(requester, namespace) if rules is not None else RuleSet()
    resource_rules: list[JsonObj] = []
    non_resource_rules: list[JsonObj] = []
    for rule in found.rules:
        if rule.resources:
            resource_rules.append(
                {
                    "verbs": list(rule.verbs),
                    "apiGroups": list(rule.api_groups),
                    "resources": list(rule.resources),
                    "resourceNames": list(rule.resource_names),
                }
            )
        if rule.non_resource_urls:
            non_resource_rules.append(
                {"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)}
            )
    status: JsonObj = {
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": found.incomplete,
    }
    if found.errors:
        status["evaluationError"] = found.errors[0]
    return {
        "kind": res.kind,
        "apiVersion": res.api_version,
        "metadata": {},
        "spec": {},
        "status": status,
    }


def review(
    authorizer: Authorizer,
    rules: RuleResolver | None,
    requester: UserInfo,
    res: ResourceInfo,
    namespace: str | None,
    body: Any,
    now: dt.datetime,
) -> JsonObj:
    """The answer to a review of kind ``res`` sent by ``requester`` to ``namespace`` (the
    URL's, for a LocalSubjectAccessReview); ``rules`` answers SelfSubjectRulesReviews."""
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a {res.kind} object")
    if res.plural == "selfsubjectreviews":
        return _self_subject_review(requester, res, now)
    out = copy_object(body)
    out["kind"], out["apiVersion"] = res.kind, res.api_version
    meta = out.setdefault("metadata", {})
    spec = out.get("spec") if isinstance(out.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    if res.plural == "selfsubjectrulesreviews":
        return _rules_review(rules, requester, res, spec)
    # EnsureObjectNamespaceMatchesRequestNamespace, as for any create
    if not res.namespaced:
        meta.pop("namespace", None)
    elif meta.get("namespace") not in (None, "", namespace):
        raise BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    else:
        meta["namespace"] = namespace
    _validate(res, out, spec)
    user = requester if res.plural == "selfsubjectaccessreviews" else _user_from_spec(spec)
    attrs, ignored = _attributes(user, spec)
    decision = authorizer.authorize(attrs)
    status: JsonObj = {"allowed": decision.allowed}
    if decision.verdict.value == "Deny":
        status["denied"] = True
    if decision.reason:
        status["reason"] = decision.reason
    if ignored:
        status["evaluationError"] = ignored
    out["status"] = status
    return out
