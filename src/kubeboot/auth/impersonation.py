"""Impersonation (``kubectl --as``): upstream's ``WithImpersonation`` filter, as a pure function.

Headers (case-insensitive) and the authorization check each one needs, verb ``impersonate``:

==========================  ==========================================================
``Impersonate-User: u``     ``users`` named ``u`` (core group); a
                            ``system:serviceaccount:<ns>:<name>`` user is checked as
                            ``serviceaccounts`` ``<name>`` in namespace ``<ns>`` instead
``Impersonate-Group: g``    ``groups`` named ``g`` (core group), once per header
``Impersonate-Extra-<k>``   ``userextras/<k>`` named the value (``authentication.k8s.io``);
                            ``<k>`` is lower-cased and %-decoded, as upstream
``Impersonate-Uid: id``     ``uids`` named ``id`` (``authentication.k8s.io``)
==========================  ==========================================================

Rules, as upstream: groups, extras or a UID without ``Impersonate-User`` are refused (500,
as kube-apiserver answers); every request is authorized for the *requestor*, in the order
above, and the first refusal is a 403 with upstream's message; the new user gets exactly the
requested groups (a service account without requested groups gets
``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``), plus ``system:authenticated``
unless it is ``system:anonymous`` (which gets ``system:unauthenticated``) or one of those
groups was requested. The caller drops the headers afterwards (:func:`without_impersonation`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from kubeboot.auth.authz import forbidden_error
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.auth.users import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    SERVICE_ACCOUNT_PREFIX,
)
from kubeboot.resources.status import InternalError

__all__ = [
    "IMPERSONATE_EXTRA_PREFIX",
    "IMPERSONATE_GROUP",
    "IMPERSONATE_UID",
    "IMPERSONATE_USER",
    "ImpersonationTarget",
    "impersonate",
    "impersonation_targets",
    "is_impersonation_header",
]

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX = "Impersonate-Extra-"
_AUTHN_GROUP = "authentication.k8s.io"


@dataclass(frozen=True, slots=True)
class ImpersonationTarget:
    """One thing to impersonate and the resource an ``impersonate`` check names."""

    resource: str  # users, serviceaccounts, groups, userextras, uids
    name: str
    namespace: str = ""
    subresource: str = ""  # the extra key, for userextras

    @property
    def api_group(self) -> str:
        return _AUTHN_GROUP if self.resource in ("userextras", "uids") else ""

    def attributes(self, requestor: UserInfo) -> Attributes:
        return Attributes(
            user=requestor,
            verb="impersonate",
            namespace=self.namespace,
            api_group=self.api_group,
            api_version="v1",
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
        )


def is_impersonation_header(name: str) -> bool:
    lower = name.lower()
    return lower in (
        IMPERSONATE_USER.lower(),
        IMPERSONATE_GROUP.lower(),
        IMPERSONATE_UID.lower(),
    ) or lower.startswith(IMPERSONATE_EXTRA_PREFIX.lower())


def _service_account(username: str) -> tuple[str, str] | None:
    """Upstream's ``serviceaccount.SplitUsername``: (namespace, name) or None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def impersonation_targets(headers: Iterable[tuple[str, str]]) -> list[ImpersonationTarget]:
    """Upstream's ``buildImpersonationRequests``; [] when the request impersonates nobody."""
    user = uid = ""
    groups: list[str] = []
    extras: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower == IMPERSONATE_USER.lower():
            user = user or value
        elif lower == IMPERSONATE_GROUP.lower():
            groups.append(value)
        elif lower == IMPERSONATE_UID.lower():
            uid = uid or value
        elif lower.startswith(IMPERSONATE_EXTRA_PREFIX.lower()):
            # Go's url.PathUnescape keeps any byte (%FF too); bytes that are not UTF-8 become
            # U+FFFD here rather than a decode error (a 500 once).
            raw_key = urllib.parse.unquote_to_bytes(lower[len(IMPERSONATE_EXTRA_PREFIX) :])
            key = raw_key.decode("utf-8", errors="replace")
            extras.append((key, value))
    targets: list[ImpersonationTarget] = []
    if user:
        sa = _service_account(user)
        if sa is not None:
            targets.append(ImpersonationTarget("serviceaccounts", sa[1], namespace=sa[0]))
        else:
            targets.append(ImpersonationTarget("users", user))
    targets.extend(ImpersonationTarget("groups", g) for g in groups)
    targets.extend(ImpersonationTarget("userextras", v, subresource=k) for k, v in extras)
    if uid:
        targets.append(ImpersonationTarget("uids", uid))
    if targets and not user:
        raise InternalError(
            f"requested {', '.join(f'{t.resource} {t.name!r}' for t in targets)} without "
            f"impersonating a user; set {IMPERSONATE_USER} (kubectl --as) as well"
        )
    return targets


def impersonate(
    requestor: UserInfo, headers: Iterable[tuple[str, str]], authorizer: Authorizer
) -> UserInfo | None:
    """The impersonated user, None when there is no impersonation; raises Forbidden (403)."""
    targets = impersonation_targets(headers)
    if not targets:
        return None
    groups_requested = any(t.resource == "groups" for t in targets)
    username = uid = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for target in targets:
        attrs = target.attributes(requestor)
        decision = authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden_error(attrs, decision.reason)
        if target.resource == "serviceaccounts":
            username = f"{SERVICE_ACCOUNT_PREFIX}{target.namespace}:{target.name}"
            if not groups_requested:
                groups = ["system:serviceaccounts", f"system:serviceaccounts:{target.namespace}"]
        elif target.resource == "users":
            username = target.name
        elif target.resource == "groups":
            groups.append(target.name)
        elif target.resource == "userextras":
            extra.setdefault(target.subresource, []).append(target.name)
        else:
            uid = target.name
    if username != ANONYMOUS_USER:
        if ALL_AUTHENTICATED not in groups and ALL_UNAUTHENTICATED not in groups:
            groups.append(ALL_AUTHENTICATED)
    elif ALL_UNAUTHENTICATED not in groups:
        groups.append(ALL_UNAUTHENTICATED)
    return UserInfo(
        name=username,
        uid=uid,
        groups=tuple(groups),
        extra={k: tuple(v) for k, v in extra.items()},
    )
