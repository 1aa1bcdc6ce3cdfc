"""``/metrics`` with the kubelet's certificate-manager metric names (node-facts §2.6).

TTL gauges are computed at scrape time from the files in the cert-dir (+Inf when there is
no certificate, as upstream), so they can never go stale; renewal error counts are plain
integers the managers increment.

The text exposition (format 0.0.4) is written here rather than with ``prometheus_client``
for two reasons: upstream's counters are named without ``_total``
(``kubelet_certificate_manager_client_expiration_renew_errors``), which
``prometheus_client`` cannot expose (it always appends ``_total`` to a counter), and
alerts are written against upstream's names; and an agent should not pay ~2 MB of RSS for
four lines of text. aiohttp's server half is imported only by :func:`serve`, i.e. only with
``--metrics-bind-address``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping

from kubeboot.agent.constants import CLIENT_PREFIX, SERVER_PREFIX

__all__ = [
    "CONTENT_TYPE",
    "ERROR_METRICS",
    "TTL_METRICS",
    "exposition",
    "renew_error",
    "renew_errors",
    "serve",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TTL_METRICS = {
    CLIENT_PREFIX: "kubelet_certificate_manager_client_ttl_seconds",
    SERVER_PREFIX: "kubelet_certificate_manager_server_ttl_seconds",
}
ERROR_METRICS = {
    CLIENT_PREFIX: "kubelet_certificate_manager_client_expiration_renew_errors",
    SERVER_PREFIX: "kubelet_server_expiration_renew_errors",
}
_TTL_HELP = (
    "Gauge of the TTL (time-to-live) of the certificate. "
    "The value is in seconds until certificate expiry (negative if already expired). "
    "If no certificate is available, the value will be +INF."
)
_ERRORS_HELP = "Counter of certificate renewal errors."
_errors = dict.fromkeys(ERROR_METRICS, 0)


def renew_error(prefix: str) -> None:
    _errors[SERVER_PREFIX if prefix == SERVER_PREFIX else CLIENT_PREFIX] += 1


def renew_errors() -> dict[str, int]:
    return dict(_errors)


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def exposition(ttls: Mapping[str, float | None], errors: Mapping[str, int]) -> bytes:
    """The Prometheus text format for TTLs (None = no certificate) and error counts."""
    lines: list[str] = []
    for prefix, name in TTL_METRICS.items():
        ttl = ttls.get(prefix)
        lines += [
            f"# HELP {name} {_TTL_HELP}",
            f"# TYPE {name} gauge",
            f"{name} {_number(math.inf if ttl is None else ttl)}",
        ]
    for prefix, name in ERROR_METRICS.items():
        lines += [
            f"# HELP {name} {_ERRORS_HELP}",
            f"# TYPE {name} counter",
            f"{name} {_number(errors.get(prefix, 0))}",
        ]
    return ("\n".join(lines) + "\n").encode()


async def serve(address: str, ttls: Callable[[], dict[str, float | None]]) -> None:
    """Serve ``/metrics`` on ``host:port`` until cancelled."""
    from aiohttp import web

    async def handle(_: web.Request) -> web.Response:
        body = exposition(ttls(), _errors)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    host, _, port = address.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
