"""Every kind of bad request from an unauthenticated client leaves no traceback (issue 14).

The server's log is the operator's: a stranger's malformed bodies, queries, headers and
HTTP must not fill it with ERROR lines and tracebacks. Each request below once crashed a
handler (a 500 with a traceback) or wrote one; now each is a 4xx ``Status`` (or aiohttp's
plain 400 for unparseable HTTP) and the log holds at most WARNING lines without
``exc_info``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kubeboot.resources import bootstrap_token as bt
from tests.conftest import RunningServer, anonymous_ssl_context

CM = "/api/v1/namespaces/default/configmaps"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
JSON = {"Content-Type": "application/json"}
TOKEN = "badinp.0123456789abcdef"
DEEP = '{"metadata":{"name":"d"},"data":' + "[" * 20000 + "]" * 20000 + "}"
BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8)
)

# (method, path, headers, body)
BAD: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("POST", CM, JSON, b'{"metadata":{"name":"a"},"data":{"k":NaN}}'),
    ("POST", CM, JSON, b'{"metadata":{"name":"a"},"binaryData":[1]}'),
    ("POST", CM, {"Content-Type": "application/json"}, DEEP.encode()),
    ("POST", CM, {"Content-Type": "application/yaml"}, BOMB.encode()),
    ("POST", CM, {"Content-Type": "application/json"}, '{"a":"x"}'.encode("utf-16")),
    ("POST", CM, {"Content-Type": "application/vnd.kubernetes.protobuf"}, b"k8s\x00\xff\xff"),
    ("POST", CM, {"Content-Type": "text/plain"}, b"hello"),
    ("POST", f"{CM}/named", {"Content-Type": "application/json"}, b"{}"),
    ("PUT", CM, {"Content-Type": "application/json"}, b"{}"),
    ("PATCH", f"{CM}/x", {"Content-Type": "application/merge-patch+json"}, DEEP.encode()),
    ("DELETE", f"{CM}/x", {"Content-Type": "application/json"}, b'{"preconditions":"x"}'),
    ("GET", f"{CM}?limit=%C2%B2", {}, None),
    ("GET", f"{CM}?resourceVersion=%D9%A3", {}, None),
    ("GET", f"{CM}?resourceVersionMatch=Sometimes", {}, None),
    ("GET", f"{CM}?continue=%FF%FE", {}, None),
    ("GET", f"{CM}?labelSelector=a%20in%20(", {}, None),
    ("GET", CM, {"Accept": "application/garbage"}, None),
    ("GET", CM, {"Authorization": "Bearer tökén"}, None),
    ("GET", CM, {"Authorization": "Bearer  abcdef.0123456789abcdef"}, None),
    ("GET", CM, {"Impersonate-Extra-%FF": "x", "Impersonate-User": "u"}, None),
    ("GET", CM, {"X-Big": "a" * 60_000}, None),
    ("GET", f"{CM}/{'n' * 70 * 1024}", {}, None),
    ("OPTIONS", CM, {}, None),
    ("POST", CSRS, JSON, b'{"spec":{"usages":[{}]}}'),
]  # fmt: skip

RAW = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x16\x03\x01garbage\r\n\r\n",
]


@pytest.fixture
async def anonymous(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=anonymous_ssl_context(server))
    async with aiohttp.ClientSession(base_url=server.url, connector=connector) as session:
        yield session


@pytest.fixture
async def bootstrap(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> AsyncIterator[aiohttp.ClientSession]:
    """A joining node's identity: a bootstrap token, allowed to create CSRs and no more."""
    secret = bt.build_secret(TOKEN, expiration=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    async with admin_http.post("/api/v1/namespaces/kube-system/secrets", json=secret) as resp:
        assert resp.status == 201, await resp.text()
    connector = aiohttp.TCPConnector(ssl=anonymous_ssl_context(server))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(
        base_url=server.url, connector=connector, headers=headers
    ) as session:
        yield session


async def _five_mib_chunked() -> AsyncIterator[bytes]:
    yield b'{"metadata":{"name":"big"},"data":{"a":"'
    for _ in range(80):
        yield b"x" * 65536
    yield b'"}}'


async def _raw(server: RunningServer, request: bytes) -> None:
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(
        host, int(port), ssl=anonymous_ssl_context(server)
    )
    try:
        writer.write(request)
        await writer.drain()
        await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def test_bad_requests_from_unauthenticated_clients_leave_no_traceback(
    server: RunningServer,
    anonymous: aiohttp.ClientSession,
    bootstrap: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anonymous is refused before its bodies are read (403, as upstream's filters do); a
    bootstrap token may create CSRs, so the same bodies sent there reach the decoders."""
    caplog.set_level(logging.DEBUG)
    answers: list[tuple[str, int, Any]] = []
    sends = [(anonymous, m, p, h, b) for m, p, h, b in BAD]
    sends += [(bootstrap, m, CSRS if p == CM else p, h, b) for m, p, h, b in BAD]
    for session, method, path, headers, body in sends:
        async with session.request(method, path, headers=headers, data=body) as resp:
            answer = await resp.json(content_type=None)
            answers.append((f"{method} {path[:60]}", resp.status, answer))
    async with anonymous.post(
        CM, data=_five_mib_chunked(), headers={"Content-Type": "application/json"}
    ) as resp:
        answers.append(("POST 5 MiB chunked", resp.status, await resp.json(content_type=None)))
    for request in RAW:
        await _raw(server, request)
    for what, status, answer in answers:
        assert 400 <= status < 500, (what, status, answer)
        assert answer["kind"] == "Status" and answer["code"] == status, (what, answer)
    records = [r for r in caplog.records if r.name.startswith(("kubeboot", "aiohttp"))]
    bad = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [(r.name, r.getMessage()) for r in bad]
    assert not any("Traceback" in r.getMessage() for r in records)
    assert json.dumps([a for _, _, a in answers])  # every answer was JSON
