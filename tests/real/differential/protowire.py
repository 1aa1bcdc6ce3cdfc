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

__all__ = [
    "MAGIC",
    "ProtobufError",
    "decode_k8s_protobuf",
    "decode_message",
    "normalize_envelopes",
]

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
    if chunk.startswith(MAGIC) and depth < _MAX_DEPTH:
        # A nested envelope: a watch event's object (RawExtension) carries its own magic.
        try:
            return {"envelope": decode_message(chunk[len(MAGIC) :], depth + 1)}
        except ProtobufError:
            pass
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


# Field numbers of what must differ, from k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto.
_OBJECT_META_VOLATILE = {"5": "<uid>", "6": "<rv>", "8": "<time>", "9": "<time>"}
_LIST_META_VOLATILE = {"2": "<rv>", "3": "<continue>"}
_MANAGED_FIELDS, _MANAGED_TIME = "17", "4"
# ManagedFieldsEntry: operation, manager, subresource, apiVersion
_MANAGED_ORDER = ("2", "1", "8", "3")


def _normalize_object_meta(meta: dict[str, list[Any]]) -> None:
    for number, placeholder in _OBJECT_META_VOLATILE.items():
        if number in meta:
            meta[number] = [placeholder for _ in meta[number]]
    entries = meta.get(_MANAGED_FIELDS, [])
    for entry in entries:
        if isinstance(entry, dict) and _MANAGED_TIME in entry:
            entry[_MANAGED_TIME] = ["<time>"]
    if all(isinstance(e, dict) for e in entries):
        # as normalize.managed_fields_key: their order says only how the times fell
        entries.sort(key=lambda e: tuple(str(e.get(n, "")) for n in _MANAGED_ORDER))


def _normalize_object(kind: str, obj: dict[str, list[Any]]) -> None:
    """Field 1 of every top-level kind is its ObjectMeta (ListMeta for lists and Status);
    a list's items (field 2) each start with their ObjectMeta."""
    meta = (obj.get("1") or [None])[0]
    if not isinstance(meta, dict):
        return
    if kind.endswith("List") or kind == "Status":
        for number, placeholder in _LIST_META_VOLATILE.items():
            if number in meta and meta[number] != [""]:
                meta[number] = [placeholder for _ in meta[number]]
        for item in obj.get("2", []) if kind.endswith("List") else []:
            item_meta = (item.get("1") or [None])[0] if isinstance(item, dict) else None
            if isinstance(item_meta, dict):
                _normalize_object_meta(item_meta)
    else:
        _normalize_object_meta(meta)


def normalize_envelopes(tree: Any) -> Any:
    """Replace uids, resourceVersions and timestamps in every ``runtime.Unknown`` envelope of
    a decoded tree (in place; returns it): field 1 TypeMeta (apiVersion, kind), field 2 the
    object. Strings elsewhere are left to the generic text normalization."""
    if isinstance(tree, list):
        for item in tree:
            normalize_envelopes(item)
    elif isinstance(tree, dict):
        for values in tree.values():
            normalize_envelopes(values)
        type_meta = (tree.get("1") or [None])[0]
        obj = (tree.get("2") or [None])[0]
        if isinstance(type_meta, dict) and isinstance(obj, dict):
            kind = (type_meta.get("2") or [""])[0]
            if isinstance(kind, str) and kind[:1].isupper():
                _normalize_object(kind, obj)
    return tree
