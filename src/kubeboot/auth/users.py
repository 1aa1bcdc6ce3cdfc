"""Well-known user and group names, and the ``system:authenticated`` group adder.

Upstream spells these in ``k8s.io/apiserver/pkg/authentication/user``; RBAC bindings, the
Node authorizer, impersonation and the authenticator chain all match on them, so they live in
one place.
"""

from __future__ import annotations

from dataclasses import replace

from kubeboot.auth.interface import UserInfo

__all__ = [
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
    "ANONYMOUS",
    "ANONYMOUS_USER",
    "MASTERS_GROUP",
    "NODES_GROUP",
    "NODE_USER_PREFIX",
    "SERVICE_ACCOUNT_PREFIX",
    "add_authenticated_group",
    "node_name_of",
]

ANONYMOUS_USER = "system:anonymous"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
MASTERS_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

ANONYMOUS = UserInfo(name=ANONYMOUS_USER, groups=(ALL_UNAUTHENTICATED,))


def add_authenticated_group(user: UserInfo) -> UserInfo:
    """Append ``system:authenticated`` as upstream's group adder does (server-facts §3.4)."""
    if user.name == ANONYMOUS_USER:
        return user
    if ALL_AUTHENTICATED in user.groups or ALL_UNAUTHENTICATED in user.groups:
        return user
    return replace(user, groups=(*user.groups, ALL_AUTHENTICATED))


def node_name_of(user: UserInfo) -> str | None:
    """The node name of a ``system:node:<name>`` user in ``system:nodes``, else None."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return None
    return user.name[len(NODE_USER_PREFIX) :] or None
