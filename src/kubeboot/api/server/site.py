"""The listening socket and the HTTPS site on it: one code path for the server and its workers.

The site's TLS context is live-reloaded (:class:`~.servingcert.ServingCertReloader`): a
renewed or replaced serving pair is presented to new connections without a restart. With
trusted load balancers (``--proxy-protocol-trusted-cidrs``) the socket is served by
:class:`~.proxylistener.ProxyProtocolListener`, which reads their PROXY headers before TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from aiohttp import web

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
