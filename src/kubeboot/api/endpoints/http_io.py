"""Bytes in: whole, bounded request bodies decoded by type (responses: :mod:`.encoding`).

Reading: the *whole* body, whatever the transfer encoding (Content-Length, chunked) and
content encoding (aiohttp decompresses ``gzip``/``deflate`` itself; kube-apiserver accepts
no compressed request bodies, kubeboot accepts them as a harmless superset), counted after
decompression against kube-apiserver's ``MaxRequestBodyBytes`` (3 MiB for every verb): one
byte more is 413 ``Request entity too large: limit is 3145728``, as upstream. A body that
cannot be read (bad chunking, a corrupt gzip stream) is a 400.

Decoding: the Content-Type picks the decoder (:mod:`kubeboot.resources.decoding` for JSON and
YAML, :mod:`kubeboot.api.endpoints.protobuf`), with upstream's 415 for other types and its
``the object provided is unrecognized (must be of type X): ...`` wrapping of syntax errors.
What the object must look like is checked one layer down (:mod:`kubeboot.api.registry.conform`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kubeboot.api.endpoints.negotiation import PROTOBUF, SERVED
from kubeboot.api.endpoints.protobuf import decode_protobuf_object
from kubeboot.api.registry.conform import summarize_body
from kubeboot.resources.decoding import Decoded, DecodeError, decode_json, decode_yaml
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import (
    BadRequest,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

__all__ = [
    "BODY_MEDIA_TYPES",
    "MAX_BODY_BYTES",
    "Body",
    "decode_body",
    "read_body",
    "read_raw_body",
]

# kube-apiserver's --max-request-body-bytes default (genericapiserver Config), every verb.
MAX_BODY_BYTES = 3 * 1024 * 1024
# What a body may be: the serializers the server speaks, as upstream's decoders.
BODY_MEDIA_TYPES = SERVED
_READ_CHUNK = 256 * 1024
_JSON_TYPES = {
    "application/json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
}
_YAML_TO_JSON = "error converting YAML to JSON: "
_YAML_TYPES = {"application/yaml", "application/apply-patch+yaml"}


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: its bytes, its media type and what it decoded to."""

    raw: bytes
    media_type: str
    decoded: Decoded

    @property
    def value(self) -> Any:
        return self.decoded.value


async def read_raw_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """Every byte of the body (after transfer and content decoding), or 413 past ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := await request.content.read(_READ_CHUNK):
            total += len(chunk)
            if total > limit:
                raise RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
            chunks.append(chunk)
    except HttpProcessingError as exc:
        raise BadRequest(f"the request body could not be read: {exc.message}") from None
    except web.RequestPayloadError as exc:
        detail = str(exc).replace("\n", " ").strip()
        raise BadRequest(f"the request body could not be read: {detail}") from None
    return b"".join(chunks)


def _media_type(request: web.Request) -> str:
    """The body's media type; none means JSON, as kube-apiserver (the Python client sends none)."""
    header = request.headers.get("Content-Type")
    if header is None or not header.strip():
        return "application/json"
    media, _, _ = header.partition(";")
    media = media.strip().lower()
    if media.count("/") != 1 or not all(media.split("/")):
        return ""  # not a media type at all: 415 below
    return media


async def read_body(
    request: web.Request,
    res: ResourceInfo | None = None,
    *,
    allowed: tuple[str, ...] = BODY_MEDIA_TYPES,
    typed: bool = True,
) -> Body:
    """Read and decode the body; 415 for media types outside ``allowed``, 400 if it is bad.

    ``res`` names the expected kind in upstream's messages; ``typed=False`` decodes a patch
    (no schema behind it, so a number beyond float64 is refused at once).
    """
    _check_media_type(request, allowed)
    raw = await read_raw_body(request)
    if not raw.strip():
        raise BadRequest(
            "the request body is empty; send "
            + (f"a {res.kind} object" if res is not None else "a JSON object")
        )
    return decode_body(request, raw, res, allowed=allowed, typed=typed)


def _check_media_type(request: web.Request, allowed: tuple[str, ...]) -> str:
    media = _media_type(request)
    if media not in allowed:
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types "
            "include: " + ", ".join(allowed)
        )
    return media


def decode_body(
    request: web.Request,
    raw: bytes,
    res: ResourceInfo | None = None,
    *,
    allowed: tuple[str, ...] = BODY_MEDIA_TYPES,
    typed: bool = True,
) -> Body:
    """Decode ``raw`` by the request's Content-Type (see :func:`read_body`)."""
    media = _check_media_type(request, allowed)
    try:
        if media == PROTOBUF:
            decoded = Decoded(decode_protobuf_object(raw))
        elif media in _YAML_TYPES:
            decoded = decode_yaml(raw)
        elif media in _JSON_TYPES:
            decoded = decode_json(raw, typed=typed)
        else:
            raise UnsupportedMediaType(
                f'kubeboot cannot decode "{media}" request bodies; send application/json'
            )
    except DecodeError as exc:
        raise _decode_failure(res, str(exc), raw, typed, media) from None
    return Body(raw, media, decoded)


def _decode_failure(
    res: ResourceInfo | None, detail: str, raw: bytes, typed: bool, media: str
) -> BadRequest:
    if media == "application/apply-patch+yaml":
        # upstream transcodes an apply patch to JSON first and names that step
        return BadRequest(f"error encoding patch: {detail.removeprefix(_YAML_TO_JSON)}")
    if not typed:
        return BadRequest(f"error decoding patch: {detail}")
    if media in _JSON_TYPES and not detail.startswith("json: "):
        # A syntax error: upstream fails while looking for apiVersion/kind.
        detail = f"couldn't get version/kind; json parse error: {detail}"
    if res is None:  # DeleteOptions: upstream answers the decoder's own words
        return BadRequest(detail)
    return BadRequest(
        f"the object provided is unrecognized (must be of type {res.kind}): {detail} "
        f"({summarize_body(raw)})"
    )
