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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubeboot.resources.decoding import Decoded, FieldPath
from kubeboot.resources.goshape import meta_in_go_order
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import kind_schema, meta_v1
from kubeboot.resources.status import BadRequest, FieldError, Invalid
from kubeboot.resources.typecheck import TypeMismatch, json_type, typecheck

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
    """A request's ``fieldValidation`` directive and what the decoder saw (default: Warn).

    ``duplicates``/``yaml_duplicates`` come from decoding the body
    (:class:`~kubeboot.resources.decoding.Decoded`), ``raw`` is the body itself (for
    upstream's summaries in messages); ``warnings`` collects what a Warn request answers
    in ``Warning`` headers.
    """

    directive: str = "Warn"
    duplicates: tuple[FieldPath, ...] = ()
    yaml_duplicates: tuple[str, ...] = ()
    raw: bytes | None = None
    warnings: list[str] = field(default_factory=list)

    def attach(self, decoded: Decoded, raw: bytes) -> None:
        self.duplicates, self.yaml_duplicates, self.raw = (
            decoded.duplicates,
            decoded.yaml_duplicates,
            raw,
        )

    def apply(self, unknown: list[FieldPath], refuse: Callable[[str], Exception]) -> None:
        """Strict: raise ``refuse(<strict decoding error>)``; Warn: record warnings."""
        if self.directive == "Ignore":
            return
        found = sorted(
            [(p.position, f'duplicate field "{p.path}"') for p in self.duplicates]
            + [(p.position, f'unknown field "{p.path}"') for p in unknown]
        )
        problems = [text for _, text in found]
        if self.directive == "Strict":
            if self.yaml_duplicates:
                problems.insert(
                    0, "yaml: unmarshal errors:\n  " + "\n  ".join(self.yaml_duplicates)
                )
            if problems:
                raise refuse("strict decoding error: " + ", ".join(problems))
            return
        self.warnings.extend([*self.yaml_duplicates, *problems])


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
    """apiVersion and kind as upstream's SimpleMetaFactory finds them (defaults: the URL's).

    Without the request's bytes (an in-process caller), the summary in messages is made from
    the body re-encoded as compact JSON.
    """
    if raw is None:
        raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    if not isinstance(body, dict):
        what = "null" if body is None else json_type(body)
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
                f"{json_type(value)} into Go struct field .{key} of type string",
                raw,
            )
        found[key] = value or ""
    api_version = found["apiVersion"] or res.api_version
    if api_version.count("/") > 1:
        raise unrecognized(res, f"unexpected GroupVersion string: {api_version}", raw)
    return api_version, found["kind"] or res.kind


def conform(res: ResourceInfo, body: Any, validation: FieldValidation = IGNORE) -> JsonObj:
    """The object ``body`` stands for, type-checked, or a 400 with upstream's message."""
    api_version, kind = _interpret(res, body, validation.raw)
    version = api_version.rpartition("/")[2]
    if kind != res.kind or api_version != res.api_version:
        group = api_version.rpartition("/")[0]
        if kind_schema(group, version, kind) is None:
            detail = (
                f'no kind "{kind}" is registered for version "{api_version}" in scheme '
                '"pkg/runtime/scheme.go:111"'
            )
        else:  # a kind kubeboot knows, sent to another kind's URL
            target = res.group.split(".")[0] if res.group else "core"  # the internal package
            detail = f"converting ({version}.{kind}) to ({target}.{res.kind}): unknown conversion"
        raise _cannot_handle(kind, version, res.kind, detail)
    schema = schema_of(res)
    if schema is None:  # a kind without a schema yet: unchecked (a unit test flags it)
        return dict(body)
    try:
        checked = typecheck(body, schema)
    except TypeMismatch as exc:
        raise _cannot_handle(kind, version, res.kind, str(exc)) from None
    validation.apply(
        checked.unknown, lambda detail: _cannot_handle(kind, version, res.kind, detail)
    )
    return checked.obj


def conform_delete_options(body: Any) -> JsonObj:
    """A DELETE body (``meta.k8s.io/v1`` or any group's ``DeleteOptions``), non-strict.

    Upstream answers these errors with the decoder's own text (no "cannot be handled as").
    """
    if not isinstance(body, dict):
        what = "null" if body is None else json_type(body)
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


def _go_format(value: Any) -> str:
    """Go's ``%+v`` of a decoded JSON value (``map[data:map[a:5]]``), sorted as Go prints."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def conform_patched(
    res: ResourceInfo,
    patched: Any,
    patch_body: Any,
    validation: FieldValidation,
    patch_type: str = "merge",
) -> JsonObj:
    """A patch's result through the same gate; failures are upstream's 422 on ``patch``.

    The invalid value is what upstream shows: the patched object as JSON (top-level keys
    sorted, as its JSON-patch library writes it, and metadata in ObjectMeta's order, as Go
    wrote the original) for JSON and merge patches, Go's ``%+v`` of the patch for a
    strategic merge patch; cut at 1 KiB (upstream shows it all).
    """

    def invalid(detail: str) -> Invalid:
        if patch_type == "strategic":
            value = _go_format(patch_body)
        elif isinstance(patched, dict):
            # the original's metadata as Go wrote it (resourceVersion after uid), keys sorted
            shown = {k: patched[k] for k in sorted(patched)}
            if "metadata" in shown:
                shown["metadata"] = meta_in_go_order(shown["metadata"])
            value = json.dumps(shown, separators=(",", ":"), default=str)
        else:
            value = json.dumps(patched, separators=(",", ":"), default=str)
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
    validation.apply(checked.unknown, invalid)
    return checked.obj
