"""Go's shape of an object: what upstream stores after decoding into its typed struct."""

from __future__ import annotations

from typing import Any

from kubeboot.resources.goshape import go_shape
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import kind_schema


def _schema(group: str, kind: str) -> Struct:
    schema = kind_schema(group, "v1", kind)
    assert schema is not None
    return schema


def test_omitempty_drops_empty_maps_lists_and_zero_scalars() -> None:
    cm = {"metadata": {"name": "c", "labels": {}}, "data": {}, "binaryData": {}}
    assert go_shape(cm, _schema("", "ConfigMap")) == {"metadata": {"name": "c"}}
    role = {"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "resourceNames": []}]}
    assert go_shape(role, _schema("rbac.authorization.k8s.io", "Role"))["rules"] == [
        {"verbs": ["get"]}
    ]


def test_pointers_keep_their_zero_values() -> None:
    cm = {"metadata": {"name": "c"}, "immutable": False}
    assert go_shape(cm, _schema("", "ConfigMap"))["immutable"] is False
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "", "leaseTransitions": 0}}
    shaped = go_shape(lease, _schema("coordination.k8s.io", "Lease"))
    assert shaped["spec"] == {"holderIdentity": "", "leaseTransitions": 0}


def test_fields_without_omitempty_are_always_written() -> None:
    node = go_shape({"metadata": {"name": "n"}}, _schema("", "Node"))
    assert node["spec"] == {}
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    assert node["status"]["nodeInfo"]["kubeletVersion"] == ""
    role = go_shape({"metadata": {"name": "r"}}, _schema("rbac.authorization.k8s.io", "Role"))
    assert role == {"metadata": {"name": "r"}, "rules": None}


def test_zero_times_are_null_except_creation_timestamp() -> None:
    event: dict[str, Any] = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}}
    shaped = go_shape(event, _schema("", "Event"))
    assert shaped["eventTime"] is None and shaped["firstTimestamp"] is None
    assert shaped["reportingComponent"] == "" and shaped["reportingInstance"] == ""
    assert "creationTimestamp" not in shaped["metadata"]


def test_unknown_fields_are_dropped_and_the_input_is_not_changed() -> None:
    cm: dict[str, Any] = {"metadata": {"name": "c", "bogus": 1}, "data": {"a": "b"}}
    cm["extra"] = True
    shaped = go_shape(cm, _schema("", "ConfigMap"))
    assert shaped == {"metadata": {"name": "c"}, "data": {"a": "b"}}
    assert cm["extra"] is True and cm["metadata"]["bogus"] == 1
