"""RBAC rule evaluation over the default and kubeadm objects: a ``kubectl auth can-i`` table."""

from __future__ import annotations

import pytest

from kubeboot.auth.interface import Attributes, UserInfo, Verdict
from kubeboot.auth.rbac import PolicyRule, RbacIndex, rule_allows
from tests.unit.auth.rbac_fixtures import RBAC_GROUP, bootstrap_index, crb

ADMIN = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
BOOT = UserInfo(
    "system:bootstrap:abcdef",
    groups=(
        "system:bootstrappers",
        "system:bootstrappers:kubeadm:default-node-token",
        "system:authenticated",
    ),
)
ANON = UserInfo("system:anonymous", groups=("system:unauthenticated",))
NODE = UserInfo("system:node:w1", groups=("system:nodes", "system:authenticated"))
CERT_CONTROLLER = UserInfo(
    "system:serviceaccount:kube-system:certificate-controller",
    groups=("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)
PLAIN = UserInfo("jane", groups=("system:authenticated",))
CERTS = "certificates.k8s.io"


def res(
    user: UserInfo,
    verb: str,
    resource: str,
    *,
    group: str = "",
    ns: str = "",
    name: str = "",
    sub: str = "",
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


def url(user: UserInfo, path: str, verb: str = "get") -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=False, path=path)


# (attributes, allowed before the cluster-info binding, allowed after it)
CAN_I: list[tuple[str, Attributes, bool]] = [
    # the bootstrap token user: CSRs yes, secrets no
    ("boot get secrets", res(BOOT, "get", "secrets", ns="kube-system", name="x"), False),
    ("boot list secrets", res(BOOT, "list", "secrets", ns="kube-system"), False),
    ("boot delete csr", res(BOOT, "delete", "certificatesigningrequests", group=CERTS), False),
    (
        "boot approve csr",
        res(BOOT, "update", "certificatesigningrequests", group=CERTS, name="c", sub="approval"),
        False,
    ),
    (
        "boot selfnodeclient",
        res(BOOT, "create", "certificatesigningrequests", group=CERTS, sub="selfnodeclient"),
        False,
    ),
    ("boot get nodes", res(BOOT, "get", "nodes", name="w1"), False),
    ("boot create csr", res(BOOT, "create", "certificatesigningrequests", group=CERTS), True),
    ("boot watch csr", res(BOOT, "watch", "certificatesigningrequests", group=CERTS), True),
    ("boot get csr", res(BOOT, "get", "certificatesigningrequests", group=CERTS, name="c"), True),
    (
        "boot nodeclient",
        res(BOOT, "create", "certificatesigningrequests", group=CERTS, sub="nodeclient"),
        True,
    ),
    ("boot discovery", url(BOOT, "/apis/certificates.k8s.io/v1"), True),
    ("boot whoami", res(BOOT, "create", "selfsubjectreviews", group="authentication.k8s.io"), True),
    # anonymous
    ("anon list configmaps", res(ANON, "list", "configmaps", ns="kube-public"), False),
    ("anon other configmap", res(ANON, "get", "configmaps", ns="kube-public", name="x"), False),
    (
        "anon cluster-info elsewhere",
        res(ANON, "get", "configmaps", ns="default", name="cluster-info"),
        False,
    ),
    ("anon discovery", url(ANON, "/api"), False),
    ("anon create csr", res(ANON, "create", "certificatesigningrequests", group=CERTS), False),
    ("anon post healthz", url(ANON, "/healthz", "post"), False),
    ("anon healthz", url(ANON, "/healthz"), True),
    ("anon version/", url(ANON, "/version/"), True),
    # a node through RBAC alone (system:node has no subjects): rotation only
    ("node create csr", res(NODE, "create", "certificatesigningrequests", group=CERTS), False),
    (
        "node selfnodeclient",
        res(NODE, "create", "certificatesigningrequests", group=CERTS, sub="selfnodeclient"),
        True,
    ),
    # the certificate controller
    (
        "ctrl approve serving",
        res(
            CERT_CONTROLLER, "approve", "signers", group=CERTS, name="kubernetes.io/kubelet-serving"
        ),
        False,
    ),
    (
        "ctrl sign other",
        res(CERT_CONTROLLER, "sign", "signers", group=CERTS, name="example.com/x"),
        False,
    ),
    (
        "ctrl approve kubelet client",
        res(
            CERT_CONTROLLER,
            "approve",
            "signers",
            group=CERTS,
            name="kubernetes.io/kube-apiserver-client-kubelet",
        ),
        True,
    ),
    (
        "ctrl sign serving",
        res(CERT_CONTROLLER, "sign", "signers", group=CERTS, name="kubernetes.io/kubelet-serving"),
        True,
    ),
    (
        "ctrl update status",
        res(
            CERT_CONTROLLER,
            "update",
            "certificatesigningrequests",
            group=CERTS,
            name="c",
            sub="status",
        ),
        True,
    ),
    # a plain authenticated user, and the administrator
    ("jane get secrets", res(PLAIN, "get", "secrets", ns="default", name="s"), False),
    (
        "jane can-i",
        res(PLAIN, "create", "selfsubjectaccessreviews", group="authorization.k8s.io"),
        True,
    ),
    ("admin anything", res(ADMIN, "deletecollection", "secrets", ns="kube-system"), True),
    ("admin any url", url(ADMIN, "/metrics", "post"), True),
]


@pytest.mark.parametrize(("case", "attrs", "allowed"), CAN_I, ids=[c[0] for c in CAN_I])
def test_can_i_table(case: str, attrs: Attributes, allowed: bool) -> None:
    decision = bootstrap_index(cluster_info=False).authorize(attrs)
    assert decision.allowed is allowed
    assert decision.verdict is (Verdict.ALLOW if allowed else Verdict.NO_OPINION)


def test_anonymous_reads_cluster_info_only_after_the_binding() -> None:
    attrs = res(ANON, "get", "configmaps", ns="kube-public", name="cluster-info")
    assert not bootstrap_index(cluster_info=False).authorize(attrs).allowed
    decision = bootstrap_index(cluster_info=True).authorize(attrs)
    assert decision.allowed
    assert decision.reason == (
        'RBAC: allowed by RoleBinding "kube-public/kubeadm:bootstrap-signer-clusterinfo" of '
        'Role "kubeadm:bootstrap-signer-clusterinfo" to User "system:anonymous"'
    )


def test_allow_reason_names_binding_role_and_subject() -> None:
    decision = bootstrap_index(cluster_info=False).authorize(res(ADMIN, "get", "pods", ns="x"))
    assert decision.reason == (
        'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to '
        'Group "system:masters"'
    )


def test_missing_role_is_reported() -> None:
    index = RbacIndex.build((), (), [crb("b", "nope", "system:authenticated")], ())
    decision = index.authorize(res(PLAIN, "get", "pods"))
    assert decision.verdict is Verdict.NO_OPINION
    assert decision.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "nope" not found'


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        (PolicyRule(("get",), ("",), ("nodes",)), res(PLAIN, "get", "nodes", sub="status"), False),
        (
            PolicyRule(("get",), ("",), ("*/status",)),
            res(PLAIN, "get", "nodes", sub="proxy"),
            False,
        ),
        (PolicyRule(("get",), ("",), ("*/status",)), res(PLAIN, "get", "nodes"), False),
        (PolicyRule(("get",), ("",), ("nodes",), ("a",)), res(PLAIN, "list", "nodes"), False),
        (PolicyRule(("get",), ("apps",), ("*",)), res(PLAIN, "get", "nodes"), False),
        (PolicyRule(("get",), non_resource_urls=("/api/*",)), url(PLAIN, "/apis"), False),
        (PolicyRule(("get",), non_resource_urls=("/api",)), url(PLAIN, "/api/v1"), False),
        (PolicyRule(("get",), ("",), ("nodes",)), url(PLAIN, "/nodes"), False),
        (
            PolicyRule(("get",), ("",), ("*/status",)),
            res(PLAIN, "get", "nodes", sub="status"),
            True,
        ),
        (
            PolicyRule(("get",), ("",), ("nodes/status",)),
            res(PLAIN, "get", "nodes", sub="status"),
            True,
        ),
        (
            PolicyRule(("*",), ("*",), ("*",)),
            res(PLAIN, "escalate", "roles", group=RBAC_GROUP),
            True,
        ),
        (
            PolicyRule(("get",), ("",), ("nodes",), ("a",)),
            res(PLAIN, "get", "nodes", name="a"),
            True,
        ),
        (PolicyRule(("get",), non_resource_urls=("/api/*",)), url(PLAIN, "/api/v1/x"), True),
        (PolicyRule(("get",), non_resource_urls=("*",)), url(PLAIN, "/anything"), True),
    ],
)
def test_rule_matching(rule: PolicyRule, attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(rule, attrs) is allowed


def test_role_binding_scope_and_service_account_namespace_default() -> None:
    index = RbacIndex.build(
        [
            {
                "metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
            }
        ],
        (),
        (),
        [
            {
                "metadata": {"name": "rb", "namespace": "team"},
                "roleRef": {"kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "bot"}],  # namespace: the binding's
            }
        ],
    )
    bot = UserInfo("system:serviceaccount:team:bot")
    other = UserInfo("system:serviceaccount:other:bot")
    assert index.authorize(res(bot, "get", "secrets", ns="team", name="s")).allowed
    assert not index.authorize(res(bot, "get", "secrets", ns="other", name="s")).allowed
    assert not index.authorize(res(bot, "get", "secrets", name="s")).allowed
    assert not index.authorize(res(other, "get", "secrets", ns="team", name="s")).allowed


def test_malformed_objects_are_ignored_not_fatal() -> None:
    index = RbacIndex.build(
        [{"metadata": {"name": "r"}, "rules": "nonsense"}],
        (),
        [
            {
                "metadata": {"name": "a"},
                "roleRef": {"kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "jane"}],
            },  # CRB → Role is invalid
            {
                "metadata": {"name": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "r"},
                "subjects": ["x", {"kind": "Martian", "name": "jane"}, {"kind": "User"}],
            },
        ],
        (),
    )
    assert not index.authorize(res(PLAIN, "get", "pods")).allowed
