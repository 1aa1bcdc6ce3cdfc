"""The shape of every kind kubeboot serves: a compact, typed description of upstream's Go types.

One description serves every consumer, so they cannot drift apart:

* the decoding layer (:mod:`kubeboot.resources.typecheck`) checks a decoded body against it
  the way Go's ``encoding/json`` unmarshals into the typed struct (wrong types are a 400 with
  upstream's ``json: cannot unmarshal ...`` text; unknown and duplicate fields feed
  ``fieldValidation``), before any strategy touches the object;
* the OpenAPI v3 ``components.schemas`` are rendered from it (``x-kubernetes-list-type``,
  ``-list-map-keys``, ``-patch-merge-key``, ``-patch-strategy``, ``-group-version-kind``);
* the protobuf decoder can read field numbers from it (``Field.proto``).

The model mirrors Go, not JSON Schema: a :class:`Struct` is a Go struct (its ``go`` name, as
``reflect.Type.String()`` prints it, appears in error messages), a :class:`Field` one JSON
property of it in Go declaration order (the order kube-apiserver writes them), and a field's
type is a :class:`Scalar`, a :class:`ListOf`, a :class:`MapOf` (``map[string]T``) or a
nested :class:`Struct`. Inlined Go structs (``TypeMeta``) are flattened into their parent.

The data lives in :mod:`kubeboot.resources.schemas` (one module per API group version, in
Go declaration order, generated from upstream's types by ``hack/schema/`` and then owned
here). **Adding a kind** is: a row in :mod:`kubeboot.resources.registry`, then its
``Struct`` in the group's module (``python hack/schema/generate.py <Go type>`` prints it
from upstream's types and OpenAPI), registered in ``schemas.KINDS``;
``tests/unit/resources/test_schema.py`` fails for a served kind without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "FIELDS_V1",
    "FLOAT64",
    "GVK",
    "INT32",
    "INT64",
    "INT_OR_STRING",
    "MICROTIME",
    "QUANTITY",
    "RAW_EXTENSION",
    "STRING",
    "TIME",
    "UID",
    "Field",
    "ListOf",
    "MapOf",
    "Scalar",
    "Struct",
    "Type",
    "named_string",
]

ScalarKind = Literal[
    "string",  # a JSON string
    "int32",  # a JSON integer in Go's int32 range
    "int64",  # a JSON integer in Go's int64 range
    "float64",  # any finite JSON number
    "bool",  # true / false
    "bytes",  # []byte: a base64 (standard alphabet, padded) JSON string
    "time",  # metav1.Time: an RFC 3339 string, served in UTC to the second
    "microtime",  # metav1.MicroTime: RFC 3339 with microseconds
    "quantity",  # resource.Quantity: a string (or number) such as "100m", "4Gi"
    "intorstring",  # intstr.IntOrString: an int32 or a string
    "any",  # free-form JSON (runtime.RawExtension, metav1.FieldsV1)
]


@dataclass(frozen=True, slots=True)
class GVK:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class Scalar:
    """A JSON leaf. ``go`` is the Go type errors name (``string``, ``v1.KeyUsage``, ``int32``)."""

    kind: ScalarKind
    go: str
    # Upstream's ``+enum`` values (OpenAPI ``enum``); empty when the type is open.
    enum: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ListOf:
    """A JSON array (Go slice). ``list_type`` and ``map_keys`` are upstream's list markers."""

    item: Type
    list_type: Literal["atomic", "set", "map", ""] = ""
    map_keys: tuple[str, ...] = ()
    named: str = ""  # a named slice type (``v1.ExtraValue``); "" for ``[]T``

    @property
    def go(self) -> str:
        return self.named or f"[]{self.item.go}"


@dataclass(frozen=True, slots=True)
class MapOf:
    """A JSON object with free keys (Go ``map[string]T``)."""

    value: Type
    map_type: Literal["atomic", "granular", ""] = ""

    @property
    def go(self) -> str:
        return f"map[string]{self.value.go}"


@dataclass(frozen=True, slots=True)
class Field:
    """One JSON property of a struct, with what upstream's tags and markers say about it."""

    name: str
    type: Type
    proto: int = 0  # field number in upstream's generated.proto; 0: not in the message
    required: bool = False  # OpenAPI ``required`` (upstream's ``+required``/no omitempty)
    pointer: bool = False  # a Go pointer: its zero value is distinct from "unset"
    omitempty: bool = True
    patch_strategy: str = ""  # ``merge``, ``retainKeys``, ``merge,retainKeys``
    patch_merge_key: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Struct:
    """A Go struct; ``gvk`` is set on kinds (objects with ``apiVersion``/``kind``)."""

    openapi_name: str  # ``io.k8s.api.core.v1.ConfigMap``
    go: str  # ``v1.ConfigMap``
    fields: tuple[Field, ...]
    gvk: GVK | None = None
    map_type: Literal["atomic", "granular", ""] = ""
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def name(self) -> str:
        """The bare struct name Go's decoder names in ``Go struct field <Name>.<path>``."""
        return self.go.rsplit(".", 1)[-1]


Type = Scalar | ListOf | MapOf | Struct


def named_string(go: str, *enum: str) -> Scalar:
    """A Go named string type (``type KeyUsage string``), with its enum values if any."""
    return Scalar("string", go, tuple(enum))


STRING = Scalar("string", "string")
INT32 = Scalar("int32", "int32")
INT64 = Scalar("int64", "int64")
FLOAT64 = Scalar("float64", "float64")
BOOL = Scalar("bool", "bool")
BYTES = Scalar("bytes", "[]uint8")
TIME = Scalar("time", "v1.Time")
MICROTIME = Scalar("microtime", "v1.MicroTime")
QUANTITY = Scalar("quantity", "resource.Quantity")
INT_OR_STRING = Scalar("intorstring", "intstr.IntOrString")
RAW_EXTENSION = Scalar("any", "runtime.RawExtension")
FIELDS_V1 = Scalar("any", "v1.FieldsV1")
ANY = Scalar("any", "interface {}")
UID = named_string("types.UID")
