"""Decode-time defaults: what upstream's scheme fills in when it decodes a body (pure).

kube-apiserver decodes every request into its Go type, running the ``SetDefaults_*``
functions of ``pkg/apis/<group>/v1`` (and conversions that fill fields): before admission,
before the strategy and before the field manager, so these fields count as set by the writer
in ``managedFields``. Per kind:

* Namespace: the ``kubernetes.io/metadata.name`` label; ``status.phase`` Active when empty;
* Secret: ``stringData`` merged into ``data`` (the v1 conversion); ``type`` Opaque;
* Node: ``spec.podCIDRs`` from ``spec.podCIDR`` (the conversion), ``status.allocatable``
  from ``status.capacity``;
* RoleBinding / ClusterRoleBinding: ``roleRef.apiGroup`` rbac.authorization.k8s.io; User and
  Group subjects' ``apiGroup`` the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeboot.api.registry.strategies import normalize_secret_data

__all__ = ["apply_defaults"]

JsonObj = dict[str, Any]
_RBAC_GROUP = "rbac.authorization.k8s.io"


def _dict(obj: JsonObj, key: str) -> JsonObj | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _namespace(obj: JsonObj) -> None:
    meta = _dict(obj, "metadata")
    if meta is not None and meta.get("name"):
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            meta["labels"] = labels = {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
    status = _dict(obj, "status")
    if status is None:
        obj["status"] = status = {}
    if not status.get("phase"):
        status["phase"] = "Active"


def _secret(obj: JsonObj) -> None:
    normalize_secret_data(obj)
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _node(obj: JsonObj) -> None:
    spec = _dict(obj, "spec")
    if spec is not None and spec.get("podCIDR") and not spec.get("podCIDRs"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    status = _dict(obj, "status")
    if status is not None and status.get("allocatable") is None and status.get("capacity"):
        status["allocatable"] = dict(status["capacity"])


def _binding(obj: JsonObj) -> None:
    ref = _dict(obj, "roleRef")
    if ref is not None and not ref.get("apiGroup"):
        ref["apiGroup"] = _RBAC_GROUP
    for subject in obj.get("subjects") or []:
        if (
            isinstance(subject, dict)
            and not subject.get("apiGroup")
            and subject.get("kind") in ("User", "Group")
        ):
            subject["apiGroup"] = _RBAC_GROUP


_DEFAULTS: dict[str, Callable[[JsonObj], None]] = {
    "namespaces": _namespace,
    "secrets": _secret,
    "nodes": _node,
    "rolebindings": _binding,
    "clusterrolebindings": _binding,
}


def apply_defaults(plural: str, obj: JsonObj) -> None:
    """Fill ``obj`` (a decoded body of ``plural``) in place as upstream's decoder would."""
    fill = _DEFAULTS.get(plural)
    if fill is not None:
        fill(obj)
