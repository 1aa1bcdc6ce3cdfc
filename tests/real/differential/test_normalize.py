"""The differential tier's normalization and protobuf tree: pure, so tested on their own.

A normalizer that hid real differences would make the figure a lie; one that kept generated
values would make every pair differ. Both directions are checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.real.differential.normalize import normalize, normalize_text
from tests.real.differential.protowire import (
    MAGIC,
    ProtobufError,
    decode_k8s_protobuf,
    decode_message,
    normalize_envelopes,
)

SERVER = {"https://127.0.0.1:40123": "<server>", "127.0.0.1:40123": "<server>"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-02T07:26:00Z", "<time>"),
        ("at 2026-12-02T07:26:00.123456Z.", "at <time>."),
        ("uid 0f8e9c2a-1b2c-4d5e-8f90-123456789abc gone", "uid <uid> gone"),
        ("https://127.0.0.1:40123/api", "<server>/api"),
        ("eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiYyJ9..c2lnbmF0dXJlLWJ5dGVz", "<jws>"),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "<pem:CERTIFICATE>"),
        ("A" * 80, "<b64>"),
        (
            "the ResourceVersion in the precondition (1) does not match the ResourceVersion in "
            "record (316). The object might have been modified",
            "the ResourceVersion in the precondition (1) does not match the ResourceVersion in "
            "record (<rv>). The object might have been modified",
        ),
        (
            "Timeout: Too large resource version: 999999999, current: 367",
            "Timeout: Too large resource version: 999999999, current: <rv>",
        ),
    ],
)
def test_generated_values_become_placeholders(raw: str, expected: str) -> None:
    assert normalize_text(raw, SERVER) == expected


@pytest.mark.parametrize(
    "kept",
    [
        'configmaps "cm" not found',
        "Invalid value: 10: must be greater than or equal to 600",
        "short-base64==",
        "resourceVersion 12 is too large",
        "https://127.0.0.1:9999/other-server",
    ],
)
def test_what_a_client_sees_is_kept(kept: str) -> None:
    assert normalize_text(kept, SERVER) == kept


def test_volatile_keys_are_replaced_but_not_when_empty() -> None:
    body: dict[str, Any] = {
        "metadata": {"resourceVersion": "123", "continue": "", "name": "x"},
        "items": [
            {"metadata": {"resourceVersion": "7", "uid": "0f8e9c2a-1b2c-4d5e-8f90-123456789abc"}}
        ],
    }
    assert normalize(body, SERVER) == {
        "metadata": {"resourceVersion": "<rv>", "continue": "", "name": "x"},
        "items": [{"metadata": {"resourceVersion": "<rv>", "uid": "<uid>"}}],
    }


def test_captured_values_are_named_longest_first() -> None:
    names = {"csr-abcde": "<csrname>", "csr-abcdef": "<other>"}
    assert normalize_text("csr-abcdef and csr-abcde", names) == "<other> and <csrname>"


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return bytes([(number << 3) | wire]) + payload


def _ld(number: int, payload: bytes) -> bytes:
    return _field(number, 2, bytes([len(payload)]) + payload)


def test_protobuf_tree_of_a_k8s_envelope() -> None:
    type_meta = _ld(1, b"v1") + _ld(2, b"ConfigMap")
    obj = _ld(1, _ld(1, b"cm")) + _field(3, 0, b"\x96\x01")
    body = MAGIC + _ld(1, type_meta) + _ld(2, obj)
    tree = decode_k8s_protobuf(body)
    assert tree["1"] == [{"1": ["v1"], "2": ["ConfigMap"]}]
    assert tree["2"][0]["3"] == [150]


@pytest.mark.parametrize(
    "bad",
    [b"\x0a\x05ab", b"\x80", b"\x00\x01", b"\x0b"],
    ids=["truncated-bytes", "truncated-varint", "field-zero", "group-wire-type"],
)
def test_malformed_protobuf_is_refused(bad: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode_message(bad)


def test_missing_magic_is_refused() -> None:
    with pytest.raises(ProtobufError, match="magic"):
        decode_k8s_protobuf(b"\x0a\x00")


def _envelope(kind: bytes, obj: bytes) -> bytes:
    return MAGIC + _ld(1, _ld(1, b"v1") + _ld(2, kind)) + _ld(2, obj)


def test_protobuf_object_meta_volatile_fields_become_placeholders() -> None:
    time = _ld(8, _field(1, 0, b"\x96\x01"))
    meta = _ld(1, b"cm") + _ld(6, b"123") + time + _ld(5, b"0f8e9c2a-1b2c-4d5e-8f90-123456789abc")
    tree = normalize_envelopes(decode_k8s_protobuf(_envelope(b"ConfigMap", _ld(1, meta))))
    assert tree["2"][0]["1"][0] == {"1": ["cm"], "6": ["<rv>"], "8": ["<time>"], "5": ["<uid>"]}


def test_protobuf_list_meta_and_items_are_normalized_but_not_a_configmaps_data() -> None:
    item = _ld(1, _ld(1, b"cm") + _ld(6, b"7")) + _ld(2, _ld(1, b"key") + _ld(2, b"12345"))
    listed = _ld(1, _ld(2, b"99")) + _ld(2, item)
    tree = normalize_envelopes(decode_k8s_protobuf(_envelope(b"ConfigMapList", listed)))
    obj = tree["2"][0]
    assert obj["1"][0] == {"2": ["<rv>"]}
    assert obj["2"][0]["1"][0] == {"1": ["cm"], "6": ["<rv>"]}
    assert obj["2"][0]["2"][0] == {"1": ["key"], "2": ["12345"]}


def test_a_json_watch_is_read_line_by_line() -> None:
    from tests.real.differential.framework import decode_body

    body = b'{"type":"ADDED","object":{}}\n{"type":"DELETED","object":{}}\n'
    assert decode_body("application/json", body) == [
        {"type": "ADDED", "object": {}},
        {"type": "DELETED", "object": {}},
    ]
    assert decode_body("application/json", b'{"a": 1}') == {"a": 1}
    assert str(decode_body("application/json", b"{nope")).startswith("<undecodable")


def test_relative_time_table_cells_become_placeholders_but_other_cells_stay() -> None:
    table = {
        "kind": "Table",
        "columnDefinitions": [{"name": "Name"}, {"name": "Age"}, {"name": "Last Seen"}],
        "rows": [{"cells": ["cm", "9s", "2m"]}],
    }
    assert normalize(table, {})["rows"] == [{"cells": ["cm", "<age>", "<age>"]}]


def test_apply_conflict_causes_are_sorted_but_validation_causes_keep_their_order() -> None:
    def status(reason: str) -> dict[str, Any]:
        causes = [{"field": f, "reason": reason, "message": "m"} for f in (".data.z", ".data.w")]
        return {"kind": "Status", "details": {"causes": causes}}

    fields = [
        c["field"] for c in normalize(status("FieldManagerConflict"), {})["details"]["causes"]
    ]
    assert fields == [".data.w", ".data.z"]
    fields = [c["field"] for c in normalize(status("FieldValueInvalid"), {})["details"]["causes"]]
    assert fields == [".data.z", ".data.w"]


def test_until_conditions_name_set_and_unset_paths_with_escaped_dots() -> None:
    from tests.real.differential.framework import _holds

    node = {"metadata": {"labels": {"beta.kubernetes.io/os": "linux"}}, "spec": {}}
    assert _holds(node, "!spec.taints")
    assert _holds(node, r"metadata.labels.beta\.kubernetes\.io/os")
    assert not _holds(node, "metadata.annotations")
    assert not _holds({"spec": {"taints": [{"key": "k"}]}}, "!spec.taints")


def test_table_ages_are_masked_in_lists_and_in_later_watch_events() -> None:
    from tests.real.differential.normalize import mask_table_ages

    columns = [{"name": "Name"}, {"name": "Data"}, {"name": "Age"}]
    first: dict[str, Any] = {
        "type": "ADDED",
        "object": {"columnDefinitions": columns, "rows": [{"cells": ["a", 1, "8s"]}]},
    }
    later = {
        "type": "ADDED",
        "object": {"columnDefinitions": None, "rows": [{"cells": ["b", 0, "9s"]}]},
    }
    masked = mask_table_ages([first, later])
    assert masked[0]["object"]["rows"][0]["cells"] == ["a", 1, "<age>"]
    assert masked[1]["object"]["rows"][0]["cells"] == ["b", 0, "<age>"]
    assert first["object"]["rows"][0]["cells"][2] == "8s"  # the input is left alone


def test_a_uid_in_a_message_is_not_taken_for_a_resource_version() -> None:
    text = "the UID in record (0a2d3ba0-26fc-491f-97e5-739c792fe190). The object"
    assert normalize_text(text, SERVER) == "the UID in record (<uid>). The object"


def test_a_resource_version_in_a_quoted_object_is_masked() -> None:
    """A patch's 422 quotes the patched object as escaped JSON, resourceVersion and all."""
    text = r'Invalid value: "{\"metadata\":{\"uid\":\"x\",\"resourceVersion\":\"350\"}}": json'
    assert normalize_text(text, SERVER) == (
        r'Invalid value: "{\"metadata\":{\"uid\":\"x\",\"resourceVersion\":\"<rv>\"}}": json'
    )


def test_managed_fields_order_is_canonical_once_times_are_masked() -> None:
    """Both servers order entries by operation, time (seconds), manager: a controller's write
    in the creator's second or the next flips them, so the order is made canonical — but the
    entries themselves (and which exist) are still compared."""
    kubelet = {"manager": "kubelet", "operation": "Update", "time": "2026-12-02T07:26:00Z"}
    signer = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "subresource": "status",
        "time": "2026-12-02T07:26:01Z",
    }
    a = normalize({"metadata": {"managedFields": [kubelet, signer]}}, SERVER)
    b = normalize({"metadata": {"managedFields": [signer, kubelet]}}, SERVER)
    assert a == b
    assert [e["manager"] for e in a["metadata"]["managedFields"]] == [
        "kube-controller-manager",
        "kubelet",
    ]
    other = normalize({"metadata": {"managedFields": [kubelet]}}, SERVER)
    assert other != a


def test_protobuf_managed_fields_order_is_canonical_too() -> None:
    from tests import protowire

    kubelet = _ld(1, b"kubelet") + _ld(2, b"Update") + _ld(4, _field(1, 0, b"\x96\x01"))
    signer = _ld(1, b"kube-controller-manager") + _ld(2, b"Update") + _ld(8, b"status")
    trees = [
        normalize_envelopes(
            decode_k8s_protobuf(
                _envelope(b"ConfigMap", _ld(1, protowire.field(17, x) + protowire.field(17, y)))
            )
        )
        for x, y in ((kubelet, signer), (signer, kubelet))
    ]
    assert trees[0] == trees[1]
    managers = [e["1"] for e in trees[0]["2"][0]["1"][0]["17"]]
    assert managers == [["kube-controller-manager"], ["kubelet"]]


def test_kubeboots_passing_controller_check_is_dropped_a_failing_one_kept() -> None:
    passing = "[+]etcd ok\n[+]kube-controller-manager ok\n[+]shutdown ok\nreadyz check passed\n"
    assert normalize_text(passing, {}) == "[+]etcd ok\n[+]shutdown ok\nreadyz check passed\n"
    failing = "[-]kube-controller-manager failed: reason withheld\n"
    assert normalize_text(failing, {}) == failing
