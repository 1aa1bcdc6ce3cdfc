"""Node-bound and limited-use bootstrap tokens: kubeboot's extra keys in the token Secret.

Upstream reads only its own keys of a ``bootstrap.kubernetes.io/token`` Secret (token-id,
token-secret, expiration, usage-bootstrap-*, auth-extra-groups, description) and its Secret
validation has no rule for this type beyond the generic key syntax, so these keys leave the
Secret valid and working for kubeadm, kube-apiserver and kubectl (docs/beyond-upstream.md):

* ``kubeboot.node-name``: the token may only create a kubelet client CSR
  (``kubernetes.io/kube-apiserver-client-kubelet``) for ``system:node:<name>``;
* ``kubeboot.max-uses``: how many CSRs it may create in all (a positive decimal integer);
* ``kubeboot.uses``: how many it has created (written by the server, compare-and-swap);
* ``kubeboot.last-used``: when it last created one (RFC 3339, written by the server).

A token with neither of the first two keys behaves exactly as upstream's. Decisions here are
pure: the Secret's decoded data in, a refusal message or the new data out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from kubeboot.clock import format_time, parse_time

__all__ = [
    "LAST_USED_KEY",
    "MAX_USES_KEY",
    "NODE_NAME_KEY",
    "SPENT_GRACE",
    "USES_KEY",
    "Binding",
    "binding_data",
    "binding_of",
    "csr_refusal",
    "spend",
]

NODE_NAME_KEY = "kubeboot.node-name"
MAX_USES_KEY = "kubeboot.max-uses"
USES_KEY = "kubeboot.uses"
LAST_USED_KEY = "kubeboot.last-used"

# How long a spent token lives on after its last use: the node that spent it still reads its
# CSR with it until the certificate is issued (a kubelet waits up to 15 minutes for it).
SPENT_GRACE = dt.timedelta(minutes=15)

_KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
_NODE_PREFIX = "system:node:"


@dataclass(frozen=True, slots=True)
class Binding:
    """What the extra keys say; ``max_uses`` None means unlimited, 0 an unreadable limit
    (which fails closed: such a token creates nothing)."""

    node_name: str
    max_uses: int | None
    uses: int
    last_used: dt.datetime | None

    @property
    def limited(self) -> bool:
        return bool(self.node_name) or self.max_uses is not None

    @property
    def spent(self) -> bool:
        return self.max_uses is not None and self.uses >= self.max_uses

    def cleanup_at(self) -> dt.datetime | None:
        """When the token cleaner deletes a spent token (None: not spent)."""
        if not self.spent:
            return None
        return (self.last_used or dt.datetime.min.replace(tzinfo=dt.UTC)) + SPENT_GRACE


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else 0


def binding_data(node_name: str | None, max_uses: int | None) -> dict[str, str]:
    """The extra keys ``kubeboot token create --node-name/--max-uses`` writes ({} for none)."""
    data = {}
    if node_name:
        data[NODE_NAME_KEY] = node_name
    if max_uses is not None:
        data[MAX_USES_KEY] = str(max_uses)
        data[USES_KEY] = "0"
    return data


def binding_of(data: Mapping[str, str]) -> Binding:
    try:
        last_used = parse_time(data[LAST_USED_KEY]) if data.get(LAST_USED_KEY) else None
    except ValueError:
        last_used = None
    uses = data.get(USES_KEY, "0")
    return Binding(
        node_name=data.get(NODE_NAME_KEY, ""),
        max_uses=_count(data.get(MAX_USES_KEY)),
        uses=int(uses) if uses.isdigit() else 0,
        last_used=last_used,
    )


def csr_refusal(token_id: str, binding: Binding, signer: str, common_name: str) -> str | None:
    """Why a CSR create by this token is refused (the 403's message), or None."""
    if binding.max_uses == 0:
        return (
            f"bootstrap token {token_id} has an unreadable {MAX_USES_KEY}; it may create no "
            "CSR. Create a new token with `kubeboot token create --max-uses N`"
        )
    if binding.spent:
        return (
            f"bootstrap token {token_id} is spent: it was limited to {binding.max_uses} "
            f"join(s) ({MAX_USES_KEY}) and has been used {binding.uses} time(s), last at "
            f"{format_time(binding.last_used) if binding.last_used else 'an unknown time'}. "
            "Create a new token with `kubeboot token create`"
        )
    if binding.node_name:
        wanted = _NODE_PREFIX + binding.node_name
        if signer != _KUBELET_CLIENT_SIGNER:
            return (
                f"bootstrap token {token_id} is bound to node {binding.node_name!r}: it may only "
                f"request a kubelet client certificate (signer {_KUBELET_CLIENT_SIGNER}), "
                f"not one for signer {signer!r}"
            )
        if common_name != wanted:
            return (
                f"bootstrap token {token_id} is bound to node {binding.node_name!r}: it may only "
                f"request a certificate for {wanted!r}, not for {common_name!r}; join with "
                f"--node-name {binding.node_name} or create a token for this node"
            )
    return None


def spend(data: Mapping[str, str], now: dt.datetime) -> dict[str, str]:
    """The token's data after one more use."""
    binding = binding_of(data)
    return {**data, USES_KEY: str(binding.uses + 1), LAST_USED_KEY: format_time(now)}
