"""The Node authorizer, NodeRestriction, and the --authorization-mode union."""

from __future__ import annotations

import pytest

from kubeboot.auth.authz import build_authorizer
from kubeboot.auth.interface import Attributes, UserInfo, Verdict
from kubeboot.auth.node import NodeAuthorizer, node_restriction
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
        "can only get individual resources of this type",
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
        "kube-node-lease namespace",
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
    ("other node status", a("get", "nodes", name="w2", sub="status"), "only its own Node"),
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
    ("watch csr", a("watch", "certificatesigningrequests", group=CERTS), None),
]


@pytest.mark.parametrize(("case", "attrs", "reason"), NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_node_authorizer(case: str, attrs: Attributes, reason: str | None) -> None:
    decision = NodeAuthorizer().authorize(attrs)
    if reason is None:
        assert decision.verdict is Verdict.ALLOW
    else:
        assert decision.verdict is Verdict.NO_OPINION
        assert reason in decision.reason


@pytest.mark.parametrize(
    ("user", "node", "message"),
    [
        (W1, "w2", 'node "w1" is not allowed to modify node "w2"'),
        (NAMELESS, "w1", 'node "" is not allowed to modify node "w1"'),
        (W1, "w1", None),
        (IMPOSTOR, "w2", None),  # not a node identity: RBAC decides
    ],
)
def test_node_restriction(user: UserInfo, node: str, message: str | None) -> None:
    assert node_restriction(user, node) == message


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
    assert decision.reason == "no relationship found between node 'w1' and this object"
    masters = UserInfo("x", groups=("system:masters",))
    empty = build_authorizer(
        ["RBAC"], lambda: bootstrap_index(cluster_info=False).build((), (), (), ())
    )
    assert empty.authorize(a("delete", "nodes", name="w1", user=masters)).allowed
    anyone = build_authorizer(["AlwaysAllow"], lambda: index)
    assert anyone.authorize(a("delete", "secrets", user=UserInfo("system:anonymous"))).allowed
