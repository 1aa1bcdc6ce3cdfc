"""NodeRestriction, rule by rule, with upstream's messages (``noderestriction/admission.go``)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from kubeboot.auth.admission import AdmissionRequest
from kubeboot.auth.interface import UserInfo
from kubeboot.auth.noderestriction import NodeRestriction
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import generate_private_key
from kubeboot.resources.status import Forbidden

W1 = UserInfo("system:node:w1", groups=("system:nodes", "system:authenticated"))
NAMELESS = UserInfo("system:node:", groups=("system:nodes",))
ADMIN = UserInfo("admin", groups=("system:masters",))
Obj = dict[str, Any]


def node(name: str = "w1", labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def req(
    group: str,
    resource: str,
    operation: str,
    name: str,
    obj: Obj | None = None,
    old: Obj | None = None,
    *,
    namespace: str = "",
    sub: str = "",
    user: UserInfo = W1,
) -> AdmissionRequest:
    return AdmissionRequest(user, group, resource, operation, sub, namespace, name, obj, old)


def admit(request: AdmissionRequest) -> str | None:
    """The 403 message (Forbidden is always 403), or None if admitted."""
    try:
        asyncio.run(NodeRestriction()(request))
    except Forbidden as refused:
        return refused.message
    return None


def csr(cn: str, signer: str) -> Obj:
    request = build_csr(generate_private_key(), common_name=cn, organizations=["system:nodes"])
    return {
        "metadata": {"name": "c"},
        "spec": {"request": base64.b64encode(request).decode(), "signerName": signer},
    }


LEASES = "coordination.k8s.io"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"

CASES = [
    # --- nodes
    ("other node", req("", "nodes", "update", "w2", node("w2"), node("w2")),
     'nodes "w2" is forbidden: node "w1" is not allowed to modify node "w2"'),
    ("delete other", req("", "nodes", "delete", "w2", None, node("w2")),
     'nodes "w2" is forbidden: node "w1" is not allowed to modify node "w2"'),
    ("create other", req("", "nodes", "create", "w2", node("w2")),
     'nodes "w2" is forbidden: node "w1" is not allowed to modify node "w2"'),
    ("own", req("", "nodes", "update", "w1", node("w1", {"a": "b"}), node("w1")), None),
    ("config source", req("", "nodes", "create", "w1", node(configSource={"configMap": {}})),
     'nodes "w1" is forbidden: node "w1" is not allowed to create pods with a non-nil '
     "configSource"),
    ("register with restricted label",
     req("", "nodes", "create", "w1",
         node(labels={"node-restriction.kubernetes.io/pool": "x", "kubernetes.io/os": "linux",
                      "foo.node-restriction.kubernetes.io/a": "b", "example.com/x": "y"})),
     'nodes "w1" is forbidden: node "w1" is not allowed to set the following labels: '
     "foo.node-restriction.kubernetes.io/a, node-restriction.kubernetes.io/pool"),
    ("register with kubelet labels",
     req("", "nodes", "create", "w1",
         node(labels={"kubernetes.io/hostname": "w1", "node.kubernetes.io/instance-type": "m",
                      "x.kubelet.kubernetes.io/a": "b", "beta.kubernetes.io/arch": "amd64"})),
     None),
    ("set restricted label",
     req("", "nodes", "update", "w1", node(labels={"node-restriction.kubernetes.io/a": "b"}),
         node()),
     'nodes "w1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/a'),
    ("remove role label",
     req("", "nodes", "update", "w1", node(), node(labels={"node-role.kubernetes.io/x": ""})),
     'nodes "w1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/x'),
    ("keep a restricted label", req("", "nodes", "update", "w1",
                                    node(labels={"node-restriction.kubernetes.io/a": "b"}),
                                    node(labels={"node-restriction.kubernetes.io/a": "b"})), None),
    ("taints",
     req("", "nodes", "update", "w1", node(), node(taints=[{"key": "k", "effect": "NoSchedule"}])),
     'nodes "w1" is forbidden: node "w1" is not allowed to modify taints'),
    ("taints via status",
     req("", "nodes", "update", "w1", node(taints=[{"key": "k", "effect": "NoSchedule"}]),
         node(), sub="status"),
     'nodes "w1" is forbidden: node "w1" is not allowed to modify taints'),
    ("no taints either way", req("", "nodes", "update", "w1", node(taints=[]), node()), None),
    ("owner references",
     req("", "nodes", "update", "w1",
         {"metadata": {"name": "w1", "ownerReferences": [{"kind": "X"}]}}, node()),
     'nodes "w1" is forbidden: node "w1" is not allowed to modify ownerReferences'),
    ("new config source",
     req("", "nodes", "update", "w1", node(configSource={"a": 1}), node()),
     'nodes "w1" is forbidden: node "w1" is not allowed to update configSource to a new '
     "non-nil configSource"),
    ("nameless node", req("", "nodes", "update", "w1", node(), node(), user=NAMELESS),
     'nodes "w1" is forbidden: could not determine node from user "system:node:"'),
    ("not a node", req("", "nodes", "update", "w2", node("w2"), node("w2"), user=ADMIN), None),
    # --- leases
    ("other lease", req(LEASES, "leases", "create", "w2", {"metadata": {"name": "w2"}},
                        namespace="kube-node-lease"),
     'leases.coordination.k8s.io "w2" is forbidden: can only access node lease with the same '
     "name as the requesting node"),
    ("generated lease", req(LEASES, "leases", "create", "", {"metadata": {"generateName": "w"}},
                            namespace="kube-node-lease"),
     'leases.coordination.k8s.io "w" is forbidden: can only access node lease with the same '
     "name as the requesting node"),
    ("lease elsewhere", req(LEASES, "leases", "update", "w1", {}, {}, namespace="default"),
     'leases.coordination.k8s.io "w1" is forbidden: can only access leases in the '
     '"kube-node-lease" system namespace'),
    ("delete other lease", req(LEASES, "leases", "delete", "w2", None, {},
                               namespace="kube-node-lease"),
     'leases.coordination.k8s.io "w2" is forbidden: can only access node lease with the same '
     "name as the requesting node"),
    ("own lease", req(LEASES, "leases", "create", "w1", {"metadata": {"name": "w1"}},
                      namespace="kube-node-lease"), None),
    # --- CSRs
    ("client csr for another node",
     req("certificates.k8s.io", "certificatesigningrequests", "create", "c",
         csr("system:node:w2", KUBELET_CLIENT)),
     'certificatesigningrequests.certificates.k8s.io "c" is forbidden: can only create a node '
     "CSR with CN=system:node:w1"),
    ("serving csr for another node",
     req("certificates.k8s.io", "certificatesigningrequests", "create", "c",
         csr("system:node:w2", KUBELET_SERVING)),
     'certificatesigningrequests.certificates.k8s.io "c" is forbidden: can only create a node '
     "CSR with CN=system:node:w1"),
    ("own client csr", req("certificates.k8s.io", "certificatesigningrequests", "create", "c",
                           csr("system:node:w1", KUBELET_CLIENT)), None),
    ("other signer", req("certificates.k8s.io", "certificatesigningrequests", "create", "c",
                         csr("anything", "example.com/x")), None),
    ("garbage csr", req("certificates.k8s.io", "certificatesigningrequests", "create", "c",
                        {"spec": {"signerName": KUBELET_CLIENT, "request": "bm90IHBlbQ=="}}),
     'certificatesigningrequests.certificates.k8s.io "c" is forbidden: unable to parse csr: '
     "PEM block type must be CERTIFICATE REQUEST"),
    # --- csinodes, resource slices, PVC status
    ("other csinode", req("storage.k8s.io", "csinodes", "create", "w2",
                          {"metadata": {"name": "w2"}}),
     'csinodes.storage.k8s.io "w2" is forbidden: can only access CSINode with the same name '
     "as the requesting node"),
    ("csinode status", req("storage.k8s.io", "csinodes", "update", "w1", {}, {}, sub="status"),
     'csinodes.storage.k8s.io "w1" is forbidden: CSIVolumeHealth feature gate is disabled'),
    ("foreign slice", req("resource.k8s.io", "resourceslices", "create", "s",
                          {"metadata": {"name": "s"}, "spec": {"nodeName": "w2"}}),
     'resourceslices.resource.k8s.io "s" is forbidden: can only create ResourceSlice with the '
     "same NodeName as the requesting node"),
    ("pvc spec", req("", "persistentvolumeclaims", "update", "c", {"metadata": {"name": "c"}},
                     {"metadata": {"name": "c"}}, namespace="d"),
     'persistentvolumeclaims "c" is forbidden: may only update PVC status'),
    ("pvc status relabel", req("", "persistentvolumeclaims", "update", "c",
                               {"metadata": {"name": "c", "labels": {"a": "b"}}},
                               {"metadata": {"name": "c"}}, namespace="d", sub="status"),
     'persistentvolumeclaims "c" is forbidden: node "w1" is not allowed to update fields '
     "other than status.quantity and status.conditions"),
    ("pvc status conditions",
     req("", "persistentvolumeclaims", "update", "c",
         {"metadata": {"name": "c", "resourceVersion": "9"}, "status": {"conditions": [{}]}},
         {"metadata": {"name": "c", "resourceVersion": "8"}}, namespace="d", sub="status"),
     None),
    # --- anything else is not this plugin's
    ("events", req("", "events", "create", "e", {"metadata": {"name": "e"}}, namespace="d"),
     None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "request_", "message"), CASES, ids=[c[0] for c in CASES])
def test_node_restriction(case: str, request_: AdmissionRequest, message: str | None) -> None:
    assert admit(request_) == message
