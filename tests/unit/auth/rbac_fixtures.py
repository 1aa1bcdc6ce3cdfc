"""The RBAC objects of upstream's TLS-bootstrapping guides (kubeadm, server-facts §7.2)."""

from __future__ import annotations

from typing import Any

from kubeboot.auth.defaults import (
    default_cluster_role_bindings,
    default_cluster_roles,
    default_role_bindings,
    default_roles,
)
from kubeboot.auth.rbac import RbacIndex

Obj = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"


def crb(name: str, role: str, group: str) -> Obj:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}],
    }


KUBEADM_BINDINGS = [
    crb(
        "kubeadm:kubelet-bootstrap",
        "system:node-bootstrapper",
        "system:bootstrappers:kubeadm:default-node-token",
    ),
    crb(
        "kubeadm:node-autoapprove-bootstrap",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:bootstrappers:kubeadm:default-node-token",
    ),
    crb(
        "kubeadm:node-autoapprove-certificate-rotation",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:nodes",
    ),
]
CLUSTER_INFO_ROLE = {
    "kind": "Role",
    "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["cluster-info"],
            "verbs": ["get"],
        }
    ],
}
CLUSTER_INFO_BINDING = {
    "kind": "RoleBinding",
    "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
    "roleRef": {
        "apiGroup": RBAC_GROUP,
        "kind": "Role",
        "name": "kubeadm:bootstrap-signer-clusterinfo",
    },
    "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": "system:anonymous"}],
}


def bootstrap_index(*, cluster_info: bool) -> RbacIndex:
    """Defaults + kubeadm's bindings, with or without the anonymous cluster-info binding."""
    return RbacIndex.build(
        default_cluster_roles(),
        [*default_roles(), CLUSTER_INFO_ROLE],
        [*default_cluster_role_bindings(), *KUBEADM_BINDINGS],
        [*default_role_bindings(), *([CLUSTER_INFO_BINDING] if cluster_info else [])],
    )
