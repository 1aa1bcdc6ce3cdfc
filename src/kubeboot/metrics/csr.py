"""What a CSR's write tells the metrics: upstream's duration counters, and kubeboot's joins
and CSR wait time. Called by the CSR registry strategy after each stored update.

Upstream (``pkg/registry/certificates/certificates/storage/metrics.go``): when a certificate
is first set on a CSR that asked for ``expirationSeconds``, ``requested`` counts it, and
``honored`` too if the certificate's life is within 5 minutes plus 5 % of what was asked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.api.registry.write_log import issued_certificate
from kubeboot.clock import parse_time
from kubeboot.metrics.apiserver import CSR_HONORED, CSR_REQUESTED, csr_signer_label
from kubeboot.metrics.kubeboot import CSR_WAIT, JOINS

__all__ = ["duration_honored", "record_csr_update"]

_KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"


def duration_honored(want: dt.timedelta, got: dt.timedelta) -> bool:
    return abs(want - got) < dt.timedelta(minutes=5) + want / 20


def _types(obj: dict[str, Any]) -> set[str]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")) for c in conds if isinstance(c, dict)}


def record_csr_update(new: dict[str, Any], old: dict[str, Any], now: dt.datetime) -> None:
    spec = new.get("spec") or {}
    signer = str(spec.get("signerName", ""))
    is_join = signer == _KUBELET_CLIENT and str(spec.get("username", "")).startswith(
        "system:bootstrap:"
    )
    added = _types(new) - _types(old)
    if is_join:
        for ctype, outcome in (("Denied", "denied"), ("Failed", "failed")):
            if ctype in added:
                JOINS.labels(outcome).inc()
    if issued_certificate(old) is not None:
        return
    cert = issued_certificate(new)
    if cert is None:
        return
    if is_join:
        JOINS.labels("issued").inc()
    created = (new.get("metadata") or {}).get("creationTimestamp")
    if created:
        CSR_WAIT.labels(csr_signer_label(signer)).observe(
            max(0.0, (now - parse_time(created)).total_seconds())
        )
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int):
        label = csr_signer_label(signer)
        CSR_REQUESTED.labels(label).inc()
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        if duration_honored(dt.timedelta(seconds=seconds), life):
            CSR_HONORED.labels(label).inc()
