"""The agent's ``/metrics``: upstream's names exactly (the error counters without ``_total``),
+Inf TTL without a certificate, parsed by the Prometheus client's own parser; the sleeper's
answers from the hand-over give the same families, with the TTLs counted down."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubeboot.agent import metrics
from kubeboot.agent.constants import CLIENT_PREFIX, SERVER_PREFIX
from kubeboot.agent.exposition import AgentMetrics
from kubeboot.agent.sleeper import COUNTDOWNS_ENV, METRICS_ENV, metrics_text, response_to

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fresh_counts() -> Iterator[None]:
    saved = metrics.renew_errors()
    metrics.restore_renew_errors("kubelet-client=0,kubelet-server=0")
    yield
    metrics.restore_renew_errors(metrics.encode_renew_errors(saved))


def _families(text: bytes | str) -> dict[str, tuple[str, float]]:
    """name -> (type, value) of each single-sample family, by the Prometheus parser."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        (sample,) = family.samples
        assert sample.name == family.name  # no suffix was added to any name
        out[family.name] = (family.type, sample.value)
    return out


def test_no_certificate_is_plus_inf_and_counters_keep_upstream_names() -> None:
    expiries = {CLIENT_PREFIX: NOW + dt.timedelta(seconds=3600.5), SERVER_PREFIX: None}
    metrics.renew_error(SERVER_PREFIX)
    metrics.renew_error(SERVER_PREFIX)
    text = AgentMetrics(lambda: expiries, lambda: NOW).render()
    assert _families(text) == {
        "kubelet_certificate_manager_client_ttl_seconds": ("gauge", 3600.5),
        "kubelet_certificate_manager_server_ttl_seconds": ("gauge", math.inf),
        "kubelet_certificate_manager_client_expiration_renew_errors": ("unknown", 0.0),
        "kubelet_server_expiration_renew_errors": ("unknown", 2.0),
    }
    assert b"# TYPE kubelet_server_expiration_renew_errors untyped\n" in text
    assert b"_total" not in text


def test_expired_certificate_has_a_negative_ttl() -> None:
    text = AgentMetrics(lambda: {CLIENT_PREFIX: NOW - dt.timedelta(seconds=12)}, lambda: NOW)
    families = _families(text.render())
    assert families["kubelet_certificate_manager_client_ttl_seconds"] == ("gauge", -12.0)


def test_renew_errors_survive_the_exec_and_bad_entries_are_dropped() -> None:
    metrics.renew_error(CLIENT_PREFIX)
    carried = metrics.encode_renew_errors(metrics.renew_errors())
    assert carried == "kubelet-client=1,kubelet-server=0"
    metrics.restore_renew_errors("kubelet-client=0")
    metrics.restore_renew_errors(carried + ",kubelet-other=7,kubelet-server=-1,junk")
    assert metrics.renew_errors() == {CLIENT_PREFIX: 1, SERVER_PREFIX: 0}


def test_the_sleeper_answers_the_handed_over_text_with_ttls_counted_down() -> None:
    expiry = NOW + dt.timedelta(days=30)
    agent = AgentMetrics(lambda: {CLIENT_PREFIX: expiry, SERVER_PREFIX: None}, lambda: NOW)
    metrics.renew_error(CLIENT_PREFIX)
    handed = agent.handover()
    assert handed[metrics.RENEW_ERRORS_ENV] == "kubelet-client=1,kubelet-server=0"
    later = NOW.timestamp() + 86400.25  # a day into the sleep
    slept = _families(metrics_text(handed[METRICS_ENV], handed[COUNTDOWNS_ENV], later))
    awake = _families(agent.render())
    ttl = "kubelet_certificate_manager_client_ttl_seconds"
    assert slept[ttl][0] == "gauge"
    assert slept[ttl][1] == pytest.approx(29 * 86400 - 0.25)
    assert {k: v for k, v in slept.items() if k != ttl} == {
        k: v for k, v in awake.items() if k != ttl
    }


@pytest.mark.parametrize(
    ("request_head", "status", "body"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", b"200 OK", b"m 1\n"),
        (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"200 OK", b"m 1\n"),
        (b"GET /healthz HTTP/1.1\r\n\r\n", b"200 OK", b"ok"),
        (b"GET /other HTTP/1.1\r\n\r\n", b"404 Not Found", b"404 page not found\n"),
        (b"POST /metrics HTTP/1.1\r\n\r\n", b"405 Method Not Allowed", b"GET only\n"),
        (b"\x16\x03\x01\x02\x00", b"400 Bad Request", b"bad request\n"),
    ],
)
def test_the_sleepers_http_answers(request_head: bytes, status: bytes, body: bytes) -> None:
    answer = response_to(request_head, b"m 1\n")
    head, _, got = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b"\r\n")
    assert b"\r\nConnection: close" in head
    assert f"\r\nContent-Length: {len(body)}".encode() in head
    assert got == body
