"""The listening socket and the HTTPS site on it: one code path for the server and its workers.

The site's TLS context is live-reloaded (:class:`~.servingcert.ServingCertReloader`): a
renewed or replaced serving pair is presented to new connections without a restart. With
trusted load balancers (``--proxy-protocol-trusted-cidrs``) the socket is served by
:class:`~.proxylistener.ProxyProtocolListener`, which reads their PROXY headers before TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kubeboot.api.endpoints.app import ApiContext, build_app
from kubeboot.api.server.proxylistener import ProxyProtocolListener
from kubeboot.api.server.servingcert import ServingCertReloader
from kubeboot.auth.sources import SourceNetworks
from kubeboot.auth.x509 import make_server_ssl_context

__all__ = ["LISTEN_BACKLOG", "HttpsSite", "ListenError", "bind_listener", "start_https"]


# A storm of nodes connects faster than a loaded loop accepts; when the accept queue
# overflows, Linux (with SYN cookies) answers a client's first data with a reset. aiohttp's
# sites listen with 128 unless told; 4096 is the kernel's default somaxconn cap, as Go uses.
LISTEN_BACKLOG = 4096


# Request line and header limits. Go's net/http (kube-apiserver) allows 1 MiB for the whole
# header block; aiohttp limits each line instead. A 1 MiB request line takes any URL Go
# takes; 64 KiB per header and 128 headers (aiohttp's count) bound a connection's header
# memory to 8 MiB. Past them aiohttp answers a plain-text 400 where Go answers a plain-text
# 431 (docs/api.md): neither is a Status, since no request exists yet to answer with one.
MAX_REQUEST_LINE = 1024 * 1024
MAX_HEADER_FIELD = 64 * 1024
MAX_HEADERS = 128
_MALFORMED_LOG_INTERVAL = 1.0

protocol_log = logging.getLogger("kubeboot.api.http")


class _ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's connection-level logger, with a client's malformed request as what it is.

    aiohttp logs every request it cannot parse with ``logger.exception`` (an ERROR and a
    traceback). A malformed request is the client's mistake, not a server fault: one
    WARNING line naming the client and the problem, at most one a second (the rest are
    counted into the next line), so a scanner cannot flood the log. Other exceptions (a
    bug in the server) keep their traceback.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self._last = -_MALFORMED_LOG_INTERVAL
        self._suppressed = 0

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self._malformed(args, kwargs):
            self.logger.exception(msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        # aiohttp logs a first request that is not HTTP at all (a scanner, TLS garbage)
        # at DEBUG with a traceback; it is a malformed request like any other.
        if not self._malformed(args, kwargs):
            self.logger.debug(msg, *args, **kwargs)

    def _malformed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Log one line if this is a malformed request (rate-limited); False otherwise."""
        exc = kwargs.get("exc_info")
        if not isinstance(exc, BaseException):
            exc = sys.exc_info()[1]
        if not isinstance(exc, HttpProcessingError):
            return False
        now = time.monotonic()
        if now - self._last < _MALFORMED_LOG_INTERVAL:
            self._suppressed += 1
            return True
        self._last, suppressed, self._suppressed = now, self._suppressed, 0
        peer = args[0] if args else "?"
        detail = str(exc.message).replace("\r", " ").replace("\n", " ")[:200]
        extra = f" ({suppressed} more since the last one)" if suppressed else ""
        self.logger.warning("malformed HTTP request from %s: %s%s", peer, detail, extra)
        return True


class ListenError(OSError):
    """The address cannot be bound (in use, not local, no permission for the port)."""


def bind_listener(host: str, port: int) -> socket.socket:
    """The server's one listening socket (port 0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class HttpsSite:
    """A serving API site and its certificate reloader; :meth:`cleanup` stops both."""

    def __init__(
        self,
        runner: web.AppRunner,
        reloader: asyncio.Task[None],
        listener: ProxyProtocolListener | None = None,
    ) -> None:
        self.runner = runner
        self._reloader = reloader
        self._listener = listener

    async def cleanup(self) -> None:
        self._reloader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reloader
        if self._listener is not None:
            await self._listener.close()
        await self.runner.cleanup()


async def start_https(
    ctx: ApiContext,
    sock: socket.socket,
    *,
    cert_file: Path,
    key_file: Path,
    client_ca_file: Path,
    reload_interval: float,
    proxy_trusted: SourceNetworks | None = None,
) -> HttpsSite:
    """Serve the API on ``sock``; the caller cleans the returned site up on stop.

    ``proxy_trusted``: the load balancers whose PROXY protocol headers name the client
    (None: no PROXY protocol, aiohttp's own site)."""
    # handler_cancellation: a client that goes away cancels its handler. Without it a
    # watch whose client left keeps its task, TLS transport and buffers until its
    # timeout (15-30 min): a joined node's watch is left exactly so, and 10,000 joins
    # held 940 MB. Writes are unaffected: a cancelled request's write still commits.
    runner = web.AppRunner(
        build_app(ctx),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=1.0,
        handler_cancellation=True,
        max_line_size=MAX_REQUEST_LINE,
        max_field_size=MAX_HEADER_FIELD,
        max_headers=MAX_HEADERS,
        logger=_ProtocolLog(protocol_log),
    )
    await runner.setup()
    ssl_ctx = make_server_ssl_context(cert_file, key_file, client_ca_file)
    reloader = ServingCertReloader(ssl_ctx, cert_file, key_file)
    listener = None
    if proxy_trusted is None:
        site = web.SockSite(runner, sock, ssl_context=ssl_ctx, backlog=LISTEN_BACKLOG)
        await site.start()
    else:
        assert runner.server is not None
        listener = ProxyProtocolListener(sock, runner.server, ssl_ctx, proxy_trusted)
        listener.start()
    return HttpsSite(runner, asyncio.create_task(reloader.run(reload_interval)), listener)
