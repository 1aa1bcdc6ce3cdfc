"""The kubelet's names: signers, subjects, cert-dir file names, timings (node-facts §1, §2, §7).

Real tools (kubeadm, troubleshooting guides, kucero) read these exact file names, so they
are not ours to change.
"""

from __future__ import annotations

from kubeboot.resources.bootstrap_token import NODES_GROUP
from kubeboot.resources.registry import ResourceInfo, find_resource

__all__ = [
    "CLIENT_PREFIX",
    "CLIENT_SIGNER",
    "CONFIGMAP_RESOURCE",
    "CSR_RESOURCE",
    "DEFAULT_CERT_DIR",
    "EVENT_NAMESPACE",
    "EVENT_RESOURCE",
    "KEEP_PAIRS",
    "NODES_GROUP",
    "NODE_RESOURCE",
    "NODE_USER_PREFIX",
    "SERVER_PREFIX",
    "SERVING_SIGNER",
    "node_common_name",
]

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
NODE_USER_PREFIX = "system:node:"

DEFAULT_CERT_DIR = "/var/lib/kubelet/pki"
# Store prefixes: <prefix>-<YYYY-MM-DD-HH-MM-SS>.pem, <prefix>-current.pem (symlink),
# <prefix>-updated.pem (the symlink being swapped in), <prefix>.key.tmp (a pending key).
CLIENT_PREFIX = "kubelet-client"
SERVER_PREFIX = "kubelet-server"
# Upstream never deletes old pairs (node-facts §8); we keep this many, the current included.
KEEP_PAIRS = 3

# Events about a Node are recorded in the default namespace, as the kubelet does.
EVENT_NAMESPACE = "default"


def node_common_name(node_name: str) -> str:
    return NODE_USER_PREFIX + node_name


def _resource(group: str, plural: str) -> ResourceInfo:
    res = find_resource(group, "v1", plural)
    assert res is not None, plural
    return res


CSR_RESOURCE = _resource("certificates.k8s.io", "certificatesigningrequests")
NODE_RESOURCE = _resource("", "nodes")
EVENT_RESOURCE = _resource("", "events")
CONFIGMAP_RESOURCE = _resource("", "configmaps")
