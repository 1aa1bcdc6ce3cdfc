"""Decoding ``application/vnd.kubernetes.protobuf`` request bodies into JSON objects.

kubectl's typed clients (``certificate approve|deny``, ``auth can-i``, ``auth whoami``) send
protobuf bodies and accept JSON answers, and client-go has no JSON fallback for protobuf
(server-facts §8.6). So the server decodes the envelope (magic ``k8s\\0`` + ``runtime.Unknown``)
and, for the kinds those clients send, the message itself, using the field numbers of
upstream's ``generated.proto``. Responses stay JSON, which every client-go accepts.
Unknown fields are skipped, as protobuf requires; kinds without a schema here get a 415 that
says to use JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from kubeboot.clock import format_time
from kubeboot.resources.status import BadRequest, UnsupportedMediaType

__all__ = ["PROTOBUF", "decode_protobuf_object"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# A schema maps field number -> (json name, kind); kind is "string", "bytes", "int",
# "bool", "time", "map", "bytesmap" (map<string, bytes>), "extra" (map<string, ExtraValue>),
# "strings" (repeated string), or a
# nested schema name; a "[]" suffix marks a repeated message field.
Schema = dict[int, tuple[str, str]]

_SCHEMAS: dict[str, Schema] = {
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "time"),
        11: ("labels", "map"),
        12: ("annotations", "map"),
        14: ("finalizers", "strings"),
    },
    "CertificateSigningRequest": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "CertificateSigningRequestSpec"),
        3: ("status", "CertificateSigningRequestStatus"),
    },
    "CertificateSigningRequestSpec": {
        1: ("request", "bytes"),
        2: ("username", "string"),
        3: ("uid", "string"),
        4: ("groups", "strings"),
        5: ("usages", "strings"),
        6: ("extra", "extra"),
        7: ("signerName", "string"),
        8: ("expirationSeconds", "int"),
    },
    "CertificateSigningRequestStatus": {
        1: ("conditions", "CertificateSigningRequestCondition[]"),
        2: ("certificate", "bytes"),
    },
    "CertificateSigningRequestCondition": {
        1: ("type", "string"),
        2: ("reason", "string"),
        3: ("message", "string"),
        4: ("lastUpdateTime", "time"),
        5: ("lastTransitionTime", "time"),
        6: ("status", "string"),
    },
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "SubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SubjectAccessReviewSpec"),
    },
    "LocalSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SubjectAccessReviewSpec"),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
        3: ("user", "string"),
        4: ("groups", "strings"),
        5: ("extra", "extra"),
        6: ("uid", "string"),
    },
    "ResourceAttributes": {
        1: ("namespace", "string"),
        2: ("verb", "string"),
        3: ("group", "string"),
        4: ("version", "string"),
        5: ("resource", "string"),
        6: ("subresource", "string"),
        7: ("name", "string"),
    },
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map"),
        3: ("binaryData", "bytesmap"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "bytesmap"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool"),
    },
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "strings")},
    "PolicyRule": {
        1: ("verbs", "strings"),
        2: ("apiGroups", "strings"),
        3: ("resources", "strings"),
        4: ("resourceNames", "strings"),
        5: ("nonResourceURLs", "strings"),
    },
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "PolicyRule[]")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "PolicyRule[]")},
    "Subject": {
        1: ("kind", "string"),
        2: ("apiGroup", "string"),
        3: ("name", "string"),
        4: ("namespace", "string"),
    },
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "RoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "Subject[]"),
        3: ("roleRef", "RoleRef"),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "Subject[]"),
        3: ("roleRef", "RoleRef"),
    },
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "MapEntry": {1: ("key", "string"), 2: ("value", "string")},
    "BytesMapEntry": {1: ("key", "string"), 2: ("value", "bytes")},
    "ExtraEntry": {1: ("key", "string"), 2: ("value", "ExtraValue")},
    "ExtraValue": {1: ("items", "strings")},
}


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


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Wire-level decode: (field number, varint value or length-delimited bytes)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise BadRequest("protobuf body is truncated or malformed (length)")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise BadRequest(f"protobuf body uses an unsupported wire type {wire}")
    return out


def _message(data: bytes, schema_name: str) -> dict[str, Any]:
    schema = _SCHEMAS[schema_name]
    obj: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if kind == "int":
            if isinstance(value, int):
                obj[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            if isinstance(value, int):
                obj[name] = bool(value)
        elif not isinstance(value, bytes):
            continue
        elif kind == "string":
            obj[name] = value.decode()
        elif kind == "bytes":
            obj[name] = base64.b64encode(value).decode()
        elif kind == "strings":
            obj.setdefault(name, []).append(value.decode())
        elif kind == "time":
            t = _message(value, "Time")
            if "seconds" in t:  # an empty Time message is Go's zero time: unset
                obj[name] = format_time(dt.datetime.fromtimestamp(t["seconds"], dt.UTC))
        elif kind == "map":
            entry = _message(value, "MapEntry")
            obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "bytesmap":
            entry = _message(value, "BytesMapEntry")
            obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "extra":
            entry = _message(value, "ExtraEntry")
            items = (entry.get("value") or {}).get("items", [])
            obj.setdefault(name, {})[entry.get("key", "")] = items
        elif kind.endswith("[]"):
            obj.setdefault(name, []).append(_message(value, kind[:-2]))
        else:
            obj[name] = _message(value, kind)
    return obj


def decode_protobuf_object(raw: bytes) -> dict[str, Any]:
    if not raw.startswith(_MAGIC):
        raise BadRequest("protobuf body does not start with the Kubernetes magic prefix k8s\\0")
    unknown = _message(raw[len(_MAGIC) :], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    kind = str(type_meta.get("kind") or "")
    if kind not in _SCHEMAS or kind in ("Unknown", "TypeMeta"):
        raise UnsupportedMediaType(
            f"kubeboot does not decode protobuf {kind or 'objects'}; send "
            "application/json (kubectl: --kube-api-content-type=application/json or an "
            "unstructured command such as `kubectl apply`)"
        )
    payload = base64.b64decode(unknown.get("raw", ""))
    obj = _message(payload, kind)
    obj["kind"] = kind
    obj["apiVersion"] = type_meta.get("apiVersion", "")
    return obj
