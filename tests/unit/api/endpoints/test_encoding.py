"""Bytes out: Go's JSON escaping, Warning headers, protobuf round trips of every kind."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from kubeboot.api.endpoints.encoding import go_json
from kubeboot.api.endpoints.fieldvalidation import warning_headers
from kubeboot.api.endpoints.protobuf import (
    NotEncodable,
    decode_protobuf_object,
    encode_protobuf_object,
    encode_watch_frame,
)


def test_go_json_escapes_html_and_ends_with_a_newline() -> None:
    assert go_json({"a": "<b>&é\u2028"}) == b'{"a":"\\u003cb\\u003e\\u0026\xc3\xa9\\u2028"}\n'
    assert go_json({"a": [1]}, pretty=True) == b'{\n  "a": [\n    1\n  ]\n}'


def test_warning_header_escapes_quotes_as_upstream() -> None:
    headers = warning_headers(['unknown field "bogus"', 'unknown field "bogus"', "a\\b"])
    assert headers.getall("Warning") == [
        '299 - "unknown field \\"bogus\\""',
        '299 - "a\\\\b"',
    ]
    assert "Warning" not in warning_headers(["bell\x07"])


def test_many_long_warnings_are_cut_to_256_characters() -> None:
    texts = [f"{i}" + "x" * 1000 for i in range(5)]
    assert all(len(h) == len('299 - ""') + 256 for h in warning_headers(texts).getall("Warning"))


SAMPLES: list[dict[str, Any]] = [
    {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": "cm",
            "namespace": "default",
            "uid": "u",
            "resourceVersion": "7",
            "creationTimestamp": "0001-01-01T00:00:02Z",
            "labels": {"b": "2", "a": "1"},
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {"f:a": {}}},
                }
            ],
        },
        "data": {"a": "b"},
        "binaryData": {"bin": "AAE="},
        "immutable": False,
    },
    {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": "n", "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": "",
            "leaseDurationSeconds": 0,
            "renewTime": "2026-01-01T00:00:00.123456Z",
        },
    },
    {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": "n"},
        "spec": {"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"]},
        "status": {
            "capacity": {"cpu": "2", "memory": "1Gi"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.37.2"},
        },
    },
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "m",
        "reason": "Invalid",
        "details": {"name": "n", "causes": [{"reason": "FieldValueInvalid", "field": "f"}]},
        "code": 422,
    },
    {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"userInfo": {"username": "u", "groups": ["g"], "extra": {"k": ["v"]}}},
    },
    {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "v1",
        "resources": [{"name": "pods", "namespaced": True, "kind": "Pod", "verbs": ["get"]}],
    },
]


@pytest.mark.parametrize("obj", SAMPLES, ids=lambda o: o["kind"])
def test_protobuf_round_trip(obj: dict[str, Any]) -> None:
    """Pointers keep their zeros (immutable: false, holderIdentity: ""), times keep year 1."""
    assert decode_protobuf_object(encode_protobuf_object(obj)) == obj


def test_empty_lists_and_zero_scalars_vanish_as_in_go() -> None:
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n", "generation": 0}}
    node["spec"] = {"taints": [], "unschedulable": False}
    assert decode_protobuf_object(encode_protobuf_object(node))["spec"] == {}


def test_map_entries_are_sorted_like_go() -> None:
    wire = encode_protobuf_object(SAMPLES[0])
    assert wire.index(b"\n\x01a\x12\x011") < wire.index(b"\n\x01b\x12\x012")


def test_unknown_fields_are_not_encodable_rather_than_dropped() -> None:
    with pytest.raises(NotEncodable):
        encode_protobuf_object({"kind": "ConfigMap", "apiVersion": "v1", "bogus": 1})
    with pytest.raises(NotEncodable):
        encode_protobuf_object({"kind": "Table", "apiVersion": "meta.k8s.io/v1"})


def test_watch_frame_is_length_prefixed_raw_watch_event() -> None:
    embedded = encode_protobuf_object(SAMPLES[0])
    frame = encode_watch_frame("ADDED", embedded)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert frame[4:11] == b"\x0a\x05ADDED"
    assert embedded in frame


def test_times_of_year_one_keep_four_digit_years_through_the_type_check() -> None:
    """client-go's e2e Lease spec sends MicroTime year 1 plus 2 s; Go cannot parse ``1-01-…``."""
    from kubeboot.resources.schemas import kind_schema
    from kubeboot.resources.typecheck import typecheck

    lease = kind_schema("coordination.k8s.io", "v1", "Lease")
    assert lease is not None
    checked = typecheck(
        {
            "metadata": {"creationTimestamp": "0001-01-01T00:00:02Z"},
            "spec": {"acquireTime": "0001-01-01T00:00:02.000000Z"},
        },
        lease,
    )
    assert checked.obj["spec"]["acquireTime"] == "0001-01-01T00:00:02.000000Z"
    assert checked.obj["metadata"]["creationTimestamp"] == "0001-01-01T00:00:02Z"


def test_objects_are_written_in_gos_field_order() -> None:
    """The store adds resourceVersion last; Go writes ObjectMeta's fields in struct order,
    everywhere an object appears: alone, in a list, in a Table row, in a watch event."""
    from kubeboot.api.endpoints.encoding import in_go_order

    meta = {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z", "resourceVersion": "5"}
    want = ["name", "resourceVersion", "creationTimestamp"]
    obj = {"metadata": meta, "apiVersion": "v1", "kind": "ConfigMap"}
    ordered = in_go_order(obj)
    assert list(ordered) == ["kind", "apiVersion", "metadata"]
    assert list(ordered["metadata"]) == want
    listed = in_go_order({"kind": "ConfigMapList", "items": [{"metadata": meta}]})
    assert list(listed["items"][0]["metadata"]) == want
    table = in_go_order({"kind": "Table", "rows": [{"cells": [], "object": {"metadata": meta}}]})
    assert list(table["rows"][0]["object"]["metadata"]) == want
    assert list(meta) == ["name", "creationTimestamp", "resourceVersion"]  # input untouched


def test_yaml_answers_are_written_as_go_yaml_writes_them() -> None:
    """Bytes a real kube-apiserver v1.37.2 answered for the same ConfigMap data."""
    from kubeboot.api.endpoints.encoding import go_yaml

    data = {
        "b": "true",
        "c": "a: b",
        "e": "",
        "n": "123",
        "pem": "-----BEGIN X-----\nABC\n-----END X-----\n",
        "s": "it's",
        "t": "2026-01-01T00:00:00Z",
    }
    assert go_yaml({"data": data, "metadata": {"annotations": {}}}) == (
        b"data:\n"
        b'  b: "true"\n'
        b"  c: 'a: b'\n"
        b'  e: ""\n'
        b'  "n": "123"\n'
        b"  pem: |\n"
        b"    -----BEGIN X-----\n"
        b"    ABC\n"
        b"    -----END X-----\n"
        b"  s: it's\n"
        b'  t: "2026-01-01T00:00:00Z"\n'
        b"metadata:\n"
        b"  annotations: {}\n"
    )
