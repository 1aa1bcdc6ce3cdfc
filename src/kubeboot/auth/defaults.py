"""The default RBAC objects kube-apiserver creates at start, and their reconciliation.

The objects are upstream's bootstrap policy, all of it (``bootstrappolicy``'s ClusterRoles,
controller roles, namespaced roles and their bindings, v1.37 with default feature gates),
generated into :mod:`kubeboot.auth.bootstrap_policy` from upstream's own golden files: label
``kubernetes.io/bootstrapping: rbac-defaults``, annotation
``rbac.authorization.kubernetes.io/autoupdate: "true"``, the user-facing ``admin``, ``edit``
and ``view`` with ``aggregationRule`` (their rules filled by the clusterrole-aggregation
controller, :mod:`kubeboot.controllers.clusterroleaggregation`), and ``system:node``'s
ClusterRoleBinding without subjects (the Node authorizer grants nodes their rules).

:func:`reconcile` is upstream's ``reconciliation`` without the removal of extra permissions
(kube-apiserver never removes them at start): a missing object is created; an object whose
autoupdate annotation is ``"false"`` is left alone; otherwise missing rules (those not
*covered* by the existing rules), missing aggregation selectors and missing subjects are
added, labels and annotations the user set are kept, and a binding whose roleRef changed is
recreated. So an administrator can extend a default role, or switch a default off for good,
without start-up undoing it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubeboot.auth import bootstrap_policy
from kubeboot.auth.escalation import covers
from kubeboot.auth.rbac import PolicyRule

__all__ = [
    "AUTOUPDATE_ANNOTATION",
    "Change",
    "default_cluster_role_bindings",
    "default_cluster_roles",
    "default_role_bindings",
    "default_roles",
    "node_policy_rules",
    "reconcile",
]

Obj = dict[str, Any]
AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
_NODE_ROLE = "system:node"


def default_cluster_roles() -> list[Obj]:
    return copy.deepcopy(list(bootstrap_policy.CLUSTER_ROLES))


def default_cluster_role_bindings() -> list[Obj]:
    return copy.deepcopy(list(bootstrap_policy.CLUSTER_ROLE_BINDINGS))


def default_roles() -> list[Obj]:
    """Namespaced roles (upstream's ``namespace_policy.go``)."""
    return copy.deepcopy(list(bootstrap_policy.ROLES))


def default_role_bindings() -> list[Obj]:
    return copy.deepcopy(list(bootstrap_policy.ROLE_BINDINGS))


def node_policy_rules() -> tuple[PolicyRule, ...]:
    """``system:node``'s rules (upstream's ``NodeRules()``) as the Node authorizer
    evaluates them."""
    role = next(r for r in bootstrap_policy.CLUSTER_ROLES if r["metadata"]["name"] == _NODE_ROLE)
    return tuple(PolicyRule.from_dict(r) for r in role["rules"])


# --- reconciliation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One write start-up must make: create, update (CAS on the read), or delete + create."""

    action: Literal["create", "update", "recreate"]
    obj: Obj


def _merge_meta(existing: Obj, desired: Obj) -> Obj:
    meta = copy.deepcopy(existing.get("metadata") or {})
    for key in ("labels", "annotations"):
        merged = dict(desired["metadata"].get(key) or {})
        merged.update(meta.get(key) or {})
        meta[key] = merged
    return meta


def _add_selectors(result: Obj, desired: Obj) -> None:
    """Upstream's aggregation-rule reconciliation: selectors the default has and the
    existing role lacks are appended (none is removed)."""
    wanted = (desired.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if not wanted:
        return
    rule = result.setdefault("aggregationRule", {})
    have = rule.setdefault("clusterRoleSelectors", [])
    have += [copy.deepcopy(s) for s in wanted if s not in have]


def _reconcile_one(existing: Obj | None, desired: Obj) -> Change | None:
    if existing is None:
        return Change("create", copy.deepcopy(desired))
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if annotations.get(AUTOUPDATE_ANNOTATION) == "false":
        return None
    result = copy.deepcopy(existing)
    result["metadata"] = _merge_meta(existing, desired)
    if desired["kind"] in ("ClusterRole", "Role"):
        _add_selectors(result, desired)
        owners = [PolicyRule.from_dict(r) for r in existing.get("rules") or ()]
        missing = [
            r
            for r in desired.get("rules") or ()
            if not covers(owners, [PolicyRule.from_dict(r)])[0]
        ]
        if missing:
            result["rules"] = [*(existing.get("rules") or []), *copy.deepcopy(missing)]
    else:
        if existing.get("roleRef") != desired["roleRef"]:
            recreated = copy.deepcopy(desired)
            recreated["metadata"] = _merge_meta(existing, desired)
            recreated["metadata"].pop("resourceVersion", None)
            recreated["metadata"].pop("uid", None)
            return Change("recreate", recreated)
        subjects = list(existing.get("subjects") or [])
        added = [copy.deepcopy(s) for s in desired.get("subjects") or () if s not in subjects]
        if added:
            result["subjects"] = subjects + added
    return None if result == existing else Change("update", result)


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def reconcile(existing: Iterable[Obj], desired: Iterable[Obj]) -> list[Change]:
    """The writes that bring ``existing`` up to ``desired`` (same kind(s), any namespaces)."""
    by_key = {_key(o): o for o in existing}
    return [c for d in desired if (c := _reconcile_one(by_key.get(_key(d)), d)) is not None]
