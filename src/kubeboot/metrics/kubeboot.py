"""kubeboot's own metrics, for what upstream has none (names prefixed ``kubeboot_``).

* ``kubeboot_joins_total{outcome}`` — node client certificates requested with a bootstrap
  token, by outcome: ``issued``, ``denied``, ``failed``;
* ``kubeboot_csr_wait_seconds{signerName}`` — from a CSR's creation to its certificate;
* ``kubeboot_bootstrap_tokens{expires_in}`` and ``kubeboot_issued_certificates{expires_in}``
  — the tokens and the certificates in CSRs, by time left (:data:`EXPIRY_BUCKETS`; tokens
  without an expiration are ``never``), recounted by the primary every minute;
* ``kubeboot_certificate_expiration_timestamp_seconds{name}`` — the server's own
  certificates (``apiserver``, ``admin.conf``, ``ca``), for an alert well before expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from kubeboot.metrics import REGISTRY

__all__ = [
    "BOOTSTRAP_TOKENS",
    "CSR_WAIT",
    "EXPIRY_BUCKETS",
    "ISSUED_CERTIFICATES",
    "JOINS",
    "SERVER_CERTIFICATE_EXPIRATION",
    "expiry_bucket",
    "set_bucket_counts",
]

JOINS = Counter(
    "kubeboot_joins_total",
    "Node client certificates requested with a bootstrap token, by outcome.",
    ("outcome",),
    registry=REGISTRY,
)
CSR_WAIT = Histogram(
    "kubeboot_csr_wait_seconds",
    "Seconds from a CSR's creation to its issued certificate.",
    ("signerName",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400),
    registry=REGISTRY,
)
BOOTSTRAP_TOKENS = Gauge(
    "kubeboot_bootstrap_tokens",
    "Bootstrap tokens by time left until they expire.",
    ("expires_in",),
    registry=REGISTRY,
)
ISSUED_CERTIFICATES = Gauge(
    "kubeboot_issued_certificates",
    "Certificates held in CSRs by time left until they expire.",
    ("expires_in",),
    registry=REGISTRY,
)
SERVER_CERTIFICATE_EXPIRATION = Gauge(
    "kubeboot_certificate_expiration_timestamp_seconds",
    "When the server's own certificates expire (Unix time), by kubeadm's name.",
    ("name",),
    registry=REGISTRY,
)

EXPIRY_BUCKETS: tuple[tuple[str, dt.timedelta], ...] = (
    ("1h", dt.timedelta(hours=1)),
    ("24h", dt.timedelta(hours=24)),
    ("7d", dt.timedelta(days=7)),
    ("30d", dt.timedelta(days=30)),
    ("365d", dt.timedelta(days=365)),
)
_ALL_BUCKETS = ("expired", *(name for name, _ in EXPIRY_BUCKETS), "longer", "never")


def expiry_bucket(expires: dt.datetime | None, now: dt.datetime) -> str:
    """``expired``, the first bucket whose bound is beyond ``expires``, ``longer``, ``never``."""
    if expires is None:
        return "never"
    left = expires - now
    if left <= dt.timedelta(0):
        return "expired"
    for name, bound in EXPIRY_BUCKETS:
        if left <= bound:
            return name
    return "longer"


def set_bucket_counts(gauge: Gauge, buckets: Iterable[str]) -> None:
    counts = dict.fromkeys(_ALL_BUCKETS, 0)
    for bucket in buckets:
        counts[bucket] += 1
    for bucket, count in counts.items():
        gauge.labels(bucket).set(count)
