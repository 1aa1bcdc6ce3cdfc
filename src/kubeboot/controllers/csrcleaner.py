"""csrcleaner: garbage-collect finished and abandoned CSRs (server-facts §6.3).

Runs every hour over the informer's cache, like upstream's polling cleaner. A CSR is deleted
when (:func:`cleanup_reason`):

* Approved, issued, and the Approved condition's ``lastUpdateTime`` is over 1 h old;
* Denied with ``lastUpdateTime`` over 1 h old;
* Failed with ``lastUpdateTime`` over 1 h old;
* pending (no conditions at all) and created over 24 h ago;
* issued and the first certificate's NotAfter is in the past.

Zero or missing timestamps never count as old, so an approved-but-never-issued CSR without
a Failed condition is kept, as upstream keeps it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from cryptography import x509

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock
from kubeboot.controllers.certificates import (
    CSR_RESOURCE,
    certificate_pem,
    conditions,
    has_certificate,
    timestamp,
)
from kubeboot.controllers.runtime import Informer
from kubeboot.pki.pem import decode_pem_blocks
from kubeboot.resources.status import NotFound

__all__ = ["CLEAN_INTERVAL", "CONTROLLER_NAME", "cleanup_reason", "run_csrcleaner"]

log = logging.getLogger("kubeboot.controllers.csrcleaner")

CONTROLLER_NAME = "csrcleaner"
CLEAN_INTERVAL = dt.timedelta(hours=1)
APPROVED_EXPIRATION = dt.timedelta(hours=1)
DENIED_EXPIRATION = dt.timedelta(hours=1)
FAILED_EXPIRATION = dt.timedelta(hours=1)
PENDING_EXPIRATION = dt.timedelta(hours=24)


def _older_than(value: object, age: dt.timedelta, now: dt.datetime) -> bool:
    when = timestamp(value)
    return when is not None and now - when > age


def _first_not_after(csr: JsonObject) -> dt.datetime | None:
    for block in decode_pem_blocks(certificate_pem(csr)):
        if block.type == "CERTIFICATE":
            try:
                return x509.load_der_x509_certificate(block.der).not_valid_after_utc
            except ValueError:
                return None
    return None


def cleanup_reason(csr: JsonObject, now: dt.datetime) -> str | None:
    """Why ``csr`` should be deleted now, or None to keep it."""
    conds = conditions(csr)
    issued = has_certificate(csr)
    for cond in conds:
        ctype, updated = cond.get("type"), cond.get("lastUpdateTime")
        if ctype == "Approved" and issued and _older_than(updated, APPROVED_EXPIRATION, now):
            return "approved and issued more than 1h ago"
        if ctype == "Denied" and _older_than(updated, DENIED_EXPIRATION, now):
            return "denied more than 1h ago"
        if ctype == "Failed" and _older_than(updated, FAILED_EXPIRATION, now):
            return "failed more than 1h ago"
    created = (csr.get("metadata") or {}).get("creationTimestamp")
    if not conds and _older_than(created, PENDING_EXPIRATION, now):
        return "pending for more than 24h"
    if issued and any(c.get("type") == "Approved" for c in conds):
        not_after = _first_not_after(csr)
        if not_after is not None and not_after < now:
            return "its certificate has expired"
    return None


async def clean_once(client: ApiClient, informer: Informer, clock: Clock) -> int:
    """One pass; returns how many CSRs were deleted."""
    deleted = 0
    now = clock.now()
    for csr in informer.items():
        reason = cleanup_reason(csr, now)
        if reason is None:
            continue
        meta = csr.get("metadata") or {}
        try:
            await client.delete(CSR_RESOURCE, str(meta.get("name")), uid=meta.get("uid"))
        except NotFound:
            continue
        except Exception as exc:
            log.warning("csrcleaner: deleting %s failed: %s", meta.get("name"), exc)
            continue
        log.info("csrcleaner: deleted %s: %s", meta.get("name"), reason)
        deleted += 1
    return deleted


async def run_csrcleaner(client: ApiClient, informer: Informer, clock: Clock) -> None:
    await informer.wait_synced()
    while True:
        await clean_once(client, informer, clock)
        await asyncio.sleep(CLEAN_INTERVAL.total_seconds())
