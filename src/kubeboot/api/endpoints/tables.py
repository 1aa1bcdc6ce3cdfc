"""Server-side ``Table`` output for ``kubectl get`` (server-facts §8.3), upstream's columns.

Column sets follow kube-apiserver's printers (``pkg/printers/internalversion``); columns with
priority 1 appear only with ``-o wide``. Rows carry ``PartialObjectMetadata`` unless the client
asked for ``includeObject=Object``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeboot.clock import format_time, parse_time
from kubeboot.durations import human_duration
from kubeboot.resources.registry import ResourceInfo

__all__ = ["Column", "columns_for", "partial_object_metadata", "to_table"]

JsonObj = dict[str, Any]
Cell = Callable[[JsonObj, dt.datetime], Any]
_INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _since(stamp: Any, now: dt.datetime) -> str:
    """translateTimestampSince: ``<unknown>`` for a zero (absent) time."""
    if not stamp:
        return "<unknown>"
    try:
        return human_duration(now - parse_time(str(stamp)))
    except ValueError:
        return "<unknown>"


def _age(obj: JsonObj, now: dt.datetime) -> str:
    return _since((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _name(obj: JsonObj, now: dt.datetime) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _csr_condition(obj: JsonObj, now: dt.datetime) -> str:
    status = obj.get("status") or {}
    types = {c.get("type") for c in status.get("conditions") or [] if isinstance(c, dict)}
    text = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        text += ",Failed"
    if status.get("certificate"):
        text += ",Issued"
    return text


def _csr_duration(obj: JsonObj, now: dt.datetime) -> str:
    seconds = (obj.get("spec") or {}).get("expirationSeconds")
    return human_duration(dt.timedelta(seconds=seconds)) if isinstance(seconds, int) else "<none>"


def _node_status(obj: JsonObj, now: dt.datetime) -> str:
    conds = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conds if c.get("type") == "Ready"), None)
    status = (
        "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    )
    if (obj.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(obj: JsonObj, now: dt.datetime) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")}
    if labels.get("kubernetes.io/role"):
        roles.add(str(labels["kubernetes.io/role"]))
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def _node_info(key: str) -> Cell:
    def cell(obj: JsonObj, now: dt.datetime) -> str:
        info = (obj.get("status") or {}).get("nodeInfo") or {}
        return str(info.get(key) or "<unknown>")

    return cell


def _node_kernel(obj: JsonObj, now: dt.datetime) -> str:
    info = (obj.get("status") or {}).get("nodeInfo") or {}
    kernel = str(info.get("kernelVersion") or "<unknown>")
    if info.get("architecture"):
        kernel += f" ({info['architecture']})"
    return kernel


def _node_address(kind: str) -> Cell:
    def cell(obj: JsonObj, now: dt.datetime) -> str:
        for a in (obj.get("status") or {}).get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address"))
        return "<none>"

    return cell


def _role_ref(obj: JsonObj, now: dt.datetime) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Cell:
    def cell(obj: JsonObj, now: dt.datetime) -> str:
        names = []
        for s in obj.get("subjects") or []:
            if s.get("kind") != kind:
                continue
            name = str(s.get("name", ""))
            # upstream's SubjectsStrings: a ServiceAccount is namespace/name when it has one
            if kind == "ServiceAccount" and s.get("namespace"):
                name = f"{s['namespace']}/{name}"
            names.append(name)
        return ", ".join(names)

    return cell


def _path(*keys: str, default: str = "<none>") -> Cell:
    def cell(obj: JsonObj, now: dt.datetime) -> Any:
        cur: Any = obj
        for k in keys:
            cur = cur.get(k) if isinstance(cur, dict) else None
        return default if cur in (None, "") else cur

    return cell


def _count_of(field: str, *more: str) -> Cell:
    def cell(obj: JsonObj, now: dt.datetime) -> int:
        return sum(len(obj.get(f) or {}) for f in (field, *more))

    return cell


def _created_at(obj: JsonObj, now: dt.datetime) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    try:
        return format_time(parse_time(str(created)))
    except ValueError:
        return "0001-01-01T00:00:00Z"  # Go's zero time, as the default convertor prints it


def _event_object(obj: JsonObj, now: dt.datetime) -> str:
    ref = obj.get("involvedObject") or {}
    kind = str(ref.get("kind", "")).lower()
    return f"{kind}/{ref['name']}" if ref.get("name") else kind


def _event_first_seen(obj: JsonObj, now: dt.datetime) -> str:
    if obj.get("firstTimestamp"):
        return _since(obj["firstTimestamp"], now)
    return _since(obj.get("eventTime"), now)


def _event_last_seen(obj: JsonObj, now: dt.datetime) -> str:
    series = obj.get("series")
    if isinstance(series, dict):
        return _since(series.get("lastObservedTime"), now)
    if obj.get("lastTimestamp"):
        return _since(obj["lastTimestamp"], now)
    return _event_first_seen(obj, now)


def _service_ports(obj: JsonObj, now: dt.datetime) -> str:
    ports = (obj.get("spec") or {}).get("ports") or []
    text = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports)
    return text or "<none>"


def _service_external_ip(obj: JsonObj, now: dt.datetime) -> str:
    return ",".join((obj.get("spec") or {}).get("externalIPs") or []) or "<none>"


def _service_selector(obj: JsonObj, now: dt.datetime) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _csinode_drivers(obj: JsonObj, now: dt.datetime) -> int:
    return len((obj.get("spec") or {}).get("drivers") or [])


def _event_count(obj: JsonObj, now: dt.datetime) -> int:
    series = obj.get("series")
    if isinstance(series, dict):
        return int(series.get("count") or 0)
    return int(obj.get("count") or 0) or 1  # singleton events have no count in the new API


def _event_source(obj: JsonObj, now: dt.datetime) -> str:
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else str(component)


def _event_message(obj: JsonObj, now: dt.datetime) -> str:
    return str(obj.get("message") or "").strip()


# Column descriptions are upstream's (the API types' field documentation), word for word:
# clients show them (`kubectl get -o wide` headers' help, API explorers).
_D_NAME = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_D_CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_D_ADDRESSES = (
    "List of addresses reachable to the node. Queried from cloud provider, if available. More "
    "info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field "
    "is declared as mergeable, but the merge key is not sufficiently unique, which can cause "
    "data corruption when it is merged. Callers should instead use a full-replacement patch. "
    "See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can "
    "change during the lifetime of a Node. However, there are some exceptions where this may "
    "not be possible, such as Pods that inherit a Node's address in its own status or "
    "consumers of the downward API (status.hostIP)."
)
_D_SIGNER = (
    "Requested signer for the request. It is a qualified name in the form: "
    "`scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client "
    'certificate, it is assigned\n    "kubernetes.io/kube-apiserver-client-kubelet".\n 2. If '
    "it's a kubelet serving certificate, it is assigned\n    "
    '"kubernetes.io/kubelet-serving".\n 3. Otherwise, it is assigned '
    '"kubernetes.io/legacy-unknown".\nDistribution of trust for signers happens out of band. '
    "You can select on this field using `spec.signerName`."
)
_D_EXPIRATION = (
    "expirationSeconds is the requested duration of validity of the issued certificate. The "
    "certificate signer may issue a certificate with a different validity duration so a client "
    "must check the delta between the notBefore and and notAfter fields in the issued "
    "certificate to determine the actual duration.\n\nThe v1.22+ in-tree implementations of "
    "the well-known Kubernetes signers will honor this field as long as the requested duration "
    "is not greater than the maximum duration they will honor per the "
    "--cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\nCertificate "
    "signers may not honor this field for various reasons:\n\n  1. Old signer that is unaware "
    "of the field (such as the in-tree\n     implementations prior to v1.22)\n  2. Signer "
    "whose configured maximum is shorter than the requested duration\n  3. Signer whose "
    "configured minimum is longer than the requested duration\n\nThe minimum valid value for "
    "expirationSeconds is 600, i.e. 10 minutes."
)
_D_FIELD_PATH = (
    "If referring to a piece of an object instead of an entire object, this string should "
    "contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. "
    "For example, if the object reference is to a container within a pod, this would take on a "
    'value like: "spec.containers{name}" (where "name" refers to the name of the container '
    'that triggered the event) or if no container name is specified "spec.containers[2]" '
    "(container with index 2 in this pod). This syntax is chosen only to have some "
    "well-defined way of referencing a part of an object."
)

_D_SERVICE_TYPE = (
    "type determines how the Service is exposed. Defaults to ClusterIP. Valid options "
    'are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a '
    "cluster-internal IP address for load-balancing to endpoints. Endpoints are "
    "determined by the selector or if that is not specified, by manual construction "
    'of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no '
    "virtual IP is allocated and the endpoints are published as a set of endpoints "
    'rather than a virtual IP. "NodePort" builds on ClusterIP and allocates a port on '
    'every node which routes to the same endpoints as the clusterIP. "LoadBalancer" '
    "builds on NodePort and creates an external load-balancer (if supported in the "
    "current cloud) which routes to the same endpoints as the clusterIP. "
    '"ExternalName" aliases this service to the specified externalName. Several other '
    "fields do not apply to ExternalName services. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"
)
_D_SERVICE_CLUSTERIP = (
    "clusterIP is the IP address of the service and is usually assigned randomly. If "
    "an address is specified manually, is in-range (as per system configuration), and "
    "is not in use, it will be allocated to the service; otherwise creation of the "
    "service will fail. This field may not be changed through updates unless the type "
    "field is also being changed to ExternalName (which requires this field to be "
    "blank) or the type field is being changed from ExternalName (in which case this "
    'field may optionally be specified, as describe above).  Valid values are "None", '
    'empty string (""), or a valid IP address. Setting this to "None" makes a '
    '"headless service" (no virtual IP), which is useful when direct endpoint '
    "connections are preferred and proxying is not required.  Only applies to types "
    "ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating "
    "a Service of type ExternalName, creation will fail. This field will be wiped "
    "when updating a Service to type ExternalName. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
)
_D_SERVICE_EXTERNALIPS = (
    "externalIPs is a list of IP addresses for which nodes in the cluster will also "
    "accept traffic for this service.  These IPs are not managed by Kubernetes.  The "
    "user is responsible for ensuring that traffic arrives at a node with this IP.  A "
    "common example is external load-balancers that are not part of the Kubernetes "
    "system."
)
_D_SERVICE_PORTS = (
    "The list of ports that are exposed by this service. More info: "
    "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
)
_D_SERVICE_SELECTOR = (
    "Route service traffic to pods with label keys and values matching this selector. "
    "If empty or not present, the service is assumed to have an external process "
    "managing its endpoints, which Kubernetes will not modify. Only applies to types "
    "ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More "
    "info: https://kubernetes.io/docs/concepts/services-networking/service/"
)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    description: str
    cell: Cell
    format: str = ""
    priority: int = 0

    def definition(self) -> JsonObj:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


_NAME = Column("Name", "string", _D_NAME, _name, format="name")
_AGE = Column("Age", "string", _D_CREATED, _age)
# rest.NewDefaultTableConvertor: kinds without a printer of their own.
_DEFAULT = [_NAME, Column("Created At", "date", _D_CREATED, _created_at)]


def _binding_columns(noun: str, role_doc: str) -> list[Column]:
    return [
        _NAME,
        Column("Role", "string", role_doc, _role_ref),
        _AGE,
        Column("Users", "string", f"Users in the {noun}", _subjects("User"), priority=1),
        Column("Groups", "string", f"Groups in the {noun}", _subjects("Group"), priority=1),
        Column(
            "ServiceAccounts",
            "string",
            f"ServiceAccounts in the {noun}",
            _subjects("ServiceAccount"),
            priority=1,
        ),
    ]


_COLUMNS: dict[str, list[Column]] = {
    "namespaces": [
        _NAME,
        Column(
            "Status",
            "string",
            "The status of the namespace",
            _path("status", "phase", default=""),
        ),
        _AGE,
    ],
    "secrets": [
        _NAME,
        Column(
            "Type",
            "string",
            "Used to facilitate programmatic handling of secret data. More info: "
            "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
            _path("type", default=""),
        ),
        Column(
            "Data",
            "string",
            "Data contains the secret data. Each key must consist of alphanumeric characters, "
            "'-', '_' or '.'. The serialized form of the secret data is a base64 encoded "
            "string, representing the arbitrary (possibly non-string) data value here. "
            "Described in https://tools.ietf.org/html/rfc4648#section-4",
            _count_of("data"),
        ),
        _AGE,
    ],
    "configmaps": [
        _NAME,
        Column(
            "Data",
            "string",
            "Data contains the configuration data. Each key must consist of alphanumeric "
            "characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the "
            "BinaryData field. The keys stored in Data must not overlap with the keys in the "
            "BinaryData field, this is enforced during validation process.",
            _count_of("data", "binaryData"),
        ),
        _AGE,
    ],
    "nodes": [
        _NAME,
        Column("Status", "string", "The status of the node", _node_status),
        Column("Roles", "string", "The roles of the node", _node_roles),
        _AGE,
        Column(
            "Version",
            "string",
            "Kubelet Version reported by the node.",
            _path("status", "nodeInfo", "kubeletVersion", default=""),
        ),
        Column("Internal-IP", "string", _D_ADDRESSES, _node_address("InternalIP"), priority=1),
        Column("External-IP", "string", _D_ADDRESSES, _node_address("ExternalIP"), priority=1),
        Column(
            "OS-Image",
            "string",
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 "
            "(wheezy)).",
            _node_info("osImage"),
            priority=1,
        ),
        Column(
            "Kernel-Version",
            "string",
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            _node_kernel,
            priority=1,
        ),
        Column(
            "Container-Runtime",
            "string",
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. "
            "containerd://1.4.2).",
            _node_info("containerRuntimeVersion"),
            priority=1,
        ),
    ],
    "events": [
        Column(
            "Last Seen",
            "string",
            "The time at which the most recent occurrence of this event was recorded.",
            _event_last_seen,
        ),
        Column(
            "Type",
            "string",
            "Type of this event (Normal, Warning), new types could be added in the future",
            _path("type", default=""),
        ),
        Column(
            "Reason",
            "string",
            "This should be a short, machine understandable string that gives the reason for "
            "the transition into the object's current status.",
            _path("reason", default=""),
        ),
        Column("Object", "string", "The object that this event is about.", _event_object),
        Column(
            "Subobject",
            "string",
            _D_FIELD_PATH,
            _path("involvedObject", "fieldPath", default=""),
            priority=1,
        ),
        Column(
            "Source",
            "string",
            "The component reporting this event. Should be a short machine understandable string.",
            _event_source,
            priority=1,
        ),
        Column(
            "Message",
            "string",
            "A human-readable description of the status of this operation.",
            _event_message,
        ),
        Column(
            "First Seen",
            "string",
            "The time at which the event was first recorded. (Time of server receipt is in "
            "TypeMeta.)",
            _event_first_seen,
            priority=1,
        ),
        Column(
            "Count",
            "string",
            "The number of times this event has occurred.",
            _event_count,
            priority=1,
        ),
        Column("Name", "string", _D_NAME, _name, format="name", priority=1),
    ],
    "certificatesigningrequests": [
        _NAME,
        _AGE,
        Column("SignerName", "string", _D_SIGNER, _path("spec", "signerName")),
        Column(
            "Requestor",
            "string",
            "Base64-encoded PKCS#10 CSR data",
            _path("spec", "username", default=""),
        ),
        Column("RequestedDuration", "string", _D_EXPIRATION, _csr_duration),
        Column(
            "Condition",
            "string",
            "Conditions applied to the request, such as approval or denial.",
            _csr_condition,
        ),
    ],
    "clusterrolebindings": _binding_columns(
        "clusterRoleBinding",
        "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef "
        "cannot be resolved, the Authorizer must return an error.",
    ),
    "rolebindings": _binding_columns(
        "roleBinding",
        "roleRef can reference a Role in the current namespace or a ClusterRole in the global "
        "namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    "services": [
        _NAME,
        Column("Type", "string", _D_SERVICE_TYPE, _path("spec", "type", default="")),
        Column(
            "Cluster-IP", "string", _D_SERVICE_CLUSTERIP, _path("spec", "clusterIP", default="")
        ),
        Column("External-IP", "string", _D_SERVICE_EXTERNALIPS, _service_external_ip),
        Column("Port(s)", "string", _D_SERVICE_PORTS, _service_ports),
        _AGE,
        Column("Selector", "string", _D_SERVICE_SELECTOR, _service_selector, priority=1),
    ],
    "csinodes": [
        _NAME,
        Column(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
            _csinode_drivers,
        ),
        _AGE,
    ],
    "leases": [
        _NAME,
        Column(
            "Holder",
            "string",
            "holderIdentity contains the identity of the holder of a current lease. If "
            "Coordinated Leader Election is used, the holder identity must be equal to the "
            "elected LeaseCandidate.metadata.name field.",
            _path("spec", "holderIdentity", default=""),
        ),
        _AGE,
    ],
    "serviceaccounts": [_NAME, _AGE],
    # kubeboot's own kinds (docs/beyond-upstream.md), as a CRD's additionalPrinterColumns.
    "issuedcertificates": [
        _NAME,
        Column("Node", "string", "The node the certificate names.", _path("spec", "nodeName")),
        Column("Signer", "string", "The signer that issued it.", _path("spec", "signerName")),
        Column("Not After", "date", "End of validity.", _path("spec", "notAfter")),
        Column(
            "CSR", "string", "The request it was issued for.", _path("spec", "csrName"), priority=1
        ),
        Column(
            "Source",
            "string",
            "Address the CSR came from.",
            _path("spec", "sourceAddress"),
            priority=1,
        ),
        _AGE,
    ],
    "certificaterevocations": [
        _NAME,
        Column("Node", "string", "The node the certificate names.", _path("spec", "nodeName")),
        Column("Reason", "string", "Why it was revoked.", _path("spec", "reason")),
        Column("Revoked By", "string", "Who revoked it.", _path("spec", "revokedBy")),
        _AGE,
    ],
}


def columns_for(res: ResourceInfo) -> list[Column]:
    """The printed columns of a resource (upstream's printer, or the default convertor's)."""
    return _COLUMNS.get(res.plural, _DEFAULT)


def partial_object_metadata(obj: JsonObj, api_version: str = "meta.k8s.io/v1") -> JsonObj:
    """meta.AsPartialObjectMetadata: the object's metadata and nothing else."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": obj.get("metadata") or {},
    }


def _row_object(obj: JsonObj, include_object: str, api_version: str) -> JsonObj | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if include_object == "Object":
        return obj
    if include_object in ("Metadata", "") or annotations.get(_INITIAL_EVENTS_END) == "true":
        return partial_object_metadata(obj, api_version)
    return None  # includeObject=None: the row's object is null


def to_table(
    res: ResourceInfo,
    items: list[JsonObj],
    now: dt.datetime,
    *,
    list_meta: JsonObj | None = None,
    include_object: str = "Metadata",
    with_columns: bool = True,
    api_version: str = "meta.k8s.io/v1",
) -> JsonObj:
    """A ``Table`` of ``items``: rows in order, every column (wide ones carry priority 1).

    ``list_meta`` is the list's metadata, or ``{"resourceVersion": ...}`` of a single object;
    ``with_columns=False`` leaves ``columnDefinitions`` null, as upstream does for every watch
    event after the first.
    """
    columns = columns_for(res)
    rows = []
    for obj in items:
        row: JsonObj = {"cells": [col.cell(obj, now) for col in columns]}
        row["object"] = _row_object(obj, include_object, api_version)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": list_meta or {},
        "columnDefinitions": [c.definition() for c in columns] if with_columns else None,
        "rows": rows,
    }
