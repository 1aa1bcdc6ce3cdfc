"""A TCP load balancer for loopback tests and benchmarks: round robin over backends, with an
optional PROXY protocol header (v1 or v2) before each connection's bytes.

It stands in for HAProxy (``server ... send-proxy-v2``), an NLB with proxy protocol, or any
layer-4 balancer in front of ``kubeboot server`` replicas (docs/replicas.md): it does not
terminate TLS, so clients' certificates reach the servers. The header names the client as
the balancer saw it (its address and port) and, as destination, the address the client
connected to; the servers see the balancer's own connections come from ``source_address``.

In a program (one event loop)::

    async with TcpBalancer([("127.0.0.1", 6443), ("127.0.0.1", 6444)], proxy_protocol=2,
                           source_address="127.0.0.2") as lb:
        ...  # clients connect to lb.address

As its own process (a benchmark keeps its CPU apart from the load generator's)::

    python -m bench.tcp_balancer --backend 127.0.0.1:6443 --backend 127.0.0.1:6444 \\
        --proxy-protocol 2 --source-address 127.0.0.2
    # prints "balancing on 127.0.0.1:<port>" once it listens; SIGTERM stops it

or from Python: ``with balancer_process(backends, log=path) as (proc, address):``.
Only loopback addresses are accepted, for backends and for listening: this is a test tool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, cast

from kubeboot.api.server.proxyprotocol import encode_v1, encode_v2

__all__ = ["Backend", "TcpBalancer", "balancer_process", "main"]

Backend = tuple[str, int]
ProxyVersion = Literal[0, 1, 2]
_LISTENING = re.compile(r"^balancing on (\S+):(\d+)$", re.M)


def _loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address; this balancer is for tests")
    return host


class _Pipe(asyncio.Protocol):
    """One side of a balanced connection; bytes go to ``peer``, with flow control both ways."""

    def __init__(self, on_made: Callable[[_Pipe], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self._pending: list[bytes] = []
        self._on_made = on_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self._pending.append(data)

    def attach(self, peer: _Pipe) -> None:
        self.peer = peer
        assert peer.transport is not None
        for data in self._pending:
            peer.transport.write(data)
        self._pending.clear()

    def eof_received(self) -> bool:
        other = self.peer.transport if self.peer is not None else None
        if other is not None and other.can_write_eof():
            other.write_eof()
            return True  # half-close: the other direction goes on
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class TcpBalancer:
    """Listens on ``listen`` and forwards each connection to the next backend in turn."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        proxy_protocol: ProxyVersion = 2,
        listen: Backend = ("127.0.0.1", 0),
        source_address: str | None = None,
    ) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = [(_loopback(h), p) for h, p in backends]
        self.proxy_protocol = proxy_protocol
        self._listen = (_loopback(listen[0]), listen[1])
        self._source = _loopback(source_address) if source_address else None
        self._next = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        """Connections accepted so far (the tests check the balancer was really used)."""

    @property
    def address(self) -> Backend:
        assert self._server is not None, "start() first"
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._front, self._listen[0], self._listen[1], backlog=4096
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> TcpBalancer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _front(self) -> _Pipe:
        return _Pipe(on_made=self._accepted)

    def _accepted(self, front: _Pipe) -> None:
        self.connections += 1
        backend = self.backends[self._next % len(self.backends)]
        self._next += 1
        task = asyncio.get_running_loop().create_task(self._connect(front, backend))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, front: _Pipe, backend: Backend) -> None:
        """Connect ``front``'s client to ``backend``: header first, then the bytes both ways."""
        assert front.transport is not None
        client = front.transport.get_extra_info("peername")
        arrived = front.transport.get_extra_info("sockname")
        loop = asyncio.get_running_loop()
        try:
            _, back = await loop.create_connection(
                _Pipe,
                backend[0],
                backend[1],
                local_addr=(self._source, 0) if self._source else None,
            )
        except OSError as exc:
            print(f"cannot reach backend {backend[0]}:{backend[1]}: {exc}", file=sys.stderr)
            front.transport.close()
            return
        assert back.transport is not None
        if self.proxy_protocol:
            source, destination = (client[0], client[1]), (arrived[0], arrived[1])
            encode = encode_v2 if self.proxy_protocol == 2 else encode_v1
            back.transport.write(encode(source, destination))
        back.attach(front)
        front.attach(back)
        if front.transport.is_closing():
            back.transport.close()


@contextlib.contextmanager
def balancer_process(
    backends: Sequence[Backend],
    *,
    proxy_protocol: ProxyVersion = 2,
    source_address: str | None = None,
    log: Path,
    timeout: float = 30.0,
) -> Iterator[tuple[subprocess.Popen[bytes], Backend]]:
    """``python -m bench.tcp_balancer`` for the block: yields the process and its address;
    stopped with SIGTERM (then killed) after. Its output goes to ``log``."""
    cmd = [sys.executable, "-m", "bench.tcp_balancer", "--proxy-protocol", str(proxy_protocol)]
    for host, port in backends:
        cmd += ["--backend", f"{host}:{port}"]
    if source_address:
        cmd += ["--source-address", source_address]
    out_path = log
    with out_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not (m := _LISTENING.search(out_path.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the balancer did not start:\n" + out_path.read_text())
            time.sleep(0.02)
        yield proc, (m.group(1), int(m.group(2)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _address(text: str) -> Backend:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def _serve(args: argparse.Namespace) -> None:
    balancer = TcpBalancer(
        [_address(b) for b in args.backend],
        proxy_protocol=args.proxy_protocol,
        listen=_address(args.listen),
        source_address=args.source_address,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with balancer:
        host, port = balancer.address
        print(f"balancing on {host}:{port}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", action="append", required=True, help="host:port (repeatable)")
    p.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: a free one)")
    p.add_argument("--proxy-protocol", type=int, choices=(0, 1, 2), default=2)
    p.add_argument("--source-address", default=None, help="connect to backends from here")
    args = p.parse_args(argv)
    # asyncio's own loop, not uvloop: under uvloop 0.23 this forwarder aborted with "double
    # free or corruption" in about one 500-connection test run in ten.
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
