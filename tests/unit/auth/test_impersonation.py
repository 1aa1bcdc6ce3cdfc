"""Impersonation headers → targets → checks → the new user (upstream's WithImpersonation)."""

from __future__ import annotations

import pytest

from kubeboot.auth.authz import build_authorizer
from kubeboot.auth.defaults import (
    default_cluster_role_bindings,
    default_cluster_roles,
    default_role_bindings,
    default_roles,
)
from kubeboot.auth.impersonation import (
    ImpersonationTarget,
    impersonate,
    impersonation_targets,
    is_impersonation_header,
)
from kubeboot.auth.interface import Authorizer, UserInfo
from kubeboot.auth.rbac import RbacIndex
from kubeboot.auth.users import ANONYMOUS
from kubeboot.resources.status import Forbidden, InternalError
from tests.unit.auth.rbac_fixtures import RBAC_GROUP

ADMIN = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))
BOB = UserInfo("bob", groups=("devs", "system:authenticated"))
JOINER = UserInfo(
    "system:bootstrap:abcdef", groups=("system:bootstrappers", "system:authenticated")
)


def _authorizer(*rules: dict[str, object]) -> Authorizer:
    """Defaults plus a ClusterRole ``impersonator`` with ``rules`` bound to user bob."""
    role = {"kind": "ClusterRole", "metadata": {"name": "impersonator"}, "rules": list(rules)}
    binding = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "impersonator"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "impersonator"},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": "bob"}],
    }
    index = RbacIndex.build(
        [*default_cluster_roles(), role],
        default_roles(),
        [*default_cluster_role_bindings(), binding],
        default_role_bindings(),
    )
    return build_authorizer(["Node", "RBAC"], lambda: index)


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("Impersonate-Group", "g")],
        [("Impersonate-Uid", "1234")],
        [("Impersonate-Extra-Scopes", "view")],
        [("Impersonate-User", ""), ("Impersonate-Group", "g")],  # an empty user is no user
    ],
)
def test_groups_extra_or_uid_without_a_user_is_refused(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(InternalError, match="without impersonating a user"):
        impersonation_targets(headers)


def test_targets_in_upstream_order_with_extra_keys_lowered_and_unescaped() -> None:
    targets = impersonation_targets(
        [
            ("impersonate-uid", "u-1"),
            ("Impersonate-Extra-Example.com%2Fscopes", "a"),
            ("Impersonate-Group", "g1"),
            ("IMPERSONATE-USER", "jane"),
            ("Impersonate-Group", "g2"),
            ("Impersonate-Extra-Example.com%2Fscopes", "b"),
            ("Accept", "application/json"),
        ]
    )
    assert targets == [
        ImpersonationTarget("users", "jane"),
        ImpersonationTarget("groups", "g1"),
        ImpersonationTarget("groups", "g2"),
        ImpersonationTarget("userextras", "a", subresource="example.com/scopes"),
        ImpersonationTarget("userextras", "b", subresource="example.com/scopes"),
        ImpersonationTarget("uids", "u-1"),
    ]
    assert [t.api_group for t in targets] == ["", "", "", *["authentication.k8s.io"] * 3]


def test_service_account_users_are_checked_as_serviceaccounts() -> None:
    assert impersonation_targets([("Impersonate-User", "system:serviceaccount:ns1:sa")]) == [
        ImpersonationTarget("serviceaccounts", "sa", namespace="ns1")
    ]
    # not a well-formed service-account name: an ordinary user
    assert impersonation_targets([("Impersonate-User", "system:serviceaccount:ns1")]) == [
        ImpersonationTarget("users", "system:serviceaccount:ns1")
    ]


def test_no_headers_no_impersonation() -> None:
    assert impersonation_targets([("Authorization", "Bearer x")]) == []
    assert impersonate(BOB, [("Accept", "*/*")], _authorizer()) is None
    assert is_impersonation_header("impersonate-extra-x")
    assert not is_impersonation_header("Impersonated")


# --- authorization -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requestor", "headers", "message"),
    [
        (
            JOINER,
            [("Impersonate-User", "jane")],
            'users "jane" is forbidden: User "system:bootstrap:abcdef" cannot impersonate '
            'resource "users" in API group "" at the cluster scope',
        ),
        (
            BOB,  # may impersonate users but not this group
            [("Impersonate-User", "jane"), ("Impersonate-Group", "system:masters")],
            'groups "system:masters" is forbidden: User "bob" cannot impersonate resource '
            '"groups" in API group "" at the cluster scope',
        ),
        (
            BOB,
            [("Impersonate-User", "jane"), ("Impersonate-Uid", "42")],
            'uids.authentication.k8s.io "42" is forbidden: User "bob" cannot impersonate '
            'resource "uids" in API group "authentication.k8s.io" at the cluster scope',
        ),
        (
            BOB,
            [("Impersonate-User", "jane"), ("Impersonate-Extra-Scopes", "admin")],
            'userextras.authentication.k8s.io "admin" is forbidden: User "bob" cannot '
            'impersonate resource "userextras/scopes" in API group "authentication.k8s.io"',
        ),
        (
            BOB,
            [("Impersonate-User", "system:serviceaccount:kube-system:x")],
            'serviceaccounts "x" is forbidden: User "bob" cannot impersonate resource '
            '"serviceaccounts" in API group "" in the namespace "kube-system"',
        ),
    ],
)
def test_refusals_carry_upstreams_message(
    requestor: UserInfo, headers: list[tuple[str, str]], message: str
) -> None:
    authorizer = _authorizer(
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
        {
            "apiGroups": [""],
            "resources": ["groups"],
            "resourceNames": ["devs"],
            "verbs": ["impersonate"],
        },
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["userextras/team"],
            "verbs": ["impersonate"],
        },
    )
    with pytest.raises(Forbidden) as err:
        impersonate(requestor, headers, authorizer)
    assert message in err.value.message


def test_granted_pieces_build_the_new_user() -> None:
    authorizer = _authorizer(
        {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]},
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["userextras/team", "uids"],
            "verbs": ["impersonate"],
        },
    )
    user = impersonate(
        BOB,
        [
            ("Impersonate-User", "jane"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Extra-Team", "blue"),
            ("Impersonate-Uid", "u-7"),
        ],
        authorizer,
    )
    assert user == UserInfo("jane", "u-7", ("devs", "system:authenticated"), {"team": ("blue",)})


@pytest.mark.parametrize(
    ("headers", "groups"),
    [
        ([("Impersonate-User", "jane")], ("system:authenticated",)),
        (
            [("Impersonate-User", "jane"), ("Impersonate-Group", "system:unauthenticated")],
            ("system:unauthenticated",),
        ),
        ([("Impersonate-User", "system:anonymous")], ("system:unauthenticated",)),
        (
            [("Impersonate-User", "system:anonymous"), ("Impersonate-Group", "g")],
            ("g", "system:unauthenticated"),
        ),
        (
            [("Impersonate-User", "system:serviceaccount:ns1:sa")],
            ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"),
        ),
        (
            [("Impersonate-User", "system:serviceaccount:ns1:sa"), ("Impersonate-Group", "g")],
            ("g", "system:authenticated"),
        ),
    ],
)
def test_authenticated_and_unauthenticated_groups(
    headers: list[tuple[str, str]], groups: tuple[str, ...]
) -> None:
    user = impersonate(ADMIN, headers, _authorizer())
    assert user is not None
    assert user.groups == groups


def test_anonymous_cannot_impersonate_by_default() -> None:
    with pytest.raises(Forbidden, match='User "system:anonymous" cannot impersonate'):
        impersonate(ANONYMOUS, [("Impersonate-User", "kubernetes-admin")], _authorizer())
