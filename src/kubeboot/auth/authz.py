"""``--authorization-mode``: the union of authorizers.

kube-apiserver always puts a privileged-group authorizer first (``system:masters`` may do
anything, whatever RBAC says), then the configured modes in order. The first ``Allow`` or
``Deny`` ends the walk; ``NoOpinion`` asks the next; if nobody allows, the reasons collected
on the way go into the 403 message (rendered by ``kubeboot.api.registry.rest``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from kubeboot.auth.defaults import node_policy_rules
from kubeboot.auth.interface import (
    ALLOW_ALL,
    Attributes,
    Authorizer,
    Decision,
    UserInfo,
    Verdict,
)
from kubeboot.auth.node import NodeAuthorizer
from kubeboot.auth.rbac import (
    PolicyRule,
    RbacAuthorizer,
    RbacIndex,
    RuleResolver,
    RuleSet,
    aggregate_errors,
)
from kubeboot.auth.users import MASTERS_GROUP
from kubeboot.resources.status import Forbidden, qualified_resource

__all__ = ["AUTHORIZATION_MODES", "UnionAuthorizer", "build_authorizer", "forbidden_error"]

log = logging.getLogger(__name__)

AUTHORIZATION_MODES = ("AlwaysAllow", "Node", "RBAC")
PRIVILEGED_GROUP_AUTHORIZER = "kubernetes.io/system-privileged-group"


class _PrivilegedGroups:
    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS_GROUP in attrs.user.groups:
            return Decision(Verdict.ALLOW)
        return Decision(Verdict.NO_OPINION)


class _AllowAllRules:
    """AlwaysAllow's rule resolution: everything, resource and non-resource."""

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        return RuleSet(
            (
                PolicyRule(verbs=("*",), api_groups=("*",), resources=("*",)),
                PolicyRule(verbs=("*",), non_resource_urls=("*",)),
            )
        )


class UnionAuthorizer:
    """Upstream's ``union.New`` of named authorizers, and ``union.NewRuleResolvers`` of the
    configured modes' rule resolvers (the privileged group has none, as upstream).

    An Allow or Deny is returned as its authorizer gave it; NoOpinion reasons are collected
    as ``<name>: <reason>`` (``node: can only access …``) and joined by newlines.
    """

    def __init__(
        self,
        authorizers: Sequence[tuple[str, Authorizer]],
        resolvers: Sequence[RuleResolver] = (),
    ) -> None:
        self._authorizers = tuple(authorizers)
        self._resolvers = tuple(resolvers)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        """Every resolver's rules in order; incomplete if any is; their errors as one
        aggregate (flattened and de-duplicated, as ``utilerrors.NewAggregate``)."""
        sets = [r.rules_for(user, namespace) for r in self._resolvers]
        errors = [e for s in sets for e in s.errors]
        return RuleSet(
            tuple(rule for s in sets for rule in s.rules),
            incomplete=any(s.incomplete for s in sets),
            errors=(aggregate_errors(errors),) if errors else (),
        )

    def authorize(self, attrs: Attributes) -> Decision:
        reasons: list[str] = []
        for name, authorizer in self._authorizers:
            decision = authorizer.authorize(attrs)
            if decision.verdict is not Verdict.NO_OPINION:
                return decision
            if decision.reason:
                reasons.append(f"{name}: {decision.reason}")
        return Decision(Verdict.NO_OPINION, "\n".join(reasons))


def build_authorizer(modes: Sequence[str], rbac_index: Callable[[], RbacIndex]) -> UnionAuthorizer:
    """The authorizer for ``--authorization-mode`` (e.g. ``["Node", "RBAC"]``)."""
    unknown = [m for m in modes if m not in AUTHORIZATION_MODES]
    if unknown or not modes:
        raise ValueError(
            f"--authorization-mode: unknown mode(s) {', '.join(unknown) or '(none given)'}; "
            f"supported: {', '.join(AUTHORIZATION_MODES)}"
        )
    if len(set(modes)) != len(modes):
        raise ValueError(f"--authorization-mode: duplicate mode in {','.join(modes)}")
    chain: list[tuple[str, Authorizer]] = [(PRIVILEGED_GROUP_AUTHORIZER, _PrivilegedGroups())]
    resolvers: list[RuleResolver] = []
    for mode in modes:
        name = mode.lower()  # upstream's GetNameForAuthorizerMode
        if mode == "AlwaysAllow":
            log.warning(
                "--authorization-mode=AlwaysAllow: EVERY REQUEST, ANONYMOUS ONES INCLUDED, IS "
                "ALLOWED. Development only; never expose this server."
            )
            chain.append((name, ALLOW_ALL))
            resolvers.append(_AllowAllRules())
        elif mode == "Node":
            node = NodeAuthorizer(node_policy_rules())
            chain.append((name, node))
            resolvers.append(node)
        else:
            rbac = RbacAuthorizer(rbac_index)
            chain.append((name, rbac))
            resolvers.append(rbac)
    return UnionAuthorizer(chain, resolvers)


def forbidden_error(attrs: Attributes, reason: str = "") -> Forbidden:
    """Upstream's ``responsewriters.Forbidden`` for a refused resource request.

    ``users "jane" is forbidden: User "bob" cannot impersonate resource "users" in API group
    "" at the cluster scope[: reason]``.
    """
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    message = (
        f'User "{attrs.user.name}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.api_group}" {scope}'
    )
    if reason:
        message += f": {reason}"
    qualified = qualified_resource(attrs.resource, attrs.api_group)
    prefix = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    return Forbidden(
        f"{prefix} is forbidden: {message}",
        name=attrs.name or None,
        group=attrs.api_group,
        kind=attrs.resource,
    )
