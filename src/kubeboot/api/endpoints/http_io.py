"""Request bodies in: bounded, decoded from JSON, YAML or protobuf (responses: ``encoding``)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from kubeboot.api.endpoints.protobuf import PROTOBUF, decode_protobuf_object
from kubeboot.resources.status import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

__all__ = ["MAX_BODY_BYTES", "read_body"]

# kube-apiserver's limit for a JSON/YAML request body is 3 MiB.
MAX_BODY_BYTES = 3 * 1024 * 1024


async def read_body(
    request: web.Request, *, allowed: tuple[str, ...] | None = None, allow_empty: bool = False
) -> Any:
    """Decode the body; 413 over the limit, 415 for media types we do not speak, 400 if bad.

    ``allow_empty``: an empty body is ``None`` (a DELETE's optional DeleteOptions).
    """
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(
            f"the request body is {length} bytes; the limit is {MAX_BODY_BYTES} bytes"
        )
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"the request body exceeds the limit of {MAX_BODY_BYTES} bytes")
    # Like kube-apiserver, a body without a Content-Type header is JSON (the official Python
    # client sends none); aiohttp would otherwise report application/octet-stream.
    ctype = request.content_type if "Content-Type" in request.headers else "application/json"
    if allowed is not None and ctype not in allowed:
        raise UnsupportedMediaType(
            f'the body of this request may not be of type "{ctype}"; use one of '
            + ", ".join(allowed)
        )
    if not raw.strip():
        if allow_empty:
            return None
        raise BadRequest("the request body is empty; send a JSON object")
    if ctype == PROTOBUF:
        return decode_protobuf_object(raw)
    try:
        if ctype in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        if ctype.startswith("application/") and ctype.endswith("json"):
            return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise BadRequest(f"the request body is not valid {ctype}: {exc}") from exc
    raise UnsupportedMediaType(
        f'the body of this request may not be of type "{ctype}"; kubeboot speaks JSON '
        "(application/json) and YAML (application/yaml)"
    )
