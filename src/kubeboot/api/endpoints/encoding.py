"""Objects out as bytes, in the negotiated media type, the way kube-apiserver writes them.

* JSON as Go's ``encoding/json`` does: compact, one trailing newline, ``<``, ``>``, ``&``,
  U+2028 and U+2029 escaped, other non-ASCII as UTF-8; pretty (``?pretty=true``, or a
  ``curl``/``Wget``/browser User-Agent) is indented by two spaces with no newline.
* YAML as ``sigs.k8s.io/yaml``: keys sorted, block style.
* protobuf via :mod:`.protobuf`; an object the schema cannot carry is written as JSON (and
  logged), never truncated.

Errors (:func:`error_response`) are negotiated the same way but without conversions, as
upstream's ``ErrorNegotiated``; when nothing acceptable remains the Status goes out as
indented JSON, as upstream's ``WriteRawJSON``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import yaml
from aiohttp import web

from kubeboot.api.endpoints.negotiation import JSON, PROTOBUF, YAML, Negotiated, negotiate_plain
from kubeboot.api.endpoints.protobuf import NotEncodable, encode_protobuf_object
from kubeboot.resources.goshape import meta_in_go_order
from kubeboot.resources.status import NotAcceptable, StatusError

__all__ = [
    "encode",
    "error_response",
    "go_json",
    "in_go_order",
    "is_pretty",
    "object_response",
    "page_not_found",
]

log = logging.getLogger("kubeboot.api")

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_PRETTY_AGENTS = ("curl", "Wget", "Mozilla/5.0")


def go_json(obj: Any, *, pretty: bool = False) -> bytes:
    """``json.NewEncoder(w).Encode(obj)`` (or ``MarshalIndent`` when pretty)."""
    if pretty:
        text = json.dumps(obj, indent=2, ensure_ascii=False)
        return text.translate(_GO_ESCAPES).encode()
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.translate(_GO_ESCAPES).encode() + b"\n"


class _GoYamlDumper(yaml.SafeDumper):
    """Emits as go-yaml v2 (sigs.k8s.io/yaml) does: keys sorted, a multi-line string as a
    literal block, a string that would read back as another type (``"true"``, ``"123"``,
    ``""``, a timestamp, YAML 1.1's ``"y"``/``"n"``) double-quoted."""


def _go_yaml_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    tag = "tag:yaml.org,2002:str"
    if "\n" in value:
        return dumper.represent_scalar(tag, value, style="|")
    implicit = dumper.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if implicit != tag or value in ("y", "Y", "n", "N"):
        return dumper.represent_scalar(tag, value, style='"')
    return dumper.represent_scalar(tag, value)


_GoYamlDumper.add_representer(str, _go_yaml_str)


def go_yaml(obj: Any) -> bytes:
    """``sigs.k8s.io/yaml``'s Marshal of a JSON document."""
    text = yaml.dump(
        obj, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=True, allow_unicode=True
    )
    return text.encode()


def is_pretty(request: web.Request, negotiated: Negotiated | None = None) -> bool:
    """Upstream's isPrettyPrint: ``pretty`` in the media type or query, or a human's agent."""
    if negotiated is not None and negotiated.pretty:
        return True
    raw = request.query.get("pretty")
    if raw:
        return raw.lower() in ("1", "t", "true")
    return request.headers.get("User-Agent", "").startswith(_PRETTY_AGENTS)


def _row_in_go_order(row: Any) -> Any:
    if isinstance(row, dict) and isinstance(row.get("object"), dict):
        return {**row, "object": in_go_order(row["object"])}
    return row


def in_go_order(obj: dict[str, Any]) -> dict[str, Any]:
    """``kind`` and ``apiVersion`` lead, as Go writes the embedded TypeMeta; then metadata."""
    meta = obj.get("metadata")
    ordered = meta_in_go_order(meta)
    if ordered is not meta:
        obj = {**obj, "metadata": ordered}
    items = obj.get("items")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        obj = {**obj, "items": [in_go_order(i) if isinstance(i, dict) else i for i in items]}
    rows = obj.get("rows")  # a Table's rows carry their objects
    if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "object" in rows[0]:
        obj = {**obj, "rows": [_row_in_go_order(r) for r in rows]}
    if "kind" not in obj or next(iter(obj)) == "kind":
        return obj
    head: dict[str, Any] = {k: obj[k] for k in ("kind", "apiVersion") if k in obj}
    return {**head, **{k: v for k, v in obj.items() if k not in head}}


def encode(obj: dict[str, Any], media_type: str, *, pretty: bool = False) -> tuple[bytes, str]:
    """(body, content type) for ``obj``; protobuf falls back to JSON for what it cannot carry."""
    obj = in_go_order(obj)
    if media_type == PROTOBUF:
        try:
            return encode_protobuf_object(obj), PROTOBUF
        except NotEncodable as exc:
            log.warning("answering %s as JSON: %s", obj.get("kind"), exc)
            return go_json(obj, pretty=pretty), JSON
    if media_type == YAML:
        return go_yaml(obj), YAML
    return go_json(obj, pretty=pretty), JSON


def object_response(
    request: web.Request,
    negotiated: Negotiated,
    obj: dict[str, Any],
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body, ctype = encode(obj, negotiated.media_type, pretty=is_pretty(request, negotiated))
    response = web.Response(body=body, status=status, headers=headers)
    response.content_type = ctype
    return response


def error_response(err: StatusError, request: web.Request | None = None) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    status = err.to_status()
    accept = request.headers.get("Accept", "") if request is not None else ""
    try:
        negotiated = negotiate_plain(accept)
    except NotAcceptable:
        body = json.dumps(status, indent=2, ensure_ascii=False).translate(_GO_ESCAPES).encode()
        response = web.Response(body=body, status=err.code, headers=headers)
        response.content_type = JSON
        return response
    if request is None:
        body, ctype = go_json(status), JSON
    else:
        body, ctype = encode(status, negotiated.media_type, pretty=is_pretty(request, negotiated))
    response = web.Response(body=body, status=err.code, headers=headers)
    response.content_type = ctype
    return response


def page_not_found() -> web.Response:
    """What upstream's mux answers for a path no handler serves: text, not a Status."""
    response = web.Response(text="404 page not found\n", status=404, charset="utf-8")
    response.content_type = "text/plain"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
