"""Escalation prevention on RBAC writes: kube-apiserver's ``pkg/registry/rbac/*/policybased``.

Holding ``create`` on ``roles`` is not enough to write any Role: upstream wraps the four RBAC
storages so that, on create, update and patch,

* a member of ``system:masters`` may write anything;
* a Role or ClusterRole may carry only rules its writer already holds in that namespace (the
  cluster scope for ClusterRoles), unless she may ``escalate`` that kind (``escalate`` on
  ``roles``/``clusterroles``, named after the object on update); setting or keeping an
  ``aggregationRule`` further needs ``*`` on everything ("must have cluster-admin privileges
  to use the aggregationRule"), since it can gather any rule;
* a RoleBinding or ClusterRoleBinding may reference a role only if its writer may ``bind``
  that role (in the binding's namespace, or cluster-wide), or already holds every rule in it;
  a referenced role that does not exist is then a 404;
* an update that only touches what the garbage collector writes (ownerReferences,
  finalizers) is never checked, so deleting a namespace is never stopped by this.

The rules a writer holds are read from storage, not from the authorizer's watch-fed mirror,
as upstream's registry-backed rule resolver does: a role created a moment ago counts at once.
The 403 says which rules are missing (:func:`kubeboot.auth.escalation.escalation_message`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeboot.api.registry import codec
from kubeboot.auth.escalation import FULL_AUTHORITY, covers, escalation_message
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.auth.rbac import PolicyRule, RbacIndex
from kubeboot.auth.users import MASTERS_GROUP
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import BadRequest, Forbidden, InternalError, NotFound
from kubeboot.storage.interface import Store

__all__ = ["RBAC_GROUP", "RbacWritePolicy"]

JsonObj = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
_ROLE_KINDS = {"roles", "clusterroles"}
_BINDING_KINDS = {"rolebindings", "clusterrolebindings"}
# metadata a garbage collector writes: an update touching only these is never checked
_GC_FIELDS = ("ownerReferences", "finalizers", "selfLink", "managedFields")


def _rbac(plural: str) -> ResourceInfo:
    res = find_resource(RBAC_GROUP, "v1", plural)
    assert res is not None
    return res


_CLUSTER_ROLES, _ROLES = _rbac("clusterroles"), _rbac("roles")
_CLUSTER_ROLE_BINDINGS, _ROLE_BINDINGS = _rbac("clusterrolebindings"), _rbac("rolebindings")


def _rules(obj: Mapping[str, Any]) -> list[PolicyRule]:
    rules = obj.get("rules")
    if not isinstance(rules, list):
        return []
    return [PolicyRule.from_dict(r) for r in rules if isinstance(r, Mapping)]


def _has_aggregation_rule(obj: Mapping[str, Any] | None) -> bool:
    rule = (obj or {}).get("aggregationRule")
    return isinstance(rule, Mapping) and bool(rule.get("clusterRoleSelectors"))


def _pruned(value: Any) -> Any:
    """A JSON tree with empty containers and nulls dropped (Go's nil == empty, semantically)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def only_gc_fields_changed(new: JsonObj, old: JsonObj) -> bool:
    """Upstream's ``IsOnlyMutatingGCFields`` (type meta aside: the typed objects have none)."""
    new_copy = {k: v for k, v in codec.copy_object(new).items() if k not in ("kind", "apiVersion")}
    old_copy = {k: v for k, v in old.items() if k not in ("kind", "apiVersion")}
    new_meta = new_copy.setdefault("metadata", {})
    old_meta = old_copy.get("metadata") or {}
    if not isinstance(new_meta, dict):
        return False
    for gc_field in _GC_FIELDS:
        if gc_field in old_meta:
            new_meta[gc_field] = old_meta[gc_field]
        else:
            new_meta.pop(gc_field, None)
    return bool(_pruned(new_copy) == _pruned(old_copy))


class RbacWritePolicy:
    """The four policy-based RBAC storages' checks, called by ``RestService`` before
    defaulting and validation (where upstream's wrapped storages run them)."""

    def __init__(self, store: Store, authorizer: Authorizer) -> None:
        self._store = store
        self._authorizer = authorizer

    async def check(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        new: JsonObj,
        old: JsonObj | None,
    ) -> None:
        """Raise upstream's 403 (or 404 for a missing role) if this write escalates.

        ``name`` is the object's name as the request gave it ("" for a create by
        generateName, as upstream's check sees it); ``old`` is None on create.
        """
        if res.group != RBAC_GROUP or MASTERS_GROUP in user.groups:
            return
        if old is not None and only_gc_fields_changed(new, old):
            return
        ns = namespace or ""
        if res.plural in _ROLE_KINDS:
            await self._check_role(user, res, ns, name, new, old)
        elif res.plural in _BINDING_KINDS:
            await self._check_binding(user, res, ns, name, new)

    def _allowed(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        return self._authorizer.authorize(
            Attributes(
                user=user,
                verb=verb,
                namespace=namespace,
                api_group=RBAC_GROUP,
                api_version="*",
                resource=resource,
                name=name,
            )
        ).allowed

    async def _check_role(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str,
        name: str,
        new: JsonObj,
        old: JsonObj | None,
    ) -> None:
        # RoleEscalationAuthorized asks with the request's name: empty on a create.
        if self._allowed(user, "escalate", res.plural, namespace, name if old else ""):
            return
        index = await self._index(namespace)
        owned, errors = index.rules_for(user, namespace, plural_errors=True)
        held, missing = covers(owned, _rules(new))
        if not held:
            raise _forbidden(res, name, escalation_message(user, missing, errors))
        if (
            res.plural == "clusterroles"
            and (_has_aggregation_rule(new) or _has_aggregation_rule(old))
            and not covers(owned, FULL_AUTHORITY)[0]
        ):
            raise _forbidden(
                res, name, "must have cluster-admin privileges to use the aggregationRule"
            )

    async def _check_binding(
        self, user: UserInfo, res: ResourceInfo, namespace: str, name: str, new: JsonObj
    ) -> None:
        ref = new.get("roleRef")
        ref = ref if isinstance(ref, Mapping) else {}
        kind, role_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        role_res = {"ClusterRole": _CLUSTER_ROLES, "Role": _ROLES}.get(kind)
        if role_res is None:
            raise InternalError(f'unsupported role reference kind: "{kind}"')
        # BindingAuthorized: "bind" on the role, in the binding's namespace ("" for a CRB).
        group = str(ref.get("apiGroup") or "")
        allowed = self._authorizer.authorize(
            Attributes(
                user=user,
                verb="bind",
                namespace=namespace,
                api_group=group,
                api_version="*",
                resource=role_res.plural,
                name=role_name,
            )
        ).allowed
        if allowed:
            return
        if role_res is _ROLES and not namespace:
            raise BadRequest("Namespace parameter required.")
        kv = await self._store.get(
            role_res.storage_key(namespace if role_res.namespaced else None, role_name)
        )
        if kv is None:
            raise NotFound.of(role_res.plural, RBAC_GROUP, role_name)
        index = await self._index(namespace)
        owned, errors = index.rules_for(user, namespace, plural_errors=True)
        held, missing = covers(owned, _rules(codec.decode(kv)))
        if not held:
            raise _forbidden(res, name, escalation_message(user, missing, errors))

    async def _index(self, namespace: str) -> RbacIndex:
        """Cluster roles and bindings, plus the namespace's, straight from storage."""

        async def objects(res: ResourceInfo, ns: str | None = None) -> list[JsonObj]:
            result = await self._store.range(res.storage_prefix(ns))
            return [codec.decode(kv) for kv in result.kvs]

        in_namespace = bool(namespace)
        return RbacIndex.build(
            await objects(_CLUSTER_ROLES),
            await objects(_ROLES, namespace) if in_namespace else [],
            await objects(_CLUSTER_ROLE_BINDINGS),
            await objects(_ROLE_BINDINGS, namespace) if in_namespace else [],
        )


def _forbidden(res: ResourceInfo, name: str, reason: str) -> Forbidden:
    """``errors.NewForbidden(groupResource, name, err)``."""
    qualified = f"{res.plural}.{RBAC_GROUP}"
    prefix = f'{qualified} "{name}"' if name else qualified
    return Forbidden(
        f"{prefix} is forbidden: {reason}", name=name or None, group=RBAC_GROUP, kind=res.plural
    )
