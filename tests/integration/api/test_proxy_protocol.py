"""``--proxy-protocol-trusted-cidrs``: clients behind a TCP load balancer keep their address.

Real processes: ``kubeboot server`` (alone, and with ``--workers 2``), the balancer of
``bench/tcp_balancer.py`` as its own process writing PROXY v2 or v1 headers, and TLS clients
that each bind their own loopback address, as nodes have their own. The balancer connects to
the server from 127.0.0.2, the one trusted address; 127.0.0.9 is an untrusted balancer that
writes no header (what a NAT or a plain TCP balancer looks like).

The server runs with a small anonymous budget (``--anonymous-rate 2``, burst 40), so that one
shared budget runs dry within any plausible test duration on a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.tcp_balancer import ProxyVersion, balancer_process
from kubeboot.api.server.proxyprotocol import encode_v1, encode_v2
from tests.conftest import RunningServer, server_process_running

CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
BALANCER = "127.0.0.2"
UNTRUSTED_BALANCER = "127.0.0.9"
RATE, BURST = 2.0, 40
NODES = 500


class Refused(Exception):
    """The server closed the connection without an HTTP answer."""


@dataclass
class ProxiedServer:
    running: RunningServer
    audit: Path
    workers: int
    tmp: Path

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.running.url.removeprefix("https://").rpartition(":")
        return host, int(port)

    @property
    def log(self) -> str:
        return self.running.data_dir.with_suffix(".log").read_text()

    def balancer(self, version: ProxyVersion, source: str) -> Any:
        return balancer_process(
            [self.address],
            proxy_protocol=version,
            source_address=source,
            log=self.tmp / f"balancer-{version}-{source}-{time.monotonic_ns()}.log",
        )

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while not (m := re.search(pattern, self.log, re.M)):
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.log[-3000:]}"
            time.sleep(0.05)
        return m

    def audited_sources(self, uri: str, timeout: float = 30.0) -> list[list[str]]:
        """``sourceIPs`` of the audit events for ``uri`` (waits for at least one)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.audit.read_text() if self.audit.exists() else ""
            events = [json.loads(line) for line in text.splitlines() if line]
            found = [e["sourceIPs"] for e in events if e["requestURI"] == uri]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="module", params=[0, 2], ids=["primary", "workers"])
def proxied(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedServer]:
    tmp = tmp_path_factory.mktemp("proxy")
    audit = tmp / "audit.log"
    flags = [
        # Repeatable and comma-separated; only 127.0.0.2 matters on loopback.
        "--proxy-protocol-trusted-cidrs=127.0.0.2/32",
        "--proxy-protocol-trusted-cidrs=10.99.0.0/16,fd00:99::/64",
        f"--anonymous-rate={RATE:g}",
        f"--anonymous-burst={BURST}",
        f"--audit-log-path={audit}",
        f"--workers={request.param}",
    ]
    with server_process_running(tmp / "data", *flags) as running:
        yield ProxiedServer(running, audit, request.param, tmp)


def _tls(server: ProxiedServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.running.ca_file))


async def get(
    target: tuple[str, int],
    ctx: ssl.SSLContext,
    *,
    source: str,
    path: str = CLUSTER_INFO,
    header: bytes = b"",
    split: float = 0.0,
    token: str | None = None,
) -> int:
    """The status of ``GET path`` over TLS from ``source``, with ``header`` sent before TLS
    (in two parts ``split`` seconds apart when given); :class:`Refused` if closed instead."""
    reader, writer = await asyncio.open_connection(*target, local_addr=(source, 0))
    try:
        if header:
            cut = 10 if split else len(header)
            writer.write(header[:cut])
            await writer.drain()
            await asyncio.sleep(split)
            writer.write(header[cut:])
        try:
            await writer.start_tls(ctx, server_hostname="127.0.0.1")
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n".encode()
            )
            answer = await reader.read()
        except (OSError, ssl.SSLError) as exc:
            raise Refused(repr(exc)) from exc
        if not answer:
            raise Refused("closed after the handshake")
        return int(answer.split(b" ", 2)[1])
    finally:
        writer.close()


async def refused(target: tuple[str, int], ctx: ssl.SSLContext, **kwargs: Any) -> bool:
    try:
        await get(target, ctx, **kwargs)
    except Refused:
        return True
    return False


@pytest.mark.parametrize("version", [2, 1])
async def test_the_client_behind_the_balancer_is_the_source_everywhere(
    proxied: ProxiedServer, version: ProxyVersion
) -> None:
    client = f"127.0.{version}.{77 + proxied.workers}"
    with proxied.balancer(version, BALANCER) as (_, lb):
        uri = f"{CLUSTER_INFO}?v={version}"
        assert await get(lb, _tls(proxied), source=client, path=uri) == 200
        # A rejected token: the log names the client, and its failed-auth budget is its own.
        assert await get(lb, _tls(proxied), source=client, token="abcdef.0123456789abcdef") == 401
    assert proxied.audited_sources(uri) == [[client]]
    proxied.wait_for_log(rf"authentication failed from {re.escape(client)}: ")


async def test_500_nodes_behind_one_balancer_have_their_own_budgets(
    proxied: ProxiedServer,
) -> None:
    ctx = _tls(proxied)
    nodes = [f"127.{100 + proxied.workers}.{i // 250}.{i % 250 + 1}" for i in range(NODES)]

    async def storm(lb: tuple[str, int]) -> tuple[Counter[int], float]:
        gate = asyncio.Semaphore(50)

        async def node(source: str) -> int:
            async with gate:
                return await get(lb, ctx, source=source)

        start = time.monotonic()
        codes = await asyncio.gather(*(node(n) for n in nodes))
        return Counter(codes), time.monotonic() - start

    with proxied.balancer(2, BALANCER) as (_, lb):
        own, _ = await storm(lb)
    assert own == {200: NODES}  # each node spent 1 of its own 40

    # The same load through a balancer that writes no header: one address, one budget.
    with proxied.balancer(0, UNTRUSTED_BALANCER) as (_, lb):
        shared, took = await storm(lb)
    assert set(shared) <= {200, 429} and sum(shared.values()) == NODES
    assert shared[429] > 0
    assert shared[200] <= BURST + RATE * took + 2, (shared, took)


async def test_an_untrusted_source_sending_a_header_is_refused(proxied: ProxiedServer) -> None:
    ctx, target = _tls(proxied), proxied.address
    source = f"127.0.5.{proxied.workers + 1}"
    spoof = (("10.1.2.3", 4000), ("127.0.0.1", target[1]))
    for header in (encode_v2(*spoof), encode_v1(*spoof), encode_v2(None, None)):
        assert await refused(target, ctx, source=source, header=header)
    proxied.wait_for_log(
        rf"refused a connection from {re.escape(source)}: it sent a PROXY protocol header but "
        r"is not in --proxy-protocol-trusted-cidrs \(127\.0\.0\.2/32,10\.99\.0\.0/16,"
    )
    # Without a header it is an ordinary client.
    assert await get(target, ctx, source=source) == 200
    assert "10.1.2.3" not in proxied.audit.read_text()


async def test_a_trusted_source_must_send_a_valid_header(proxied: ProxiedServer) -> None:
    ctx, target = _tls(proxied), proxied.address
    said = len(
        re.findall(
            r"PROXY protocol: a header is required from 127\.0\.0\.2/32,10\.99\.0\.0/16,"
            r"fd00:99::/64 and refused from any other address",
            proxied.log,
        )
    )
    assert said == max(1, proxied.workers)  # each serving process says it at start
    assert await refused(target, ctx, source=BALANCER)
    proxied.wait_for_log(
        r"refused a connection from 127\.0\.0\.2: expected a PROXY protocol header, got "
        r"b'\\x16\\x03\\x01"
    )
    bad = b"PROXY TCP4 10.0.0.07 127.0.0.1 1 2\r\n"
    assert await refused(target, ctx, source=BALANCER, header=bad)
    proxied.wait_for_log(
        r"refused a connection from 127\.0\.0\.2: PROXY v1 TCP4 address '10.0.0.07'"
    )
    # A header that arrives in two TCP segments is read whole; the client's address is used.
    client = ("10.99.1.7", 51000)
    split = encode_v2(client, ("127.0.0.1", target[1]))
    uri = f"{CLUSTER_INFO}?split={proxied.workers}"
    assert await get(target, ctx, source=BALANCER, header=split, split=0.3, path=uri) == 200
    assert proxied.audited_sources(uri) == [["10.99.1.7"]]
    # LOCAL (the balancer's own health check) is served as the balancer itself.
    uri = f"{CLUSTER_INFO}?local={proxied.workers}"
    assert await get(target, ctx, source=BALANCER, header=encode_v2(None, None), path=uri) == 200
    assert proxied.audited_sources(uri) == [[BALANCER]]


async def test_a_trusted_source_that_sends_nothing_is_closed(proxied: ProxiedServer) -> None:
    if proxied.workers:
        pytest.skip("the header timeout is one code path; checked once")
    # A plain TCP health check (connect, close) is closed quietly.
    _, check = await asyncio.open_connection(*proxied.address, local_addr=(BALANCER, 0))
    check.close()
    await check.wait_closed()
    reader, writer = await asyncio.open_connection(*proxied.address, local_addr=(BALANCER, 0))
    start = time.monotonic()
    try:
        assert await asyncio.wait_for(reader.read(), timeout=30) == b""
    finally:
        writer.close()
    assert time.monotonic() - start >= 4.5
    proxied.wait_for_log(
        r"refused a connection from 127\.0\.0\.2: no PROXY protocol header within 5s"
    )
    assert "connection closed after 0 bytes" not in proxied.log
