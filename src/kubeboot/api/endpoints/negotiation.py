"""Content negotiation shared by every resource handler: which Accept and Content-Type pass.

kube-apiserver's routes (go-restful) declare what they produce and consume; a request whose
``Accept`` names none of those media types (``text/html``, ``application/garbage``) is 406
and one whose ``Content-Type`` is none of them is 415, before the handler runs, with
go-restful's texts wrapped in a Status (``406: Not Acceptable`` ..., ``415: Unsupported Media
Type``, ``"details": {}``). Matching is go-restful's: media type only, parameters and
``q`` weights ignored, ``*/*`` and ``type/*`` wildcards.

What kubeboot answers for an acceptable request (JSON; YAML, Table and
PartialObjectMetadata as they are added) is decided by the renderers, not here.
"""

from __future__ import annotations

from kubeboot.api.endpoints.protobuf import PROTOBUF
from kubeboot.resources.status import NotAcceptable, UnsupportedMediaType

__all__ = ["PRODUCES", "check_acceptable", "check_content_type"]

# What kube-apiserver's resource routes declare (responses; the stream forms for watches).
PRODUCES = ("application/json", "application/yaml", PROTOBUF)
_STREAMS = ("application/json;stream=watch", f"{PROTOBUF};stream=watch")
_NOT_ACCEPTABLE = "406: Not Acceptable\n\nAvailable representations: " + ", ".join(
    PRODUCES + _STREAMS
)


def _media(part: str) -> str:
    return part.split(";", 1)[0].strip().lower()


def _matches(wanted: str, offered: tuple[str, ...]) -> bool:
    if wanted in ("", "*/*", "*"):
        return True
    if wanted.endswith("/*"):
        return any(o.startswith(wanted[:-1]) for o in offered)
    return wanted in offered


def check_acceptable(accept: str | None) -> None:
    """406 unless some media type in ``accept`` is one kube-apiserver produces."""
    if accept is None or not accept.strip():
        return
    if not any(_matches(_media(part), PRODUCES) for part in accept.split(",")):
        raise NotAcceptable(_NOT_ACCEPTABLE, generic=True)


def check_content_type(content_type: str | None, consumes: tuple[str, ...]) -> None:
    """415 unless the body's media type is one the route consumes (none given: JSON)."""
    if content_type is None or not content_type.strip():
        return
    if _media(content_type) not in consumes:
        raise UnsupportedMediaType("415: Unsupported Media Type", generic=True)
