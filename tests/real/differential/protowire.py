"""Kubernetes protobuf responses as a comparable tree, without the schemas (pure).

A protobuf body is ``k8s\\x00`` followed by a ``runtime.Unknown`` message whose field 1 is the
TypeMeta (apiVersion, kind) and field 2 the object's own encoding. Two servers that encode the
same object the same way produce the same field numbers, wire types and nesting; so the tree
``{"<field>": [values]}`` (length-delimited values decoded as a nested message when they parse
as one, else as UTF-8 text, else as hex) is what the differential tier compares. The heuristic
is applied to both sides alike, so it never hides a difference in the bytes' structure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAGIC", "ProtobufError", "decode_k8s_protobuf", "decode_message"]

MAGIC = b"k8s\x00"
_MAX_DEPTH = 32


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _length_delimited(chunk: bytes, depth: int) -> Any:
    if chunk and depth < _MAX_DEPTH:
        try:
            return decode_message(chunk, depth + 1)
        except ProtobufError:
            pass
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + chunk.hex()


def decode_message(data: bytes, depth: int = 0) -> dict[str, list[Any]]:
    """Field number → values, in the order they appear; raises on malformed input."""
    fields: dict[str, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            if pos + 8 > len(data):
                raise ProtobufError("truncated fixed64")
            value, pos = "fixed64:" + data[pos : pos + 8].hex(), pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated bytes")
            value, pos = _length_delimited(data[pos : pos + length], depth), pos + length
        elif wire == 5:
            if pos + 4 > len(data):
                raise ProtobufError("truncated fixed32")
            value, pos = "fixed32:" + data[pos : pos + 4].hex(), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        fields.setdefault(str(number), []).append(value)
    return fields


def decode_k8s_protobuf(body: bytes) -> dict[str, list[Any]]:
    """The ``runtime.Unknown`` envelope of a Kubernetes protobuf body, decoded as a tree."""
    if not body.startswith(MAGIC):
        raise ProtobufError("no k8s protobuf magic prefix")
    return decode_message(body[len(MAGIC) :])
