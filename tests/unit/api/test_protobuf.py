"""The protobuf envelope decoder: malformed input is a 400/415, never a crash."""

from __future__ import annotations

import pytest

from kubeboot.api.protobuf import decode_protobuf_object
from kubeboot.resources.status import BadRequest, UnsupportedMediaType


def _field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([(number << 3) | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def test_missing_magic_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_protobuf_object(b"\x0a\x00")


def test_truncated_body_is_400() -> None:
    with pytest.raises(BadRequest):
        decode_protobuf_object(b"k8s\x00\x0a\x7f\x01")


def test_unknown_kind_is_415_with_advice() -> None:
    with pytest.raises(UnsupportedMediaType) as excinfo:
        decode_protobuf_object(_envelope("v1", "Pod", b""))
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
