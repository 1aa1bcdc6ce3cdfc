"""A protobuf encoder for tests: a JSON object → kube-apiserver's protobuf body, by schema.

Driven by the field numbers in :mod:`kubeboot.resources.schema` (upstream's generated.proto
numbers), so a body built here is what client-go would send for the same object, and a
round trip through the server's decoder also checks those numbers.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from kubeboot.resources.schema import ListOf, MapOf, Scalar, Struct, Type
from kubeboot.resources.typecheck import RFC3339, RFC3339_MICRO, parse_go_time

MAGIC = b"k8s\x00"


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw)


def encode(obj: dict[str, Any], struct: Struct) -> bytes:
    """The protobuf body (envelope included) of ``obj``, a kind described by ``struct``."""
    assert struct.gvk is not None
    return envelope(struct.gvk.api_version, struct.gvk.kind, message(obj, struct))


def message(obj: dict[str, Any], struct: Struct) -> bytes:
    out = bytearray()
    for f in struct.fields:
        if f.proto and obj.get(f.name) is not None:
            out += _field_value(f.proto, obj[f.name], f.type)
    return bytes(out)


def _field_value(number: int, value: Any, t: Type) -> bytes:
    if isinstance(t, Struct):
        return field(number, message(value, t))
    if isinstance(t, ListOf):
        if t.named:  # a named slice (v1.ExtraValue) is a message of its items
            return field(number, b"".join(_field_value(1, item, t.item) for item in value))
        return b"".join(_field_value(number, item, t.item) for item in value)
    if isinstance(t, MapOf):
        return b"".join(
            field(number, field(1, k.encode()) + _field_value(2, v, t.value))
            for k, v in value.items()
        )
    return _scalar(number, value, t)


def _scalar(number: int, value: Any, t: Scalar) -> bytes:
    if t.kind in ("int32", "int64"):
        return varint_field(number, value)
    if t.kind == "bool":
        return varint_field(number, int(value))
    if t.kind == "bytes":
        return field(number, base64.b64decode(value))
    if t.kind in ("time", "microtime"):
        stamp = parse_go_time(value, RFC3339 if t.kind == "time" else RFC3339_MICRO)
        seconds = int((stamp - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds())
        return field(number, varint_field(1, seconds) + varint_field(2, stamp.microsecond * 1000))
    if t.kind == "quantity":
        return field(number, field(1, str(value).encode()))
    return field(number, str(value).encode())
