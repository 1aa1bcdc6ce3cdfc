"""ServiceAccount constants, names and accessors (upstream ``k8s.io/api/core/v1`` and
``k8s.io/apiserver/pkg/authentication/serviceaccount``).

One place for what the authenticator, the TokenRequest endpoint, the token controllers, the
publishers and the CLI share about ServiceAccounts and their legacy token Secrets. The
formats are upstream's, quoted exactly; everything here is pure.

User names are ``system:serviceaccount:<namespace>:<name>``; groups are
``system:serviceaccounts`` and ``system:serviceaccounts:<namespace>``. A legacy token Secret
has type ``kubernetes.io/service-account-token``, names its ServiceAccount in the annotation
``kubernetes.io/service-account.name`` (and, once the token controller filled it in, its UID in
``kubernetes.io/service-account.uid``), and holds ``token``, ``ca.crt`` and ``namespace``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALL_SERVICE_ACCOUNTS_GROUP",
    "DEFAULT_SERVICE_ACCOUNT",
    "INVALID_SINCE_LABEL",
    "LAST_USED_LABEL",
    "LEGACY_ISSUER",
    "LEGACY_TRACKING_CONFIGMAP",
    "LEGACY_TRACKING_SINCE_KEY",
    "ROOT_CA_CONFIGMAP",
    "ROOT_CA_DESCRIPTION",
    "ROOT_CA_KEY",
    "SA_NAME_ANNOTATION",
    "SA_UID_ANNOTATION",
    "TOKEN_CA_KEY",
    "TOKEN_KEY",
    "TOKEN_NAMESPACE_KEY",
    "TOKEN_SECRET_TYPE",
    "USER_PREFIX",
    "group_names",
    "is_token_secret_for",
    "secret_data",
    "split_username",
    "username",
]

USER_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
_NAMESPACE_GROUP_PREFIX = "system:serviceaccounts:"

# The ServiceAccount the serviceaccounts controller keeps in every active namespace.
DEFAULT_SERVICE_ACCOUNT = "default"

# --- legacy token Secrets (v1.SecretTypeServiceAccountToken) ---------------------------------
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
TOKEN_KEY = "token"
TOKEN_CA_KEY = "ca.crt"
TOKEN_NAMESPACE_KEY = "namespace"
# The ``iss`` of tokens the legacy token controller signs (pkg/serviceaccount/legacy.go).
LEGACY_ISSUER = "kubernetes/serviceaccount"
# Set by the API server (UTC date, once a day at most) when a legacy token authenticates.
LAST_USED_LABEL = "kubernetes.io/legacy-token-last-used"
# Set by the legacy token cleaner on auto-generated tokens unused for its clean-up period;
# a token whose Secret carries it no longer authenticates.
INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
# kube-apiserver's legacytokentracking controller: since when last-used labels are written.
LEGACY_TRACKING_CONFIGMAP = "kube-apiserver-legacy-service-account-token-tracking"
LEGACY_TRACKING_SINCE_KEY = "since"

# --- the root-ca-cert-publisher's ConfigMap (pkg/controller/certificates/rootcacertpublisher)
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)

# Upstream's SplitUsername checks both parts: a DNS label for the namespace, a DNS subdomain
# for the name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def username(namespace: str, name: str) -> str:
    """``system:serviceaccount:<namespace>:<name>`` (``MakeUsername``)."""
    return f"{USER_PREFIX}{namespace}:{name}"


def split_username(user: str) -> tuple[str, str] | None:
    """(namespace, name) of a ServiceAccount user name, or None (``SplitUsername``)."""
    if not user.startswith(USER_PREFIX):
        return None
    parts = user[len(USER_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return None
    return namespace, name


def group_names(namespace: str) -> tuple[str, str]:
    """The groups every ServiceAccount of ``namespace`` is in (``MakeGroupNames``)."""
    return (ALL_SERVICE_ACCOUNTS_GROUP, f"{_NAMESPACE_GROUP_PREFIX}{namespace}")


def secret_data(secret: Mapping[str, Any], key: str) -> bytes:
    """``data[key]`` of a Secret as served, decoded; empty when absent or not base64."""
    value = (secret.get("data") or {}).get(key)
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def is_token_secret_for(secret: Mapping[str, Any], sa_name: str, sa_uid: str) -> bool:
    """Whether ``secret`` is a legacy token Secret of this ServiceAccount
    (``IsServiceAccountToken``: the type, the name annotation, and the UID annotation when
    it is set)."""
    if secret.get("type") != TOKEN_SECRET_TYPE:
        return False
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    if annotations.get(SA_NAME_ANNOTATION) != sa_name:
        return False
    uid = annotations.get(SA_UID_ANNOTATION)
    return not uid or uid == sa_uid
