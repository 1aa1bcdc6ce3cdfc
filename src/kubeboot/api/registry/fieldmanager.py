"""``metadata.managedFields`` for Update operations, as kube-apiserver's field manager (pure).

Every create, update and patch records which fields its manager set. The manager is the
``fieldManager`` query parameter, else the User-Agent up to its first ``/`` (``kubectl``),
else ``unknown``. The algorithm is structured-merge-diff's, on the objects' Go shape
(:func:`kubeboot.resources.goshape.go_shape`; the request object after decode-time
defaulting, before the strategy), with the schema's list and map semantics:

1. compare the live object (empty for a create) with the new one: paths **added**,
   **modified**, **removed** (a list or map present on one side only counts as a path too;
   atomic lists and maps, and containers empty on both sides, are leaves);
2. drop the fields the subresource resets (``status`` on a main-resource write, ``spec`` on
   ``/status``, ...) from the comparison;
3. every manager loses the paths that changed or went away; managers left with nothing are
   dropped;
4. the writer's set gains what it added or modified (without ``apiVersion``, ``kind``,
   ``metadata`` and the server-owned metadata fields); when it gained anything its entry's
   ``time`` is now, otherwise its entry (and time) stay as they were;
5. entries are written sorted by operation, time, manager, apiVersion, subresource.

An update of an object that has no managedFields (one created owning nothing, such as a
Node with only a name) tracks nothing, as upstream's skipNonApplied step.

A client's own ``managedFields`` in an update body replace the stored ones (how they are
reset); an empty list keeps the stored ones, as upstream. Server-side apply (operation
``Apply``) is :mod:`.apply`, on the same comparison and entries.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from kubeboot.api.registry.fieldset import FieldSet
from kubeboot.clock import format_time
from kubeboot.resources.goshape import go_shape
from kubeboot.resources.schema import Field, ListOf, MapOf, Scalar, Struct, Type

__all__ = [
    "RESET",
    "STRIPPED",
    "Comparison",
    "ManagedEntry",
    "compare",
    "decode_entries",
    "encode_entries",
    "list_shape",
    "manager_name",
    "update_managed_fields",
]

JsonObj = dict[str, Any]
_ABSENT = object()
_MAX_UPDATE_MANAGERS = 10
# What the writer's set never holds (stripMeta), exact paths.
STRIPPED = FieldSet.of(
    [("f:apiVersion",), ("f:kind",), ("f:metadata",)]
    + [
        ("f:metadata", f"f:{name}")
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    ]
)
# Fields a write to (resource, subresource) does not own: upstream's GetResetFields.
RESET: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("namespaces", ""): (("f:status",),),
    ("namespaces", "status"): (("f:spec",),),
    ("namespaces", "finalize"): (("f:status",),),
    ("nodes", ""): (("f:status",),),
    ("nodes", "status"): (("f:spec",),),
    ("certificatesigningrequests", ""): (("f:spec",), ("f:status",)),
    ("certificatesigningrequests", "status"): (("f:spec",), ("f:status", "f:conditions")),
    ("certificatesigningrequests", "approval"): (("f:spec",), ("f:status", "f:certificate")),
}


def manager_name(field_manager: str | None, user_agent: str) -> str:
    """upstream's managerOrUserAgent, with ``unknown`` for neither."""
    return field_manager or user_agent.split("/", 1)[0] or "unknown"


@dataclass
class Comparison:
    added: FieldSet
    modified: FieldSet
    removed: FieldSet


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def list_shape(t: ListOf, field: Field | None) -> tuple[str, tuple[str, ...]]:
    """("atomic"|"set"|"map", keys): the list type, or as the patch strategy implies."""
    if t.list_type in ("atomic", "set"):
        return t.list_type, ()
    if t.list_type == "map":
        return "map", t.map_keys
    if field is not None and "merge" in field.patch_strategy:
        if field.patch_merge_key:
            return "map", (field.patch_merge_key,)
        return "set", ()
    return "atomic", ()


def _is_empty(v: Any) -> bool:
    return v is _ABSENT or v is None or (isinstance(v, dict | list) and not v)


class _Walker:
    def __init__(self) -> None:
        self.cmp = Comparison(FieldSet(), FieldSet(), FieldSet())

    def leaf(self, path: tuple[str, ...], lhs: Any, rhs: Any) -> None:
        if lhs is _ABSENT:
            self.cmp.added.insert(path)
        elif rhs is _ABSENT:
            self.cmp.removed.insert(path)
        elif lhs != rhs:
            self.cmp.modified.insert(path)

    def walk(self, path: tuple[str, ...], lhs: Any, rhs: Any, t: Type, field: Field | None) -> None:
        container = False
        if isinstance(t, Scalar):
            self.leaf(path, lhs, rhs)
        elif isinstance(t, ListOf):
            shape, keys = list_shape(t, field)
            if shape == "atomic" or (_is_empty(lhs) and _is_empty(rhs)):
                self.leaf(path, lhs, rhs)
            else:
                container = True
                self._items(path, lhs, rhs, t, shape, keys)
        else:
            atomic = (isinstance(t, Struct | MapOf) and t.map_type == "atomic") or (
                _is_empty(lhs) and _is_empty(rhs)
            )
            if atomic or not (isinstance(lhs, dict) or isinstance(rhs, dict)):
                self.leaf(path, lhs, rhs)
            else:
                container = True
                self._map(path, lhs, rhs, t)
        if container and path:
            if lhs is _ABSENT:
                self.cmp.added.insert(path)
            elif rhs is _ABSENT:
                self.cmp.removed.insert(path)

    def _map(self, path: tuple[str, ...], lhs: Any, rhs: Any, t: Type) -> None:
        left = lhs if isinstance(lhs, dict) else {}
        right = rhs if isinstance(rhs, dict) else {}
        for key in [*left, *(k for k in right if k not in left)]:
            child: Type
            field: Field | None = None
            if isinstance(t, Struct):
                field = t.by_name.get(key)
                if field is None:
                    continue  # unknown to the schema: Go's shape has none
                child = field.type
            else:
                assert isinstance(t, MapOf)
                child = t.value
            self.walk(
                (*path, f"f:{key}"), left.get(key, _ABSENT), right.get(key, _ABSENT), child, field
            )

    def _items(
        self,
        path: tuple[str, ...],
        lhs: Any,
        rhs: Any,
        t: ListOf,
        shape: str,
        keys: tuple[str, ...],
    ) -> None:
        def element(item: Any) -> str:
            if shape == "map" and isinstance(item, dict):
                return "k:" + _json({k: item.get(k) for k in sorted(keys) if k in item})
            return "v:" + _json(item)

        left: dict[str, Any] = {}
        for item in lhs if isinstance(lhs, list) else []:
            left.setdefault(element(item), item)
        right: dict[str, Any] = {}
        for item in rhs if isinstance(rhs, list) else []:
            right.setdefault(element(item), item)
        for pe in [*left, *(p for p in right if p not in left)]:
            self.walk((*path, pe), left.get(pe, _ABSENT), right.get(pe, _ABSENT), t.item, None)


def compare(lhs: JsonObj, rhs: JsonObj, struct: Struct) -> Comparison:
    """structured-merge-diff's Compare of two Go-shaped objects of one kind."""
    walker = _Walker()
    walker.walk((), lhs, rhs, struct, None)
    return walker.cmp


@dataclass
class ManagedEntry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: FieldSet

    @property
    def key(self) -> tuple[str, str, str, str]:
        # Appliers are one manager whatever apiVersion they apply (BuildManagerIdentifier).
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def encode(self) -> JsonObj:
        out: JsonObj = {"manager": self.manager, "operation": self.operation}
        out["apiVersion"] = self.api_version
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self.fields.to_fields_v1()
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def decode_entries(entries: Any) -> list[ManagedEntry] | None:
    """The stored/sent entries, or None when they are not valid managedFields."""
    if not isinstance(entries, list):
        return None
    out: list[ManagedEntry] = []
    try:
        for e in entries:
            if not isinstance(e, dict) or e.get("operation") not in ("Apply", "Update"):
                return None
            if not e.get("apiVersion") or e.get("fieldsType") != "FieldsV1":
                return None
            out.append(
                ManagedEntry(
                    str(e.get("manager") or ""),
                    str(e["operation"]),
                    str(e["apiVersion"]),
                    str(e.get("subresource") or ""),
                    e.get("time"),
                    FieldSet.from_fields_v1(e.get("fieldsV1") or {}),
                )
            )
    except ValueError:
        return None
    return out


def _sort_key(e: ManagedEntry) -> tuple[str, str, str, str, str]:
    return (e.operation, e.time or "", e.manager, e.api_version, e.subresource)


def _cap_updaters(entries: list[ManagedEntry], api_version: str) -> list[ManagedEntry]:
    """Past ten Update managers, the oldest merge into ``ancient-changes`` (capManagers)."""
    updaters = sorted((e for e in entries if e.operation == "Update"), key=_sort_key)
    if len(updaters) <= _MAX_UPDATE_MANAGERS:
        return entries
    excess = updaters[: len(updaters) - _MAX_UPDATE_MANAGERS + 1]
    merged = FieldSet()
    for e in excess:
        merged = merged.union(e.fields)
    kept = [e for e in entries if e not in excess]
    kept.append(ManagedEntry("ancient-changes", "Update", api_version, "", excess[-1].time, merged))
    return kept


def update_managed_fields(
    live: JsonObj | None,
    new: JsonObj,
    struct: Struct,
    *,
    manager: str,
    resource: str,
    subresource: str,
    api_version: str,
    now: dt.datetime,
) -> list[JsonObj]:
    """The managedFields ``new`` gets when ``manager`` writes it over ``live`` (None: create)."""
    sent = decode_entries((new.get("metadata") or {}).get("managedFields"))
    stored = decode_entries(((live or {}).get("metadata") or {}).get("managedFields")) or []
    entries = sent if sent and not subresource else stored
    if live is not None and not entries:
        return []  # an object nobody tracks stays untracked (skipNonApplied)
    lhs = go_shape(_without_managed_fields(live or {"metadata": {}}), struct)
    rhs = go_shape(_without_managed_fields(new), struct)
    cmp = compare(lhs, rhs, struct)
    reset = FieldSet.of(RESET.get((resource, subresource), ()))
    changed = cmp.added.union(cmp.modified).recursive_difference(reset)
    gone = cmp.removed.recursive_difference(reset).union(changed)
    kept: list[ManagedEntry] = []
    for e in entries:
        e.fields = e.fields.difference(gone)
        if not e.fields.empty():
            kept.append(e)
    mine = changed.difference(STRIPPED)
    if not mine.empty():
        me = ManagedEntry(manager, "Update", api_version, subresource, format_time(now), mine)
        previous = next((e for e in kept if e.key == me.key), None)
        if previous is not None:
            me.fields = me.fields.union(previous.fields)
            kept.remove(previous)
        kept.append(me)
    return encode_entries(_cap_updaters(kept, api_version))


def encode_entries(entries: list[ManagedEntry]) -> list[JsonObj]:
    """The entries in upstream's order: operation, time, manager, apiVersion, subresource."""
    return [e.encode() for e in sorted(entries, key=_sort_key)]


def _without_managed_fields(obj: JsonObj) -> JsonObj:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        meta = {k: v for k, v in meta.items() if k != "managedFields"}
        return {**obj, "metadata": meta}
    return obj
