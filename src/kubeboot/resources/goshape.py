"""An object as kube-apiserver holds and writes it: the JSON of upstream's Go struct (pure).

Upstream decodes every body into its typed Go struct and encodes that, so what it stores and
serves follows Go's ``encoding/json`` over the schema of :mod:`kubeboot.resources.schemas`,
not the client's bytes:

* unknown fields are gone (field validation has already spoken about them);
* ``omitempty`` fields that are empty (``""``, ``0``, ``false``, an empty list or map) are
  left out — a ConfigMap's ``data: {}``, a rule's ``resourceNames: []`` — unless the field is
  a Go pointer, whose zero value is kept;
* fields without ``omitempty`` are always there: ``""``/``0``/``false`` for scalars, ``null``
  for a missing list or map (a Role's ``rules``), the zero struct for a struct (a Node's
  ``status.nodeInfo``, ``daemonEndpoints``);
* a zero ``metav1.Time``/``MicroTime`` that is not a pointer is ``null`` (an Event's
  ``eventTime``), except ``metadata.creationTimestamp``, which is ``omitzero``.

The same shape is what upstream's field manager compares (managedFields), so one function
serves storage and :mod:`kubeboot.api.registry.fieldmanager`.
"""

from __future__ import annotations

from typing import Any

from kubeboot.resources.schema import Field, ListOf, MapOf, Scalar, Struct, Type
from kubeboot.resources.schemas.meta_v1 import OBJECT_META

__all__ = ["go_shape", "meta_in_go_order", "zero_value"]

# Go fields tagged ``omitzero``: a zero value leaves the field out even without omitempty
# semantics applying to structs.
_OMITZERO = {("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp")}
_SCALAR_ZERO: dict[str, Any] = {
    "string": "",
    "int32": 0,
    "int64": 0,
    "float64": 0,
    "bool": False,
    "quantity": "0",
    "intorstring": 0,
}


def zero_value(t: Type) -> Any:
    """What Go writes for the zero value of a non-pointer field without omitempty."""
    if isinstance(t, Struct):
        return go_shape({}, t)
    if isinstance(t, Scalar):
        return _SCALAR_ZERO.get(t.kind)  # time, bytes, any: null
    return None  # a nil list or map


def _empty(value: Any) -> bool:
    """Go's isEmptyValue for what omitempty drops (structs are never empty)."""
    return value in ("", 0, False, None) or (isinstance(value, list | dict) and not value)


def _shape(value: Any, t: Type) -> Any:
    if value is None:
        return None
    if isinstance(t, Struct):
        return go_shape(value, t) if isinstance(value, dict) else value
    if isinstance(t, ListOf):
        return [_shape(v, t.item) for v in value] if isinstance(value, list) else value
    if isinstance(t, MapOf):
        if not isinstance(value, dict):
            return value
        return {k: _shape(v, t.value) for k, v in value.items()}
    return value


def _is_go_struct(t: Type) -> bool:
    """Go structs (omitempty never drops them): structs, and the scalars that are structs in
    Go — Time, MicroTime, Quantity, IntOrString, RawExtension."""
    if isinstance(t, Struct):
        return True
    if isinstance(t, Scalar):
        return t.kind in ("time", "microtime", "quantity", "intorstring") or (
            t.go == "runtime.RawExtension"
        )
    return False


def _field(struct: Struct, f: Field, obj: dict[str, Any], out: dict[str, Any]) -> None:
    value = obj.get(f.name)
    go_struct = _is_go_struct(f.type)
    if value is None:
        if f.pointer or (struct.openapi_name, f.name) in _OMITZERO:
            return
        if f.omitempty and not go_struct:
            return
        out[f.name] = zero_value(f.type)
        return
    shaped = _shape(value, f.type)
    if f.omitempty and not f.pointer and not go_struct and _empty(shaped):
        return
    out[f.name] = shaped


def go_shape(obj: dict[str, Any], struct: Struct) -> dict[str, Any]:
    """``obj`` as upstream's Go struct would encode it (module docstring); a new dict."""
    out: dict[str, Any] = {}
    for f in struct.fields:
        _field(struct, f, obj, out)
    return out


_META_ORDER = {f.name: i for i, f in enumerate(OBJECT_META.fields)}


def meta_in_go_order(meta: Any) -> Any:
    """ObjectMeta's keys in its struct's order, as Go writes them (the store appends
    ``resourceVersion``); ``meta`` itself when already in order."""
    if not isinstance(meta, dict):
        return meta
    order = list(meta)
    wanted = sorted(order, key=lambda k: _META_ORDER.get(k, len(_META_ORDER)))
    return meta if wanted == order else {k: meta[k] for k in wanted}
