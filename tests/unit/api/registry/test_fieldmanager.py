"""managedFields as kube-apiserver writes them (cases observed on a real v1.37.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubeboot.api.registry.fieldmanager import manager_name, update_managed_fields
from kubeboot.api.registry.fieldset import FieldSet
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import kind_schema

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=5)


def _schema(group: str, kind: str) -> Struct:
    schema = kind_schema(group, "v1", kind)
    assert schema is not None
    return schema


CM = _schema("", "ConfigMap")


def _update(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    struct: Struct = CM,
    resource: str = "configmaps",
    subresource: str = "",
    now: dt.datetime = T0,
) -> list[dict[str, Any]]:
    return update_managed_fields(
        live,
        new,
        struct,
        manager=manager,
        resource=resource,
        subresource=subresource,
        api_version="v1",
        now=now,
    )


def test_create_owns_what_it_set_and_never_server_metadata() -> None:
    new = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "cm", "namespace": "default", "labels": {"a": "b"}},
        "data": {"a": "1"},
    }
    assert _update(None, new, "probe") == [
        {
            "manager": "probe",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
            },
        }
    ]


def test_a_second_manager_takes_the_fields_it_changes() -> None:
    live: dict[str, Any] = {"metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"a": "1"}}
    live["metadata"]["managedFields"] = _update(None, live, "probe")
    new = {"metadata": dict(live["metadata"]), "data": {"a": "3", "b": "2"}}
    entries = _update(live, new, "other", now=T1)
    assert [(e["manager"], e["fieldsV1"]) for e in entries] == [
        ("probe", {"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}),
        ("other", {"f:data": {"f:a": {}, "f:b": {}}}),
    ]
    assert entries[0]["time"] == "2026-01-01T00:00:00Z"  # probe changed nothing: same time


def test_a_write_that_changes_nothing_keeps_the_entry_and_its_time() -> None:
    live: dict[str, Any] = {"metadata": {"name": "cm"}, "data": {"a": "1"}}
    live["metadata"]["managedFields"] = _update(None, live, "probe")
    assert _update(live, live, "probe", now=T1) == live["metadata"]["managedFields"]


def test_reset_fields_are_not_owned_csr_create_owns_only_generate_name() -> None:
    csr = {
        "metadata": {"generateName": "csr-"},
        "spec": {"request": "AAAA", "signerName": "x/y", "usages": ["client auth"]},
    }
    entries = _update(
        None,
        csr,
        "kubelet",
        struct=_schema("certificates.k8s.io", "CertificateSigningRequest"),
        resource="certificatesigningrequests",
    )
    assert entries[0]["fieldsV1"] == {"f:metadata": {"f:generateName": {}}}


def test_status_writes_own_keyed_list_items_under_the_subresource() -> None:
    node = _schema("", "Node")
    live: dict[str, Any] = {"metadata": {"name": "n", "labels": {"os": "linux"}}}
    live["metadata"]["managedFields"] = _update(
        None, live, "kubelet", struct=node, resource="nodes"
    )
    new = {
        "metadata": dict(live["metadata"]),
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "R"}]},
    }
    entries = _update(live, new, "kubelet", struct=node, resource="nodes", subresource="status")
    assert entries[1]["subresource"] == "status"
    # Go's shape of a condition has its (null) times: they count as set.
    assert entries[1]["fieldsV1"] == {
        "f:status": {
            "f:conditions": {
                ".": {},
                'k:{"type":"Ready"}': {
                    ".": {},
                    "f:lastHeartbeatTime": {},
                    "f:lastTransitionTime": {},
                    "f:reason": {},
                    "f:status": {},
                    "f:type": {},
                },
            }
        }
    }


def test_an_untracked_object_stays_untracked() -> None:
    """A Node created with only a name owns nothing; its later writes are not tracked."""
    node = _schema("", "Node")
    live = {"metadata": {"name": "n"}}
    assert _update(None, live, "probe", struct=node, resource="nodes") == []
    new = {"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready"}]}}
    assert _update(live, new, "probe", struct=node, resource="nodes", subresource="status") == []


def test_sets_are_owned_by_value() -> None:
    ns = _schema("", "Namespace")
    new = {"metadata": {"name": "n", "finalizers": ["a/b"]}}
    (entry,) = _update(None, new, "m", struct=ns, resource="namespaces")
    assert entry["fieldsV1"] == {"f:metadata": {"f:finalizers": {".": {}, 'v:"a/b"': {}}}}


@pytest.mark.parametrize(
    ("field_manager", "agent", "expected"),
    [
        ("kubectl-edit", "kubectl/v1.37.2 (linux/amd64)", "kubectl-edit"),
        (None, "kubectl/v1.37.2 (linux/amd64) kubernetes/abc", "kubectl"),
        (None, "", "unknown"),
    ],
)
def test_manager_name(field_manager: str | None, agent: str, expected: str) -> None:
    assert manager_name(field_manager, agent) == expected


def test_fieldset_round_trips_fields_v1_and_differences() -> None:
    tree = {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}
    s = FieldSet.from_fields_v1(tree)
    assert s.to_fields_v1() == tree
    less = s.difference(FieldSet.of([("f:data",)]))
    assert less.to_fields_v1() == {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}
    assert s.recursive_difference(FieldSet.of([("f:data",)])).to_fields_v1() == {
        "f:metadata": {"f:labels": {"f:x": {}}}
    }
    with pytest.raises(ValueError, match="invalid path element"):
        FieldSet.from_fields_v1({"x:y": {}})
