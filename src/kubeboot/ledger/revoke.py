"""Revoking certificates through the API: by serial, by node, and when a Node is deleted.

One implementation serves ``kubeboot certs revoke`` (an HTTPS client as the admin) and the
server's own revocation of a deleted Node's certificates (:class:`NodeRevoker`, a REST write
observer using the in-process client as the server): both create
``CertificateRevocation`` objects, which every replica's x509 authenticator watches
(:mod:`kubeboot.auth.revocation`). Revoking is idempotent: a serial revoked already is
reported, not an error.

Why on the Node delete itself and not in a controller: the revocation is in place when
``kubectl delete node`` returns, on whichever replica served it, with no leader to wait for
and no extra RBAC for a controller identity. It costs one scan of the ledger per Node
deletion (entries are selected by ``spec.nodeName``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kubeboot.auth.interface import UserInfo
from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock
from kubeboot.ledger.entries import revocation, still_valid
from kubeboot.resources.ledger import ISSUED_CERTIFICATES, REVOCATIONS
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import AlreadyExists, StatusError

__all__ = ["REVOKER", "NodeRevoker", "Revoked", "issued_entries", "revoke", "revoke_node"]

log = logging.getLogger("kubeboot.ledger")

NODE_DELETED_REASON = "the Node object was deleted"
# Who revokes a deleted Node's certificates: the server itself (system:masters, as upstream's
# loopback client).
REVOKER = UserInfo("system:apiserver", groups=("system:masters", "system:authenticated"))
_PAGE = 500


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: str
    already: bool  # it had been revoked before


async def issued_entries(
    client: ApiClient, *, node: str | None = None
) -> AsyncIterator[JsonObject]:
    """Every ``IssuedCertificate`` (of ``node``), page by page."""
    selector = f"spec.nodeName={node}" if node else None
    token: str | None = None
    while True:
        page = await client.list(
            ISSUED_CERTIFICATES, field_selector=selector, limit=_PAGE, continue_token=token
        )
        for item in page.get("items") or []:
            yield item
        token = (page.get("metadata") or {}).get("continue") or None
        if not token:
            return


async def revoke(client: ApiClient, entry_spec: JsonObject, reason: str) -> Revoked:
    """Revoke one certificate (``entry_spec`` as in the ledger, or just its serial)."""
    obj = revocation(entry_spec, reason)
    try:
        await client.create(REVOCATIONS, obj)
    except AlreadyExists:
        return Revoked(obj["metadata"]["name"], already=True)
    return Revoked(obj["metadata"]["name"], already=False)


async def revoke_node(client: ApiClient, node: str, reason: str, clock: Clock) -> list[Revoked]:
    """Revoke every certificate the ledger records for ``node`` that has not expired."""
    now = clock.now()
    done = []
    async for entry in issued_entries(client, node=node):
        spec = entry.get("spec") or {}
        if still_valid(spec, now):
            done.append(await revoke(client, spec, reason))
    return done


class NodeRevoker:
    """REST write observer: a deleted Node's certificates are revoked."""

    def __init__(self, client: ApiClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock

    async def __call__(
        self,
        user: UserInfo,
        res: ResourceInfo,
        verb: str,
        subresource: str,
        new: JsonObject | None,
        old: JsonObject | None,
    ) -> None:
        if verb != "delete" or res.group or res.plural != "nodes" or old is None:
            return
        node = str((old.get("metadata") or {}).get("name") or "")
        reason = f"{NODE_DELETED_REASON} by {user.name}"
        try:
            revoked = await revoke_node(self._client, node, reason, self._clock)
        except StatusError as exc:
            log.error("could not revoke the certificates of deleted node %s: %s", node, exc)
            return
        if revoked:
            log.info(
                "node %s deleted by %s: revoked %d certificate(s): %s",
                node,
                user.name,
                len(revoked),
                ", ".join(r.serial for r in revoked),
            )
