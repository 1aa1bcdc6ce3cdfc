"""The protobuf wire view of :mod:`kubeboot.resources.schemas` (the one description of kinds).

Each ``Struct`` becomes a message schema: field number -> (JSON name, codec kind), with the
codec kinds of :mod:`kubeboot.api.endpoints.protobuf`. Fields without a protobuf number
(``kind``/``apiVersion``, which travel in the envelope) are left out. ``<Kind>List``
messages (``metadata`` ListMeta, ``items``) are added for every stored kind of the resource
table. Built once, at import.
"""

from __future__ import annotations

from kubeboot.resources.registry import RESOURCES
from kubeboot.resources.schema import STRING, Field, ListOf, MapOf, Scalar, Struct, Type
from kubeboot.resources.schemas import KINDS, meta_v1

__all__ = ["KIND_MESSAGES", "SCHEMAS", "Schema"]

Schema = dict[int, tuple[str, str]]

_SCALARS = {
    "string": "string",
    "int32": "int",
    "int64": "int",
    "bool": "bool",
    "bytes": "bytes",
    "time": "time",
    "microtime": "microtime",
    "quantity": "Quantity",
    "intorstring": "IntOrString",
}

SCHEMAS: dict[str, Schema] = {}


def _scalar(t: Scalar) -> str:
    if t.kind == "any":
        return "fieldsv1" if t.go == "v1.FieldsV1" else "rawextension"
    if t.kind not in _SCALARS:
        raise ValueError(f"no protobuf form for {t.go}")
    return _SCALARS[t.kind]


def _list(t: ListOf) -> str:
    if t.named == "v1.Verbs":
        return "verbs"  # a message holding the list
    item = t.item
    if isinstance(item, Scalar):
        base = _scalar(item)
        if base == "string":
            return "strings"
        if base == "int":
            return "ints"
        if base == "bool":
            return "bools"
        if base == "Quantity":
            return "quantities"
        raise ValueError(f"no protobuf form for a list of {item.go}")
    if isinstance(item, Struct):
        return _message(item) + "[]"
    raise ValueError(f"no protobuf form for {t.go}")


def _map(t: MapOf) -> str:
    value = t.value
    if isinstance(value, Scalar):
        return {"string": "map", "bytes": "bytesmap", "quantity": "quantitymap"}[value.kind]
    if isinstance(value, ListOf) and value.named and value.item == STRING:
        return "extra"  # ExtraValue, AttestationValue: a named []string is a message of items
    if isinstance(value, Struct):
        return _message(value) + "{}"  # map<string, message>
    raise ValueError(f"no protobuf form for {t.go}")


def _kind(t: Type) -> str:
    if isinstance(t, Scalar):
        return _scalar(t)
    if isinstance(t, ListOf):
        return _list(t)
    if isinstance(t, MapOf):
        return _map(t)
    return _message(t)


def _field(f: Field) -> str:
    kind = _kind(f.type)
    return kind + "*" if f.pointer and not kind.endswith("[]") else kind


def _message(s: Struct) -> str:
    name = s.openapi_name
    if name not in SCHEMAS:
        SCHEMAS[name] = {}  # placeholder first: structs may refer to themselves
        SCHEMAS[name] = {f.proto: (f.name, _field(f)) for f in s.fields if f.proto}
    return name


def _build() -> dict[str, str]:
    kinds = {s.gvk.kind: _message(s) for s in KINDS.values() if s.gvk is not None}
    list_meta = _message(meta_v1.LIST_META)
    for res in RESOURCES:
        if res.stored and res.kind in kinds:
            name = f"{res.kind}List"
            SCHEMAS[name] = {1: ("metadata", list_meta), 2: ("items", kinds[res.kind] + "[]")}
            kinds[name] = name
    return kinds


# Top-level kind name -> its message schema's name.
KIND_MESSAGES: dict[str, str] = _build()
