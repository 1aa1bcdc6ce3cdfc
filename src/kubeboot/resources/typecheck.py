"""Type-check a decoded body against its kind's schema, as Go unmarshals into the typed struct.

kube-apiserver never sees a ConfigMap whose ``binaryData`` is a list: the JSON decoder fails
with ``json: cannot unmarshal array into Go struct field ConfigMap.binaryData of type
map[string][]uint8`` and the request is a 400 before any strategy runs. kubeboot keeps
objects as JSON trees, so this module is that decoder's check, run once on every body
(create, update, subresources, the result of a patch, DeleteOptions, reviews) before
anything else touches it, with Go's semantics and texts:

* a value of the wrong JSON type is a :class:`TypeMismatch` naming the innermost struct, the
  JSON path of field names and the Go type (``Go struct field ObjectMeta.metadata.labels of
  type map[string]string``); integers out of their Go range name the number;
* ``[]byte`` fields must be base64 (Go's message names the first bad byte) and are written
  back canonically; ``metav1.Time`` and ``MicroTime`` must parse with Go's layouts and are
  written back in UTC, as kube-apiserver serves them; quantities must parse;
* ``null`` leaves a struct field unset (dropped) and is the zero value inside lists and
  maps, as in Go;
* fields the schema does not have are dropped, as Go's decoder drops them, and their paths
  (``spec.foo``, ``rules[0].verb``) are returned for ``fieldValidation`` (Warn/Strict).

The result is a new tree of plain ``dict``/``list``/scalars in Go's field order; the input
is not modified.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from kubeboot.clock import format_micro_time, format_time
from kubeboot.resources.decoding import FieldPath, OverflowNumber, gc_paused
from kubeboot.resources.schema import STRING, ListOf, MapOf, Scalar, Struct, Type

__all__ = ["Checked", "TypeMismatch", "json_type", "parse_go_time", "typecheck"]

_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_QUANTITY_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T"}
_QUANTITY_SUFFIXES |= {"P", "E"}
_QUANTITY_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"


class TypeMismatch(ValueError):
    """A value Go's decoder would not accept into the typed struct; the text is Go's."""


@dataclass
class Checked:
    obj: dict[str, Any]
    unknown: list[FieldPath] = field(default_factory=list)  # dropped unknown fields


@dataclass
class _Ctx:
    struct: str = ""  # innermost struct holding the field being decoded
    stack: tuple[str, ...] = ()  # JSON names from the root (Go's errorContext.FieldStack)
    position: tuple[int, ...] = ()  # index of each key or item from the root
    unknown: list[FieldPath] = field(default_factory=list)


def typecheck(value: Any, struct: Struct) -> Checked:
    """Check ``value`` (a decoded JSON object) against ``struct``; raises TypeMismatch."""
    ctx = _Ctx()
    with gc_paused():
        obj = _struct(value, struct, ctx, "")
    return Checked(obj, ctx.unknown)


def json_type(value: Any) -> str:
    """The JSON type, as Go's ``UnmarshalTypeError.Value`` names it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float | OverflowNumber):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _mismatch(ctx: _Ctx, what: str, go: str) -> TypeMismatch:
    if ctx.struct or ctx.stack:
        where = f"Go struct field {ctx.struct}.{'.'.join(ctx.stack)}"
    else:
        where = "Go value"
    return TypeMismatch(f"json: cannot unmarshal {what} into {where} of type {go}")


def _struct(value: Any, t: Struct, ctx: _Ctx, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _mismatch(ctx, json_type(value), t.go)
    present: dict[str, Any] = {}
    for index, (key, item) in enumerate(value.items()):
        f = t.by_name.get(key)
        if f is None:
            ctx.unknown.append(FieldPath((*ctx.position, index), f"{path}.{key}" if path else key))
            continue
        if item is None:
            continue  # Go leaves the field unset
        outer = ctx.struct, ctx.stack, ctx.position
        ctx.struct, ctx.stack, ctx.position = t.name, (*ctx.stack, key), (*ctx.position, index)
        present[key] = _value(item, f.type, ctx, f"{path}.{key}" if path else key)
        ctx.struct, ctx.stack, ctx.position = outer
    if len(present) < 2:
        return present
    return {f.name: present[f.name] for f in t.fields if f.name in present}


def _value(value: Any, t: Type, ctx: _Ctx, path: str) -> Any:
    if isinstance(t, Struct):
        return _struct(value, t, ctx, path)
    if isinstance(t, ListOf):
        if not isinstance(value, list):
            raise _mismatch(ctx, json_type(value), t.go)
        if t.item is STRING and all(type(item) is str for item in value):
            return list(value)  # the common case (verbs, finalizers, groups), at C speed
        return [
            _zero(t.item) if item is None else _item(item, t.item, ctx, f"{path}[{i}]", i)
            for i, item in enumerate(value)
        ]
    if isinstance(t, MapOf):
        if not isinstance(value, dict):
            raise _mismatch(ctx, json_type(value), t.go)
        if t.value is STRING and all(type(v) is str for v in value.values()):
            return dict(value)  # labels, annotations, ConfigMap data
        return {
            k: _zero(t.value) if v is None else _item(v, t.value, ctx, f"{path}.{k}", i)
            for i, (k, v) in enumerate(value.items())
        }
    return _scalar(value, t, ctx)


def _item(value: Any, t: Type, ctx: _Ctx, path: str, index: int) -> Any:
    """A list item or map value: one more step in the document position, not in Go's path."""
    outer = ctx.position
    ctx.position = (*outer, index)
    try:
        return _value(value, t, ctx, path)
    finally:
        ctx.position = outer


def _zero(t: Type) -> Any:
    """Go's zero value, written as Go's encoder would write it."""
    if isinstance(t, Struct | MapOf):
        return {}
    if isinstance(t, ListOf):
        return []
    return {"string": "", "int32": 0, "int64": 0, "float64": 0, "bool": False}.get(t.kind, "")


def _scalar(value: Any, t: Scalar, ctx: _Ctx) -> Any:
    kind = t.kind
    if kind == "string":
        if not isinstance(value, str):
            raise _mismatch(ctx, json_type(value), t.go)
        return value
    if kind in ("int32", "int64"):
        return _integer(value, kind, t.go, ctx)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _mismatch(ctx, json_type(value), t.go)
        return value
    if kind == "float64":
        if isinstance(value, bool) or not isinstance(value, int | float):
            what = f"number {value}" if isinstance(value, OverflowNumber) else json_type(value)
            raise _mismatch(ctx, what, t.go)
        return value
    if kind == "bytes":
        if not isinstance(value, str):
            raise _mismatch(ctx, json_type(value), t.go)
        return _base64(value)
    if kind in ("time", "microtime"):
        if not isinstance(value, str):
            # metav1.Time.UnmarshalJSON decodes a string first, outside the struct context.
            raise TypeMismatch(
                f"json: cannot unmarshal {json_type(value)} into Go value of type string"
            )
        layout = RFC3339 if kind == "time" else RFC3339_MICRO
        stamp = parse_go_time(value, layout)
        return _format_time(stamp, kind)
    if kind == "quantity":
        return _quantity(value)
    if kind == "intorstring":
        if isinstance(value, str):
            return value
        return _integer(value, "int32", "int32", ctx)
    return _any(value)


def _integer(value: Any, kind: str, go: str, ctx: _Ctx) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float | OverflowNumber):
            raise _mismatch(ctx, f"number {value}", go)
        raise _mismatch(ctx, json_type(value), go)
    low, high = _INT_RANGE[kind]
    if not low <= value <= high:
        raise _mismatch(ctx, f"number {value}", go)
    return value


def _base64(value: str) -> str:
    """Go's ``base64.StdEncoding`` (CR and LF skipped), written back canonically as Go does."""
    bad = next((i for i, c in enumerate(value) if c not in _B64_ALPHABET), None)
    compact = value.replace("\r", "").replace("\n", "")
    if bad is None:
        try:
            return base64.b64encode(base64.b64decode(compact, validate=True)).decode()
        except binascii.Error:
            # A misplaced "=" or a truncated last quantum: Go names where that quantum starts.
            pad = value.find("=")
            bad = pad if 0 <= pad < len(value) - 2 else len(value) - len(compact) % 4
    raise TypeMismatch(f"illegal base64 data at input byte {bad}")


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n")


def _quantity(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeMismatch(_QUANTITY_ERROR)
    text = value.strip() if isinstance(value, str) else repr(value)
    m = _QUANTITY.match(text)
    if not m or m.group(1).count(".") > 1 or m.group(1).strip("+-") in ("", "."):
        raise TypeMismatch(_QUANTITY_ERROR)
    suffix = m.group(2)
    if suffix not in _QUANTITY_SUFFIXES and not re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        raise TypeMismatch("unable to parse quantity's suffix")
    return text


def _any(value: Any) -> Any:
    """Free-form JSON: only a number beyond float64 is refused (Go decodes one as float64)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, OverflowNumber):
            raise TypeMismatch(
                f"json: cannot unmarshal number {node} into Go value of type float64"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return value


# ---- Go's time.Parse for the two layouts metav1 uses ------------------------------------

_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def parse_go_time(value: str, layout: str) -> dt.datetime:
    """``time.Parse(RFC3339 | RFC3339Micro, value)`` with Go's error texts; returns UTC."""
    micro = layout == RFC3339_MICRO
    rest = value

    def fail(elem: str) -> TypeMismatch:
        return TypeMismatch(
            f'parsing time "{value}" as "{layout}": cannot parse "{rest}" as "{elem}"'
        )

    def number(digits: int, elem: str) -> int:
        nonlocal rest
        if len(rest) < digits or not rest[:digits].isascii() or not rest[:digits].isdigit():
            raise fail(elem)
        n, rest = int(rest[:digits]), rest[digits:]
        return n

    def literal(text: str) -> None:
        nonlocal rest
        if not rest.startswith(text):
            raise fail(text)
        rest = rest[len(text) :]

    year = number(4, "2006")
    literal("-")
    month = number(2, "01")
    literal("-")
    day = number(2, "02")
    literal("T")
    hour = number(2, "15")
    literal(":")
    minute = number(2, "04")
    literal(":")
    second = number(2, "05")
    nanos = 0
    if micro:
        if len(rest) < 7 or rest[0] != "." or not rest[1:7].isascii() or not rest[1:7].isdigit():
            raise fail(".000000")
        nanos, rest = int(rest[1:7]) * 1000, rest[7:]
    elif len(rest) >= 2 and rest[0] in ".," and rest[1].isascii() and rest[1].isdigit():
        end = 1
        while end < len(rest) and rest[end].isascii() and rest[end].isdigit():
            end += 1
        nanos, rest = int((rest[1:end] + "000000000")[:9]), rest[end:]
    if rest.startswith("Z"):
        offset, rest = 0, rest[1:]
    else:
        sign = rest[:1]
        if sign not in ("+", "-") or len(rest) < 6 or rest[3] != ":":
            raise fail("Z07:00")
        hh, mm = rest[1:3], rest[4:6]
        if not (hh + mm).isascii() or not (hh + mm).isdigit():
            raise fail("Z07:00")
        offset = (int(hh) * 60 + int(mm)) * (1 if sign == "+" else -1)
        rest = rest[6:]
    if rest:
        raise TypeMismatch(f'parsing time "{value}": extra text: "{rest}"')
    for name, ok in (
        ("month", 1 <= month <= 12),
        ("day", 1 <= day <= 31 and (month > 12 or day <= _MONTH_DAYS[month - 1])),
        ("hour", hour < 24),
        ("minute", minute < 60),
        ("second", second < 60),
    ):
        if not ok:
            raise TypeMismatch(f'parsing time "{value}": {name} out of range')
    if abs(offset) >= 24 * 60:
        raise TypeMismatch(f'parsing time "{value}": time zone offset out of range')
    zone = dt.timezone(dt.timedelta(minutes=offset))
    try:
        stamp = dt.datetime(year, month, day, hour, minute, second, nanos // 1000, zone)
        return stamp.astimezone(dt.UTC)
    except (ValueError, OverflowError) as exc:  # 29 February of a common year; year 0
        raise TypeMismatch(f'parsing time "{value}": day out of range') from exc


def _format_time(stamp: dt.datetime, kind: str) -> str:
    # the one formatter of API times (four-digit years: strftime writes year 1 as "1")
    return format_time(stamp) if kind == "time" else format_micro_time(stamp)
