"""The Node authorizer and the NodeRestriction essentials (server-facts §7.3).

A node is the user ``system:node:<name>`` in the group ``system:nodes``. The authorizer is
upstream's ``node_authorizer.go`` cut down to what exists here:

* Secrets, ConfigMaps, PersistentVolume(Claim)s are granted only through a relationship with
  a pod bound to the node. kubeboot serves no pods, so there is never one: ``get`` answers
  "no relationship found", ``list``/``watch`` "can only get individual resources of this
  type", as upstream does for an unrelated object.
* Leases only in ``kube-node-lease`` and only the one named after the node.
* CSINodes, Pods, ResourceSlices and PodCertificateRequests: only the node's own
  (``kubeboot.auth.node_scoped``).
* Nodes: create/update/patch are allowed here (NodeRestriction limits them to the node's own
  object); a read that names a Node must name the node's own (upstream's
  ``AuthorizeNodeWithSelectors``, stable and on since 1.34: "node 'a' cannot read 'b', only
  its own Node object"). A list/watch names the Node through a ``metadata.name`` field
  selector (the API layer sets the request's name from it, as upstream's RequestInfo does);
  one without is refused, so a node cannot enumerate the others.
* Everything else is judged by ``system:node``'s rules (``NodeRules``): create/get/list/watch
  Nodes, update/patch Nodes and ``nodes/status``, create/update/patch Events,
  create/get/list/watch CSRs (as upstream, not only the node's own: the agent reads back
  the CSR it created, and CSR names are not node-scoped).

Decisions are ``Allow`` or ``NoOpinion`` (never ``Deny``), so RBAC may still grant more.

:func:`node_restriction` is the admission half for the Node object: a node may create,
update, patch or delete only its own Node (``node "w1" is not allowed to modify node "w2"``).
"""

from __future__ import annotations

from kubeboot.auth.defaults import default_cluster_roles
from kubeboot.auth.interface import Attributes, Decision, UserInfo, Verdict
from kubeboot.auth.node_scoped import SCOPED_RULES
from kubeboot.auth.rbac import PolicyRule, rule_allows
from kubeboot.auth.users import NODE_USER_PREFIX, NODES_GROUP, node_name_of

__all__ = ["NODE_LEASE_NAMESPACE", "NodeAuthorizer", "node_restriction"]

NODE_LEASE_NAMESPACE = "kube-node-lease"
_GRAPH_RESOURCES = {
    ("", "secrets"),
    ("", "configmaps"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
}


def _is_node_identity(user: UserInfo) -> bool:
    """Upstream's ``NodeIdentity``: the name prefix and the group, even if the name is empty."""
    return NODES_GROUP in user.groups and user.name.startswith(NODE_USER_PREFIX)


def _node_rules() -> tuple[PolicyRule, ...]:
    role = next(r for r in default_cluster_roles() if r["metadata"]["name"] == "system:node")
    return tuple(PolicyRule.from_dict(r) for r in role["rules"])


class NodeAuthorizer:
    """``--authorization-mode=Node``."""

    def __init__(self) -> None:
        self._rules = _node_rules()

    def authorize(self, attrs: Attributes) -> Decision:
        user = attrs.user
        if not _is_node_identity(user):
            return Decision(Verdict.NO_OPINION)
        node = node_name_of(user)
        if node is None:
            return Decision(Verdict.NO_OPINION, f'unknown node for user "{user.name}"')
        if attrs.resource_request:
            resource = (attrs.api_group, attrs.resource)
            if resource in _GRAPH_RESOURCES:
                if attrs.verb != "get" or not attrs.name:
                    return Decision(
                        Verdict.NO_OPINION, "can only get individual resources of this type"
                    )
                return Decision(
                    Verdict.NO_OPINION,
                    f"no relationship found between node '{node}' and this object",
                )
            if resource == ("coordination.k8s.io", "leases"):
                return self._lease(node, attrs)
            scoped = SCOPED_RULES.get(resource)
            if scoped is not None:
                return scoped(node, attrs)
            if resource == ("", "nodes") and attrs.verb in ("get", "list", "watch"):
                if not attrs.name:
                    return Decision(
                        Verdict.NO_OPINION,
                        f"node '{node}' can only {attrs.verb} its own Node object "
                        f"(fieldSelector=metadata.name={node})",
                    )
                if attrs.name != node:
                    return Decision(
                        Verdict.NO_OPINION,
                        f"node '{node}' cannot read '{attrs.name}', only its own Node object",
                    )
        if any(rule_allows(r, attrs) for r in self._rules):
            return Decision(Verdict.ALLOW)
        return Decision(Verdict.NO_OPINION)

    def _lease(self, node: str, attrs: Attributes) -> Decision:
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return Decision(
                Verdict.NO_OPINION,
                f"can only access leases in the {NODE_LEASE_NAMESPACE} namespace",
            )
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision(
                Verdict.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
            )
        if attrs.verb != "create" and attrs.name != node:
            return Decision(
                Verdict.NO_OPINION,
                "can only access node lease with the same name as the requesting node",
            )
        return Decision(Verdict.ALLOW)


def node_restriction(user: UserInfo, node_name: str) -> str | None:
    """Why ``user`` may not write the Node ``node_name`` (None: it may, or is no node)."""
    if not _is_node_identity(user):
        return None
    own = node_name_of(user)
    if own != node_name:
        return f'node "{own or ""}" is not allowed to modify node "{node_name}"'
    return None
