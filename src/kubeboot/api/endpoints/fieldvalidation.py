"""``fieldValidation=Strict|Warn|Ignore`` (server-facts §8.7) for the fields we know.

kubectl sends ``Strict`` by default once OpenAPI says the server validates. Without full
schemas, kubeboot checks the two levels where typos are common and harmful — top-level fields
of each kind and ``metadata`` — so ``kubectl create -f`` with a misspelt ``strinData`` fails
loudly instead of silently dropping the data.
"""

from __future__ import annotations

from typing import Any

from kubeboot.resources.status import BadRequest

__all__ = ["enforce_field_validation", "unknown_fields"]

_COMMON = {"apiVersion", "kind", "metadata"}
_TOP_LEVEL: dict[str, set[str]] = {
    "Secret": {"data", "stringData", "type", "immutable"},
    "ConfigMap": {"data", "binaryData", "immutable"},
    "Namespace": {"spec", "status"},
    "Node": {"spec", "status"},
    "Event": {
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "series",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    },
    "CertificateSigningRequest": {"spec", "status"},
    "Role": {"rules"},
    "ClusterRole": {"rules", "aggregationRule"},
    "RoleBinding": {"subjects", "roleRef"},
    "ClusterRoleBinding": {"subjects", "roleRef"},
    "Lease": {"spec"},
    "ServiceAccount": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "TokenRequest": {"spec", "status"},
}
_METADATA = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}


def unknown_fields(kind: str, body: Any) -> list[str]:
    if not isinstance(body, dict) or kind not in _TOP_LEVEL:
        return []
    allowed = _COMMON | _TOP_LEVEL[kind]
    found = [f'unknown field "{k}"' for k in body if k not in allowed]
    meta = body.get("metadata")
    if isinstance(meta, dict):
        found += [f'unknown field "metadata.{k}"' for k in meta if k not in _METADATA]
    return found


def enforce_field_validation(directive: str | None, kind: str, body: Any) -> list[str]:
    """Raise for Strict; return warnings for Warn (and for an absent directive, as upstream)."""
    mode = (directive or "Warn").capitalize()
    if mode == "Ignore":
        return []
    if mode not in ("Warn", "Strict"):
        raise BadRequest(
            f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{directive}"'
        )
    problems = unknown_fields(kind, body)
    if problems and mode == "Strict":
        raise BadRequest("strict decoding error: " + ", ".join(problems))
    return problems
