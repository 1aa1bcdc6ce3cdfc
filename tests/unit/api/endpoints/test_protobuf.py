"""The protobuf envelope decoder: malformed input is a 400/415, never a crash."""

from __future__ import annotations

import pytest

from kubeboot.api.endpoints.protobuf import decode_protobuf_object
from kubeboot.resources.status import BadRequest, UnsupportedMediaType
from tests.protowire import envelope as _envelope
from tests.protowire import field as _field
from tests.protowire import varint as _varint


def test_missing_magic_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_protobuf_object(b"\x0a\x00")


def test_truncated_body_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_protobuf_object(b"k8s\x00\x0a\x7f\x01")


def test_unknown_kind_is_415_with_advice() -> None:
    with pytest.raises(UnsupportedMediaType) as excinfo:
        decode_protobuf_object(_envelope("apps/v1", "Deployment", b""))
    assert "application/json" in excinfo.value.message


def test_configmap_round_trip_of_known_fields() -> None:
    meta = (
        _field(1, b"cm") + _field(3, b"default") + _field(11, _field(1, b"app") + _field(2, b"x"))
    )
    entry = _field(1, b"key") + _field(2, b"value")
    raw = _field(1, meta) + _field(2, entry) + bytes([4 << 3, 1]) + _field(15, b"ignored")
    obj = decode_protobuf_object(_envelope("v1", "ConfigMap", raw))
    assert obj == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "x"}},
        "data": {"key": "value"},
        "immutable": True,
    }


def test_zero_time_is_unset() -> None:
    cond = _field(1, b"Approved") + _field(6, b"True") + _field(4, b"") + _field(5, b"")
    raw = _field(3, _field(1, cond))
    obj = decode_protobuf_object(
        _envelope("certificates.k8s.io/v1", "CertificateSigningRequest", raw)
    )
    assert obj["status"]["conditions"] == [{"type": "Approved", "status": "True"}]


# Node, Lease and Event: what a kubelet sends with its default --kube-api-content-type.
# Field numbers from k8s.io/api v0.37 generated.proto; the interop test
# (tests/interop/test_client_go.py) checks the same kinds as client-go really encodes them.


def _num(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _time(seconds: int, nanos: int = 0) -> bytes:
    return _num(1, seconds) + _num(2, nanos)


def test_microtime_keeps_microseconds_and_truncates_nanoseconds() -> None:
    # 2026-11-23T01:05:45.331437999Z; Go truncates to microseconds, so must we.
    spec = _field(4, _time(1795395945, 331_437_999))
    obj = decode_protobuf_object(_envelope("coordination.k8s.io/v1", "Lease", _field(2, spec)))
    assert obj["spec"] == {"renewTime": "2026-11-23T01:05:45.331437Z"}


def test_empty_microtime_is_unset() -> None:
    spec = _field(3, b"") + _field(4, b"")
    obj = decode_protobuf_object(_envelope("coordination.k8s.io/v1", "Lease", _field(2, spec)))
    assert obj["spec"] == {}


@pytest.mark.parametrize(
    ("kind", "field", "wire", "expected"),
    [
        # Go pointers (*int32, *string, *bool): a zero on the wire was set on purpose.
        ("Lease", "leaseDurationSeconds", _num(2, 0), 0),
        ("Lease", "holderIdentity", _field(1, b""), ""),
        ("Lease", "leaseTransitions", _num(5, (1 << 64) - 1), -1),
    ],
)
def test_pointer_zero_values_are_kept(kind: str, field: str, wire: bytes, expected: object) -> None:
    obj = decode_protobuf_object(_envelope("coordination.k8s.io/v1", kind, _field(2, wire)))
    assert obj["spec"] == {field: expected}


def test_non_pointer_zero_values_are_dropped_like_json_omitempty() -> None:
    # What Go writes for an empty NodeSpec: every non-pointer scalar, set or not.
    spec = _field(1, b"") + _field(2, b"") + _field(3, b"") + _num(4, 0)
    meta = _field(1, b"n1") + _field(2, b"") + _num(7, 0) + _field(8, b"")
    obj = decode_protobuf_object(_envelope("v1", "Node", _field(1, meta) + _field(2, spec)))
    assert obj == {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"}, "spec": {}}


def test_configmap_immutable_false_is_kept() -> None:
    obj = decode_protobuf_object(_envelope("v1", "ConfigMap", _num(4, 0)))
    assert obj["immutable"] is False


def test_node_as_a_kubelet_registers_it() -> None:
    labels = _field(11, _field(1, b"kubernetes.io/hostname") + _field(2, b"w1"))
    meta = _field(1, b"w1") + labels
    taint = _field(1, b"node.kubernetes.io/not-ready") + _field(2, b"") + _field(3, b"NoSchedule")
    spec = _field(1, b"10.0.0.0/24") + _num(4, 1) + _field(5, taint) + _field(7, b"10.0.0.0/24")

    def quantity(key: bytes, value: bytes) -> bytes:
        return _field(1, key) + _field(2, _field(1, value))

    condition = (
        _field(1, b"Ready")
        + _field(2, b"True")
        + _field(3, _time(1795395945, 5))
        + _field(4, _time(1795395900))
        + _field(5, b"KubeletReady")
        + _field(6, b"kubelet is posting ready status")
    )
    status = (
        _field(1, quantity(b"cpu", b"2"))
        + _field(1, quantity(b"memory", b"4028Mi"))
        + _field(2, quantity(b"pods", b"110"))
        + _field(3, b"")
        + _field(4, condition)
        + _field(5, _field(1, b"InternalIP") + _field(2, b"127.0.0.1"))
        + _field(5, _field(1, b"Hostname") + _field(2, b"w1"))
        + _field(6, _field(1, _num(1, 10250)))
        + _field(7, _field(7, b"v1.37.2") + _field(8, b"") + _field(10, b"amd64") + _field(11, b""))
        + _field(8, _field(1, b"registry.k8s.io/pause:3.10") + _num(2, 320_000))
        + _field(12, _field(1, b"runc") + _field(2, _num(1, 0) + _num(2, 1)))
    )
    obj = decode_protobuf_object(
        _envelope("v1", "Node", _field(1, meta) + _field(2, spec) + _field(3, status))
    )
    assert obj == {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": "w1", "labels": {"kubernetes.io/hostname": "w1"}},
        "spec": {
            "podCIDR": "10.0.0.0/24",
            "unschedulable": True,
            "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
            "podCIDRs": ["10.0.0.0/24"],
        },
        "status": {
            "capacity": {"cpu": "2", "memory": "4028Mi"},
            "allocatable": {"pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": "2026-11-23T01:05:45Z",
                    "lastTransitionTime": "2026-11-23T01:05:00Z",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": "w1"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.37.2", "architecture": "amd64", "swap": {}},
            "images": [{"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 320_000}],
            "runtimeHandlers": [
                {
                    "name": "runc",
                    "features": {"recursiveReadOnlyMounts": False, "userNamespaces": True},
                }
            ],
        },
    }


def test_lease_as_the_kubelet_creates_it() -> None:
    owner = _field(1, b"Node") + _field(3, b"w1") + _field(4, b"uid-1") + _field(5, b"v1")
    meta = _field(1, b"w1") + _field(3, b"kube-node-lease") + _field(13, owner)
    spec = _field(1, b"w1") + _num(2, 40) + _field(4, _time(1795395945, 260_557_000))
    obj = decode_protobuf_object(
        _envelope("coordination.k8s.io/v1", "Lease", _field(1, meta) + _field(2, spec))
    )
    assert obj == {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {
            "name": "w1",
            "namespace": "kube-node-lease",
            "ownerReferences": [{"kind": "Node", "name": "w1", "uid": "uid-1", "apiVersion": "v1"}],
        },
        "spec": {
            "holderIdentity": "w1",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-11-23T01:05:45.260557Z",
        },
    }


def test_event_as_client_go_record_writes_it() -> None:
    meta = _field(1, b"w1.18ea87") + _field(3, b"default")
    involved = _field(1, b"Node") + _field(2, b"") + _field(3, b"w1") + _field(4, b"w1")
    raw = (
        _field(1, meta)
        + _field(2, involved)
        + _field(3, b"Starting")
        + _field(4, b"Starting kubelet.")
        + _field(5, _field(1, b"kubelet") + _field(2, b"w1"))
        + _field(6, _time(1795395945))
        + _field(7, _time(1795395945))
        + _num(8, 1)
        + _field(9, b"Normal")
        + _field(10, b"")
        + _field(11, _num(1, 2) + _field(2, _time(1795395946, 1_000)))
        + _field(12, b"")
        + _field(14, b"kubelet")
        + _field(15, b"w1")
    )
    obj = decode_protobuf_object(_envelope("v1", "Event", raw))
    assert obj == {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": "w1.18ea87", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "w1", "uid": "w1"},
        "reason": "Starting",
        "message": "Starting kubelet.",
        "source": {"component": "kubelet", "host": "w1"},
        "firstTimestamp": "2026-11-23T01:05:45Z",
        "lastTimestamp": "2026-11-23T01:05:45Z",
        "count": 1,
        "type": "Normal",
        "series": {"count": 2, "lastObservedTime": "2026-11-23T01:05:46.000001Z"},
        "reportingComponent": "kubelet",
        "reportingInstance": "w1",
    }


def test_csinode_as_the_kubelet_creates_it() -> None:
    """An empty driver list is an empty spec message on the wire."""
    owner = _field(1, b"Node") + _field(3, b"w1") + _field(4, b"uid-1") + _field(5, b"v1")
    meta = (
        _field(1, b"w1")
        + _field(
            12,
            _field(1, b"storage.alpha.kubernetes.io/migrated-plugins")
            + _field(2, b"kubernetes.io/aws-ebs"),
        )
        + _field(13, owner)
    )
    obj = decode_protobuf_object(
        _envelope("storage.k8s.io/v1", "CSINode", _field(1, meta) + _field(2, b""))
    )
    assert obj == {
        "kind": "CSINode",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": {
            "name": "w1",
            "annotations": {
                "storage.alpha.kubernetes.io/migrated-plugins": "kubernetes.io/aws-ebs"
            },
            "ownerReferences": [{"kind": "Node", "name": "w1", "uid": "uid-1", "apiVersion": "v1"}],
        },
        "spec": {},
    }
    driver = (
        _field(1, b"csi.example.com")
        + _field(2, b"n-1")
        + _field(3, b"zone")
        + _field(4, _num(1, 0))
    )
    obj = decode_protobuf_object(
        _envelope("storage.k8s.io/v1", "CSINode", _field(2, _field(1, driver)))
    )
    assert obj["spec"] == {
        "drivers": [
            {
                "name": "csi.example.com",
                "nodeID": "n-1",
                "topologyKeys": ["zone"],
                "allocatable": {"count": 0},  # a pointer: zero is kept
            }
        ]
    }


def test_delete_options_with_preconditions() -> None:
    pre = _field(1, b"uid-1") + _field(2, b"42")
    obj = decode_protobuf_object(
        _envelope("meta.k8s.io/v1", "DeleteOptions", _num(1, 0) + _field(2, pre))
    )
    assert obj["gracePeriodSeconds"] == 0
    assert obj["preconditions"] == {"uid": "uid-1", "resourceVersion": "42"}
