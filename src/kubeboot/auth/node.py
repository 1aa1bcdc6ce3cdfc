"""The Node authorizer (``--authorization-mode=Node``): upstream's ``node_authorizer.go``.

A node is the user ``system:node:<name>`` in the group ``system:nodes``. Requests of other
users get NoOpinion at once. For a node, some resources are subdivided — decided here with
upstream's reasons (the union prefixes them with ``node: ``) — and everything else is judged
by ``system:node``'s rules (``NodeRules`` in :mod:`kubeboot.auth.defaults`):

=========================================  =================================================
secrets, configmaps                        get/list/watch of one named object in a namespace,
                                           related to the node through the graph
persistentvolumeclaims(/status), -volumes,  get (pvc status: update/patch) of related objects
resourceclaims, volumeattachments
serviceaccounts                            get of related ones; create ``token`` for them
leases                                     get/create/update/patch/delete of its own, in
                                           ``kube-node-lease`` (create: NodeRestriction)
csinodes                                   get/create/update/patch/delete of its own
resourceslices                             create; get/update/patch/delete of related ones;
                                           list/watch/deletecollection with
                                           ``spec.nodeName=<node>``
nodes                                      create/update/patch (NodeRestriction limits them);
                                           get/list/watch of its own only (a list names it
                                           through a ``metadata.name`` field selector);
                                           status update/patch
pods                                       get of related ones; list/watch with
                                           ``spec.nodeName=<node>``; create/delete (mirror
                                           pods, NodeRestriction); status; eviction
podcertificaterequests                     create; get of related ones; list/watch with
                                           ``spec.nodeName=<node>``
=========================================  =================================================

"Related" is upstream's graph (pods bound to the node → their secrets, configmaps, claims,
service accounts…), behind the :class:`NodeGraph` protocol. kubeboot serves no pods yet, so
the default :data:`NO_RELATIONSHIPS` knows none and every related-object read is refused
with upstream's "no relationship found" reason; a graph fed by pods plugs in here.

Decisions are Allow or NoOpinion, never Deny, so RBAC may still grant more.
"""

from __future__ import annotations

from typing import Protocol

from kubeboot.auth.interface import Attributes, Decision, UserInfo, Verdict
from kubeboot.auth.rbac import PolicyRule, RuleSet, rule_allows
from kubeboot.auth.users import NODE_USER_PREFIX, NODES_GROUP, node_name_of

__all__ = [
    "NODE_LEASE_NAMESPACE",
    "NO_RELATIONSHIPS",
    "NodeAuthorizer",
    "NodeGraph",
    "is_node_identity",
]

NODE_LEASE_NAMESPACE = "kube-node-lease"
_NO = Verdict.NO_OPINION


class NodeGraph(Protocol):
    """Upstream's node graph: is there a path from this object to the node?"""

    def has_path(self, node: str, vertex: str, namespace: str, name: str) -> bool:
        """``vertex`` is upstream's vertex type: ``secret``, ``configmap``, ``pod``, ``pvc``,
        ``pv``, ``serviceAccount``, ``resourceclaim``, ``volumeattachment``,
        ``resourceslice``, ``podcertificaterequest``."""
        ...


class _NoRelationships:
    def has_path(self, node: str, vertex: str, namespace: str, name: str) -> bool:
        return False


NO_RELATIONSHIPS: NodeGraph = _NoRelationships()


def is_node_identity(user: UserInfo) -> bool:
    """Upstream's ``NodeIdentity``: the name prefix and the group, even if the name is empty."""
    return NODES_GROUP in user.groups and user.name.startswith(NODE_USER_PREFIX)


def _no(reason: str = "") -> Decision:
    return Decision(_NO, reason)


_ALLOW = Decision(Verdict.ALLOW)
# (group, resource) → vertex type of the objects only readable through the graph
_GET_ONLY = {
    ("", "persistentvolumes"): "pv",
    ("resource.k8s.io", "resourceclaims"): "resourceclaim",
    ("storage.k8s.io", "volumeattachments"): "volumeattachment",
}
_NAMESPACED_READ = {("", "secrets"): "secret", ("", "configmaps"): "configmap"}


class NodeAuthorizer:
    def __init__(self, node_rules: tuple[PolicyRule, ...], graph: NodeGraph = NO_RELATIONSHIPS):
        self._rules = node_rules
        self._graph = graph

    def authorize(self, attrs: Attributes) -> Decision:
        user = attrs.user
        if not is_node_identity(user):
            return _no()
        node = node_name_of(user)
        if node is None:
            return _no(f'unknown node for user "{user.name}"')
        if attrs.resource_request:
            key = (attrs.api_group, attrs.resource)
            if key in _NAMESPACED_READ:
                return self._read_namespaced(node, _NAMESPACED_READ[key], attrs)
            if key == ("", "persistentvolumeclaims"):
                if attrs.subresource == "status":
                    return self._status_update(node, "pvc", attrs)
                return self._get(node, "pvc", attrs)
            if key in _GET_ONLY:
                return self._get(node, _GET_ONLY[key], attrs)
            handler = _SUBDIVIDED.get(key)
            if handler is not None:
                return handler(self, node, attrs)
        if any(rule_allows(r, attrs) for r in self._rules):
            return _ALLOW
        return _no()

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        """Upstream's: a node's permissions depend on its objects, so they are never listed."""
        if is_node_identity(user):
            return RuleSet(
                incomplete=True, errors=("node authorizer does not support user rule resolution",)
            )
        return RuleSet()

    # -- graph-backed reads -----------------------------------------------------------------

    def _related(self, node: str, vertex: str, attrs: Attributes) -> Decision:
        if not attrs.name:
            return _no("No Object name found")
        if self._graph.has_path(node, vertex, attrs.namespace, attrs.name):
            return _ALLOW
        return _no(f"no relationship found between node '{node}' and this object")

    def _get(self, node: str, vertex: str, attrs: Attributes) -> Decision:
        if attrs.verb != "get":
            return _no("can only get individual resources of this type")
        if attrs.subresource:
            return _no("cannot get subresource")
        return self._related(node, vertex, attrs)

    def _status_update(self, node: str, vertex: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("update", "patch"):
            return _no("can only get/update/patch this type")
        return self._related(node, vertex, attrs)

    def _read_namespaced(self, node: str, vertex: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "list", "watch"):
            return _no("can only read resources of this type")
        if attrs.subresource:
            return _no("cannot read subresource")
        if not attrs.namespace:
            return _no("can only read namespaced object of this type")
        return self._related(node, vertex, attrs)

    # -- per-resource rules -----------------------------------------------------------------

    def _service_account(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb == "get" and not attrs.subresource:
            return self._read_namespaced(node, "serviceAccount", attrs)
        if attrs.verb != "create" or not attrs.name:
            return _no("can only create tokens for individual service accounts")
        if attrs.subresource != "token":
            return _no("can only create token subresource of serviceaccount")
        return self._related(node, "serviceAccount", attrs)

    def _lease(self, node: str, attrs: Attributes) -> Decision:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return _no("can only get, create, update, patch, or delete a node lease")
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return _no(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        # On create the name is not known here; NodeRestriction checks it.
        if attrs.verb != "create" and attrs.name != node:
            return _no("can only access node lease with the same name as the requesting node")
        return _ALLOW

    def _csinode(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource == "status":
            # CSIVolumeHealth is off by default in v1.37
            return _no("CSINode status access requires CSIVolumeHealth feature")
        if attrs.subresource:
            return _no("cannot authorize CSINode subresources")
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return _no("can only get, create, update, patch, or delete a CSINode")
        if attrs.verb != "create" and attrs.name != node:
            return _no("can only access CSINode with the same name as the requesting node")
        return _ALLOW

    def _resource_slice(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource:
            return _no("cannot authorize ResourceSlice subresources")
        if attrs.verb == "create":
            return _ALLOW  # NodeRestriction checks spec.nodeName
        if attrs.verb in ("get", "update", "patch", "delete"):
            return self._related(node, "resourceslice", attrs)
        if attrs.verb in ("watch", "list", "deletecollection"):
            if _selects(attrs, "spec.nodeName", node):
                return _ALLOW
            return _no(
                "can only list/watch/deletecollection resourceslices with nodeName field selector"
            )
        return _no(
            "only the following verbs are allowed for a ResourceSlice: get, watch, list, "
            "create, update, patch, delete, deletecollection"
        )

    def _pod_certificate_request(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource:
            return _no("nodes may not access the status subresource of PodCertificateRequests")
        if attrs.verb == "create":
            return _ALLOW  # NodeRestriction cross-checks node, pod and service account
        if attrs.verb == "get":
            return self._related(node, "podcertificaterequest", attrs)
        if attrs.verb in ("list", "watch"):
            if _selects(attrs, "spec.nodeName", node):
                return _ALLOW
            return _no("can only list/watch podcertificaterequests with nodeName field selector")
        return _no(f"nodes may not {attrs.verb} podcertificaterequests")

    def _node(self, node: str, attrs: Attributes) -> Decision:
        verb = attrs.verb
        if not attrs.subresource:
            if verb in ("create", "update", "patch"):
                return _ALLOW  # NodeRestriction limits these to the node's own object
            if verb in ("get", "list", "watch"):
                if attrs.name == node:
                    return _ALLOW
                if not attrs.name:
                    return _no(f"node '{node}' cannot read all nodes, only its own Node object")
                return _no(f"node '{node}' cannot read '{attrs.name}', only its own Node object")
        elif attrs.subresource == "status" and verb in ("update", "patch"):
            return _ALLOW
        return _no()

    def _pod(self, node: str, attrs: Attributes) -> Decision:
        verb, sub = attrs.verb, attrs.subresource
        if not sub:
            if verb == "get":
                return self._get(node, "pod", attrs)
            if verb in ("list", "watch"):
                if _selects(attrs, "spec.nodeName", node):
                    return _ALLOW
                if attrs.name:
                    return self._related(node, "pod", attrs)
                return _no("can only list/watch pods with spec.nodeName field selector")
            if verb in ("create", "delete"):
                return _ALLOW  # mirror pods; NodeRestriction limits them
        elif (sub == "status" and verb in ("update", "patch")) or (
            sub == "eviction" and verb == "create"
        ):
            return _ALLOW
        return _no()


def _selects(attrs: Attributes, field: str, value: str) -> bool:
    """Whether the request's field selector requires ``field=value``."""
    return any(f == field and op == "=" and v == value for f, op, v in attrs.field_selector)


_SUBDIVIDED = {
    ("", "serviceaccounts"): NodeAuthorizer._service_account,
    ("coordination.k8s.io", "leases"): NodeAuthorizer._lease,
    ("storage.k8s.io", "csinodes"): NodeAuthorizer._csinode,
    ("resource.k8s.io", "resourceslices"): NodeAuthorizer._resource_slice,
    ("", "nodes"): NodeAuthorizer._node,
    ("", "pods"): NodeAuthorizer._pod,
    ("certificates.k8s.io", "podcertificaterequests"): NodeAuthorizer._pod_certificate_request,
}
