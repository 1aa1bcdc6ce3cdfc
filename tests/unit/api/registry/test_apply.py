"""Server-side apply (cases observed on a real kube-apiserver v1.37.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubeboot.api.registry.apply import apply_configuration, config_field_set
from kubeboot.api.registry.fieldmanager import update_managed_fields
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import kind_schema
from kubeboot.resources.status import Conflict

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=5)


def _schema(group: str, kind: str) -> Struct:
    schema = kind_schema(group, "v1", kind)
    assert schema is not None
    return schema


CM = _schema("", "ConfigMap")
NS = _schema("", "Namespace")
ROLE = _schema("rbac.authorization.k8s.io", "ClusterRole")


def _cm(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", **meta},
        "data": data,
    }


def _apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    struct: Struct = CM,
    resource: str = "configmaps",
    subresource: str = "",
    api_version: str = "v1",
    now: dt.datetime = T0,
    force: bool = False,
) -> dict[str, Any]:
    return apply_configuration(
        live,
        config,
        struct,
        manager=manager,
        resource=resource,
        subresource=subresource,
        api_version=api_version,
        now=now,
        force=force,
    )


def _owned(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def test_applying_to_nothing_owns_exactly_the_configuration() -> None:
    obj = _apply(None, _cm({"x": "1"}, labels={"a": "1"}), "alice")
    assert obj["data"] == {"x": "1"}
    (entry,) = obj["metadata"]["managedFields"]
    assert entry == {
        "manager": "alice",
        "operation": "Apply",
        "apiVersion": "v1",
        "time": "2026-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        # an applier owns the leaves it sets, not the maps around them ("." absent)
        "fieldsV1": {"f:data": {"f:x": {}}, "f:metadata": {"f:labels": {"f:a": {}}}},
    }


def test_a_different_value_for_another_appliers_field_is_a_conflict() -> None:
    live = _apply(None, _cm({"x": "1"}), "alice")
    with pytest.raises(Conflict) as err:
        _apply(live, _cm({"x": "9", "z": "3"}), "bob")
    status = err.value.to_status()
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.x'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.x"}
    ]


def test_conflicts_with_an_updater_name_its_api_version_and_group_per_manager() -> None:
    entries = update_managed_fields(
        None,
        _cm({"x": "1", "y": "2"}),
        CM,
        manager="kubectl",
        resource="configmaps",
        subresource="",
        api_version="v1",
        now=T0,
    )
    live = {**_cm({"x": "1", "y": "2"}), "metadata": {"name": "c", "managedFields": entries}}
    with pytest.raises(Conflict) as err:
        _apply(live, _cm({"x": "8", "y": "9"}), "bob")
    assert err.value.to_status()["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl" using v1:\n- .data.x\n- .data.y'
    )


def test_the_same_value_is_shared_not_a_conflict() -> None:
    live = _apply(None, _cm({"x": "1"}), "alice")
    obj = _apply(live, _cm({"x": "1"}), "bob")
    assert _owned(obj) == {"alice": {"f:data": {"f:x": {}}}, "bob": {"f:data": {"f:x": {}}}}


def test_force_takes_the_field_over() -> None:
    live = _apply(None, _cm({"x": "1", "y": "2"}), "alice")
    obj = _apply(live, _cm({"x": "9"}), "bob", force=True, now=T1)
    assert obj["data"] == {"x": "9", "y": "2"}
    assert _owned(obj) == {"alice": {"f:data": {"f:y": {}}}, "bob": {"f:data": {"f:x": {}}}}


def test_a_field_the_applier_drops_is_removed_unless_someone_else_owns_it() -> None:
    live = _apply(None, _cm({"x": "1", "y": "2"}), "alice")
    live = _apply(live, _cm({"y": "2"}), "bob")
    dropped = _cm({})
    del dropped["data"]
    obj = _apply(live, dropped, "alice", now=T1)
    assert obj["data"] == {"y": "2"}  # x was alice's alone; y is bob's too
    # an applier that no longer sets anything has no entry left
    assert _owned(obj) == {"bob": {"f:data": {"f:y": {}}}}


def test_an_unchanged_apply_keeps_its_entry_time() -> None:
    live = _apply(None, _cm({"x": "1"}), "alice")
    obj = _apply(live, _cm({"x": "1"}), "alice", now=T1)
    assert obj["metadata"]["managedFields"][0]["time"] == "2026-01-01T00:00:00Z"
    changed = _apply(live, _cm({"x": "2"}), "alice", now=T1)
    assert changed["metadata"]["managedFields"][0]["time"] == "2026-01-01T00:00:05Z"


def test_keyed_lists_merge_item_by_item_on_the_status_subresource() -> None:
    def ns(conditions: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "n"},
            "status": {"conditions": conditions},
        }

    live = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "n", "labels": {"kubernetes.io/metadata.name": "n"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active", "conditions": [{"type": "A", "status": "True"}]},
    }
    cond = {"type": "B", "status": "True", "reason": "E2E"}
    obj = _apply(live, ns([cond]), "e2e", struct=NS, resource="namespaces", subresource="status")
    assert [c["type"] for c in obj["status"]["conditions"]] == ["A", "B"]
    assert obj["status"]["phase"] == "Active"
    (entry,) = obj["metadata"]["managedFields"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {
        "f:status": {
            "f:conditions": {
                'k:{"type":"B"}': {".": {}, "f:reason": {}, "f:status": {}, "f:type": {}}
            }
        }
    }


def test_atomic_lists_are_owned_and_replaced_whole() -> None:
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
    config = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
        "rules": [rule],
    }
    fields = config_field_set(config, ROLE)
    assert fields.to_fields_v1() == {
        "f:apiVersion": {},
        "f:kind": {},
        "f:metadata": {"f:name": {}},
        "f:rules": {},
    }
    live = _apply(
        None,
        config,
        "a",
        struct=ROLE,
        resource="clusterroles",
        api_version="rbac.authorization.k8s.io/v1",
    )
    other = {**config, "rules": [{**rule, "verbs": ["list"]}]}
    obj = _apply(
        live,
        other,
        "a",
        struct=ROLE,
        resource="clusterroles",
        api_version="rbac.authorization.k8s.io/v1",
    )
    assert obj["rules"] == [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]
