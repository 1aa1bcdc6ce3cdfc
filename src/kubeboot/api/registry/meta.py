"""ObjectMeta rules every resource shares: names, generateName, immutable fields, defaults."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from kubeboot.pki.csr import dns1123_subdomain_errors
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import FieldError

__all__ = [
    "generate_name",
    "new_uid",
    "qualified_name_errors",
    "validate_metadata",
]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
# generateName suffix alphabet of apimachinery's rand.String: no vowels, no confusables.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Resources whose names are path segments, not DNS subdomains (RBAC names such as
# ``system:node-bootstrapper``; CSR names are free-form upstream).
_PATH_SEGMENT_NAMES = {
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
    "certificatesigningrequests",
}
_DNS_LABEL_NAMES = {"namespaces"}


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


_QUALIFIED_PART_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def qualified_name_errors(value: str) -> list[str]:
    """Upstream's ``IsQualifiedName`` (a label key: ``[prefix/]name``), in its words."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a valid label key " + _QUALIFIED_PART_MESSAGE + " with an optional DNS subdomain "
            "prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors = []
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errors.append("prefix part must be non-empty")
        else:
            errors += [f"prefix part {m}" for m in dns1123_subdomain_errors(parts[0])]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.match(name):
        errors.append("name part " + _QUALIFIED_PART_MESSAGE)
    return errors


def _name_errors(res: ResourceInfo, name: str, field: str) -> list[FieldError]:
    if res.plural in _PATH_SEGMENT_NAMES:
        if name in (".", "..") or "/" in name or "%" in name:
            return [FieldError.invalid(field, name, 'may not contain "/" or "%" or be "." or ".."')]
        return []
    if res.plural in _DNS_LABEL_NAMES:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return [
                FieldError.invalid(
                    field,
                    name,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character "
                    "(e.g. 'my-name',  or '123-abc', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                )
            ]
        return []
    return [FieldError.invalid(field, name, m) for m in dns1123_subdomain_errors(name)]


def _key_errors(keys: Any, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if keys is None:
        return errors
    if not isinstance(keys, dict):
        return [FieldError.invalid(field, str(keys), "must be a map of strings")]
    for key, value in keys.items():
        prefix, _, name = key.rpartition("/")
        if (
            (prefix and not _DNS1123_SUBDOMAIN.match(prefix))
            or not _QUALIFIED_NAME.match(name)
            or len(name) > 63
        ):
            errors.append(
                FieldError.invalid(
                    field,
                    key,
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and "
                    "must start and end with an alphanumeric character",
                )
            )
        if not isinstance(value, str):
            errors.append(FieldError.invalid(f"{field}[{key}]", str(value), "must be a string"))
    return errors


def validate_metadata(res: ResourceInfo, meta: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    name = meta.get("name")
    if not name:
        errors.append(FieldError.required("metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        errors.append(FieldError.invalid("metadata.name", str(name), "must be a string"))
    else:
        errors += _name_errors(res, name, "metadata.name")
    labels = meta.get("labels")
    errors += _key_errors(labels, "metadata.labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            if isinstance(value, str) and (
                len(value) > 63 or (value and not _QUALIFIED_NAME.match(value))
            ):
                errors.append(
                    FieldError.invalid(
                        "metadata.labels",
                        value,
                        "a valid label must be an empty string or consist of alphanumeric "
                        "characters, '-', '_' or '.', and must start and end with an "
                        f"alphanumeric character (key {key!r})",
                    )
                )
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        errors.append(FieldError.invalid("metadata.annotations", str(annotations), "must be a map"))
    elif isinstance(annotations, dict):
        if sum(len(k) + len(str(v)) for k, v in annotations.items()) > 256 * 1024:
            errors.append(FieldError.too_long("metadata.annotations", 256 * 1024))
        errors += list(_key_errors(annotations, "metadata.annotations"))
    return errors
