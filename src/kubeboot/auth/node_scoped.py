"""The Node authorizer's rules for kinds a node may touch only under its own name.

Upstream's ``node_authorizer.go`` (v1.37) subdivides these instead of judging them by
``system:node``'s rules; the decisions and reasons below are its own:

* ``storage.k8s.io/csinodes``: get, create, update, patch, delete, only the CSINode named
  after the node (a create is checked by NodeRestriction, which sees the name); ``/status``
  needs CSIVolumeHealth, which is off.
* ``pods``: list/watch only with ``fieldSelector=spec.nodeName=<node>``; get, create, delete,
  ``/status`` and ``/eviction`` as upstream (kubeboot serves pods read-only and empty, so
  only the reads ever reach storage).
* ``resource.k8s.io/resourceslices``: list/watch/deletecollection only with
  ``spec.nodeName=<node>`` (the kubelet deletes its slices at start); create allowed.
* ``certificates.k8s.io/podcertificaterequests``: list/watch only with
  ``spec.nodeName=<node>``; create allowed.

:func:`csinode_restriction` is NodeRestriction's half for CSINodes: the authorizer cannot see
the name of an object being created, admission can.

Where upstream consults its graph of pods bound to the node (a read of one named ResourceSlice,
PodCertificateRequest or Pod through a name selector), kubeboot has no pods, so there is never
a relationship: the answer is upstream's "no relationship found".
"""

from __future__ import annotations

from collections.abc import Callable

from kubeboot.auth.interface import Attributes, Decision, UserInfo, Verdict
from kubeboot.auth.users import NODE_USER_PREFIX, NODES_GROUP, node_name_of

__all__ = ["SCOPED_RULES", "csinode_restriction"]

Rule = Callable[[str, Attributes], Decision]
_ALLOW = Decision(Verdict.ALLOW)


def _deny(reason: str = "") -> Decision:
    return Decision(Verdict.NO_OPINION, reason)


def _selects_node(attrs: Attributes, node: str, field: str = "spec.nodeName") -> bool:
    return (field, "=", node) in attrs.field_selector


def _related(node: str, attrs: Attributes) -> Decision:
    """Upstream's graph check, on a graph that never holds a pod."""
    if not attrs.name:
        return _deny("No Object name found")
    return _deny(f"no relationship found between node '{node}' and this object")


def csinode(node: str, attrs: Attributes) -> Decision:
    if attrs.subresource == "status":
        return _deny("CSINode status access requires CSIVolumeHealth feature")
    if attrs.subresource:
        return _deny("cannot authorize CSINode subresources")
    if attrs.verb not in ("get", "create", "update", "patch", "delete"):
        return _deny("can only get, create, update, patch, or delete a CSINode")
    if attrs.verb != "create" and attrs.name != node:
        return _deny("can only access CSINode with the same name as the requesting node")
    return _ALLOW


def pod(node: str, attrs: Attributes) -> Decision:
    verb, sub = attrs.verb, attrs.subresource
    if sub == "" and verb in ("get", "create", "delete"):
        return _ALLOW
    if sub == "" and verb in ("list", "watch"):
        if _selects_node(attrs, node):
            return _ALLOW
        if attrs.name:
            return _related(node, attrs)
        return _deny("can only list/watch pods with spec.nodeName field selector")
    if (sub == "status" and verb in ("update", "patch")) or (
        sub == "eviction" and verb == "create"
    ):
        return _ALLOW
    return _deny()


def resource_slice(node: str, attrs: Attributes) -> Decision:
    if attrs.subresource:
        return _deny("cannot authorize ResourceSlice subresources")
    verb = attrs.verb
    if verb == "create":
        return _ALLOW
    if verb in ("get", "update", "patch", "delete"):
        return _related(node, attrs)
    if verb in ("watch", "list", "deletecollection"):
        if _selects_node(attrs, node):
            return _ALLOW
        return _deny(
            "can only list/watch/deletecollection resourceslices with nodeName field selector"
        )
    return _deny(
        "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, "
        "update, patch, delete, deletecollection"
    )


def pod_certificate_request(node: str, attrs: Attributes) -> Decision:
    if attrs.subresource:
        return _deny("nodes may not access the status subresource of PodCertificateRequests")
    verb = attrs.verb
    if verb == "create":
        return _ALLOW
    if verb == "get":
        return _related(node, attrs)
    if verb in ("list", "watch"):
        if _selects_node(attrs, node):
            return _ALLOW
        return _deny("can only list/watch podcertificaterequests with nodeName field selector")
    return _deny(f"nodes may not {verb} podcertificaterequests")


SCOPED_RULES: dict[tuple[str, str], Rule] = {
    ("storage.k8s.io", "csinodes"): csinode,
    ("", "pods"): pod,
    ("resource.k8s.io", "resourceslices"): resource_slice,
    ("certificates.k8s.io", "podcertificaterequests"): pod_certificate_request,
}


def csinode_restriction(user: UserInfo, csinode_name: str) -> str | None:
    """Why a node may not write the CSINode ``csinode_name`` (None: it may, or is no node)."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return None
    if node_name_of(user) != csinode_name:
        return "can only access CSINode with the same name as the requesting node"
    return None
