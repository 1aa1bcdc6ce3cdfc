"""The default RBAC objects and start-up reconciliation (upstream autoupdate semantics)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubeboot.auth.defaults import (
    AUTOUPDATE_ANNOTATION,
    default_cluster_role_bindings,
    default_cluster_roles,
    default_role_bindings,
    default_roles,
    reconcile,
)

Obj = dict[str, Any]


def _by_name(objs: list[Obj], name: str) -> Obj:
    return copy.deepcopy(next(o for o in objs if o["metadata"]["name"] == name))


def test_every_default_is_labelled_and_auto_updated() -> None:
    objs = [
        *default_cluster_roles(),
        *default_cluster_role_bindings(),
        *default_roles(),
        *default_role_bindings(),
    ]
    names = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objs]
    assert len(names) == len(set(names))
    for o in objs:
        assert o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert o["metadata"]["annotations"] == {AUTOUPDATE_ANNOTATION: "true"}
    approver = _by_name(
        default_cluster_roles(), "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver"
    )
    assert approver["rules"] == [
        {
            "verbs": ["approve"],
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["signers"],
            "resourceNames": ["kubernetes.io/kube-apiserver-client-kubelet"],
        }
    ]


def test_reconcile_leaves_opted_out_objects_alone() -> None:
    role = _by_name(default_cluster_roles(), "system:node-bootstrapper")
    role["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = "false"
    role["rules"] = []
    assert reconcile([role], [_by_name(default_cluster_roles(), "system:node-bootstrapper")]) == []


def test_reconcile_adds_missing_rules_and_keeps_user_changes() -> None:
    desired = _by_name(default_cluster_roles(), "system:basic-user")
    existing = copy.deepcopy(desired)
    existing["metadata"]["labels"]["team"] = "ops"
    existing["metadata"]["resourceVersion"] = "42"
    user_rule = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
    existing["rules"] = [existing["rules"][0], user_rule]  # selfsubjectreviews rule missing
    (change,) = reconcile([existing], [desired])
    assert change.action == "update"
    assert change.obj["rules"] == [desired["rules"][0], user_rule, desired["rules"][1]]
    assert change.obj["metadata"]["labels"]["team"] == "ops"
    assert change.obj["metadata"]["resourceVersion"] == "42"  # the update is a CAS on it


def test_reconcile_treats_covered_rules_as_present() -> None:
    desired = _by_name(default_cluster_roles(), "system:node-bootstrapper")
    existing = copy.deepcopy(desired)
    existing["rules"] = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    assert reconcile([existing], [desired]) == []
    existing["rules"] = [
        {
            "verbs": ["create", "get"],
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests"],
            "resourceNames": ["x"],
        }
    ]
    (change,) = reconcile([existing], [desired])  # names do not cover a nameless request
    assert change.obj["rules"][-1] == desired["rules"][0]


def test_reconcile_bindings_add_subjects_and_recreate_on_role_change() -> None:
    desired = _by_name(default_cluster_role_bindings(), "system:public-info-viewer")
    existing = copy.deepcopy(desired)
    extra = {"kind": "User", "name": "monitor"}
    existing["subjects"] = [existing["subjects"][1], extra]
    (change,) = reconcile([existing], [desired])
    assert change.action == "update"
    assert change.obj["subjects"] == [desired["subjects"][1], extra, desired["subjects"][0]]

    existing = copy.deepcopy(desired)
    existing["roleRef"]["name"] = "something-else"
    existing["metadata"]["uid"] = "u-1"
    (change,) = reconcile([existing], [desired])
    assert change.action == "recreate"
    assert change.obj["roleRef"] == desired["roleRef"]
    assert "uid" not in change.obj["metadata"]


def test_reconcile_creates_missing_and_is_idempotent() -> None:
    desired = default_cluster_roles()
    changes = reconcile([], desired)
    assert [c.action for c in changes] == ["create"] * len(desired)
    assert reconcile([c.obj for c in changes], desired) == []


def test_user_facing_roles_aggregate_as_upstream() -> None:
    roles = default_cluster_roles()
    for name, label in (("admin", "admin"), ("edit", "edit"), ("view", "view")):
        role = _by_name(roles, name)
        assert "rules" not in role  # filled by the clusterrole-aggregation controller
        assert role["aggregationRule"] == {
            "clusterRoleSelectors": [
                {"matchLabels": {f"rbac.authorization.k8s.io/aggregate-to-{label}": "true"}}
            ]
        }
        part = _by_name(roles, f"system:aggregate-to-{label}")
        assert part["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{label}"] == (
            "true"
        )
    # edit aggregates into admin, view into edit: admin ends up with all three.
    assert (
        _by_name(roles, "edit")["metadata"]["labels"][
            "rbac.authorization.k8s.io/aggregate-to-admin"
        ]
        == "true"
    )
    assert _by_name(roles, "system:monitoring")["rules"] == [
        {
            "nonResourceURLs": [
                "/flagz",
                "/healthz",
                "/healthz/*",
                "/livez",
                "/livez/*",
                "/metrics",
                "/metrics/slis",
                "/readyz",
                "/readyz/*",
                "/statusz",
            ],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
    ]


def test_the_node_binding_has_no_subjects_key() -> None:
    binding = _by_name(default_cluster_role_bindings(), "system:node")
    assert "subjects" not in binding
    assert reconcile([copy.deepcopy(binding)], [binding]) == []


def test_reconcile_adds_missing_aggregation_selectors_and_keeps_aggregated_rules() -> None:
    desired = _by_name(default_cluster_roles(), "view")
    existing = copy.deepcopy(desired)
    existing["aggregationRule"]["clusterRoleSelectors"] = [{"matchLabels": {"team": "ops"}}]
    existing["rules"] = [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]
    (change,) = reconcile([existing], [desired])
    assert change.action == "update"
    assert change.obj["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"team": "ops"}},
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
    ]
    assert change.obj["rules"] == existing["rules"]  # the controller's, never reset


def test_every_controller_role_of_upstream_is_there() -> None:
    names = {r["metadata"]["name"] for r in default_cluster_roles()}
    bindings = {b["metadata"]["name"] for b in default_cluster_role_bindings()}
    for controller in (
        "clusterrole-aggregation-controller",
        "deployment-controller",
        "certificate-controller",
        "node-controller",
        "namespace-controller",
        "ttl-controller",
    ):
        assert f"system:controller:{controller}" in names
        assert f"system:controller:{controller}" in bindings
    assert len(names) == 73, len(names)  # 32 of policy.go, 41 of controller_policy.go


def test_the_generated_policy_is_upstreams() -> None:
    """``hack/rbac/generate.py --check``: the data is upstream v1.37.2's golden files, as
    they are in the Go module cache (skipped where Go or the module is not there)."""
    if shutil.which("go") is None:
        pytest.skip("no go on PATH to locate upstream's bootstrappolicy testdata")
    cache = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not (Path(cache) / "k8s.io" / "kubernetes@v1.37.2").is_dir():
        pytest.skip("k8s.io/kubernetes@v1.37.2 is not in the Go module cache")
    script = Path(__file__).resolve().parents[3] / "hack" / "rbac" / "generate.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
