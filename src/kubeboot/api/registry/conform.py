"""The one gate every object body passes before a strategy sees it (kube-apiserver's decode).

Whatever the encoding (JSON, YAML, protobuf) and whoever sends it (HTTP handler, in-process
client, the result of a patch), an object is accepted here or refused with upstream's
message, in upstream's order:

1. *Interpret*: the body must be a JSON object whose ``apiVersion``/``kind`` are strings
   (``the object provided is unrecognized (must be of type ConfigMap): couldn't get
   version/kind; json parse error: ...``);
2. the kind and group version must be the resource's (``Secret in version "v1" cannot be
   handled as a ConfigMap: ...``);
3. the type check against the kind's schema (:mod:`kubeboot.resources.typecheck`):
   ``ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal ...``;
4. ``fieldValidation``: unknown and duplicate fields are dropped (Ignore), returned as
   warnings (Warn, the default) or refused (Strict: ``... strict decoding error: unknown
   field "spec.foo", duplicate field "metadata.name"``).

A patch whose result fails 3 or 4 is upstream's 422 on the field ``patch``. All errors are
400 ``BadRequest`` otherwise, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubeboot.resources.decoding import OverflowNumber
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import kind_schema, meta_v1
from kubeboot.resources.status import BadRequest, FieldError, Invalid
from kubeboot.resources.typecheck import TypeMismatch, typecheck

__all__ = [
    "FIELD_VALIDATION_DIRECTIVES",
    "FieldValidation",
    "conform",
    "conform_delete_options",
    "conform_patched",
    "interpret",
    "summarize_body",
    "unrecognized",
]

JsonObj = dict[str, Any]
FIELD_VALIDATION_DIRECTIVES = ("Ignore", "Strict", "Warn")
# The anonymous struct kube-apiserver's SimpleMetaFactory decodes first, as Go prints its type.
_FIND_KIND = (
    'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
    'Kind string "json:\\"kind,omitempty\\"" }'
)


@dataclass
class FieldValidation:
    """A request's ``fieldValidation`` directive, and what it found (upstream's default: Warn).

    ``duplicates`` are the paths of keys the decoder saw twice; ``warnings`` collects what a
    Warn request answers in ``Warning`` headers.
    """

    directive: str = "Warn"
    duplicates: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    def problems(self, unknown: list[str]) -> list[str]:
        found = [f'unknown field "{p}"' for p in unknown]
        found += [f'duplicate field "{p}"' for p in self.duplicates]
        return found if self.directive != "Ignore" else []


IGNORE = FieldValidation("Ignore")


def summarize_body(raw: bytes, limit: int = 30) -> str:
    """Upstream's ``summarizeData``: the start of a JSON object, or of the bytes in hex."""
    if not raw:
        return "<empty>"
    if raw[:1] == b"{":
        text = raw.decode("utf-8", errors="replace")
        return text[:limit] + " ..." if len(raw) > limit else text
    return raw[:limit].hex() + (" ..." if len(raw) > limit else "")


def unrecognized(res: ResourceInfo, detail: str, raw: bytes | None) -> BadRequest:
    summary = f" ({summarize_body(raw)})" if raw is not None else ""
    return BadRequest(
        f"the object provided is unrecognized (must be of type {res.kind}): {detail}{summary}"
    )


def _cannot_handle(kind: str, version: str, target: str, detail: str) -> BadRequest:
    return BadRequest(f'{kind} in version "{version}" cannot be handled as a {target}: {detail}')


def schema_of(res: ResourceInfo) -> Struct | None:
    return kind_schema(res.group, res.gv.version, res.kind)


def interpret(res: ResourceInfo, body: Any, raw: bytes | None) -> tuple[str, str]:
    """apiVersion and kind of a body as read off the wire (its bytes quoted in errors)."""
    return _interpret(res, body, raw)


def _interpret(res: ResourceInfo, body: Any, raw: bytes | None) -> tuple[str, str]:
    """apiVersion and kind as upstream's SimpleMetaFactory finds them (defaults: the URL's)."""
    if not isinstance(body, dict):
        what = "null" if body is None else _json_type(body)
        raise unrecognized(
            res,
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{what} into Go value of type {_FIND_KIND}",
            raw,
        )
    found: dict[str, str] = {}
    for key in ("apiVersion", "kind"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise unrecognized(
                res,
                "couldn't get version/kind; json parse error: json: cannot unmarshal "
                f"{_json_type(value)} into Go struct field .{key} of type string",
                raw,
            )
        found[key] = value or ""
    api_version = found["apiVersion"] or res.api_version
    if api_version.count("/") > 1:
        raise unrecognized(res, f"unexpected GroupVersion string: {api_version}", raw)
    return api_version, found["kind"] or res.kind


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float | OverflowNumber):
        return "number"
    return "array" if isinstance(value, list) else "object"


def conform(
    res: ResourceInfo,
    body: Any,
    validation: FieldValidation = IGNORE,
    *,
    raw: bytes | None = None,
) -> JsonObj:
    """The object ``body`` stands for, type-checked, or a 400 with upstream's message."""
    api_version, kind = _interpret(res, body, raw)
    version = api_version.rpartition("/")[2]
    if kind != res.kind:
        raise _cannot_handle(
            kind,
            version,
            res.kind,
            f"the body is a {kind}, but {res.plural} hold {res.kind} objects",
        )
    if api_version != res.api_version:
        raise _cannot_handle(
            kind,
            version,
            res.kind,
            f'no kind "{kind}" is registered for version "{api_version}"; {res.plural} are '
            f'served as "{res.api_version}"',
        )
    schema = schema_of(res)
    if schema is None:  # a kind without a schema yet: unchecked (a unit test flags it)
        return dict(body)
    try:
        checked = typecheck(body, schema)
    except TypeMismatch as exc:
        raise _cannot_handle(kind, version, res.kind, str(exc)) from None
    problems = validation.problems(checked.unknown)
    if problems and validation.directive == "Strict":
        raise _cannot_handle(
            kind, version, res.kind, "strict decoding error: " + ", ".join(problems)
        )
    validation.warnings.extend(problems)
    return checked.obj


def conform_delete_options(body: Any, raw: bytes | None = None) -> JsonObj:
    """A DELETE body (``meta.k8s.io/v1`` or any group's ``DeleteOptions``), non-strict.

    Upstream answers these errors with the decoder's own text (no "cannot be handled as").
    """
    if not isinstance(body, dict):
        what = "null" if body is None else _json_type(body)
        raise BadRequest(
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{what} into Go value of type {_FIND_KIND}"
        )
    kind = body.get("kind")
    if kind not in (None, "", "DeleteOptions"):
        raise BadRequest("decoded object cannot be converted to DeleteOptions")
    try:
        return typecheck(body, meta_v1.DELETE_OPTIONS).obj
    except TypeMismatch as exc:
        raise BadRequest(str(exc)) from None


def conform_patched(
    res: ResourceInfo, patched: Any, patch_body: Any, validation: FieldValidation
) -> JsonObj:
    """A patch's result through the same gate; failures are upstream's 422 on ``patch``."""

    def invalid(detail: str) -> Invalid:
        value = json.dumps(patch_body, separators=(",", ":"), default=str)
        if len(value) > 1024:
            value = value[:1024] + "..."
        return Invalid.of("", "", "", [FieldError.invalid("patch", value, detail)])

    if not isinstance(patched, dict):
        raise invalid("the patch must produce a JSON object")
    schema = schema_of(res)
    if schema is None:
        return patched
    try:
        checked = typecheck(patched, schema)
    except TypeMismatch as exc:
        raise invalid(str(exc)) from None
    problems = validation.problems(checked.unknown)
    if problems and validation.directive == "Strict":
        raise invalid("strict decoding error: " + ", ".join(problems))
    validation.warnings.extend(problems)
    return checked.obj
