"""nodelifecycle's NoSchedule tainting pass and label reconciliation, ttl's steps (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kubeboot.controllers.nodelifecycle import (
    condition_taints,
    desired_labels,
    reconciled_taints,
    ttl_seconds,
)

NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def _node(conditions: list[tuple[str, str]], taints: list[Any] | None = None, **spec: Any) -> Any:
    return {
        "metadata": {"name": "n"},
        "spec": {**spec, **({"taints": taints} if taints is not None else {})},
        "status": {"conditions": [{"type": t, "status": s} for t, s in conditions]},
    }


def test_a_new_node_without_conditions_loses_the_admissions_not_ready_taint() -> None:
    # upstream: no Ready condition maps to no taint, so the create-time taint goes
    assert reconciled_taints(_node([], [NOT_READY])) == []


def test_ready_false_keeps_not_ready_and_true_removes_it() -> None:
    assert reconciled_taints(_node([("Ready", "False")], [NOT_READY])) is None
    assert reconciled_taints(_node([("Ready", "True")], [NOT_READY])) == []


def test_conditions_and_unschedulable_add_their_taints_and_others_are_kept() -> None:
    mine = {"key": "example.com/dedicated", "effect": "NoSchedule"}
    no_execute = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
    node = _node(
        [("Ready", "Unknown"), ("DiskPressure", "True"), ("MemoryPressure", "False")],
        [mine, no_execute, NOT_READY],
        unschedulable=True,
    )
    assert reconciled_taints(node) == [
        mine,
        no_execute,
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    ]
    assert len(condition_taints(node)) == 3


def test_deprecated_os_and_arch_labels_follow_the_primary_ones() -> None:
    labels = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"}
    labels["beta.kubernetes.io/arch"] = "amd64"
    node = {"metadata": {"labels": labels}}
    assert desired_labels(node) == {
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "arm64",
    }
    assert desired_labels({"metadata": {"labels": {"beta.kubernetes.io/os": "x"}}}) == {}


@pytest.mark.parametrize(
    ("nodes", "ttl"), [(0, 0), (1, 0), (100, 0), (101, 15), (1000, 30), (2001, 300), (10001, 600)]
)
def test_ttl_grows_with_the_cluster(nodes: int, ttl: int) -> None:
    assert ttl_seconds(nodes) == ttl
