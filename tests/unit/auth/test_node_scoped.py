"""The Node authorizer's rules for CSINodes, Pods, ResourceSlices and PodCertificateRequests
(upstream's node_authorizer.go v1.37), and NodeRestriction for CSINodes; refusals first."""

from __future__ import annotations

import pytest

from kubeboot.auth.interface import Attributes, UserInfo, Verdict
from kubeboot.auth.node import NodeAuthorizer
from kubeboot.auth.node_scoped import csinode_restriction

W1 = UserInfo("system:node:w1", groups=("system:nodes", "system:authenticated"))
STORAGE, RESOURCE, CERTS = "storage.k8s.io", "resource.k8s.io", "certificates.k8s.io"
OWN = (("spec.nodeName", "=", "w1"),)


def a(
    verb: str,
    resource: str,
    group: str = "",
    *,
    name: str = "",
    sub: str = "",
    fields: tuple[tuple[str, str, str], ...] = (),
) -> Attributes:
    return Attributes(
        user=W1,
        verb=verb,
        api_group=group,
        resource=resource,
        subresource=sub,
        name=name,
        namespace="default" if resource in ("pods", "podcertificaterequests") else "",
        field_selector=fields,
    )


REFUSED = [
    (
        a("get", "csinodes", STORAGE, name="w2"),
        "can only access CSINode with the same name as the requesting node",
    ),
    (a("list", "csinodes", STORAGE), "can only get, create, update, patch, or delete a CSINode"),
    (
        a("update", "csinodes", STORAGE, name="w1", sub="status"),
        "CSINode status access requires CSIVolumeHealth feature",
    ),
    (a("get", "csinodes", STORAGE, name="w1", sub="x"), "cannot authorize CSINode subresources"),
    (a("list", "pods"), "can only list/watch pods with spec.nodeName field selector"),
    (
        a("watch", "pods", fields=(("spec.nodeName", "=", "w2"),)),
        "can only list/watch pods with spec.nodeName field selector",
    ),
    (
        a("list", "pods", fields=(("spec.nodeName", "!=", "w1"),)),
        "can only list/watch pods with spec.nodeName field selector",
    ),
    (a("watch", "pods", name="p"), "no relationship found between node 'w1' and this object"),
    (a("update", "pods", name="p"), ""),
    (
        a("list", "resourceslices", RESOURCE),
        "can only list/watch/deletecollection resourceslices with nodeName field selector",
    ),
    (
        a("deletecollection", "resourceslices", RESOURCE, fields=(("spec.driver", "=", "w1"),)),
        "can only list/watch/deletecollection resourceslices with nodeName field selector",
    ),
    (
        a("get", "resourceslices", RESOURCE, name="s"),
        "no relationship found between node 'w1' and this object",
    ),
    (
        a("get", "resourceslices", RESOURCE, name="s", sub="status"),
        "cannot authorize ResourceSlice subresources",
    ),
    (
        a("list", "podcertificaterequests", CERTS),
        "can only list/watch podcertificaterequests with nodeName field selector",
    ),
    (
        a("delete", "podcertificaterequests", CERTS, name="r"),
        "nodes may not delete podcertificaterequests",
    ),
    (
        a("get", "podcertificaterequests", CERTS, name="r", sub="status"),
        "nodes may not access the status subresource of PodCertificateRequests",
    ),
]


@pytest.mark.parametrize(("attrs", "reason"), REFUSED)
def test_refusals_carry_upstreams_reason(attrs: Attributes, reason: str) -> None:
    decision = NodeAuthorizer().authorize(attrs)
    assert decision.verdict is Verdict.NO_OPINION
    assert decision.reason == reason


ALLOWED = [
    a("create", "csinodes", STORAGE),  # the name is NodeRestriction's to check
    a("get", "csinodes", STORAGE, name="w1"),
    a("update", "csinodes", STORAGE, name="w1"),
    a("delete", "csinodes", STORAGE, name="w1"),
    a("list", "pods", fields=OWN),
    a("watch", "pods", fields=(("metadata.namespace", "=", "x"), *OWN)),
    a("get", "pods", name="p"),
    a("patch", "pods", name="p", sub="status"),
    a("list", "resourceslices", RESOURCE, fields=OWN),
    a("deletecollection", "resourceslices", RESOURCE, fields=OWN),
    a("watch", "podcertificaterequests", CERTS, fields=OWN),
    # judged by system:node's rules, which now name these kinds
    a("list", "csidrivers", STORAGE),
    a("watch", "runtimeclasses", "node.k8s.io"),
    a("list", "services"),
]


@pytest.mark.parametrize("attrs", ALLOWED)
def test_a_node_reaches_what_is_its_own(attrs: Attributes) -> None:
    assert NodeAuthorizer().authorize(attrs).allowed


def test_csinode_restriction() -> None:
    assert csinode_restriction(W1, "w1") is None
    assert csinode_restriction(W1, "w2") == (
        "can only access CSINode with the same name as the requesting node"
    )
    assert csinode_restriction(UserInfo("admin", groups=("system:masters",)), "w2") is None
    nameless = UserInfo("system:node:", groups=("system:nodes",))
    assert csinode_restriction(nameless, "") is not None
