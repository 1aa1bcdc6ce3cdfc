"""``/metrics`` with the kubelet's certificate-manager metric names (node-facts §2.6).

TTL gauges are computed at scrape time from the files in the cert-dir (+Inf when there is
no certificate, as upstream), so they can never go stale; renewal error counters are
incremented by the managers. The HTTP server is imported only when ``--metrics-bind-address``
is given, so an agent without it does not pay for aiohttp's server half.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kubeboot.agent.constants import CLIENT_PREFIX, SERVER_PREFIX

__all__ = ["REGISTRY", "renew_error", "serve"]

REGISTRY = CollectorRegistry()
_CLIENT_ERRORS = Counter(
    "kubelet_certificate_manager_client_expiration_renew_errors",
    "Counter of certificate renewal errors.",
    registry=REGISTRY,
)
_SERVER_ERRORS = Counter(
    "kubelet_server_expiration_renew_errors",
    "Counter of certificate renewal errors.",
    registry=REGISTRY,
)
_TTL_NAMES = {
    CLIENT_PREFIX: "kubelet_certificate_manager_client_ttl_seconds",
    SERVER_PREFIX: "kubelet_certificate_manager_server_ttl_seconds",
}


def renew_error(prefix: str) -> None:
    (_SERVER_ERRORS if prefix == SERVER_PREFIX else _CLIENT_ERRORS).inc()


class _TtlCollector(Collector):
    def __init__(self, ttls: Callable[[], dict[str, float | None]]) -> None:
        self._ttls = ttls

    def collect(self):  # type: ignore[no-untyped-def]
        for prefix, ttl in self._ttls().items():
            gauge = GaugeMetricFamily(
                _TTL_NAMES[prefix],
                "Gauge of the TTL (time-to-live) of the certificate. "
                "The value is in seconds until certificate expiry (negative if already expired). "
                "If no certificate is available, the value will be +INF.",
            )
            gauge.add_metric([], math.inf if ttl is None else ttl)
            yield gauge


async def serve(address: str, ttls: Callable[[], dict[str, float | None]]) -> None:
    """Serve ``/metrics`` on ``host:port`` until cancelled."""
    from aiohttp import web

    REGISTRY.register(_TtlCollector(ttls))

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
