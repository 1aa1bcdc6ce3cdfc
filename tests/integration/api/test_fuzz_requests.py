"""Property test of the whole server: any request gets a valid answer, never a 500 (issue 14).

A real server (in a thread, so Hypothesis drives it with plain blocking calls) takes
generated requests — every method on every resource path, odd queries, every content type
and garbage ones, bodies that are bytes, damaged JSON, YAML, or objects shaped by the
kind's schema — as the admin and as an anonymous client. Every answer must be a success or
a ``Status`` whose code matches the HTTP status, never a 500; and the server's log must hold
no ERROR and no traceback afterwards. ``make fuzz`` runs it with thousands of requests.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeboot.api.server.serve import Server
from kubeboot.resources.registry import RESOURCES, ResourceInfo
from kubeboot.resources.schemas import kind_schema
from tests.conftest import RunningServer, admin_ssl_context, anonymous_ssl_context, server_config
from tests.fuzz_strategies import (
    budget,
    mutated_json,
    objects_for,
    odd_strings,
    raw_bodies,
    yaml_texts,
)

CONTENT_TYPES = [
    None,
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
    "application/json; charset=utf-16",
    "garbage",
]
ACCEPTS = [
    None,
    "application/json",
    "*/*",
    "application/garbage",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
]
QUERY_KEYS = [
    "watch", "limit", "continue", "resourceVersion", "resourceVersionMatch", "timeoutSeconds",
    "labelSelector", "fieldSelector", "fieldValidation", "dryRun", "sendInitialEvents",
]  # fmt: skip


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Live:
    running: RunningServer
    contexts: dict[str, ssl.SSLContext]
    log: _Records
    host: str = ""
    port: int = 0
    seen: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = Path(tmp_path_factory.mktemp("fuzz")) / "data"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        srv = Server(server_config(data))
        loop.run_until_complete(srv.start())
        holder["server"] = srv
        started.set()
        loop.run_forever()
        loop.run_until_complete(srv.stop())
        loop.close()

    records = _Records()
    for name in ("kubeboot", "aiohttp"):
        logging.getLogger(name).addHandler(records)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60)
    srv = holder["server"]
    assert srv.pki is not None
    running = RunningServer(srv.url, data, srv.admin_kubeconfig, srv.pki.ca_cert_file)
    contexts = {"admin": admin_ssl_context(running), "anonymous": anonymous_ssl_context(running)}
    host, port = running.url.removeprefix("https://").rsplit(":", 1)
    try:
        yield Live(running, contexts, records, host, int(port))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        for name in ("kubeboot", "aiohttp"):
            logging.getLogger(name).removeHandler(records)


def _paths(res: ResourceInfo) -> st.SearchStrategy[str]:
    name = st.one_of(st.just("x"), odd_strings).map(
        lambda n: urllib.parse.quote(n.encode("utf-8", "surrogatepass"), safe="")
    )
    base = res.gv.path
    ns = "/namespaces/default" if res.namespaced else ""
    sub = st.sampled_from(["", "/status", "/approval", "/token", "/nope"])
    return st.one_of(
        st.just(f"{base}{ns}/{res.plural}"),
        st.builds(lambda n, s: f"{base}{ns}/{res.plural}/{n}{s}", name, sub),
        st.just(f"{base}/{res.plural}"),
        st.just(f"{base}/namespaces/default/{res.plural}/a/b/c"),
    )


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    res = draw(st.sampled_from(RESOURCES))
    path = draw(_paths(res))
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS), odd_strings, max_size=3))
    if query.get("watch", "").lower() not in ("", "0", "false"):
        query["timeoutSeconds"] = "1"  # a watch that parses ends at once, not in 30 minutes
    if query:
        path += "?" + urllib.parse.urlencode(query, encoding="utf-8", errors="surrogatepass")
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]))
    headers: dict[str, str] = {}
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    if ctype is not None:
        headers["Content-Type"] = ctype
    accept = draw(st.sampled_from(ACCEPTS))
    if accept is not None:
        headers["Accept"] = accept
    body: bytes | None = None
    if method in ("POST", "PUT", "PATCH", "DELETE") and draw(st.booleans()):
        schema = kind_schema(res.group, res.gv.version, res.kind)
        how = draw(st.sampled_from(["raw", "yaml", "shaped"]))
        if how == "shaped" and schema is not None:
            body = mutated_json(draw(objects_for(schema)), draw)
        elif how == "yaml":
            body = draw(yaml_texts).encode("utf-8", errors="surrogatepass")
        else:
            body = draw(raw_bodies)
    return method, path, headers, body


def _check(method: str, status: int, ctype: str, body: bytes) -> None:
    assert status != 500, body[:500]
    if method == "HEAD" or status < 400:
        return
    assert ctype.startswith("application/json"), (status, ctype, body[:200])
    answer = json.loads(body)
    assert answer["kind"] == "Status" and answer["apiVersion"] == "v1", answer
    assert answer["status"] == "Failure" and answer["code"] == status, answer
    assert isinstance(answer["reason"], str) and answer["reason"], answer
    assert isinstance(answer["message"], str), answer


def _send(live: Live, who: str, request: tuple[str, str, dict[str, str], bytes | None]) -> None:
    method, path, headers, body = request
    conn = http.client.HTTPSConnection(live.host, live.port, context=live.contexts[who], timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        _check(method, resp.status, resp.getheader("Content-Type") or "", data)
    finally:
        conn.close()


def _no_tracebacks(live: Live) -> None:
    bad = [r for r in live.log.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [(r.name, r.getMessage()) for r in bad[:5]]


@budget(0.5)
@given(_requests())
def test_any_request_from_the_admin_gets_a_status_not_a_500(
    live: Live, request: tuple[str, str, dict[str, str], bytes | None]
) -> None:
    _send(live, "admin", request)
    _no_tracebacks(live)


@budget(0.5)
@given(_requests())
def test_any_request_from_anonymous_gets_a_status_and_no_traceback(
    live: Live, request: tuple[str, str, dict[str, str], bytes | None]
) -> None:
    _send(live, "anonymous", request)
    _no_tracebacks(live)
