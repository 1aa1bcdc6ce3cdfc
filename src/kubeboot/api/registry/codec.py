"""Objects ⇄ stored bytes. ``metadata.resourceVersion`` is never stored: it *is* the key's
mod revision, set on every read (design rule 2), so it can never disagree with the store.

Also the one deep copy of API objects (:func:`copy_object`): they are JSON trees, so the copy
needs none of ``copy.deepcopy``'s memo and type dispatch.
"""

from __future__ import annotations

import copy
import json
from typing import Any, TypeVar, cast

from kubeboot.storage.interface import KeyValue

__all__ = ["copy_object", "decode", "decode_with_rv", "encode"]

_T = TypeVar("_T")
_SCALARS = (str, int, float, bool, type(None))


def encode(obj: dict[str, Any]) -> bytes:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
        obj = {**obj, "metadata": meta}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def decode(kv: KeyValue) -> dict[str, Any]:
    return decode_with_rv(kv.value, kv.mod_revision)


def decode_with_rv(value: bytes, revision: int) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


def copy_object(obj: _T) -> _T:
    """A deep copy of a JSON tree (dicts, lists, scalars), ~4x faster than ``copy.deepcopy``.

    The REST path copies every object it is handed or decodes a few times per write (a CSR
    join: ~10 copies), and ``deepcopy`` spent ~14 µs on a CSR where this spends ~3 µs.
    Anything that is not a JSON container or scalar (a YAML body's datetime, a tuple from an
    in-process caller) falls back to ``copy.deepcopy``, so the result is always independent
    of the argument. Shared sub-objects come out as separate copies, which JSON cannot tell
    apart.
    """
    return cast(_T, _copy(obj))


def _copy(obj: Any) -> Any:
    kind = type(obj)
    if kind is dict:
        return {k: v if type(v) in _SCALARS else _copy(v) for k, v in obj.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else _copy(v) for v in obj]
    if kind in _SCALARS:
        return obj
    return copy.deepcopy(obj)
