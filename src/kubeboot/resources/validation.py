"""Upstream's shared validation, pure: names, label keys and values, ObjectMeta (422 causes).

Ported from apimachinery's ``util/validation``, ``api/validate/content`` and
``api/validation/objectmeta.go`` with their field paths and messages, because clients and
people match on them (``metadata.labels: Invalid value: "...": prefix part must be no more
than 253 bytes``). Every function returns :class:`FieldError` s and never raises; the
input has passed the type check (:mod:`kubeboot.resources.typecheck`), so types are right.

Kinds pick a name rule (:data:`NAME_RULES`): a DNS-1123 subdomain (most), a DNS-1123 label
(Namespace), or a path segment (RBAC objects, CSRs). Core kinds also get the finalizer rule
of ``pkg/apis/core/validation`` (``kube_finalizers``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubeboot.resources.status import FieldError

__all__ = [
    "NAME_RULES",
    "NameRule",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_label_value",
    "is_qualified_name",
    "regex_error",
    "validate_annotations",
    "validate_finalizers",
    "validate_labels",
    "validate_object_meta",
    "validate_owner_references",
]

# Go's regexps match whole values: fullmatch (a "$" would let a trailing newline through).
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_LABEL = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY = re.compile(_LABEL_KEY_FMT)
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_LABEL_KEY_FMT})?"
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
TOTAL_ANNOTATION_SIZE = 256 * 1024
# pkg/apis/core/helper.IsStandardFinalizerName
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}
# apimachinery's BannedOwners
_BANNED_OWNERS = {("", "v1", "Event")}


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError`` (its odd ``',  or '`` spacing included)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def is_dns1123_label(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.fullmatch(value):
        if _DNS1123_SUBDOMAIN.fullmatch(value):
            errors.append("must not contain dots")
        else:
            errors.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str, unit: str = "characters") -> list[str]:
    errors = []
    if len(value.encode()) > 253:
        errors.append(f"must be no more than 253 {unit}")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def is_qualified_name(value: str) -> list[str]:
    """A label key / qualified name: ``[prefix/]name`` (apimachinery ``content.IsLabelKey``)."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors += [f"prefix part {m}" for m in is_dns1123_subdomain(prefix, "bytes")]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not _LABEL_KEY.fullmatch(name):
        errors.append(
            "name part "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def is_label_value(value: str) -> list[str]:
    errors = []
    if len(value.encode()) > 63:
        errors.append("must be no more than 63 bytes")
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(
            regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errors


def _path_segment(value: str, prefix: bool) -> list[str]:
    if not prefix and value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _mask_trailing_dash(name: str) -> str:
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


NameRule = Callable[[str, bool], list[str]]
NAME_RULES: dict[str, NameRule] = {
    "subdomain": lambda n, prefix: is_dns1123_subdomain(_mask_trailing_dash(n) if prefix else n),
    "label": lambda n, prefix: is_dns1123_label(_mask_trailing_dash(n) if prefix else n),
    "path-segment": _path_segment,
}


def validate_labels(labels: Mapping[str, str], path: str) -> list[FieldError]:
    errors = []
    for key, value in labels.items():
        errors += [FieldError.invalid(path, key, m) for m in is_qualified_name(key)]
        errors += [FieldError.invalid(path, value, m) for m in is_label_value(value)]
    return errors


def validate_annotations(annotations: Mapping[str, str], path: str) -> list[FieldError]:
    errors = [
        FieldError.invalid(path, key, m)
        for key in annotations
        for m in is_qualified_name(key.lower())
    ]
    if (
        sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
        > TOTAL_ANNOTATION_SIZE
    ):
        errors.append(FieldError.too_long(path, TOTAL_ANNOTATION_SIZE))
    return errors


def validate_finalizers(
    finalizers: Sequence[str], path: str, *, kube_finalizers: bool
) -> list[FieldError]:
    errors = [FieldError.invalid(path, f, m) for f in finalizers for m in is_qualified_name(f)]
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errors.append(
            FieldError.invalid(
                path, list(finalizers), "finalizer orphan and foregroundDeletion cannot be both set"
            )
        )
    if kube_finalizers:
        errors += [
            FieldError.invalid(
                f"{path}[{i}]",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            )
            for i, f in enumerate(finalizers)
            if "/" not in f and f not in _STANDARD_FINALIZERS
        ]
    return errors


def validate_owner_references(refs: Sequence[Mapping[str, Any]], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    controller = ""
    for i, ref in enumerate(refs):
        at = f"{path}[{i}]"
        api_version = str(ref.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        if not api_version:
            errors.append(FieldError.required(f"{at}.apiVersion", "must not be empty"))
        elif api_version.count("/") > 1 or not version:
            errors.append(
                FieldError.invalid(
                    f"{at}.apiVersion", api_version, "must be <group>/<version> or <version>"
                )
            )
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errors.append(FieldError.required(f"{at}.{key}", "must not be empty"))
        if (group, version, ref.get("kind")) in _BANNED_OWNERS:
            errors.append(
                FieldError.invalid(
                    at,
                    "<owner reference>",
                    f"/{version}, Kind={ref.get('kind')} is disallowed from being an owner",
                )
            )
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                errors.append(
                    FieldError.invalid(
                        path,
                        "<owner references>",
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {controller} and {current}",
                    )
                )
            else:
                controller = current
    return errors


def validate_object_meta(
    meta: Mapping[str, Any],
    *,
    namespaced: bool,
    name_rule: NameRule,
    kube_finalizers: bool,
    path: str = "metadata",
) -> list[FieldError]:
    """apimachinery's ``ValidateObjectMeta`` (+ core's finalizer rule), for a create."""
    errors: list[FieldError] = []
    generate_name = str(meta.get("generateName") or "")
    if generate_name:
        errors += [
            FieldError.invalid(f"{path}.generateName", generate_name, m)
            for m in name_rule(generate_name, True)
        ]
    name = str(meta.get("name") or "")
    if not name:
        errors.append(FieldError.required(f"{path}.name", "name or generateName is required"))
    else:
        errors += [FieldError.invalid(f"{path}.name", name, m) for m in name_rule(name, False)]
    errors += validate_object_meta_common(meta, namespaced=namespaced, path=path)
    errors += validate_finalizers(
        meta.get("finalizers") or [], f"{path}.finalizers", kube_finalizers=kube_finalizers
    )
    return errors


def validate_object_meta_common(
    meta: Mapping[str, Any], *, namespaced: bool, path: str = "metadata"
) -> list[FieldError]:
    """What create and update both check: namespace, generation, labels, annotations, owners."""
    errors: list[FieldError] = []
    namespace = str(meta.get("namespace") or "")
    if namespaced:
        if not namespace:
            errors.append(FieldError.required(f"{path}.namespace"))
        else:
            errors += [
                FieldError.invalid(f"{path}.namespace", namespace, m)
                for m in is_dns1123_label(namespace)
            ]
    elif namespace:
        errors.append(FieldError.forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation") or 0
    if generation < 0:
        errors.append(
            FieldError.invalid(
                f"{path}.generation", generation, "must be greater than or equal to 0"
            )
        )
    errors += validate_labels(meta.get("labels") or {}, f"{path}.labels")
    errors += validate_annotations(meta.get("annotations") or {}, f"{path}.annotations")
    errors += validate_owner_references(
        meta.get("ownerReferences") or [], f"{path}.ownerReferences"
    )
    return errors
