"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch.

Strategic merge patch is what ``kubectl apply`` sends for built-in kinds. For the resources
served here it differs from a merge patch only where the Go types declare a patch strategy;
those lists are in ``_MERGE_KEYS`` (merge by key) and ``_MERGE_PRIMITIVES`` (set union).
Every other list is replaced whole. Directive keys (``$patch``, ``$setElementOrder/…``,
``$deleteFromPrimitiveList/…``, ``$retainKeys``) are honoured or dropped, never stored.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from kubeboot.resources.status import (
    BadRequest,
    Invalid,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

__all__ = ["PATCH_CONTENT_TYPES", "apply_patch"]

log = logging.getLogger("kubeboot.api")

PATCH_CONTENT_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}

# Paths (dot-joined field names from the object root) of lists merged by a key field.
_MERGE_KEYS: dict[str, str] = {
    "metadata.ownerReferences": "uid",
    "status.conditions": "type",
    "status.addresses": "type",
    "spec.taints": "key",
    "status.images": "names",
}
# Lists of scalars merged as sets (``patchStrategy:"merge"`` on a []string).
_MERGE_PRIMITIVES = {"metadata.finalizers", "spec.podCIDRs"}


def apply_patch(original: dict[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """Return a new object; ``original`` is never modified."""
    if patch_type == "merge":
        if not isinstance(patch, dict):
            raise BadRequest("a JSON merge patch must be a JSON object")
        result = _merge_patch(original, patch)
    elif patch_type == "json":
        result = _json_patch(original, patch)
    elif patch_type == "strategic":
        if not isinstance(patch, dict):
            raise BadRequest("a strategic merge patch must be a JSON object")
        result = _strategic(original, patch, "")
    else:  # apply patches are not patches: RestService.patch hands them to registry.apply
        raise UnsupportedMediaType(f"{patch_type} is not a patch type apply_patch applies")
    if not isinstance(result, dict):
        raise BadRequest("the patch must produce a JSON object")
    return result


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _strategic(target: Any, patch: dict[str, Any], path: str) -> Any:
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if key.startswith("$"):
            continue  # $setElementOrder/…, $retainKeys: ordering hints only
        child = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _strategic(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and child in _MERGE_KEYS:
            result[key] = _merge_keyed_list(result.get(key), value, _MERGE_KEYS[child], child)
        elif isinstance(value, list) and child in _MERGE_PRIMITIVES:
            existing = result.get(key) if isinstance(result.get(key), list) else []
            assert isinstance(existing, list)
            result[key] = existing + [v for v in value if v not in existing]
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_keyed_list(target: Any, patch: list[Any], merge_key: str, path: str) -> list[Any]:
    items = [copy.deepcopy(i) for i in target] if isinstance(target, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    for element in patch:
        if not isinstance(element, dict) or merge_key not in element:
            raise BadRequest(f"strategic merge patch: every element of {path} needs {merge_key!r}")
        index = next(
            (
                i
                for i, it in enumerate(items)
                if isinstance(it, dict) and it.get(merge_key) == element[merge_key]
            ),
            None,
        )
        if element.get("$patch") == "delete":
            if index is not None:
                items.pop(index)
            continue
        if index is None:
            items.append(_strategic({}, element, path))
        else:
            items[index] = _strategic(items[index], element, path)
    return items


# kube-apiserver's bounds on a JSON patch: operations (patch.go) and bytes that "copy"
# operations may add (--json-patch-max-copy-bytes, 3 MiB): doubling the document with a
# copy per operation would otherwise grow it past any memory.
MAX_JSON_PATCH_OPERATIONS = 10000
MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024


def _json_patch(document: dict[str, Any], operations: Any) -> Any:
    if not isinstance(operations, list):
        raise BadRequest("a JSON patch must be a JSON array of operations")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLarge(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}"
        )
    doc: Any = copy.deepcopy(document)
    copied = 0
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise BadRequest(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _pointer_set(doc, path, copy.deepcopy(_value(op)), insert=True)
        elif kind == "remove":
            doc, _ = _pointer_remove(doc, path)
        elif kind == "replace":
            _pointer_get(doc, path)
            doc = _pointer_set(doc, path, copy.deepcopy(_value(op)), insert=False)
        elif kind == "move":
            doc, moved = _pointer_remove(doc, op.get("from", ""))
            doc = _pointer_set(doc, path, moved, insert=True)
        elif kind == "copy":
            value = _pointer_get(doc, op.get("from", ""))
            copied += len(json.dumps(value, separators=(",", ":"), default=str))
            if copied > MAX_JSON_PATCH_COPY_BYTES:
                raise _json_patch_failed(
                    "Unable to complete the copy, the accumulated size increase of copy is "
                    f"{copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
                )
            doc = _pointer_set(doc, path, copy.deepcopy(value), insert=True)
        elif kind == "test":
            if _pointer_get(doc, path) != _value(op):
                raise _json_patch_failed(f"the JSON patch test operation failed at {path}")
        else:
            raise BadRequest(f"unknown JSON patch operation {kind!r}")
    return doc


def _json_patch_failed(detail: str) -> Invalid:
    """Upstream answers any failure to apply a JSON patch with the generic 422 (its text does
    not carry the detail); the detail goes to the log."""
    log.info("JSON patch not applied: %s", detail)
    return Invalid(
        "the server rejected our request due to an error in our request", empty_details=True
    )


def _value(op: dict[str, Any]) -> Any:
    if "value" not in op:
        raise BadRequest(f"JSON patch operation {op['op']!r} at {op['path']} needs a value")
    return op["value"]


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(f"invalid JSON pointer {path!r}: it must start with /")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _container(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for t in tokens:
        cur = _child(cur, t, path)
    return cur


def _child(cur: Any, token: str, path: str) -> Any:
    if isinstance(cur, dict):
        if token not in cur:
            raise _json_patch_failed(f"the JSON patch path {path} does not exist")
        return cur[token]
    if isinstance(cur, list):
        index = _index(token, len(cur) - 1, path)
        return cur[index]
    raise _json_patch_failed(f"the JSON patch path {path} does not exist")


def _index(token: str, maximum: int, path: str) -> int:
    if not token.isdigit() or int(token) > maximum:
        raise _json_patch_failed(f"the JSON patch path {path} has an invalid array index {token!r}")
    return int(token)


def _pointer_get(doc: Any, path: str) -> Any:
    return _container(doc, _tokens(path), path)


def _pointer_set(doc: Any, path: str, value: Any, *, insert: bool) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    parent = _container(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-" and insert:
            parent.append(value)
        elif insert:
            parent.insert(_index(last, len(parent), path), value)
        else:
            parent[_index(last, len(parent) - 1, path)] = value
    else:
        raise _json_patch_failed(f"the JSON patch path {path} does not exist")
    return doc


def _pointer_remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _tokens(path)
    if not tokens:
        raise _json_patch_failed("a JSON patch may not remove the whole object")
    parent = _container(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent) - 1, path))
    raise _json_patch_failed(f"the JSON patch path {path} does not exist")
