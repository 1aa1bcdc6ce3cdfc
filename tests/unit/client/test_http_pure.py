"""URL building, error mapping and watch decoding of the HTTP client, without sockets.

These are the parts of ``HttpApiClient`` where a mistake silently talks to the wrong URL or
turns a server's ``Status`` into the wrong exception, so they are checked table-driven.
"""

from __future__ import annotations

import json

import pytest

from kubeboot.client.http import WatchDecoder, error_from_response, resource_path
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import (
    AlreadyExists,
    Expired,
    Forbidden,
    InternalError,
    Invalid,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)


def _res(group: str, plural: str) -> ResourceInfo:
    res = find_resource(group, "v1", plural)
    assert res is not None
    return res


CSR = _res("certificates.k8s.io", "certificatesigningrequests")
CM = _res("", "configmaps")


@pytest.mark.parametrize(
    ("res", "ns", "name", "sub", "want"),
    [
        (
            CM,
            "kube-public",
            "cluster-info",
            None,
            "/api/v1/namespaces/kube-public/configmaps/cluster-info",
        ),
        (CM, None, None, None, "/api/v1/configmaps"),
        (CM, "a b", "x/y", None, "/api/v1/namespaces/a%20b/configmaps/x%2Fy"),
        (CSR, "ignored", None, None, "/apis/certificates.k8s.io/v1/certificatesigningrequests"),
        (
            CSR,
            None,
            "node-csr-abc",
            "approval",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-csr-abc/approval",
        ),
    ],
)
def test_resource_path(
    res: ResourceInfo, ns: str | None, name: str | None, sub: str | None, want: str
) -> None:
    assert resource_path(res, ns, name, sub) == want


def test_resource_path_rejects_empty_name_and_orphan_subresource() -> None:
    with pytest.raises(ValueError, match="empty name"):
        resource_path(CM, "default", "")
    with pytest.raises(ValueError, match="subresource needs"):
        resource_path(CSR, None, None, "status")


def _status(code: int, reason: str, message: str = "m") -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
    ).encode()


@pytest.mark.parametrize(
    ("code", "body", "cls"),
    [
        (404, _status(404, "NotFound"), NotFound),
        (409, _status(409, "AlreadyExists"), AlreadyExists),
        (422, _status(422, "Invalid"), Invalid),
        (403, _status(403, "Forbidden"), Forbidden),
        (410, _status(410, "Gone"), Expired),
        # A proxy in front of the server answers without a Status: map by code.
        (401, b"Unauthorized\n", Unauthorized),
        (503, b"<html>bad gateway</html>", ServiceUnavailable),
        (502, b"", InternalError),
    ],
)
def test_error_from_response(code: int, body: bytes, cls: type[Exception]) -> None:
    err = error_from_response(code, body)
    assert type(err) is cls


def test_error_without_status_keeps_a_short_excerpt_of_the_body() -> None:
    err = error_from_response(503, b"upstream down" + b"x" * 5000)
    assert "HTTP 503: upstream down" in err.message
    assert len(err.message) < 600


def _event(kind: str, obj: dict[str, object]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def test_watch_decoder_joins_split_lines() -> None:
    data = _event("ADDED", {"metadata": {"name": "a"}}) + _event("MODIFIED", {"x": 1})
    decoder = WatchDecoder()
    got = []
    for i in range(0, len(data), 7):
        got += decoder.feed(data[i : i + 7])
    got += decoder.finish()
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED"]


def test_watch_decoder_returns_a_last_line_without_newline() -> None:
    decoder = WatchDecoder()
    assert decoder.feed(_event("ADDED", {})[:-1]) == []
    assert [e["type"] for e in decoder.finish()] == ["ADDED"]


def test_watch_error_event_with_410_raises_expired() -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(Expired, match="too old"):
        WatchDecoder().feed(_event("ERROR", status))
    # Some servers send reason Gone, or none at all: the code decides.
    with pytest.raises(Expired):
        WatchDecoder().feed(_event("ERROR", {"code": 410}))


def test_watch_decoder_bounds_a_line() -> None:
    decoder = WatchDecoder(max_line=100)
    with pytest.raises(InternalError, match="larger than 100"):
        decoder.feed(b"{" + b" " * 200)


@pytest.mark.parametrize("line", [b"not json\n", b'{"object": {}}\n', b"[1]\n"])
def test_watch_decoder_rejects_garbage(line: bytes) -> None:
    with pytest.raises(InternalError):
        WatchDecoder().feed(line)
