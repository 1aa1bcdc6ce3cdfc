"""Decoding ``application/vnd.kubernetes.protobuf`` request bodies into JSON objects.

kubectl's typed clients (``certificate approve|deny``, ``auth can-i``, ``auth whoami``) and a
kubelet (its default ``--kube-api-content-type``: Node, Lease, Event) send protobuf bodies and
accept JSON answers, and client-go has no JSON fallback for protobuf (server-facts §8.6). So
the server decodes the envelope (magic ``k8s\\0`` + ``runtime.Unknown``) and, for the kinds
those clients send, the message itself, using the field numbers of upstream's
``generated.proto`` (k8s.io/api and apimachinery v0.37). Responses stay JSON, which every
client-go accepts. Unknown fields are skipped, as protobuf requires; kinds without a schema
here get a 415 that says to use JSON.

Go's generated marshallers always write non-pointer scalars, so a zero ("", 0, false) on the
wire means "unset" unless the Go field is a pointer: like upstream's JSON encoder (the
fields are ``omitempty``), the decoder drops such zeros and keeps them only for fields
marked as pointers here, so a protobuf body decodes to the object client-go sends as JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from kubeboot.clock import format_micro_time, format_time
from kubeboot.resources.status import BadRequest, UnsupportedMediaType

__all__ = ["PROTOBUF", "decode_protobuf_object"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# A schema maps field number -> (json name, kind); kind is "string", "bytes", "int",
# "bool", "time" (metav1.Time: whole seconds), "microtime" (metav1.MicroTime), "map",
# "bytesmap" (map<string, bytes>), "quantitymap" (map<string, resource.Quantity>), "extra"
# (map<string, ExtraValue>), "strings" (repeated string), or a nested schema name; a "[]"
# suffix marks a repeated message field. A "*" suffix on "string", "int" or "bool" marks a
# Go pointer (``*string``...), whose zero value is meaningful and kept.
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
        9: ("deletionTimestamp", "time"),
        10: ("deletionGracePeriodSeconds", "int*"),
        11: ("labels", "map"),
        12: ("annotations", "map"),
        13: ("ownerReferences", "OwnerReference[]"),
        14: ("finalizers", "strings"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool*"),
        7: ("blockOwnerDeletion", "bool*"),
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
        8: ("expirationSeconds", "int*"),
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
        4: ("immutable", "bool*"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "bytesmap"),
        3: ("type", "string"),
        4: ("stringData", "map"),
        5: ("immutable", "bool*"),
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
    # core/v1 Node, as a kubelet registers it and updates its status.
    "Node": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "NodeSpec"),
        3: ("status", "NodeStatus"),
    },
    "NodeSpec": {
        1: ("podCIDR", "string"),
        2: ("externalID", "string"),
        3: ("providerID", "string"),
        4: ("unschedulable", "bool"),
        5: ("taints", "Taint[]"),
        6: ("configSource", "NodeConfigSource"),
        7: ("podCIDRs", "strings"),
        8: ("podPreemptionPolicy", "NodePodPreemptionPolicy"),
    },
    "NodePodPreemptionPolicy": {1: ("disableResizePreemption", "strings")},
    "Taint": {
        1: ("key", "string"),
        2: ("value", "string"),
        3: ("effect", "string"),
        4: ("timeAdded", "time"),
    },
    "NodeConfigSource": {2: ("configMap", "ConfigMapNodeConfigSource")},
    "ConfigMapNodeConfigSource": {
        1: ("namespace", "string"),
        2: ("name", "string"),
        3: ("uid", "string"),
        4: ("resourceVersion", "string"),
        5: ("kubeletConfigKey", "string"),
    },
    "NodeStatus": {
        1: ("capacity", "quantitymap"),
        2: ("allocatable", "quantitymap"),
        3: ("phase", "string"),
        4: ("conditions", "NodeCondition[]"),
        5: ("addresses", "NodeAddress[]"),
        6: ("daemonEndpoints", "NodeDaemonEndpoints"),
        7: ("nodeInfo", "NodeSystemInfo"),
        8: ("images", "ContainerImage[]"),
        9: ("volumesInUse", "strings"),
        10: ("volumesAttached", "AttachedVolume[]"),
        11: ("config", "NodeConfigStatus"),
        12: ("runtimeHandlers", "NodeRuntimeHandler[]"),
        13: ("features", "NodeFeatures"),
        14: ("declaredFeatures", "strings"),
    },
    "NodeCondition": {
        1: ("type", "string"),
        2: ("status", "string"),
        3: ("lastHeartbeatTime", "time"),
        4: ("lastTransitionTime", "time"),
        5: ("reason", "string"),
        6: ("message", "string"),
    },
    "NodeAddress": {1: ("type", "string"), 2: ("address", "string")},
    "NodeDaemonEndpoints": {1: ("kubeletEndpoint", "DaemonEndpoint")},
    "DaemonEndpoint": {1: ("Port", "int")},
    "NodeSystemInfo": {
        1: ("machineID", "string"),
        2: ("systemUUID", "string"),
        3: ("bootID", "string"),
        4: ("kernelVersion", "string"),
        5: ("osImage", "string"),
        6: ("containerRuntimeVersion", "string"),
        7: ("kubeletVersion", "string"),
        8: ("kubeProxyVersion", "string"),
        9: ("operatingSystem", "string"),
        10: ("architecture", "string"),
        11: ("swap", "NodeSwapStatus"),
        12: ("runningInUserNamespace", "bool*"),
    },
    "NodeSwapStatus": {1: ("capacity", "int*")},
    "ContainerImage": {1: ("names", "strings"), 2: ("sizeBytes", "int")},
    "AttachedVolume": {1: ("name", "string"), 2: ("devicePath", "string")},
    "NodeConfigStatus": {
        1: ("assigned", "NodeConfigSource"),
        2: ("active", "NodeConfigSource"),
        3: ("lastKnownGood", "NodeConfigSource"),
        4: ("error", "string"),
    },
    "NodeRuntimeHandler": {1: ("name", "string"), 2: ("features", "NodeRuntimeHandlerFeatures")},
    "NodeRuntimeHandlerFeatures": {
        1: ("recursiveReadOnlyMounts", "bool*"),
        2: ("userNamespaces", "bool*"),
    },
    "NodeFeatures": {1: ("supplementalGroupsPolicy", "bool*")},
    # coordination.k8s.io/v1 Lease: the kubelet's node heartbeat in kube-node-lease.
    "Lease": {1: ("metadata", "ObjectMeta"), 2: ("spec", "LeaseSpec")},
    "LeaseSpec": {
        1: ("holderIdentity", "string*"),
        2: ("leaseDurationSeconds", "int*"),
        3: ("acquireTime", "microtime"),
        4: ("renewTime", "microtime"),
        5: ("leaseTransitions", "int*"),
        6: ("strategy", "string*"),
        7: ("preferredHolder", "string*"),
    },
    # core/v1 Event, as client-go's tools/record writes it for the kubelet.
    "Event": {
        1: ("metadata", "ObjectMeta"),
        2: ("involvedObject", "ObjectReference"),
        3: ("reason", "string"),
        4: ("message", "string"),
        5: ("source", "EventSource"),
        6: ("firstTimestamp", "time"),
        7: ("lastTimestamp", "time"),
        8: ("count", "int"),
        9: ("type", "string"),
        10: ("eventTime", "microtime"),
        11: ("series", "EventSeries"),
        12: ("action", "string"),
        13: ("related", "ObjectReference"),
        14: ("reportingComponent", "string"),
        15: ("reportingInstance", "string"),
    },
    "ObjectReference": {
        1: ("kind", "string"),
        2: ("namespace", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("resourceVersion", "string"),
        7: ("fieldPath", "string"),
    },
    "EventSource": {1: ("component", "string"), 2: ("host", "string")},
    "EventSeries": {1: ("count", "int"), 2: ("lastObservedTime", "microtime")},
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "Time": {1: ("seconds", "int*"), 2: ("nanos", "int")},
    "MapEntry": {1: ("key", "string"), 2: ("value", "string")},
    "BytesMapEntry": {1: ("key", "string"), 2: ("value", "bytes")},
    "QuantityMapEntry": {1: ("key", "string"), 2: ("value", "Quantity")},
    "Quantity": {1: ("string", "string")},
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


def _message(data: bytes, schema_name: str) -> dict[str, Any]:
    schema = _SCHEMAS[schema_name]
    obj: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        pointer = kind.endswith("*")
        kind = kind.removesuffix("*")
        if kind == "int":
            if isinstance(value, int) and (value or pointer):
                obj[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            if isinstance(value, int) and (value or pointer):
                obj[name] = bool(value)
        elif not isinstance(value, bytes):
            continue
        elif kind == "string":
            if value or pointer:
                obj[name] = _text(value)
        elif kind == "bytes":
            obj[name] = base64.b64encode(value).decode()
        elif kind == "strings":
            obj.setdefault(name, []).append(_text(value))
        elif kind == "time":
            t = _message(value, "Time")
            if "seconds" in t:  # an empty Time message is Go's zero time: unset
                obj[name] = format_time(_timestamp(name, t["seconds"], 0))
        elif kind == "microtime":
            t = _message(value, "Time")
            if "seconds" in t:  # Go truncates MicroTime to microseconds before marshalling
                obj[name] = format_micro_time(_timestamp(name, t["seconds"], t.get("nanos", 0)))
        elif kind == "map":
            entry = _message(value, "MapEntry")
            obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "bytesmap":
            entry = _message(value, "BytesMapEntry")
            obj.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif kind == "quantitymap":
            entry = _message(value, "QuantityMapEntry")
            quantity = (entry.get("value") or {}).get("string", "")
            obj.setdefault(name, {})[entry.get("key", "")] = quantity
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
