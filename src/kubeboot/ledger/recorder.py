"""Writes the issuance ledger from the registry's own writes of CSRs (a REST write observer).

Why in the registry and not in the signer: every certificate, whichever signer wrote it (the
in-server one, ``kubeboot approver``'s, an external one over HTTP) and on whichever replica or
worker, reaches the cluster through one write of a CSR's ``status.certificate``; recording
there gives exactly one entry per certificate with no controller to keep alive.

Three moments of a CSR's life feed one entry:

1. **create**: the client address of the request (:data:`REQUEST_SOURCE`, set per request by
   the HTTP layer, the real client through the PROXY protocol) is stored as the CSR's
   *origin*, under ``/ledger.kubeboot.io/csrorigins/<csr uid>`` (not a served resource; the
   same store, so any replica can read it at issuance);
2. **approval**: the authenticated user whose write added ``Approved`` joins the origin;
3. **issuance**: the ``IssuedCertificate`` is written (:func:`kubeboot.ledger.entries.
   issued_certificate_entry`). The origin goes with the CSR: deleting it (the csrcleaner
   does within an hour of issuance) removes it, off the join's path.

The entry is written after the CSR write was stored, so a failure to write it (the store
went away between the two writes) is logged at ERROR with the CSR's name, and the
certificate is still delivered: the ledger is a record, not a gate. Entries are never
deleted by kubeboot, so they outlive the CSR's garbage collection (csrcleaner deletes issued
CSRs after an hour).

Cost: three store writes per issued certificate (origin, approver, entry) and two reads,
written directly (the server builds these records whole; nothing to default or validate).
Measured in-process on SQLite: about 2 ms of CPU per join on top of ~7 ms
(``--issuance-ledger=false`` removes it).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from kubeboot.api.registry import codec
from kubeboot.api.registry.meta import new_uid
from kubeboot.api.registry.write_log import issued_certificate
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import Clock, format_time
from kubeboot.ledger.entries import Origin, issued_certificate_entry
from kubeboot.resources.goshape import go_shape
from kubeboot.resources.ledger import GROUP, ISSUED_CERTIFICATES
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.schemas.ledger_v1 import ISSUED_CERTIFICATE as _ENTRY_SCHEMA
from kubeboot.resources.status import StatusError
from kubeboot.storage.interface import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatch,
    Store,
    StoreError,
)

__all__ = ["ORIGIN_PREFIX", "REQUEST_SOURCE", "LedgerRecorder"]

log = logging.getLogger("kubeboot.ledger")

JsonObj = dict[str, Any]
ORIGIN_PREFIX = f"/{GROUP}/csrorigins/"
# The client address of the request being served ("" for the server's own writes).
REQUEST_SOURCE: ContextVar[str] = ContextVar("kubeboot_request_source", default="")

_CSRS = ("certificates.k8s.io", "certificatesigningrequests")


def _uid(obj: JsonObj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def _decode_origin(kv: KeyValue | None) -> Origin:
    if kv is None:
        return Origin()
    try:
        return Origin.from_json(json.loads(kv.value))
    except ValueError:
        return Origin()


def _approved(obj: JsonObj | None) -> bool:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Approved" for c in conds)


class LedgerRecorder:
    """The observer (``rest.Observer`` shape); it writes to the store directly."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def __call__(
        self,
        user: UserInfo,
        res: ResourceInfo,
        verb: str,
        subresource: str,
        new: JsonObj | None,
        old: JsonObj | None,
    ) -> None:
        if (res.group, res.plural) != _CSRS:
            return
        try:
            if verb == "create":
                await self._merge_origin(_uid(new), source_address=REQUEST_SOURCE.get())
            elif verb == "delete":
                await self._drop_origin(_uid(old))
            elif new is not None and _approved(new) and not _approved(old):
                await self._merge_origin(_uid(new), approver=user.name)
            if verb == "update" and new is not None:
                await self._record_issuance(new, old)
        except (StoreError, StatusError) as exc:
            log.error(
                "issuance ledger: could not record %s of CSR %s: %s",
                verb,
                ((new or old or {}).get("metadata") or {}).get("name"),
                exc,
            )

    async def _record_issuance(self, new: JsonObj, old: JsonObj | None) -> None:
        if old is not None and issued_certificate(old) is not None:
            return
        cert = issued_certificate(new)
        if cert is None:
            return
        uid = _uid(new)
        entry = issued_certificate_entry(cert, new, await self._origin(uid))
        meta = entry["metadata"]
        meta["uid"], meta["creationTimestamp"] = new_uid(), format_time(self._clock.now())
        key = ISSUED_CERTIFICATES.storage_key(None, meta["name"])
        try:
            await self._store.create(key, codec.encode(go_shape(entry, _ENTRY_SCHEMA)))
        except KeyExistsError:
            return  # recorded by an earlier try of this very write (same serial)
        log.info(
            "issuance ledger: recorded serial %s (subject %s, node %s) for CSR %s",
            entry["spec"]["serialNumber"],
            entry["spec"]["subject"],
            entry["spec"]["nodeName"] or "-",
            entry["spec"]["csrName"],
        )

    async def _origin(self, uid: str) -> Origin:
        return _decode_origin(await self._store.get(ORIGIN_PREFIX + uid))

    async def _merge_origin(self, uid: str, **facts: str) -> None:
        """Add ``facts`` to the CSR's origin. Create and approval can race (the approver
        sees the CSR as soon as it is stored), so either may find the other's record: one
        retry after a lost create or compare-and-swap merges both."""
        if not uid:
            return
        key = ORIGIN_PREFIX + uid
        # A create's uid is new: try the create first, reading only if another write won.
        current = None if "source_address" in facts else await self._store.get(key)
        for attempt in range(2):
            if attempt:
                current = await self._store.get(key)
            merged = replace(_decode_origin(current), **facts)
            value = json.dumps(merged.to_json()).encode()
            try:
                if current is None:
                    await self._store.create(key, value)
                else:
                    await self._store.update(key, value, current.mod_revision)
                return
            except (KeyExistsError, RevisionMismatch):
                if attempt:
                    raise

    async def _drop_origin(self, uid: str) -> None:
        if not uid:
            return
        try:
            await self._store.delete(ORIGIN_PREFIX + uid)
        except KeyNotFoundError:
            return
