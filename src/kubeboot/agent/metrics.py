"""The agent's ``--metrics-bind-address``: the kubelet's certificate-manager metric names
(node-facts §2.6), the renewal-error counts, the listening socket and the HTTP server for
``/metrics`` and ``/healthz``.

The exposition itself is :mod:`kubeboot.agent.exposition` (``prometheus_client``), imported
only by an agent that serves metrics: one without the flag does not pay its 1.9 MB. The HTTP
side is the sleeper's (:func:`~kubeboot.agent.sleeper.response_to`), on asyncio streams.

Error counts are plain integers the certificate managers increment; they survive the
sleeper's exec (:data:`RENEW_ERRORS_ENV`), so the process a supervisor sees keeps one count.
While the agent sleeps (:mod:`kubeboot.agent.hibernation`) the sleeper answers on the same
listening socket, inherited across the exec (:class:`MetricsListener`), from what
:meth:`~kubeboot.agent.exposition.AgentMetrics.handover` gave it (docs/agent.md, "Metrics
while asleep").
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kubeboot.agent.constants import CLIENT_PREFIX, SERVER_PREFIX
from kubeboot.agent.sleeper import CLIENT_TIMEOUT, LISTEN_FD_ENV, REQUEST_LIMIT, response_to

if TYPE_CHECKING:
    from kubeboot.agent.exposition import AgentMetrics

__all__ = [
    "CONTENT_TYPE",
    "ERROR_METRICS",
    "RENEW_ERRORS_ENV",
    "TTL_METRICS",
    "MetricsListener",
    "decode_renew_errors",
    "encode_renew_errors",
    "renew_error",
    "renew_errors",
    "restore_renew_errors",
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
RENEW_ERRORS_ENV = "KUBEBOOT_AGENT_RENEW_ERRORS"
_errors = dict.fromkeys(ERROR_METRICS, 0)


def renew_error(prefix: str) -> None:
    _errors[SERVER_PREFIX if prefix == SERVER_PREFIX else CLIENT_PREFIX] += 1


def renew_errors() -> dict[str, int]:
    return dict(_errors)


def encode_renew_errors(errors: Mapping[str, int]) -> str:
    return ",".join(f"{prefix}={count}" for prefix, count in sorted(errors.items()))


def decode_renew_errors(text: str) -> dict[str, int]:
    """The inverse of :func:`encode_renew_errors`; unknown or malformed entries are dropped."""
    out: dict[str, int] = {}
    for item in text.split(","):
        prefix, _, count = item.partition("=")
        if prefix in ERROR_METRICS and count.isdigit():
            out[prefix] = int(count)
    return out


def restore_renew_errors(text: str) -> None:
    """Carry the counts over from before the sleeper's exec (one process, one counter)."""
    _errors.update(decode_renew_errors(text))


class MetricsListener:
    """The ``--metrics-bind-address`` socket, one for the life of the process across execs.

    Bound once and kept inheritable; an agent the sleeper woke finds it by number in
    :data:`~kubeboot.agent.sleeper.LISTEN_FD_ENV` and adopts it, so the port never closes
    (scrapes during the exec wait in the listen queue) and is never bound twice.
    """

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not port.isdigit() or int(port) > 65535:
            raise OSError(f"--metrics-bind-address {address!r} is not host:port")
        self.host, self.port = (host.strip("[]") or "127.0.0.1"), int(port)
        try:
            self.sock = self._adopt() or self._bind()
        except OSError as exc:
            raise OSError(
                f"cannot listen on {address} (--metrics-bind-address): {exc.strerror or exc}"
            ) from exc
        self.sock.set_inheritable(True)

    def _adopt(self) -> socket.socket | None:
        text = os.environ.pop(LISTEN_FD_ENV, "")
        if not text.isdigit():
            return None
        try:
            sock = socket.socket(fileno=int(text))
        except OSError:
            return None
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            port = sock.getsockname()[1]
        except (OSError, IndexError, TypeError):  # not a socket, or not an IP one
            listening, port = False, -1
        if listening and sock.type == socket.SOCK_STREAM and self.port in (0, port):
            return sock
        sock.detach()  # not ours to close: leave that descriptor as it was
        return None

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        return socket.create_server((self.host, self.port), family=family)

    def sleeper_env(self) -> dict[str, str]:
        return {LISTEN_FD_ENV: str(self.sock.fileno())}


async def serve(listener: MetricsListener, metrics: AgentMetrics) -> None:
    """Answer ``/metrics`` and ``/healthz`` on ``listener`` until cancelled.

    One request per connection, answered by the sleeper's own :func:`response_to`: the same
    bytes whether the agent is awake or asleep. Every connection accepted is answered before
    this returns (the agent then execs the sleeper): connections are accepted here, in one
    callback that also starts their answer, so none can be accepted and then dropped. Why not
    aiohttp's server: stopping it closed connections accepted a moment earlier whose request
    had not arrived yet, and the scrape read a reset. New connections wait in the listen
    queue for the sleeper; the socket served here is a duplicate, closed on return, so the
    listener itself stays open.
    """
    loop = asyncio.get_running_loop()
    sock = listener.sock.dup()
    sock.setblocking(False)
    answering: set[asyncio.Task[None]] = set()

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # BlockingIOError: none left; anything else: try on the next wake
                return
            conn.setblocking(False)
            task = loop.create_task(_answer(conn, metrics))
            answering.add(task)
            task.add_done_callback(answering.discard)

    loop.add_reader(sock.fileno(), accept)
    try:
        await asyncio.Event().wait()
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
        if answering:
            await asyncio.wait(answering, timeout=CLIENT_TIMEOUT + 1)


async def _answer(conn: socket.socket, metrics: AgentMetrics) -> None:
    loop = asyncio.get_running_loop()
    with conn:
        head = b""
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                while b"\r\n\r\n" not in head and len(head) < REQUEST_LIMIT:
                    chunk = await loop.sock_recv(conn, 4096)
                    if not chunk:
                        return
                    head += chunk
                await loop.sock_sendall(conn, response_to(head, metrics.render()))
        except (OSError, TimeoutError):
            pass  # a client that went away, or sent no request head in time
