"""Accepting connections behind a load balancer that speaks the PROXY protocol.

With ``--proxy-protocol-trusted-cidrs`` the listening socket is served by this accept loop
instead of the event loop's own TLS server, because the header comes *before* TLS: it must
be read off the raw socket, and exactly it, leaving the client's TLS handshake in the
socket for the TLS transport. Per accepted connection:

* **From a trusted address** (the load balancers): a header is required, v1 or v2
  (:mod:`.proxyprotocol`), within :data:`HEADER_TIMEOUT`. The specification forbids
  guessing whether one is there: a trusted balancer that forwarded a client's bytes without
  its own header would let that client write the header and pick its address. A connection
  without a valid header is closed and logged. A header that names the client makes it the
  connection's peer address for everything above: rate-limit budgets, the anonymous CIDR
  rule, audit ``sourceIPs``, log lines. v2 LOCAL (a balancer's health check) and v1
  ``UNKNOWN`` keep the balancer's own address.
* **From any other address**: a connection whose first bytes are a PROXY header is refused
  (closed, logged): only a configured balancer may name another address. Everything else
  goes to TLS unchanged.

How the header is read: peek at what has arrived (``MSG_PEEK``), let the pure parser say
whether it is a whole header, then consume exactly that many bytes (or, while it is not
whole yet, the bytes peeked, which all belong to it). Nothing after the header is ever
taken off the socket.

Without the flag none of this runs: the site is aiohttp's own and connections cost what
they always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from kubeboot.api.server.proxyprotocol import (
    Address,
    ProxyHeader,
    ProxyHeaderError,
    parse_proxy_header,
    starts_like_proxy_header,
)
from kubeboot.auth.ratelimit import BucketPolicy, RateLimiter
from kubeboot.auth.sources import SourceNetworks
from kubeboot.clock import SystemClock

__all__ = ["HEADER_TIMEOUT", "ProxyProtocolListener", "read_proxy_header", "trusted_networks"]

log = logging.getLogger("kubeboot.server.proxy")

# The specification asks for at least 3 s (a TCP retransmit); balancers send the header with
# the connection, so this only ends connections that will never send one.
HEADER_TIMEOUT = 5.0
# asyncio's default TLS handshake timeout; a client that says nothing is closed after it.
FIRST_BYTES_TIMEOUT = 60.0
_PEEK = 536  # any v1 line, a v2 header with an IPv6 block and a few hundred bytes of TLVs
LISTEN_BATCH = 128  # connections accepted per wake at most, so the loop serves others too
_TRUST_CACHE = 4096
# A flood of bad connections must not flood the log: a few lines per source, then one a minute.
_LOG_BUDGET = BucketPolicy(rate=1 / 60, burst=3)


async def read_proxy_header(sock: socket.socket) -> ProxyHeader:
    """Read the PROXY header at the start of ``sock`` (non-blocking), consuming only it."""
    loop = asyncio.get_running_loop()
    taken = b""
    while True:
        peeked = await _peek(loop, sock, _PEEK)
        if not peeked:
            error = _NothingSent if not taken else ProxyHeaderError
            raise error(f"connection closed after {len(taken)} bytes, before a whole PROXY header")
        header = parse_proxy_header(taken + peeked)
        if header is None:
            taken += _consume(sock, len(peeked))
            continue
        _consume(sock, header.length - len(taken))
        return header


def _consume(sock: socket.socket, count: int) -> bytes:
    """Take ``count`` bytes that a peek has shown are there (so this never blocks)."""
    data = sock.recv(count)
    if len(data) != count:  # pragma: no cover - the kernel returns what a peek showed
        raise ProxyHeaderError(f"read {len(data)} of {count} peeked header bytes")
    return data


def _defer_accept(sock: socket.socket) -> None:
    """Have the kernel complete ``accept`` only once a connection's first bytes are there
    (Linux ``TCP_DEFER_ACCEPT``, as nginx's ``listen ... deferred``): the header or the TLS
    ClientHello is then read at once, without a reader and a timer per connection. One that
    sends nothing is still accepted after the timeout, and closed by the rules above."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, math.ceil(HEADER_TIMEOUT))


def _arrived(sock: socket.socket, size: int) -> bytes | None:
    """What is waiting on ``sock`` (at most ``size`` bytes, left there), b"" at end of
    stream, None while nothing has arrived."""
    try:
        return sock.recv(size, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return None


def _header_arrived(sock: socket.socket) -> ProxyHeader | None:
    """The header, consumed, if all of it has arrived; None (nothing consumed) if not yet."""
    data = _arrived(sock, _PEEK)
    header = parse_proxy_header(data) if data else None
    if header is not None:
        _consume(sock, header.length)
    return header


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """The bytes waiting on ``sock`` (at most ``size``), once there is at least one, or b""
    at end of stream."""
    while (data := _arrived(sock, size)) is None:
        ready = loop.create_future()
        loop.add_reader(sock.fileno(), ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_reader(sock.fileno())
    return data


class _PeerView(asyncio.Transport):
    """A transport as it is, except that its peer is the client the PROXY header named."""

    def __init__(self, inner: asyncio.Transport, peer: Address) -> None:
        super().__init__()
        self._inner = inner
        self._peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        return self._inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def close(self) -> None:
        self._inner.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._inner.writelines(list_of_data)

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def abort(self) -> None:
        self._inner.abort()


class _ProxiedProtocol(asyncio.Protocol):
    """Hands the HTTP protocol a :class:`_PeerView` of the TLS transport; forwards the rest."""

    def __init__(self, inner: asyncio.Protocol, peer: Address) -> None:
        self._inner = inner
        self._peer = peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast: uvloop's transports are not subclasses of asyncio.Transport
        self._inner.connection_made(_PeerView(cast(asyncio.Transport, transport), self._peer))

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ProxyProtocolListener:
    """Accepts on ``sock``, admits each connection as the module says, then serves it over TLS
    with ``protocol_factory`` (aiohttp's ``web.Server``). :meth:`close` stops accepting and
    drops connections still being admitted; connections already served belong to aiohttp."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext,
        trusted: SourceNetworks,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._ssl = ssl_context
        self._trusted = trusted
        self._admitting: set[asyncio.Task[None]] = set()
        self._closed = False
        # Peer address -> trusted? Balancers are a few addresses that connect all the time;
        # parsing each one's address per connection showed in the profile. Bounded.
        self._trust: dict[str, bool] = {}
        self._log_budget = RateLimiter(_LOG_BUDGET, SystemClock(), max_sources=1024)

    def start(self) -> None:
        log.info(
            "PROXY protocol: a header is required from %s and refused from any other address",
            self._trusted,
        )
        _defer_accept(self._sock)
        self._resume_accepting()

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(ValueError, OSError):  # the socket may be closed already
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        tasks = list(self._admitting)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _resume_accepting(self) -> None:
        if not self._closed:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept_ready)

    def _accept_ready(self) -> None:
        """Accept what is queued (in one wake, as asyncio's own server does) and admit each."""
        loop = asyncio.get_running_loop()
        for _ in range(LISTEN_BATCH):
            try:
                conn, address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # EMFILE and the like: as asyncio's server does, pause 1 s
                log.error("accepting a connection failed: %s; retrying in 1s", exc)
                loop.remove_reader(self._sock.fileno())
                loop.call_later(1.0, self._resume_accepting)
                return
            conn.setblocking(False)
            task = loop.create_task(self._admit(conn, address[0]))
            self._admitting.add(task)
            task.add_done_callback(self._admitting.discard)

    async def _admit(self, conn: socket.socket, peer: str) -> None:
        try:
            client = await self._client_of(conn, peer)
        except _Refused:
            conn.close()
            return
        except BaseException:
            conn.close()  # a reset while peeking, or the listener closing
            raise
        factory = self._factory
        if client is not None:
            inner, proxied_peer = self._factory, client

            def factory() -> asyncio.Protocol:
                return _ProxiedProtocol(inner(), proxied_peer)

        # From here the transport owns the socket and closes it, whatever happens: closing it
        # here too could close a descriptor number already reused by another connection.
        try:
            await asyncio.get_running_loop().connect_accepted_socket(factory, conn, ssl=self._ssl)
        except (OSError, TimeoutError) as exc:  # a failed TLS handshake, a reset
            log.debug("connection from %s ended before it was served: %s", peer, exc)

    async def _client_of(self, conn: socket.socket, peer: str) -> Address | None:
        """The client the header names (None: the connection's own); raises _Refused.

        What has arrived is looked at first without waiting: a client's first bytes usually
        come with (or before) the accept, and then no timer or reader is set up at all.
        """
        trusted = self._trust.get(peer)
        if trusted is None:
            if len(self._trust) >= _TRUST_CACHE:
                self._trust.clear()
            trusted = self._trust[peer] = self._trusted.allows(peer)
        if trusted:
            try:
                header = _header_arrived(conn)
                if header is None:
                    async with asyncio.timeout(HEADER_TIMEOUT):
                        header = await read_proxy_header(conn)
            except _NothingSent:  # a plain TCP health check: nothing to report
                raise _Refused() from None
            except TimeoutError:
                raise self._refuse(
                    peer, f"no PROXY protocol header within {HEADER_TIMEOUT:g}s"
                ) from None
            except (ProxyHeaderError, OSError) as exc:
                raise self._refuse(peer, str(exc)) from None
            return header.source
        try:
            first = _arrived(conn, 12)
            if first is None:
                async with asyncio.timeout(FIRST_BYTES_TIMEOUT):
                    first = await _peek(asyncio.get_running_loop(), conn, 12)
        except (TimeoutError, OSError):
            raise _Refused() from None
        if starts_like_proxy_header(first):
            raise self._refuse(
                peer,
                "it sent a PROXY protocol header but is not in --proxy-protocol-trusted-cidrs"
                f" ({self._trusted})",
            )
        return None

    def _refuse(self, peer: str, why: str) -> _Refused:
        if self._log_budget.take(peer) == 0:
            log.warning("refused a connection from %s: %s", peer, why)
        return _Refused()


class _NothingSent(ProxyHeaderError):
    """Closed before its first byte: a load balancer's TCP health check, not an error."""


class _Refused(Exception):
    """The connection is not served (logged, within the log budget, by whoever raised it)."""


def trusted_networks(cidrs: tuple[str, ...]) -> SourceNetworks | None:
    """The balancers' networks, or None when the PROXY protocol is off (no CIDR given)."""
    networks = SourceNetworks(cidrs)
    return None if networks.unrestricted else networks
