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
