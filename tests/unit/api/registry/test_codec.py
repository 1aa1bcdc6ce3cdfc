"""codec.copy_object: a deep copy of JSON trees that shares nothing mutable with its argument."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubeboot.api.registry.codec import copy_object


def _mutable_parts(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [obj, *(p for v in obj.values() for p in _mutable_parts(v))]
    if isinstance(obj, list | tuple):
        return [obj, *(p for v in obj for p in _mutable_parts(v))]
    return []


@pytest.mark.parametrize(
    "obj",
    [
        {},
        [],
        "text",
        7,
        None,
        {"a": {"b": [1, 2.5, True, None, {"c": "d"}]}, "e": []},
        [[{"x": [[]]}]],
        # Not JSON: a YAML body's timestamp, an in-process caller's tuple holding a list.
        {"when": dt.datetime(2026, 11, 23, tzinfo=dt.UTC), "pair": (1, [2])},
    ],
)
def test_copy_is_equal_and_shares_no_container(obj: Any) -> None:
    copied = copy_object(obj)
    assert copied == obj
    originals = {id(p) for p in _mutable_parts(obj)}
    assert not originals & {id(p) for p in _mutable_parts(copied)}


def test_changing_the_copy_leaves_the_original() -> None:
    obj = {"status": {"conditions": [{"type": "Approved"}]}}
    copied = copy_object(obj)
    copied["status"]["conditions"][0]["type"] = "Denied"
    copied["status"]["conditions"].append({})
    assert obj == {"status": {"conditions": [{"type": "Approved"}]}}
