"""The Node authorizer, NodeRestriction, and the --authorization-mode union."""

from __future__ import annotations

import pytest

from kubeboot.auth.authz import build_authorizer
from kubeboot.auth.defaults import node_policy_rules
from kubeboot.auth.interface import Attributes, UserInfo, Verdict
from kubeboot.auth.node import NodeAuthorizer
from tests.unit.auth.rbac_fixtures import bootstrap_index

W1 = UserInfo("system:node:w1", groups=("system:nodes", "system:authenticated"))
NAMELESS = UserInfo("system:node:", groups=("system:nodes",))
IMPOSTOR = UserInfo("system:node:w1", groups=("system:authenticated",))  # not in system:nodes
CERTS = "certificates.k8s.io"


def a(
    verb: str,
    resource: str,
    *,
    group: str = "",
    ns: str = "",
    name: str = "",
    sub: str = "",
    user: UserInfo = W1,
) -> Attributes:
    return Attributes(
        user=user,
        verb=verb,
        namespace=ns,
        api_group=group,
        resource=resource,
        subresource=sub,
        name=name,
    )


NODE_CASES = [
    (
        "get secret",
        a("get", "secrets", ns="kube-system", name="s"),
        "no relationship found between node 'w1' and this object",
    ),
    (
        "list secrets",
        a("list", "secrets", ns="kube-system"),
        "No Object name found",
    ),
    (
        "get configmap",
        a("get", "configmaps", ns="kube-public", name="cluster-info"),
        "no relationship found",
    ),
    (
        "other lease",
        a("update", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="w2"),
        "same name as the requesting node",
    ),
    (
        "lease elsewhere",
        a("get", "leases", group="coordination.k8s.io", ns="default", name="w1"),
        'can only access leases in the "kube-node-lease" system namespace',
    ),
    (
        "list leases",
        a("list", "leases", group="coordination.k8s.io", ns="kube-node-lease"),
        "can only get, create",
    ),
    ("delete csr", a("delete", "certificatesigningrequests", group=CERTS, name="c"), ""),
    (
        "approve csr",
        a("update", "certificatesigningrequests", group=CERTS, name="c", sub="approval"),
        "",
    ),
    ("delete node", a("delete", "nodes", name="w1"), ""),
    ("get other node", a("get", "nodes", name="w2"), "cannot read 'w2', only its own Node"),
    ("other node status", a("get", "nodes", name="w2", sub="status"), ""),
    ("list nodes", a("list", "nodes"), "node 'w1' cannot read all nodes, only its own Node object"),
    (
        "patch secret",
        a("patch", "secrets", ns="d", name="s"),
        "can only read resources of this type",
    ),
    ("secret sub", a("get", "secrets", ns="d", name="s", sub="x"), "cannot read subresource"),
    (
        "cluster secret",
        a("get", "secrets", name="s"),
        "can only read namespaced object of this type",
    ),
    ("list pvs", a("list", "persistentvolumes"), "can only get individual resources of this type"),
    ("get pv", a("get", "persistentvolumes", name="p"), "no relationship found between node 'w1'"),
    (
        "pvc status get",
        a("get", "persistentvolumeclaims", ns="d", name="c", sub="status"),
        "can only get/update/patch this type",
    ),
    (
        "sa token",
        a("create", "serviceaccounts", ns="d", name="s", sub="token"),
        "no relationship found",
    ),
    (
        "sa other",
        a("update", "serviceaccounts", ns="d", name="s"),
        "can only create tokens for individual service accounts",
    ),
    ("list pods", a("list", "pods"), "can only list/watch pods with spec.nodeName field selector"),
    (
        "other csinode",
        a("update", "csinodes", group="storage.k8s.io", name="w2"),
        "can only access CSINode with the same name as the requesting node",
    ),
    (
        "csinode status",
        a("get", "csinodes", group="storage.k8s.io", name="w1", sub="status"),
        "CSINode status access requires CSIVolumeHealth feature",
    ),
    (
        "slices",
        a("list", "resourceslices", group="resource.k8s.io"),
        "can only list/watch/deletecollection resourceslices with nodeName field selector",
    ),
    (
        "pcr status",
        a("get", "podcertificaterequests", group=CERTS, name="p", sub="status"),
        "nodes may not access the status subresource of PodCertificateRequests",
    ),
    ("nameless", a("get", "nodes", name="w1", user=NAMELESS), "unknown node for user"),
    ("impostor", a("get", "nodes", name="w1", user=IMPOSTOR), ""),
    (
        "own lease",
        a("update", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="w1"),
        None,
    ),
    (
        "create lease",
        a("create", "leases", group="coordination.k8s.io", ns="kube-node-lease"),
        None,
    ),
    ("create node", a("create", "nodes"), None),
    ("get own node", a("get", "nodes", name="w1"), None),
    ("update other node", a("update", "nodes", name="w2"), None),  # NodeRestriction refuses
    ("node status", a("patch", "nodes", name="w1", sub="status"), None),
    ("events", a("create", "events", ns="default"), None),
    ("create csr", a("create", "certificatesigningrequests", group=CERTS), None),
    ("own csinode", a("patch", "csinodes", group="storage.k8s.io", name="w1"), None),
    ("runtimeclasses", a("list", "runtimeclasses", group="node.k8s.io"), None),
    ("mirror pod", a("create", "pods", ns="d"), None),
    (
        "pods on this node",
        Attributes(W1, "watch", resource="pods", field_selector=(("spec.nodeName", "=", "w1"),)),
        None,
    ),
    ("create slice", a("create", "resourceslices", group="resource.k8s.io"), None),
    ("watch csr", a("watch", "certificatesigningrequests", group=CERTS), None),
]


@pytest.mark.parametrize(("case", "attrs", "reason"), NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_node_authorizer(case: str, attrs: Attributes, reason: str | None) -> None:
    decision = NodeAuthorizer(node_policy_rules()).authorize(attrs)
    if reason is None:
        assert decision.verdict is Verdict.ALLOW
    else:
        assert decision.verdict is Verdict.NO_OPINION
        assert reason in decision.reason


@pytest.mark.parametrize(
    ("modes", "message"),
    [([], "none given"), (["ABAC"], "unknown mode"), (["RBAC", "RBAC"], "duplicate")],
)
def test_bad_modes(modes: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_authorizer(modes, lambda: bootstrap_index(cluster_info=False))


def test_union_order_and_reasons() -> None:
    index = bootstrap_index(cluster_info=False)
    node_rbac = build_authorizer(["Node", "RBAC"], lambda: index)
    rbac_only = build_authorizer(["RBAC"], lambda: index)
    create_csr = a("create", "certificatesigningrequests", group=CERTS)
    assert node_rbac.authorize(create_csr).allowed
    assert not rbac_only.authorize(create_csr).allowed  # system:node binding has no subjects
    secret = a("get", "secrets", ns="kube-system", name="s")
    decision = node_rbac.authorize(secret)
    assert not decision.allowed
    assert decision.reason == "node: no relationship found between node 'w1' and this object"
    masters = UserInfo("x", groups=("system:masters",))
    empty = build_authorizer(
        ["RBAC"], lambda: bootstrap_index(cluster_info=False).build((), (), (), ())
    )
    assert empty.authorize(a("delete", "nodes", name="w1", user=masters)).allowed
    anyone = build_authorizer(["AlwaysAllow"], lambda: index)
    assert anyone.authorize(a("delete", "secrets", user=UserInfo("system:anonymous"))).allowed


def test_union_reasons_carry_authorizer_names() -> None:
    """upstream's union: ``<name>: <reason>`` per authorizer with one, newline-joined."""
    missing_role = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gone"},
        "subjects": [{"kind": "Group", "name": "system:nodes"}],
    }
    index = bootstrap_index(cluster_info=False).build((), (), [missing_role], ())
    union = build_authorizer(["Node", "RBAC"], lambda: index)
    decision = union.authorize(
        a("update", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="w2")
    )
    assert decision.reason == (
        "node: can only access node lease with the same name as the requesting node\n"
        'rbac: RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    )
