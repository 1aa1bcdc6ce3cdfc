"""The primary's periodic counts for the metrics: objects per resource, tokens and issued
certificates by time left, the server's own certificates' expiry.

Why periodic and in the primary: upstream's ``apiserver_storage_objects`` is a count "at the
time of last check" too (every minute), and only the primary holds the store; counting on the
request path would cost every request for a figure read once per scrape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from kubeboot.api.registry.codec import decode
from kubeboot.api.registry.write_log import issued_certificate
from kubeboot.clock import Clock
from kubeboot.metrics.apiserver import RESOURCE_OBJECTS, STORAGE_OBJECTS
from kubeboot.metrics.kubeboot import (
    BOOTSTRAP_TOKENS,
    ISSUED_CERTIFICATES,
    SERVER_CERTIFICATE_EXPIRATION,
    expiry_bucket,
    set_bucket_counts,
)
from kubeboot.pki.renewal import ManagedCertificate
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import RESOURCES, find_resource
from kubeboot.storage.interface import Store, StoreError

__all__ = ["INVENTORY_INTERVAL", "count_once", "record_server_certificates", "run_inventory"]

log = logging.getLogger("kubeboot.server.inventory")

INVENTORY_INTERVAL = 60.0
_CSRS = find_resource("certificates.k8s.io", "v1", "certificatesigningrequests")
_SECRETS = find_resource("", "v1", "secrets")


def record_server_certificates(certs: Sequence[ManagedCertificate]) -> None:
    for entry in certs:
        if entry.certificate is not None:
            SERVER_CERTIFICATE_EXPIRATION.labels(entry.name).set(
                entry.certificate.not_valid_after_utc.timestamp()
            )


async def _all(store: Store, prefix: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    start: str | None = None
    while True:
        page = await store.range(prefix, start_key=start, limit=500)
        out += [decode(kv) for kv in page.kvs]
        if not page.more or not page.kvs:
            return out
        start = page.kvs[-1].key + "\x00"


async def count_once(store: Store, clock: Clock) -> None:
    for res in RESOURCES:
        if not res.stored:
            continue
        group_resource = f"{res.plural}.{res.group}" if res.group else res.plural
        try:
            count = float(await store.count(res.storage_prefix()))
        except StoreError:
            count = -1.0
        STORAGE_OBJECTS.labels(group_resource).set(count)
        RESOURCE_OBJECTS.labels(res.group, res.plural).set(count)
    now = clock.now()
    assert _SECRETS is not None
    assert _CSRS is not None
    secrets = await _all(store, _SECRETS.storage_prefix(bt.TOKEN_NAMESPACE))
    set_bucket_counts(
        BOOTSTRAP_TOKENS,
        (
            "expired" if bt.is_expired(data, now) else expiry_bucket(bt.get_expiration(data), now)
            for data in (bt.decode_data(s) for s in secrets if s.get("type") == bt.SECRET_TYPE)
        ),
    )
    certs = (issued_certificate(csr) for csr in await _all(store, _CSRS.storage_prefix()))
    set_bucket_counts(
        ISSUED_CERTIFICATES,
        (expiry_bucket(c.not_valid_after_utc, now) for c in certs if c is not None),
    )


async def run_inventory(store: Store, clock: Clock, interval: float = INVENTORY_INTERVAL) -> None:
    while True:
        try:
            await count_once(store, clock)
        except StoreError as exc:
            log.warning("counting objects for the metrics failed: %s", exc)
        await asyncio.sleep(interval)
