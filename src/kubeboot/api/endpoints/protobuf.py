"""``application/vnd.kubernetes.protobuf``: objects (JSON trees) ⇄ Kubernetes protobuf.

client-go's typed clients — the kubelet, controllers, kubectl's typed commands, upstream's
e2e suite — send protobuf bodies and ask for protobuf answers first. The wire form is the
envelope (magic ``k8s\\0`` + ``runtime.Unknown{typeMeta, raw}``) around the message, whose
field numbers come from upstream's Go types (:mod:`.protobuf_schema`, generated). Watch
streams frame raw (unenveloped) ``WatchEvent`` messages with a 4-byte big-endian length, and
each event carries its object enveloped.

The message schemas are derived from :mod:`kubeboot.resources.schemas` (the one description
of every kind, with upstream's field numbers) by :mod:`.protobuf_schema`. A schema maps
field number -> (JSON name, kind). Kinds: ``string``, ``int``, ``bool`` (a ``*`` suffix
marks a Go pointer, whose zero value is meaningful), ``bytes`` (base64 in JSON),
``strings``/``ints``/``bools``/``quantities`` (repeated scalars), ``time`` (metav1.Time,
whole seconds),
``microtime``, ``verbs`` (metav1.Verbs: the list in a message), ``map`` (string->string),
``bytesmap``, ``quantitymap``, ``extra`` (string->[]string), ``fieldsv1`` and
``rawextension`` (JSON held as bytes), ``IntOrString``, ``Quantity``, a message name, a
message name with ``[]`` (repeated) or with ``{}`` (``map<string, message>``).

Go's marshallers write every non-pointer scalar, so a zero on the wire means "unset" unless
the field is a pointer: like upstream's JSON (``omitempty``) the decoder drops such zeros,
and the encoder writes them, as Go does. Nested messages are written when present. Unknown
fields on the wire are skipped, as protobuf requires; a JSON key the schema does not know is
:class:`NotEncodable` (the caller answers in JSON instead of dropping data).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
from typing import Any

from kubeboot.api.endpoints.protobuf_schema import KIND_MESSAGES, SCHEMAS, Schema
from kubeboot.clock import format_micro_time, format_time, parse_time
from kubeboot.resources.status import BadRequest, UnsupportedMediaType

__all__ = [
    "PROTOBUF",
    "NotEncodable",
    "can_encode",
    "decode_protobuf_object",
    "encode_protobuf_object",
    "encode_watch_frame",
]

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# The wire's own messages (runtime and metav1 helpers, map entries).
_WIRE: dict[str, Schema] = {
    "Unknown": {
        1: ("typeMeta", "TypeMeta"),
        2: ("raw", "bytes"),
        3: ("contentEncoding", "string"),
        4: ("contentType", "string"),
    },
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "Time": {1: ("seconds", "int*"), 2: ("nanos", "int")},
    "MapEntry": {1: ("key", "string"), 2: ("value", "string")},
    "BytesMapEntry": {1: ("key", "string"), 2: ("value", "bytes")},
    "QuantityMapEntry": {1: ("key", "string"), 2: ("value", "Quantity")},
    "Quantity": {1: ("string", "string")},
    "ExtraEntry": {1: ("key", "string"), 2: ("value", "ExtraValue")},
    "ExtraValue": {1: ("items", "strings")},
    "Verbs": {1: ("items", "strings")},
    "FieldsV1": {1: ("Raw", "bytes")},
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")},
}
_ALL: dict[str, Schema] = {**SCHEMAS, **_WIRE}


class NotEncodable(Exception):
    """The object holds something this schema cannot carry; answer in JSON instead."""


def can_encode(kind: str) -> bool:
    return kind in KIND_MESSAGES


# ---- decoding -------------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise BadRequest("protobuf body is truncated or malformed (varint)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Wire-level decode: (field number, wire type, varint value or length-delimited bytes)."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, wire, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise BadRequest("protobuf body is truncated or malformed (length)")
            out.append((number, wire, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise BadRequest(f"protobuf body uses an unsupported wire type {wire}")
        if pos > len(data):
            raise BadRequest("protobuf body is truncated or malformed (fixed)")
    return out


def _text(value: bytes) -> str:
    """A protobuf string: Go does not check UTF-8 there, and its JSON encoder then writes
    every invalid byte as U+FFFD; do the same (never a decode error)."""
    return value.decode("utf-8", errors="replace")


def _timestamp(name: str, seconds: int, nanos: int) -> dt.datetime:
    """A metav1.Time on the wire; one Go could not write as RFC 3339 (years 1-9999) is a 400."""
    try:
        stamp = dt.datetime.fromtimestamp(seconds, dt.UTC)
        return stamp + dt.timedelta(microseconds=nanos // 1000)
    except (OverflowError, OSError, ValueError):
        raise BadRequest(
            f"protobuf body: {name} is {seconds} seconds after 1970, outside the years 1-9999 "
            "a Kubernetes timestamp can hold"
        ) from None


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _time_of(name: str, data: bytes, micro: bool) -> str | None:
    t = _message(data, "Time")
    if "seconds" not in t:  # an empty Time message is Go's zero time: unset
        return None
    if micro:  # Go truncates MicroTime to microseconds before marshalling
        return format_micro_time(_timestamp(name, t["seconds"], t.get("nanos", 0)))
    return format_time(_timestamp(name, t["seconds"], 0))


def _packed_ints(value: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v))
    return out


def _decode_entry(obj: dict[str, Any], name: str, kind: str, value: bytes) -> None:
    if kind == "map":
        entry = _message(value, "MapEntry")
        obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
    elif kind == "bytesmap":
        entry = _message(value, "BytesMapEntry")
        obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
    elif kind == "quantitymap":
        entry = _message(value, "QuantityMapEntry")  # the value decodes as a Quantity string
        obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
    else:  # extra
        entry = _message(value, "ExtraEntry")
        items = (entry.get("value") or {}).get("items", [])
        obj.setdefault(name, {})[entry.get("key", "")] = items


def _decode_bytes_field(obj: dict[str, Any], name: str, kind: str, value: bytes) -> None:
    if kind == "string":
        obj[name] = _text(value)
    elif kind == "bytes":
        obj[name] = base64.b64encode(value).decode()
    elif kind == "strings":
        obj.setdefault(name, []).append(_text(value))
    elif kind == "ints":
        obj.setdefault(name, []).extend(_packed_ints(value))
    elif kind == "bools":
        obj.setdefault(name, []).extend(bool(v) for v in _packed_ints(value))
    elif kind in ("time", "microtime"):
        stamp = _time_of(name, value, kind == "microtime")
        if stamp is not None:
            obj[name] = stamp
    elif kind in ("map", "bytesmap", "quantitymap", "extra"):
        _decode_entry(obj, name, kind, value)
    elif kind in ("fieldsv1", "rawextension"):
        raw = _message(value, "FieldsV1").get("Raw", "")
        try:
            obj[name] = json.loads(base64.b64decode(raw) or b"{}")
        except ValueError as exc:
            raise BadRequest(f"protobuf field {name} does not hold JSON") from exc
    elif kind == "Quantity":
        obj[name] = _message(value, "Quantity").get("string", "")
    elif kind == "quantities":
        obj.setdefault(name, []).append(_message(value, "Quantity").get("string", ""))
    elif kind == "verbs":
        obj[name] = _message(value, "Verbs").get("items", [])
    elif kind == "IntOrString":
        ios = _message(value, "IntOrString")
        obj[name] = ios.get("strVal", "") if ios.get("type") == 1 else ios.get("intVal", 0)
    elif kind.endswith("[]"):
        obj.setdefault(name, []).append(_message(value, kind[:-2]))
    elif kind.endswith("{}"):
        entry = _fields(value)
        key = next((v for n, _, v in entry if n == 1 and isinstance(v, bytes)), b"")
        raw = next((v for n, _, v in entry if n == 2 and isinstance(v, bytes)), b"")
        obj.setdefault(name, {})[_text(key)] = _message(raw, kind[:-2])
    else:
        obj[name] = _message(value, kind)


def _message(data: bytes, schema_name: str) -> dict[str, Any]:
    schema = _ALL[schema_name]
    obj: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        pointer = kind.endswith("*")
        kind = kind.removesuffix("*")
        if isinstance(value, int):
            if wire != 0:
                continue
            if kind == "int" and (value or pointer):
                obj[name] = _signed(value)
            elif kind == "bool" and (value or pointer):
                obj[name] = bool(value)
            elif kind == "ints":
                obj.setdefault(name, []).append(_signed(value))
            elif kind == "bools":
                obj.setdefault(name, []).append(bool(value))
        elif kind == "string" and not (value or pointer):
            continue
        elif kind not in ("int", "bool"):
            _decode_bytes_field(obj, name, kind, value)
    return obj


def decode_protobuf_object(raw: bytes) -> dict[str, Any]:
    if not raw.startswith(_MAGIC):
        raise BadRequest("protobuf body does not start with the Kubernetes magic prefix k8s\\0")
    unknown = _message(raw[len(_MAGIC) :], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    kind = str(type_meta.get("kind") or "")
    if kind not in KIND_MESSAGES:
        raise UnsupportedMediaType(
            f"kubeboot does not decode protobuf {kind or 'objects'}; send "
            "application/json (kubectl: --kube-api-content-type=application/json or an "
            "unstructured command such as `kubectl apply`)"
        )
    payload = base64.b64decode(unknown.get("raw", ""))
    obj = _message(payload, KIND_MESSAGES[kind])
    obj["kind"] = kind
    obj["apiVersion"] = type_meta.get("apiVersion", "")
    return obj


# ---- encoding -------------------------------------------------------------------------------


def _put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_bytes(out: bytearray, number: int, payload: bytes) -> None:
    _put_varint(out, (number << 3) | 2)
    _put_varint(out, len(payload))
    out += payload


def _put_int(out: bytearray, number: int, value: int) -> None:
    _put_varint(out, number << 3)
    _put_varint(out, value)


def _time_bytes(value: Any, micro: bool) -> bytes:
    if not isinstance(value, str):
        raise NotEncodable(f"a time must be a string, not {value!r}")
    try:
        stamp = parse_time(value)
    except ValueError as exc:
        raise NotEncodable(str(exc)) from exc
    delta = stamp - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    nanos = delta.microseconds * 1000 if micro else 0
    out = bytearray()
    _put_int(out, 1, seconds)
    _put_int(out, 2, nanos)
    return bytes(out)


def _entry(key: str, value_field: bytes) -> bytes:
    out = bytearray()
    _put_bytes(out, 1, key.encode())
    out += value_field
    return bytes(out)


def _encode_map(out: bytearray, number: int, kind: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise NotEncodable(f"expected a map, got {value!r}")
    for key in sorted(value):
        item = value[key]
        inner = bytearray()
        if kind == "map":
            _put_bytes(inner, 2, _utf8(item))
        elif kind == "bytesmap":
            _put_bytes(inner, 2, _b64(item))
        elif kind == "quantitymap":
            quantity = bytearray()
            _put_bytes(quantity, 1, _utf8(item))
            _put_bytes(inner, 2, bytes(quantity))
        else:  # extra
            items = bytearray()
            for s in item or []:
                _put_bytes(items, 1, _utf8(s))
            _put_bytes(inner, 2, bytes(items))
        _put_bytes(out, number, _entry(str(key), bytes(inner)))


def _utf8(value: Any) -> bytes:
    if not isinstance(value, str):
        raise NotEncodable(f"expected a string, got {value!r}")
    return value.encode()


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(_utf8(value), validate=True)
    except ValueError as exc:
        raise NotEncodable(f"not base64: {value!r}") from exc


def _int_of(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotEncodable(f"expected an integer, got {value!r}")
    return value


def _encode_field(out: bytearray, number: int, kind: str, value: Any) -> None:
    if kind == "string":
        _put_bytes(out, number, _utf8(value))
    elif kind == "int":
        _put_int(out, number, _int_of(value))
    elif kind == "bool":
        if not isinstance(value, bool):
            raise NotEncodable(f"expected a boolean, got {value!r}")
        _put_int(out, number, int(value))
    elif kind == "bytes":
        _put_bytes(out, number, _b64(value))
    elif kind == "strings":
        for item in value:
            _put_bytes(out, number, _utf8(item))
    elif kind == "ints":
        for item in value:
            _put_int(out, number, _int_of(item))
    elif kind == "bools":
        for item in value:
            if not isinstance(item, bool):
                raise NotEncodable(f"expected a boolean, got {item!r}")
            _put_int(out, number, int(item))
    elif kind in ("time", "microtime"):
        _put_bytes(out, number, _time_bytes(value, kind == "microtime"))
    elif kind in ("map", "bytesmap", "quantitymap", "extra"):
        _encode_map(out, number, kind, value)
    elif kind in ("fieldsv1", "rawextension"):
        inner = bytearray()
        _put_bytes(inner, 1, json.dumps(value, separators=(",", ":")).encode())
        _put_bytes(out, number, bytes(inner))
    elif kind == "Quantity":
        inner = bytearray()
        _put_bytes(inner, 1, _utf8(str(value)))
        _put_bytes(out, number, bytes(inner))
    elif kind == "quantities":
        for item in value:
            _encode_field(out, number, "Quantity", item)
    elif kind == "verbs":
        inner = bytearray()
        for item in value:
            _put_bytes(inner, 1, _utf8(item))
        _put_bytes(out, number, bytes(inner))
    elif kind == "IntOrString":
        inner = bytearray()
        is_str = isinstance(value, str)
        _put_int(inner, 1, int(is_str))
        _put_int(inner, 2, 0 if is_str else _int_of(value))
        _put_bytes(inner, 3, value.encode() if is_str else b"")
        _put_bytes(out, number, bytes(inner))
    elif kind.endswith("[]"):
        if not isinstance(value, list):
            raise NotEncodable(f"expected a list, got {value!r}")
        for item in value:
            _put_bytes(out, number, _encode_message(item, kind[:-2]))
    elif kind.endswith("{}"):
        if not isinstance(value, dict):
            raise NotEncodable(f"expected a map, got {value!r}")
        for key in sorted(value):
            inner = bytearray()
            _put_bytes(inner, 2, _encode_message(value[key], kind[:-2]))
            _put_bytes(out, number, _entry(str(key), bytes(inner)))
    else:
        _put_bytes(out, number, _encode_message(value, kind))


_ZERO: dict[str, Any] = {"string": "", "int": 0, "bool": False}


def _encode_message(obj: Any, schema_name: str) -> bytes:
    if not isinstance(obj, dict):
        raise NotEncodable(f"{schema_name} must be an object, not {obj!r}")
    schema = _ALL[schema_name]
    names = {name for name, _ in schema.values()}
    extra = [k for k in obj if k not in names and k not in ("kind", "apiVersion")]
    if extra:
        raise NotEncodable(f"{schema_name} has no field {extra[0]!r} in protobuf")
    out = bytearray()
    for number in sorted(schema):
        name, kind = schema[number]
        pointer = kind.endswith("*")
        kind = kind.removesuffix("*")
        value = obj.get(name)
        if value is None:
            if not pointer and kind in _ZERO:
                value = _ZERO[kind]  # Go writes every non-pointer scalar
            else:
                continue
        _encode_field(out, number, kind, value)
    return bytes(out)


def encode_protobuf_object(obj: dict[str, Any]) -> bytes:
    """The enveloped message for a top-level object (its ``kind`` names the schema)."""
    kind = str(obj.get("kind") or "")
    if kind not in KIND_MESSAGES:
        raise NotEncodable(f"no protobuf schema for kind {kind!r}")
    raw = _encode_message(obj, KIND_MESSAGES[kind])
    type_meta = bytearray()
    _put_bytes(type_meta, 1, str(obj.get("apiVersion") or "").encode())
    _put_bytes(type_meta, 2, kind.encode())
    out = bytearray(_MAGIC)
    _put_bytes(out, 1, bytes(type_meta))
    _put_bytes(out, 2, raw)
    _put_bytes(out, 3, b"")
    _put_bytes(out, 4, b"")
    return bytes(out)


def encode_watch_frame(event_type: str, embedded: bytes) -> bytes:
    """One watch frame: length prefix + raw ``WatchEvent{type, object: RawExtension}``."""
    raw_ext = bytearray()
    _put_bytes(raw_ext, 1, embedded)
    event = bytearray()
    _put_bytes(event, 1, event_type.encode())
    _put_bytes(event, 2, bytes(raw_ext))
    return struct.pack(">I", len(event)) + bytes(event)
