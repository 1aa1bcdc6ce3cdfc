"""Bootstrap-token constants, formats and accessors (upstream ``cluster-bootstrap``).

One place for everything about the ``bootstrap.kubernetes.io/token`` Secret that the
authenticator, the bootstrap signer, the token cleaner and the ``kubeboot token`` commands
share (server-facts §1). The formats are upstream's, quoted exactly; the accessors work on a
Secret as served (a JSON dict whose ``data`` values are base64) and take the current time as
an argument, so every decision here is pure.

Invariants kept by the accessors, because upstream keeps them and clients depend on them:

* a usage is on only when its value is exactly ``"true"``;
* an ``expiration`` that does not parse as RFC 3339 counts as **expired**;
* ``auth-extra-groups`` is split on ``,`` without trimming, and one invalid group invalidates
  the whole list;
* groups come back deduplicated and sorted, always including ``system:bootstrappers``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from kubeboot.clock import format_time, parse_time

__all__ = [
    "AUTH_EXTRA_GROUPS_KEY",
    "BOOTSTRAP_GROUP",
    "BOOTSTRAP_USER_PREFIX",
    "CLUSTER_INFO_CONFIGMAP",
    "CLUSTER_INFO_NAMESPACE",
    "DESCRIPTION_KEY",
    "EXPIRATION_KEY",
    "EXTRA_GROUP_PATTERN",
    "JWS_SIGNATURE_KEY_PREFIX",
    "KNOWN_USAGES",
    "KUBEADM_DEFAULT_NODE_TOKEN_GROUP",
    "KUBECONFIG_KEY",
    "NODES_GROUP",
    "SECRET_NAME_PATTERN",
    "SECRET_NAME_PREFIX",
    "SECRET_TYPE",
    "TOKEN_ID_KEY",
    "TOKEN_ID_PATTERN",
    "TOKEN_NAMESPACE",
    "TOKEN_PATTERN",
    "TOKEN_SECRET_KEY",
    "TOKEN_SECRET_PATTERN",
    "USAGE_AUTHENTICATION_KEY",
    "USAGE_KEY_PREFIX",
    "USAGE_SIGNING_KEY",
    "InvalidExtraGroup",
    "build_secret",
    "decode_data",
    "generate_token",
    "get_expiration",
    "get_groups",
    "has_usage",
    "is_expired",
    "parse_token",
    "secret_name",
    "token_id_from_secret_name",
    "user_name",
]

# --- where the Secret lives ------------------------------------------------------------------
TOKEN_NAMESPACE = "kube-system"
SECRET_NAME_PREFIX = "bootstrap-token-"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
# The bootstrap signer only signs for Secrets whose name matches this (server-facts §6.4).
SECRET_NAME_PATTERN = re.compile(r"^bootstrap-token-([a-z0-9]{6})$")

# --- data keys -------------------------------------------------------------------------------
TOKEN_ID_KEY = "token-id"
TOKEN_SECRET_KEY = "token-secret"
EXPIRATION_KEY = "expiration"  # RFC 3339; absent = never expires; unparseable = expired
DESCRIPTION_KEY = "description"
AUTH_EXTRA_GROUPS_KEY = "auth-extra-groups"  # comma-separated, no trimming
USAGE_KEY_PREFIX = "usage-bootstrap-"
USAGE_AUTHENTICATION_KEY = USAGE_KEY_PREFIX + "authentication"
USAGE_SIGNING_KEY = USAGE_KEY_PREFIX + "signing"
KNOWN_USAGES = ("signing", "authentication")

# --- token formats (Go regexes with \A…\z; Python's fullmatch has the same meaning) ----------
TOKEN_ID_PATTERN = re.compile(r"[a-z0-9]{6}")
TOKEN_SECRET_PATTERN = re.compile(r"[a-z0-9]{16}")
TOKEN_PATTERN = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16})")
EXTRA_GROUP_PATTERN = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")

# --- identities ------------------------------------------------------------------------------
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
BOOTSTRAP_GROUP = "system:bootstrappers"
KUBEADM_DEFAULT_NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
NODES_GROUP = "system:nodes"

# --- cluster-info (what the bootstrap signer signs, what discovery reads) --------------------
CLUSTER_INFO_NAMESPACE = "kube-public"
CLUSTER_INFO_CONFIGMAP = "cluster-info"
KUBECONFIG_KEY = "kubeconfig"
JWS_SIGNATURE_KEY_PREFIX = "jws-kubeconfig-"

_TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


class InvalidExtraGroup(ValueError):
    """An ``auth-extra-groups`` entry does not match :data:`EXTRA_GROUP_PATTERN`."""


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token_id, token_secret)`` for a well-formed ``<id>.<secret>``, else None.

    The error-free ``None`` matters: a bearer that is not a bootstrap token is "not mine" for
    the bootstrap authenticator, and another token authenticator may still accept it.
    """
    m = TOKEN_PATTERN.fullmatch(token)
    return (m.group(1), m.group(2)) if m else None


def secret_name(token_id: str) -> str:
    return SECRET_NAME_PREFIX + token_id


def token_id_from_secret_name(name: str) -> str | None:
    m = SECRET_NAME_PATTERN.match(name)
    return m.group(1) if m else None


def user_name(token_id: str) -> str:
    return BOOTSTRAP_USER_PREFIX + token_id


def decode_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """The Secret's ``data`` as text; values that are not valid base64/UTF-8 are left out.

    The API server never stores undecodable data, so a missing key is the right reading of a
    value this function cannot decode: every check below then fails closed.
    """
    raw = secret.get("data")
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
    return out


def has_usage(data: Mapping[str, str], usage: str) -> bool:
    """True only when ``usage-bootstrap-<usage>`` is exactly ``"true"`` (not "True", not "1")."""
    return data.get(USAGE_KEY_PREFIX + usage) == "true"


def get_expiration(data: Mapping[str, str]) -> dt.datetime | None:
    """The expiration time, None when absent; raises ValueError when it does not parse."""
    value = data.get(EXPIRATION_KEY)
    if value is None:
        return None
    return parse_time(value)


def is_expired(data: Mapping[str, str], now: dt.datetime) -> bool:
    """Upstream's rule: expired when ``expiration - now <= 0``, or when it does not parse."""
    try:
        expiration = get_expiration(data)
    except ValueError:
        return True
    return expiration is not None and expiration <= now


def get_groups(data: Mapping[str, str]) -> list[str]:
    """``system:bootstrappers`` plus the extra groups, sorted and unique.

    Raises :class:`InvalidExtraGroup` naming the first bad group; the authenticator rejects the
    token then, as upstream does.
    """
    groups = {BOOTSTRAP_GROUP}
    extra = data.get(AUTH_EXTRA_GROUPS_KEY, "")
    if extra:
        for group in extra.split(","):
            if not EXTRA_GROUP_PATTERN.fullmatch(group):
                raise InvalidExtraGroup(
                    f"{AUTH_EXTRA_GROUPS_KEY} entry {group!r} does not match "
                    f"{EXTRA_GROUP_PATTERN.pattern}"
                )
            groups.add(group)
    return sorted(groups)


def _random_string(length: int) -> str:
    # secrets.choice draws uniformly over the alphabet (it rejection-samples internally), the
    # property kubeadm gets from discarding bytes >= 252.
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))


def generate_token() -> str:
    """A fresh ``<id>.<secret>`` from ``[0-9a-z]``, uniformly random, as ``kubeadm token``."""
    return f"{_random_string(6)}.{_random_string(16)}"


def build_secret(
    token: str,
    *,
    usages: Iterable[str] = KNOWN_USAGES,
    extra_groups: Iterable[str] = (),
    expiration: dt.datetime | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The ``bootstrap.kubernetes.io/token`` Secret for ``token``, as ``kubeadm token create``.

    Raises ValueError for a malformed token, an unknown usage or an invalid extra group, so a
    token that the authenticator would silently reject is never created.
    """
    parsed = parse_token(token)
    if parsed is None:
        raise ValueError(f"token must match {TOKEN_PATTERN.pattern} (<6 chars>.<16 chars>)")
    token_id, token_secret = parsed
    data: dict[str, str] = {TOKEN_ID_KEY: token_id, TOKEN_SECRET_KEY: token_secret}
    if description:
        data[DESCRIPTION_KEY] = description
    if expiration is not None:
        data[EXPIRATION_KEY] = format_time(expiration)
    for usage in usages:
        if usage not in KNOWN_USAGES:
            raise ValueError(f"unknown usage {usage!r}; known usages: {', '.join(KNOWN_USAGES)}")
        data[USAGE_KEY_PREFIX + usage] = "true"
    groups = list(extra_groups)
    if groups:
        data[AUTH_EXTRA_GROUPS_KEY] = ",".join(groups)
        get_groups(data)  # validates every group
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(token_id), "namespace": TOKEN_NAMESPACE},
        "type": SECRET_TYPE,
        "data": {k: base64.b64encode(v.encode()).decode("ascii") for k, v in data.items()},
    }
