"""ObjectMeta rules every resource shares: names, generateName, uids, and its validation.

The validation itself is upstream's, ported in :mod:`kubeboot.resources.validation`; this
module picks, per resource, what upstream's registry picks: the name rule (a DNS-1123
subdomain for most kinds, a DNS-1123 label for Namespaces, a path segment for RBAC objects
and CSRs, whose names such as ``system:node-bootstrapper`` or ``node-csr-…`` are free-form)
and whether the core group's finalizer rule applies (core kinds and CSRs, which use
``pkg/apis/core/validation``; RBAC and Leases use apimachinery's alone).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import FieldError
from kubeboot.resources.validation import (
    NAME_RULES,
    validate_finalizers,
    validate_object_meta,
    validate_object_meta_common,
)

__all__ = [
    "MAX_GENERATED_NAME_PREFIX",
    "generate_name",
    "new_uid",
    "validate_metadata",
]

# generateName suffix alphabet of apimachinery's rand.String: no vowels, no confusables.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# SimpleNameGenerator: the prefix is cut to 63 - 5 so the generated name fits a label.
MAX_GENERATED_NAME_PREFIX = 63 - 5

_PATH_SEGMENT_NAMES = {
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
    "certificatesigningrequests",
}
_DNS_LABEL_NAMES = {"namespaces"}
_APIMACHINERY_ONLY_GROUPS = {"rbac.authorization.k8s.io", "coordination.k8s.io"}


def generate_name(prefix: str) -> str:
    """Upstream's ``SimpleNameGenerator``: the prefix (cut to 58) and 5 random characters."""
    base = prefix[:MAX_GENERATED_NAME_PREFIX]
    return base + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def _name_rule(res: ResourceInfo) -> str:
    if res.plural in _PATH_SEGMENT_NAMES:
        return "path-segment"
    return "label" if res.plural in _DNS_LABEL_NAMES else "subdomain"


def validate_metadata(
    res: ResourceInfo, meta: dict[str, Any], old: dict[str, Any] | None = None
) -> list[FieldError]:
    """``metadata`` of a new object (``old`` None) or of an update, as upstream validates it."""
    kube_finalizers = res.group not in _APIMACHINERY_ONLY_GROUPS
    if old is None:
        return validate_object_meta(
            meta,
            namespaced=res.namespaced,
            name_rule=NAME_RULES[_name_rule(res)],
            kube_finalizers=kube_finalizers,
        )
    errors = []
    generation, old_generation = meta.get("generation") or 0, old.get("generation") or 0
    if generation < old_generation:
        errors.append(
            FieldError.invalid("metadata.generation", generation, "must not be decremented")
        )
    errors += validate_object_meta_common(meta, namespaced=res.namespaced)
    if kube_finalizers:  # core's ValidateObjectMetaUpdate checks the finalizer names again
        errors += [
            e
            for e in validate_finalizers(
                meta.get("finalizers") or [], "metadata.finalizers", kube_finalizers=True
            )
            if e.field != "metadata.finalizers"
        ]
    return errors
