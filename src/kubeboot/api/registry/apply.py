"""Server-side apply (``application/apply-patch+yaml``), as structured-merge-diff's Apply (pure).

An applier sends the fields it wants to own (its *configuration*). The server:

1. merges the configuration over the live object, by the schema (maps and structs field by
   field, lists keyed by their map keys or set values item by item, atomic lists and maps
   replaced whole);
2. records the configuration's field set as the applier's (operation ``Apply``), without the
   fields the subresource resets and the server-owned metadata;
3. removes what the applier owned the last time and no longer sends, unless another manager
   owns it too;
4. refuses (409 ``Apply failed with N conflict(s)``, a ``FieldManagerConflict`` cause per
   field) a value that differs from one another manager owns, unless ``force=true``, which
   takes the field over;
5. every other manager loses the fields that changed or went away, as in an update.

Applying to an object that does not exist creates it. When nothing changes, nothing is
written and the applier's entry keeps its time.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kubeboot.api.registry.fieldmanager import (
    RESET,
    STRIPPED,
    ManagedEntry,
    compare,
    decode_entries,
    encode_entries,
    list_shape,
)
from kubeboot.api.registry.fieldset import FieldSet, path_element_order
from kubeboot.clock import format_time
from kubeboot.resources.goshape import go_shape
from kubeboot.resources.schema import Field, ListOf, MapOf, Scalar, Struct, Type
from kubeboot.resources.status import Conflict, FieldError

__all__ = ["apply_configuration", "config_field_set"]

JsonObj = dict[str, Any]


def _key_of(item: Any, shape: str, keys: tuple[str, ...]) -> str:
    if shape == "map" and isinstance(item, dict):
        chosen = {k: item.get(k) for k in sorted(keys) if k in item}
        return "k:" + json.dumps(chosen, separators=(",", ":"), sort_keys=True)
    return "v:" + json.dumps(item, separators=(",", ":"), sort_keys=True)


def _child_type(t: Type, key: str) -> tuple[Type | None, Field | None]:
    if isinstance(t, Struct):
        field = t.by_name.get(key)
        return (field.type if field else None), field
    if isinstance(t, MapOf):
        return t.value, None
    return None, None


def _atomic(t: Type, field: Field | None) -> bool:
    if isinstance(t, Scalar):
        return True
    if isinstance(t, ListOf):
        return list_shape(t, field)[0] == "atomic"
    return t.map_type == "atomic"


def config_field_set(config: Any, t: Type, field: Field | None = None) -> FieldSet:
    """The fields a configuration sets (structured-merge-diff's ToFieldSet)."""
    out = FieldSet()
    _collect(config, t, field, (), out)
    return out


def _collect(
    value: Any, t: Type, field: Field | None, path: tuple[str, ...], out: FieldSet
) -> None:
    if _atomic(t, field):
        out.insert(path)
        return
    if isinstance(t, ListOf):
        shape, keys = list_shape(t, field)
        for item in value if isinstance(value, list) else []:
            item_path = (*path, _key_of(item, shape, keys))
            _collect(item, t.item, None, item_path, out)
            out.insert(item_path)
        return
    if not isinstance(value, dict):
        out.insert(path)
        return
    for key, child in value.items():
        child_type, child_field = _child_type(t, key)
        if child_type is None:
            continue
        child_path = (*path, f"f:{key}")
        _collect(child, child_type, child_field, child_path, out)
        if child is None or child == {} or not isinstance(t, Struct):
            out.insert(child_path)


def _merge(lhs: Any, rhs: Any, t: Type, field: Field | None) -> Any:
    """``rhs`` (the configuration) over ``lhs`` (the live object)."""
    if _atomic(t, field) or not isinstance(lhs, dict | list) or rhs is None:
        return rhs
    if isinstance(t, ListOf):
        shape, keys = list_shape(t, field)
        if not isinstance(rhs, list) or not isinstance(lhs, list):
            return rhs
        by_key = {_key_of(i, shape, keys): i for i in rhs}
        out = []
        for item in lhs:
            k = _key_of(item, shape, keys)
            out.append(_merge(item, by_key.pop(k), t.item, None) if k in by_key else item)
        return out + [i for i in rhs if _key_of(i, shape, keys) in by_key]
    if not isinstance(rhs, dict) or not isinstance(lhs, dict):
        return rhs
    merged = dict(lhs)
    for key, value in rhs.items():
        child_type, child_field = _child_type(t, key)
        if child_type is None or key not in lhs:
            merged[key] = value
        else:
            merged[key] = _merge(lhs[key], value, child_type, child_field)
    return merged


def _remove(obj: Any, path: tuple[str, ...], t: Type, field: Field | None) -> None:
    """Delete the value at ``path`` from ``obj`` (in place), if it is there."""
    head, rest = path[0], path[1:]
    if isinstance(obj, dict) and head.startswith("f:"):
        key = head[2:]
        if key not in obj:
            return
        if not rest:
            del obj[key]
            return
        child_type, child_field = _child_type(t, key)
        if child_type is not None:
            _remove(obj[key], rest, child_type, child_field)
    elif isinstance(obj, list) and isinstance(t, ListOf):
        shape, keys = list_shape(t, field)
        for i, item in enumerate(obj):
            if _key_of(item, shape, keys) == head:
                if rest:
                    _remove(item, rest, t.item, None)
                else:
                    del obj[i]
                return


def _leaves(s: FieldSet, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The set's paths in structured-merge-diff's order (conflicts are listed in it)."""
    out = [(*prefix, m) for m in s.members]
    for pe, child in s.children.items():
        out += _leaves(child, (*prefix, pe))
    return sorted(out, key=lambda path: [path_element_order(pe) for pe in path])


def _path_text(path: tuple[str, ...]) -> str:
    """A path as structured-merge-diff prints it (``.data.a``, ``[type="Ready"]``)."""
    out = []
    for pe in path:
        kind, body = pe[:1], pe[2:]
        if kind == "f":
            out.append("." + body)
        elif kind == "k":
            fields = json.loads(body)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in fields.items()) + "]")
        else:
            out.append(f"[={body}]")
    return "".join(out)


def _conflict_error(conflicts: list[tuple[ManagedEntry, tuple[str, ...]]]) -> Conflict:
    def who(e: ManagedEntry) -> str:
        name = json.dumps(e.manager)
        if e.subresource:
            name += f" with subresource {json.dumps(e.subresource)}"
        if e.operation == "Update":  # the manager's key, which has no time
            name += f" using {e.api_version}"
        return name

    causes = [
        FieldError("FieldManagerConflict", _path_text(p), f"conflict with {who(e)}")
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {who(entry)}: {_path_text(path)}"
    else:
        lines = []
        for name in sorted({who(e) for e, _ in conflicts}):
            lines.append(f"conflicts with {name}:")
            lines += [f"- {_path_text(p)}" for e, p in conflicts if who(e) == name]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return Conflict(message, causes=causes)


def apply_configuration(
    live: JsonObj | None,
    config: JsonObj,
    struct: Struct,
    *,
    manager: str,
    resource: str,
    subresource: str,
    api_version: str,
    now: dt.datetime,
    force: bool,
) -> JsonObj:
    """The object ``manager``'s configuration makes of ``live`` (None: a create), with its
    managedFields; 409 on conflicts unless ``force``."""
    base = go_shape(live or {"metadata": {}}, struct)
    entries = decode_entries(((live or {}).get("metadata") or {}).get("managedFields")) or []
    merged: JsonObj = go_shape(_merge(base, config, struct, None), struct)
    reset = FieldSet.of(RESET.get((resource, subresource), ()))
    mine_now = config_field_set(config, struct).recursive_difference(reset).difference(STRIPPED)
    me = ManagedEntry(manager, "Apply", api_version, subresource, format_time(now), mine_now)
    previous = next((e for e in entries if e.key == me.key), None)
    others = [e for e in entries if e is not previous]
    if previous is not None:  # prune what this applier dropped and nobody else owns
        owned_elsewhere = FieldSet()
        for e in others:
            owned_elsewhere = owned_elsewhere.union(e.fields)
        for path in _leaves(previous.fields.difference(mine_now)):
            if not FieldSet.of([path]).difference(owned_elsewhere).empty():
                _remove(merged, path, struct, None)
    cmp = compare(base, merged, struct)
    changed = cmp.added.union(cmp.modified).recursive_difference(reset)
    conflicts = [
        (e, path)
        for e in others
        for path in _leaves(e.fields)
        if FieldSet.of([path]).difference(changed).empty()  # a path this apply changes
    ]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    gone = cmp.removed.recursive_difference(reset).union(changed)
    kept = []
    for e in others:
        e.fields = e.fields.difference(gone)
        if not e.fields.empty():
            kept.append(e)
    if previous is not None and merged == base and previous.fields == mine_now:
        me.time = previous.time  # a no-op apply keeps its entry as it was
    if not mine_now.empty():
        kept.append(me)
    merged.setdefault("metadata", {})["managedFields"] = encode_entries(kept)
    return merged
