"""RBAC escalation prevention end to end (issue 13 item 1), with upstream's codes and texts.

alice may create, update and patch Roles and RoleBindings in namespace ``team`` and read
pods there; nothing else. As upstream's policy-based RBAC storages do, the server refuses
every write that would give her (or anyone) more than she holds: each rule shape
(resources, resourceNames, nonResourceURLs, wildcards, aggregated roles), each RBAC kind,
each write verb. With ``escalate``/``bind`` granted, the same writes pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.integration.auth.users import (
    RBAC,
    admin,
    binding,
    call,
    grant,
    role,
    rule,
    server_with_users,
)

NS = f"{RBAC}/namespaces/team"
HEADER = (
    'user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions '
    "not currently held:\n"
)
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with server_with_users(tmp_path / "data", [("alice", []), ("carol", [])]) as running:
        await admin(running, "POST", "/api/v1/namespaces", {"metadata": {"name": "team"}})
        writer = [
            rule(
                ["create", "get", "list", "update", "patch"],
                ["rbac.authorization.k8s.io"],
                ["roles", "rolebindings"],
            ),
            rule(["get", "list"], [""], ["pods"]),
            rule(["get"], [""], ["secrets"], resourceNames=["public"]),
        ]
        await grant(running, "alice", writer, "team", "rbac-writer")
        yield running


def forbidden(kind: str, name: str, *lines: str) -> str:
    return f'{kind}.rbac.authorization.k8s.io "{name}" is forbidden: ' + HEADER + "\n".join(lines)


async def expect_403(
    running: RunningServer,
    method: str,
    path: str,
    body: object,
    message: str,
    *,
    content_type: str | None = None,
) -> None:
    status, out = await call(running, method, path, body, user="alice", content_type=content_type)
    assert status == 403, out
    assert out["reason"] == "Forbidden"
    assert out["message"] == message
    assert out["details"]["group"] == "rbac.authorization.k8s.io"


async def test_roles_may_only_carry_rules_the_writer_holds(running: RunningServer) -> None:
    secrets = role("steal", [rule(["get"], [""], ["secrets"])])
    await expect_403(
        running,
        "POST",
        f"{NS}/roles",
        secrets,
        forbidden("roles", "steal", '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'),
    )
    everything = role("all", [rule(["*"], ["*"], ["*"])])
    await expect_403(
        running,
        "POST",
        f"{NS}/roles",
        everything,
        forbidden("roles", "all", '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}'),
    )
    # resourceNames: the one secret she may read, yes; another, or all of them, no
    named = role("named", [rule(["get"], [""], ["secrets"], resourceNames=["public"])])
    status, _ = await call(running, "POST", f"{NS}/roles", named, user="alice")
    assert status == 201
    other = role("other", [rule(["get"], [""], ["secrets"], resourceNames=["public", "db"])])
    await expect_403(
        running,
        "POST",
        f"{NS}/roles",
        other,
        forbidden(
            "roles",
            "other",
            '{APIGroups:[""], Resources:["secrets"], ResourceNames:["db"], Verbs:["get"]}',
        ),
    )
    # subresources are separate resources; a wildcard subresource needs a wildcard
    logs = role("logs", [rule(["get"], [""], ["pods/log", "*/status"])])
    await expect_403(
        running,
        "POST",
        f"{NS}/roles",
        logs,
        forbidden(
            "roles",
            "logs",
            '{APIGroups:[""], Resources:["*/status"], Verbs:["get"]}',
            '{APIGroups:[""], Resources:["pods/log"], Verbs:["get"]}',
        ),
    )
    # several missing verbs on one resource: one line, verbs in the order asked
    verbs = role("verbs", [rule(["list", "delete", "get", "watch"], [""], ["pods"])])
    await expect_403(
        running,
        "POST",
        f"{NS}/roles",
        verbs,
        forbidden(
            "roles", "verbs", '{APIGroups:[""], Resources:["pods"], Verbs:["delete" "watch"]}'
        ),
    )
    # generateName: the name is not known yet, as upstream's message shows
    unnamed = role("", [rule(["delete"], [""], ["pods"])])
    unnamed["metadata"] = {"generateName": "x-"}
    status, out = await call(running, "POST", f"{NS}/roles", unnamed, user="alice")
    assert status == 403
    assert out["message"].startswith("roles.rbac.authorization.k8s.io is forbidden: " + HEADER)
    # what she holds she may hand on
    mine = role("mine", [rule(["get", "list"], [""], ["pods"])])
    status, _ = await call(running, "POST", f"{NS}/roles", mine, user="alice")
    assert status == 201


async def test_she_cannot_widen_a_role_by_update_or_patch(running: RunningServer) -> None:
    path = f"{NS}/roles/rbac-writer"
    current = await admin(running, "GET", path)
    current["rules"].append(rule(["get", "list"], [""], ["secrets"]))
    wanted = forbidden(
        "roles", "rbac-writer", '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}'
    )
    await expect_403(running, "PUT", path, current, wanted)
    patch = {"rules": current["rules"]}
    await expect_403(running, "PATCH", path, patch, wanted, content_type=MERGE)
    ops = [{"op": "add", "path": "/rules/-", "value": rule(["get", "list"], [""], ["secrets"])}]
    await expect_403(running, "PATCH", path, ops, wanted, content_type=JSON_PATCH)
    # a label is no escalation: the rules are still hers
    status, out = await call(
        running,
        "PATCH",
        path,
        {"metadata": {"labels": {"a": "b"}}},
        user="alice",
        content_type=MERGE,
    )
    assert status == 200, out
    # and she still cannot read secrets
    status, out = await call(running, "GET", "/api/v1/namespaces/team/secrets", user="alice")
    assert status == 403


async def test_bindings_need_the_roles_rules_or_bind(running: RunningServer) -> None:
    admin_binding = binding("own", "ClusterRole", "cluster-admin", "alice")
    await expect_403(
        running,
        "POST",
        f"{NS}/rolebindings",
        admin_binding,
        forbidden(
            "rolebindings",
            "own",
            '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}',
            '{NonResourceURLs:["*"], Verbs:["*"]}',
        ),
    )
    # a Role that does not exist: 404, as upstream's role getter says
    status, out = await call(
        running,
        "POST",
        f"{NS}/rolebindings",
        binding("ghost", "Role", "nope", "alice"),
        user="alice",
    )
    assert (status, out["reason"]) == (404, "NotFound")
    assert out["message"] == 'roles.rbac.authorization.k8s.io "nope" not found'
    status, out = await call(
        running,
        "POST",
        f"{NS}/rolebindings",
        binding("ghost", "ClusterRole", "nope", "alice"),
        user="alice",
    )
    assert out["message"] == 'clusterroles.rbac.authorization.k8s.io "nope" not found'
    # a role whose rules she holds she may bind (to anyone)
    await admin(running, "POST", f"{NS}/roles", role("pod-reader", [rule(["get"], [""], ["pods"])]))
    ok = binding("readers", "Role", "pod-reader", "bob")
    status, out = await call(running, "POST", f"{NS}/rolebindings", ok, user="alice")
    assert status == 201, out
    # re-pointing a binding is refused by validation; updating subjects re-checks the role
    secret_role = role("secret-reader", [rule(["get"], [""], ["secrets"])])
    await admin(running, "POST", f"{NS}/roles", secret_role)
    await admin(running, "POST", f"{NS}/rolebindings", binding("sr", "Role", "secret-reader", "x"))
    current = await admin(running, "GET", f"{NS}/rolebindings/sr")
    current["subjects"][0]["name"] = "alice"
    await expect_403(
        running,
        "PUT",
        f"{NS}/rolebindings/sr",
        current,
        forbidden("rolebindings", "sr", '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'),
    )
    status, _ = await call(running, "GET", "/api/v1/namespaces/team/secrets/db", user="alice")
    assert status == 403


async def test_bind_and_escalate_verbs_lift_the_check(running: RunningServer) -> None:
    await grant(
        running,
        "alice",
        [
            rule(
                ["bind"], ["rbac.authorization.k8s.io"], ["clusterroles"], resourceNames=["viewer"]
            ),
            rule(["escalate"], ["rbac.authorization.k8s.io"], ["roles"]),
        ],
        "team",
        "delegate",
    )
    await admin(
        running,
        "POST",
        f"{RBAC}/clusterroles",
        role("viewer", [rule(["get"], [""], ["configmaps"])], "ClusterRole"),
    )
    status, out = await call(
        running,
        "POST",
        f"{NS}/rolebindings",
        binding("v", "ClusterRole", "viewer", "bob"),
        user="alice",
    )
    assert status == 201, out
    # bind is per role name: another cluster role still needs its rules
    status, out = await call(
        running,
        "POST",
        f"{NS}/rolebindings",
        binding("e", "ClusterRole", "cluster-admin", "bob"),
        user="alice",
    )
    assert status == 403
    # escalate on roles: any rules in a Role
    status, out = await call(
        running, "POST", f"{NS}/roles", role("all", [rule(["*"], ["*"], ["*"])]), user="alice"
    )
    assert status == 201, out


async def test_cluster_roles_and_bindings(running: RunningServer) -> None:
    await grant(
        running,
        "carol",
        [
            rule(
                ["create", "update", "patch", "get"],
                ["rbac.authorization.k8s.io"],
                ["clusterroles", "clusterrolebindings"],
            ),
            {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]},
        ],
        None,
        "cluster-writer",
    )
    header = HEADER.replace('"alice"', '"carol"')

    async def carol(method: str, path: str, body: object) -> tuple[int, dict[str, Any]]:
        return await call(running, method, path, body, user="carol")

    urls = role(
        "urls", [{"verbs": ["get"], "nonResourceURLs": ["/metrics", "/api/v1"]}], "ClusterRole"
    )
    status, out = await carol("POST", f"{RBAC}/clusterroles", urls)
    assert status == 403
    assert out["message"] == (
        'clusterroles.rbac.authorization.k8s.io "urls" is forbidden: '
        + header
        + '{NonResourceURLs:["/metrics"], Verbs:["get"]}'
    )
    fine = role(
        "fine", [{"verbs": ["get"], "nonResourceURLs": ["/api/v1", "/healthz"]}], "ClusterRole"
    )
    assert (await carol("POST", f"{RBAC}/clusterroles", fine))[0] == 201
    # Role rules held only in one namespace do not count at the cluster scope
    await grant(running, "carol", [rule(["get"], [""], ["pods"])], "team", "ns-pods")
    pods = role("pods", [rule(["get"], [""], ["pods"])], "ClusterRole")
    status, out = await carol("POST", f"{RBAC}/clusterroles", pods)
    assert status == 403
    # aggregation gathers anything: only with everything
    aggregated = role(
        "agg",
        [],
        "ClusterRole",
        aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
    )
    status, out = await carol("POST", f"{RBAC}/clusterroles", aggregated)
    assert status == 403
    assert out["message"] == (
        'clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have cluster-admin '
        "privileges to use the aggregationRule"
    )
    # ClusterRoleBinding to cluster-admin
    crb = binding("mine", "ClusterRole", "cluster-admin", "carol", "ClusterRoleBinding")
    status, out = await carol("POST", f"{RBAC}/clusterrolebindings", crb)
    assert status == 403
    assert out["message"] == (
        'clusterrolebindings.rbac.authorization.k8s.io "mine" is forbidden: '
        + header
        + '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n{NonResourceURLs:["*"], Verbs:["*"]}'
    )
    # widening her own ClusterRole by patch
    status, out = await call(
        running,
        "PATCH",
        f"{RBAC}/clusterroles/cluster-writer",
        [{"op": "add", "path": "/rules/-", "value": rule(["*"], [""], ["secrets"])}],
        user="carol",
        content_type=JSON_PATCH,
    )
    assert status == 403
    assert out["message"].endswith('{APIGroups:[""], Resources:["secrets"], Verbs:["*"]}')
    # an aggregated ClusterRole's own rules are what counts when it is bound
    await admin(
        running,
        "POST",
        f"{RBAC}/clusterroles",
        role(
            "agg2",
            [],
            "ClusterRole",
            aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
        ),
    )
    crb2 = binding("agg2", "ClusterRole", "agg2", "carol", "ClusterRoleBinding")
    assert (await carol("POST", f"{RBAC}/clusterrolebindings", crb2))[0] == 201


async def test_masters_and_gc_updates_are_never_checked(running: RunningServer) -> None:
    # the admin (system:masters) writes anything
    await admin(running, "POST", f"{NS}/roles", role("all", [rule(["*"], ["*"], ["*"])]))
    # alice may only touch GC fields of a role she could not have written
    status, out = await call(
        running,
        "PATCH",
        f"{NS}/roles/all",
        {"metadata": {"finalizers": ["example.com/x"]}},
        user="alice",
        content_type=MERGE,
    )
    assert status == 200, out
    status, out = await call(
        running,
        "PATCH",
        f"{NS}/roles/all",
        {"metadata": {"annotations": {"a": "b"}}},
        user="alice",
        content_type=MERGE,
    )
    assert status == 403
