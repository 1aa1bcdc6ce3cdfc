"""The HTTP layer answers like kube-apiserver's and never logs a client's mistake as a crash.

405/406/415 are go-restful's answers as upstream renders them (``"details": {}``); a bearer
header with an extra space is no credential plus upstream's warning; header and URL sizes
Go accepts are accepted; malformed HTTP is one rate-limited WARNING line, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer, anonymous_ssl_context

CM = "/api/v1/namespaces/default/configmaps"


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    return dict(await resp.json(content_type=None))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{CM}/named"),
        ("PUT", CM),
        ("PATCH", CM),
        ("OPTIONS", CM),
        ("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests/x/approval"),
    ],
)
async def test_method_not_allowed_is_upstreams_405(
    admin_http: aiohttp.ClientSession, method: str, path: str
) -> None:
    headers = {
        "Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"
    }
    body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"named"}}'
    async with admin_http.request(method, path, data=body, headers=headers) as resp:
        answer = await _json(resp)
    assert resp.status == 405
    assert answer == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server does not allow this method on the requested resource",
        "reason": "MethodNotAllowed",
        "details": {},
        "code": 405,
    }
    async with admin_http.get(f"{CM}/named") as resp:
        assert resp.status == 404  # POST to a named URL created nothing


@pytest.mark.parametrize(
    "accept",
    [
        "application/garbage",
        "text/html, application/garbage;q=0.9",
        "application/*",  # go-restful knows no type/* wildcard (the real one answers 406 too)
    ],
)
async def test_unacceptable_accept_is_406(admin_http: aiohttp.ClientSession, accept: str) -> None:
    async with admin_http.get(CM, headers={"Accept": accept}) as resp:
        answer = await _json(resp)
    assert resp.status == 406
    assert answer["reason"] == "NotAcceptable"
    assert answer["details"] == {}
    assert answer["message"].startswith("406: Not Acceptable\n\nAvailable representations: ")


@pytest.mark.parametrize(
    "accept",
    [
        "*/*",
        "application/json",
        "application/yaml, */*",
        "",
        "application/vnd.kubernetes.protobuf,application/json",
    ],
)
async def test_acceptable_accept_is_answered(
    admin_http: aiohttp.ClientSession, accept: str
) -> None:
    async with admin_http.get(CM, headers={"Accept": accept} if accept else {}) as resp:
        assert resp.status == 200


async def test_unsupported_content_type_is_415(admin_http: aiohttp.ClientSession) -> None:
    """A PATCH route declares its types (go-restful's 415); POST/PUT negotiate in the handler."""
    headers = {"Content-Type": "text/plain"}
    async with admin_http.patch(f"{CM}/x", data="{}", headers=headers) as resp:
        answer = await _json(resp)
    assert resp.status == 415
    assert answer["message"] == "415: Unsupported Media Type"
    assert answer["details"] == {}
    async with admin_http.post(CM, data="{}", headers=headers) as resp:
        answer = await _json(resp)
    assert resp.status == 415
    assert answer["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )
    assert "details" not in answer


async def test_bad_timeout_is_400_before_authentication(server: RunningServer) -> None:
    async with await _anonymous(server) as http, http.get(f"{CM}?timeout=bogus") as resp:
        answer = await _json(resp)
    assert resp.status == 400
    assert answer["message"] == (
        'invalid timeout specified in the request URL - time: invalid duration "bogus"'
    )


async def _anonymous(server: RunningServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=server.url,
        connector=aiohttp.TCPConnector(ssl=anonymous_ssl_context(server)),
    )


async def test_bearer_with_two_spaces_is_no_credential_with_a_warning(
    server: RunningServer,
) -> None:
    async with (
        await _anonymous(server) as http,
        http.get(CM, headers={"Authorization": "Bearer  abcdef.0123456789abcdef"}) as resp,
    ):
        answer = await _json(resp)
        warnings = resp.headers.getall("Warning", [])
    assert resp.status == 403  # anonymous, not a failed authentication (401)
    assert 'User "system:anonymous"' in answer["message"]
    assert warnings == [
        '299 - "the provided Authorization header contains extra space before the bearer '
        'token, and is ignored"'
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer tökén"},
        {"Authorization": "Bearer \u00ff\u00fe"},
        {"Impersonate-Extra-%FF": "x", "Impersonate-User": "someone"},
        {"Impersonate-Extra-%zz": "x", "Impersonate-User": "someone"},
    ],
)
async def test_odd_credential_headers_from_anonymous_are_4xx(
    server: RunningServer, headers: dict[str, str]
) -> None:
    async with await _anonymous(server) as http, http.get(CM, headers=headers) as resp:
        answer = await _json(resp)
    assert resp.status in (401, 403), answer
    assert answer["kind"] == "Status"


async def test_impersonate_extra_percent_ff_from_admin_is_403_for_the_target(
    admin_http: aiohttp.ClientSession,
) -> None:
    headers = {"Impersonate-Extra-%FF": "x", "Impersonate-User": "someone"}
    async with admin_http.get(CM, headers=headers) as resp:
        answer = await _json(resp)
    assert resp.status == 403
    assert 'User "someone" cannot list resource "configmaps"' in answer["message"]


async def test_header_and_url_sizes_go_accepts_are_accepted(
    admin_http: aiohttp.ClientSession,
) -> None:
    async with admin_http.get(CM, headers={"X-Big": "a" * 60_000}) as resp:
        assert resp.status == 200
    async with admin_http.get(f"{CM}/{'n' * 70 * 1024}") as resp:
        answer = await _json(resp)
    assert resp.status == 404
    assert answer["reason"] == "NotFound"


async def _raw_exchange(server: RunningServer, request: bytes) -> bytes:
    ctx = anonymous_ssl_context(server)
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), ssl=ctx)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /api HTTP/9.9\r\n\r\n",
    b"GET /api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x16\x03\x01garbage\r\n\r\n",
]


async def test_malformed_http_is_one_warning_line_without_traceback(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for request in MALFORMED:
        answer = await _raw_exchange(server, request)
        assert answer[:8] in (b"HTTP/1.0", b"HTTP/1.1", b""), answer[:80]
        assert answer == b"" or answer[9:12] == b"400", answer[:80]
    records = [r for r in caplog.records if r.name.startswith(("kubeboot", "aiohttp"))]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], [
        (r.name, r.getMessage()) for r in records
    ]
    warnings = [r for r in records if "malformed HTTP request" in r.getMessage()]
    # Six requests within a second: the first is logged, the rest counted into the next.
    assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
    assert "\n" not in warnings[0].getMessage()


async def test_a_newline_in_the_path_is_a_status(admin_http: aiohttp.ClientSession) -> None:
    """Found by the fuzz test: aiohttp's route did not match %0A and answered plain text."""
    async with admin_http.get(f"{CM}/%0A") as resp:
        answer = await _json(resp)
    assert resp.status == 404
    assert answer["kind"] == "Status" and answer["reason"] == "NotFound"
