"""The agent's ``/metrics`` exposition, written with ``prometheus_client``.

Names are the kubelet's (:data:`~kubeboot.agent.metrics.TTL_METRICS`,
:data:`~kubeboot.agent.metrics.ERROR_METRICS`). Upstream names the two renewal-error counters
without ``_total``; ``prometheus_client`` always writes a counter as ``<name>_total``, so a
custom collector exposes those two as *untyped* series (``# TYPE <name> untyped``): the
sample names are upstream's exactly, which is what alerts and dashboards match on, and a
counter's PromQL (``rate``, ``increase``) works on them unchanged.

TTLs are computed at scrape time from the certificates' expiry (+Inf when there is none, as
upstream), so they never go stale. For the sleeper, :meth:`AgentMetrics.handover` gives the
text as rendered now plus the wall-clock expiry behind each TTL gauge, so that the sleeper's
TTLs still count down without this module or the library.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.registry import Collector

from kubeboot.agent.metrics import (
    ERROR_METRICS,
    RENEW_ERRORS_ENV,
    TTL_METRICS,
    encode_renew_errors,
    renew_errors,
)
from kubeboot.agent.sleeper import COUNTDOWNS_ENV, METRICS_ENV

__all__ = ["AgentMetrics", "Expiries"]

_TTL_HELP = (
    "Gauge of the TTL (time-to-live) of the certificate. "
    "The value is in seconds until certificate expiry (negative if already expired). "
    "If no certificate is available, the value will be +INF."
)
_ERRORS_HELP = "Counter of certificate renewal errors."

Expiries = Callable[[], Mapping[str, dt.datetime | None]]
"""Each certificate kind's NotAfter (None: no certificate), read when asked."""


class _CertificateCollector(Collector):
    def __init__(self, expiries: Expiries, now: Callable[[], dt.datetime]) -> None:
        self._expiries = expiries
        self._now = now

    def collect(self) -> Iterator[Metric]:
        expiries, now, errors = self._expiries(), self._now(), renew_errors()
        for prefix, name in TTL_METRICS.items():
            expiry = expiries.get(prefix)
            ttl = math.inf if expiry is None else (expiry - now).total_seconds()
            yield GaugeMetricFamily(name, _TTL_HELP, value=ttl)
        for prefix, name in ERROR_METRICS.items():
            # Untyped, not a counter: a counter would be written as <name>_total.
            yield UnknownMetricFamily(name, _ERRORS_HELP, value=errors.get(prefix, 0))


class AgentMetrics:
    """The agent's registry, rendered for a scrape or handed over to the sleeper."""

    def __init__(self, expiries: Expiries, now: Callable[[], dt.datetime]) -> None:
        self._expiries = expiries
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_CertificateCollector(expiries, now))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def handover(self) -> dict[str, str]:
        """What the sleeper answers ``/metrics`` from (environment entries): this text, and
        the wall-clock expiry behind each TTL gauge that has a certificate."""
        countdowns = {
            TTL_METRICS[prefix]: f"{expiry.timestamp():.6f}"
            for prefix, expiry in self._expiries().items()
            if expiry is not None and prefix in TTL_METRICS
        }
        return {
            METRICS_ENV: self.render().decode(),
            COUNTDOWNS_ENV: ",".join(f"{name}={at}" for name, at in sorted(countdowns.items())),
            RENEW_ERRORS_ENV: encode_renew_errors(renew_errors()),
        }
