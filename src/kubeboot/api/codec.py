"""Objects ⇄ stored bytes. ``metadata.resourceVersion`` is never stored: it *is* the key's
mod revision, set on every read (design rule 2), so it can never disagree with the store."""

from __future__ import annotations

import json
from typing import Any

from kubeboot.storage.interface import KeyValue

__all__ = ["decode", "decode_with_rv", "encode"]


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
