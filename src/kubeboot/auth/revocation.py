"""Revoked client certificates: the x509 authenticator's O(1) check (docs/beyond-upstream.md).

The revocation list is the ``certificaterevocations.ledger.kubeboot.io`` objects in the
store, each named by a serial number in lowercase hex. Every serving process (every replica,
every worker) keeps a :class:`~kubeboot.auth.mirror.StoreMirror` of them, so a revocation
created on any replica reaches the others as fast as their watch delivers it (milliseconds on
one etcd), survives restarts (it is stored), and costs one dict lookup per request, on cache
hits as much as on full verifications.

Serial numbers alone identify certificates here: kubeboot's CA draws 128 random bits per
certificate, so two certificates of the client CA bundle sharing one is not a practical case.
"""

from __future__ import annotations

from kubeboot.auth.interface import CredentialRevoked
from kubeboot.auth.mirror import StoreMirror
from kubeboot.resources.ledger import REVOCATIONS, serial_name
from kubeboot.storage.interface import Store

__all__ = ["RevocationList"]


class RevocationList:
    def __init__(self, store: Store) -> None:
        self.mirror = StoreMirror(store, REVOCATIONS.storage_prefix())

    def check(self, serial: int, subject: str) -> None:
        """Raise :class:`CredentialRevoked` if ``serial`` is revoked."""
        revoked = self.mirror.get(REVOCATIONS.storage_key(None, serial_name(serial)))
        if revoked is None:
            return
        spec = revoked.get("spec") or {}
        raise CredentialRevoked(
            f"client certificate serial {serial_name(serial)} (subject {subject}) was revoked "
            f"by {spec.get('revokedBy') or 'unknown'} at {spec.get('revokedAt') or 'unknown'}: "
            f"{spec.get('reason') or 'no reason given'}"
        )
