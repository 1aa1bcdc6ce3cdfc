"""Server-side ``Table`` output for ``kubectl get`` (server-facts §8.3), upstream's columns.

Column sets follow kube-apiserver's printers (``pkg/printers/internalversion``); columns with
priority 1 appear only with ``-o wide``. Rows carry ``PartialObjectMetadata`` unless the client
asked for ``includeObject=Object``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kubeboot.clock import parse_time
from kubeboot.durations import human_duration
from kubeboot.resources.registry import ResourceInfo

__all__ = ["to_table", "wants_table"]

JsonObj = dict[str, Any]
Cell = Callable[[JsonObj, dt.datetime], Any]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _age(obj: JsonObj, now: dt.datetime) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    try:
        return human_duration(now - parse_time(created))
    except ValueError:
        return "<unknown>"


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
    roles = sorted(
        k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k
    )
    return ",".join(r for r in roles if r) or "<none>"


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
        names = [s.get("name", "") for s in obj.get("subjects") or [] if s.get("kind") == kind]
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
    return str((obj.get("metadata") or {}).get("creationTimestamp", ""))


def _event_object(obj: JsonObj, now: dt.datetime) -> str:
    ref = obj.get("involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_last_seen(obj: JsonObj, now: dt.datetime) -> str:
    when = (
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or (obj.get("metadata") or {}).get("creationTimestamp")
    )
    try:
        return human_duration(now - parse_time(str(when)))
    except ValueError:
        return "<unknown>"


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


# (name, type, format, priority, cell)
Column = tuple[str, str, str, int, Cell]
_NAME: Column = ("Name", "string", "name", 0, _name)
_AGE: Column = ("Age", "string", "", 0, _age)

_COLUMNS: dict[str, list[Column]] = {
    "namespaces": [_NAME, ("Status", "string", "", 0, _path("status", "phase")), _AGE],
    "secrets": [
        _NAME,
        ("Type", "string", "", 0, _path("type")),
        ("Data", "string", "", 0, _count_of("data")),
        _AGE,
    ],
    "configmaps": [_NAME, ("Data", "string", "", 0, _count_of("data", "binaryData")), _AGE],
    "nodes": [
        _NAME,
        ("Status", "string", "", 0, _node_status),
        ("Roles", "string", "", 0, _node_roles),
        _AGE,
        ("Version", "string", "", 0, _path("status", "nodeInfo", "kubeletVersion", default="")),
        ("Internal-IP", "string", "", 1, _node_address("InternalIP")),
        ("External-IP", "string", "", 1, _node_address("ExternalIP")),
    ],
    "events": [
        ("Last Seen", "string", "", 0, _event_last_seen),
        ("Type", "string", "", 0, _path("type", default="")),
        ("Reason", "string", "", 0, _path("reason", default="")),
        ("Object", "string", "", 0, _event_object),
        ("Message", "string", "", 0, _path("message", default="")),
    ],
    "certificatesigningrequests": [
        _NAME,
        _AGE,
        ("SignerName", "string", "", 0, _path("spec", "signerName")),
        ("Requestor", "string", "", 0, _path("spec", "username", default="")),
        ("RequestedDuration", "string", "", 0, _csr_duration),
        ("Condition", "string", "", 0, _csr_condition),
    ],
    "clusterroles": [_NAME, ("Created At", "date", "", 0, _created_at)],
    "roles": [_NAME, ("Created At", "date", "", 0, _created_at)],
    "clusterrolebindings": [
        _NAME,
        ("Role", "string", "", 0, _role_ref),
        _AGE,
        ("Users", "string", "", 1, _subjects("User")),
        ("Groups", "string", "", 1, _subjects("Group")),
        ("ServiceAccounts", "string", "", 1, _subjects("ServiceAccount")),
    ],
    "rolebindings": [
        _NAME,
        ("Role", "string", "", 0, _role_ref),
        _AGE,
        ("Users", "string", "", 1, _subjects("User")),
        ("Groups", "string", "", 1, _subjects("Group")),
        ("ServiceAccounts", "string", "", 1, _subjects("ServiceAccount")),
    ],
    "services": [
        _NAME,
        ("Type", "string", "", 0, _path("spec", "type")),
        ("Cluster-IP", "string", "", 0, _path("spec", "clusterIP")),
        ("External-IP", "string", "", 0, _service_external_ip),
        ("Port(s)", "string", "", 0, _service_ports),
        _AGE,
        ("Selector", "string", "", 1, _service_selector),
    ],
    "csinodes": [_NAME, ("Drivers", "integer", "", 0, _csinode_drivers), _AGE],
    "leases": [
        _NAME,
        ("Holder", "string", "", 0, _path("spec", "holderIdentity", default="")),
        _AGE,
    ],
}


def _row_object(obj: JsonObj, include_object: str) -> JsonObj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    res: ResourceInfo,
    items: list[JsonObj],
    now: dt.datetime,
    *,
    list_meta: JsonObj | None = None,
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> JsonObj:
    columns = _COLUMNS.get(res.plural, [_NAME, _AGE])
    rows = []
    for obj in items:
        row: JsonObj = {"cells": [col[4](obj, now) for col in columns]}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    table: JsonObj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "rows": rows,
    }
    if with_columns:
        table["columnDefinitions"] = [
            {"name": n, "type": t, "format": f, "description": n, "priority": p}
            for n, t, f, p, _ in columns
        ]
    else:
        table["columnDefinitions"] = None
    return table
