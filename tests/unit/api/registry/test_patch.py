"""Patch semantics: RFC 7386 merge, RFC 6902 JSON patch, strategic merge for our kinds."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kubeboot.api.registry.patch import apply_patch
from kubeboot.resources.status import (
    BadRequest,
    Invalid,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

BASE: dict[str, Any] = {
    "metadata": {"name": "n", "labels": {"a": "1"}, "finalizers": ["x"]},
    "status": {
        "conditions": [
            {"type": "Approved", "status": "True"},
            {"type": "Custom", "status": "False"},
        ]
    },
    "data": {"k": "v"},
    "rules": [{"verbs": ["get"]}],
}


@pytest.mark.parametrize(
    ("patch", "patch_type", "error"),
    [
        ([], "merge", BadRequest),
        ({}, "json", BadRequest),
        ([{"op": "nope", "path": "/a"}], "json", BadRequest),
        ([{"op": "remove", "path": "/missing"}], "json", Invalid),
        ([{"op": "replace", "path": "data/k", "value": 1}], "json", BadRequest),
        ([{"op": "add", "path": "/rules/5", "value": {}}], "json", Invalid),
        ([{"op": "test", "path": "/data/k", "value": "other"}], "json", Invalid),
        ({"status": {"conditions": [{"status": "True"}]}}, "strategic", BadRequest),
        ({}, "apply", UnsupportedMediaType),
    ],
)
def test_bad_patches_fail_without_touching_the_original(
    patch: Any, patch_type: str, error: type[Exception]
) -> None:
    before = repr(BASE)
    with pytest.raises(error):
        apply_patch(BASE, patch, patch_type)
    assert repr(BASE) == before


def test_merge_patch_null_deletes_and_lists_replace() -> None:
    out = apply_patch(BASE, {"data": {"k": None, "n": "2"}, "rules": []}, "merge")
    assert out["data"] == {"n": "2"}
    assert out["rules"] == []
    assert BASE["data"] == {"k": "v"}


def test_json_patch_operations() -> None:
    ops = [
        {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
        {"op": "copy", "from": "/data/k", "path": "/data/copy"},
        {"op": "move", "from": "/data/k", "path": "/data/moved"},
        {"op": "add", "path": "/rules/-", "value": {"verbs": ["list"]}},
        {"op": "test", "path": "/data/moved", "value": "v"},
    ]
    out = apply_patch(BASE, ops, "json")
    assert out["metadata"]["labels"] == {"a": "1", "b/c": "2"}
    assert out["data"] == {"copy": "v", "moved": "v"}
    assert [r["verbs"] for r in out["rules"]] == [["get"], ["list"]]


def test_strategic_merge_keyed_lists_primitives_and_directives() -> None:
    patch = {
        "$setElementOrder/conditions": [{"type": "Approved"}],
        "metadata": {"finalizers": ["y"], "$deleteFromPrimitiveList/finalizers": ["x"]},
        "status": {
            "conditions": [
                {"type": "Custom", "status": "True"},
                {"type": "Failed", "status": "True"},
            ]
        },
        "rules": [{"verbs": ["watch"]}],
    }
    out = apply_patch(BASE, patch, "strategic")
    assert out["metadata"]["finalizers"] == ["y"]
    assert out["status"]["conditions"] == [
        {"type": "Approved", "status": "True"},
        {"type": "Custom", "status": "True"},
        {"type": "Failed", "status": "True"},
    ]
    assert out["rules"] == [{"verbs": ["watch"]}]
    assert not any(k.startswith("$") for k in out)


def test_strategic_delete_and_replace_directives() -> None:
    out = apply_patch(
        BASE, {"status": {"conditions": [{"type": "Custom", "$patch": "delete"}]}}, "strategic"
    )
    assert [c["type"] for c in out["status"]["conditions"]] == ["Approved"]
    out = apply_patch(BASE, {"data": {"$patch": "replace", "z": "1"}}, "strategic")
    assert out["data"] == {"z": "1"}


def test_json_patch_operation_and_copy_limits_are_upstreams(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """10,000 operations at most (413), and copies may add at most 3 MiB (the generic 422
    of a patch that does not apply; the detail is logged)."""
    caplog.set_level(logging.INFO, "kubeboot.api")
    doc: dict[str, Any] = {"metadata": {"name": "x"}, "data": {"a": "b" * 1024}}
    with pytest.raises(RequestEntityTooLarge) as too_many:
        apply_patch(doc, [{"op": "test", "path": "/data", "value": {}}] * 10001, "json")
    assert "The allowed maximum operations in a JSON patch is 10000, got 10001" in str(
        too_many.value
    )
    doubling = [{"op": "copy", "from": "/data", "path": f"/d{i}"} for i in range(4000)]
    with pytest.raises(Invalid) as too_big:
        apply_patch(doc, doubling, "json")
    assert too_big.value.message == (
        "the server rejected our request due to an error in our request"
    )
    assert "exceeding the limit 3145728" in caplog.text


def test_a_patched_object_refused_is_quoted_as_upstream_orders_it() -> None:
    """The 422 quotes the patched object: top-level keys sorted (upstream's JSON-patch
    library), metadata in ObjectMeta's order even though the store appends resourceVersion."""
    from kubeboot.api.registry.conform import FieldValidation, conform_patched
    from kubeboot.resources.registry import find_resource

    configmaps = find_resource("", "v1", "configmaps")
    assert configmaps is not None
    current: dict[str, Any] = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "cm", "namespace": "ns", "uid": "u", "creationTimestamp": "t"},
        "data": {"a": "1"},
    }
    current["metadata"]["resourceVersion"] = "7"  # as the store sets it: last
    patched = apply_patch(current, {"data": [1]}, "merge")
    with pytest.raises(Invalid) as refused:
        conform_patched(configmaps, patched, {"data": [1]}, FieldValidation("Strict"))
    quoted = (
        '{"apiVersion":"v1","data":[1],"kind":"ConfigMap","metadata":{"name":"cm",'
        '"namespace":"ns","uid":"u","resourceVersion":"7","creationTimestamp":"t"}}'
    )
    assert refused.value.message.startswith(' "" is invalid: patch: Invalid value: "')
    assert quoted.replace('"', '\\"') in refused.value.message
