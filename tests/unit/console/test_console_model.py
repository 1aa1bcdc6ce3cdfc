"""The console's pure parts: token rows, certificate spans, the SVG chart, the HTML escaping."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from kubeboot.console.chart import timeline_svg
from kubeboot.console.model import (
    CertSpan,
    cert_spans_from_ledger,
    recent_revocations,
    token_rows,
)
from kubeboot.console.pages import Dashboard, PendingCsr, Section, render_dashboard

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def secret(token_id: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": f"bootstrap-token-{token_id}"},
        "data": {"token-id": base64.b64encode(token_id.encode()).decode(), **encoded},
    }


def test_token_rows_ttl_and_uses() -> None:
    rows = token_rows(
        [
            secret("never1"),
            secret("broken", expiration="not a time"),
            secret(
                "bound1",
                expiration="2026-12-02T14:30:00Z",
                **{"kubeboot.node-name": "w1", "kubeboot.max-uses": "1", "kubeboot.uses": "1"},
            ),
            {"type": "Opaque", "metadata": {"name": "other"}},
        ],
        NOW,
    )
    assert [r.token_id for r in rows] == ["broken", "bound1", "never1"]
    broken, bound, never = rows
    assert broken.ttl_left == dt.timedelta(0)  # unparseable: expired, as upstream reads it
    assert bound.ttl_left == dt.timedelta(hours=2, minutes=30)
    assert (bound.node_name, bound.uses_left, bound.max_uses) == ("w1", 0, 1)
    assert never.ttl_left is None
    assert never.uses_left is None


def entry(serial: str, node: str, signer: str, hours: int) -> dict[str, Any]:
    stamp = (NOW + hours * HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "spec": {
            "serialNumber": serial,
            "nodeName": node,
            "signerName": signer,
            "notBefore": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "notAfter": stamp,
        }
    }


def test_ledger_spans_newest_per_node_and_kind_without_revoked() -> None:
    client = "kubernetes.io/kube-apiserver-client-kubelet"
    entries = [
        entry("a", "w1", client, 10),
        entry("b", "w1", client, 20),
        entry("c", "w1", "kubernetes.io/kubelet-serving", 30),
        entry("d", "", client, 40),  # not a node's certificate
        entry("e", "w2", "kubernetes.io/kube-apiserver-client", 40),  # not a kubelet signer
    ]
    spans = cert_spans_from_ledger(entries, revoked=frozenset({"c"}))
    assert [(s.node, s.kind, s.source) for s in spans] == [("w1", "client", "ledger, serial b")]


def test_chart_colours_and_escaping() -> None:
    spans = [
        CertSpan("<w1>", "client", NOW - 10 * HOUR, NOW - HOUR, "x"),  # expired
        CertSpan("<w1>", "serving", NOW - 10 * HOUR, NOW + HOUR, "x"),  # under 20 % left
        CertSpan("w2", "client", NOW - HOUR, NOW + 10 * HOUR, "x"),
    ]
    svg = timeline_svg(spans, NOW)
    assert svg.startswith('<svg id="cert-timeline"')
    assert "<w1>" not in svg
    assert "&lt;w1&gt;" in svg
    assert svg.count('class="cert-bar') == 3
    assert 'fill="#cc0000"' in svg
    assert 'fill="#f57900"' in svg
    assert 'fill="#3465a4"' in svg
    assert "No issued node certificates" in timeline_svg([], NOW)


def test_page_escapes_api_text_and_carries_the_csrf_token() -> None:
    csr = {
        "metadata": {"name": "x<script>", "creationTimestamp": "2026-12-02T11:00:00Z"},
        "spec": {
            "signerName": "example.com/<evil-signer>",
            "username": "<evil-user>",
            "request": "",
        },
    }
    view = Dashboard(
        server="https://k",
        identity="admin",
        now=NOW,
        pending=Section([PendingCsr(csr, None)]),
        tokens=Section(error="403 Forbidden: secrets is forbidden"),
        spans=Section(),
        spans_source="CSRs",
        revocations=Section(
            recent_revocations(
                [{"metadata": {"creationTimestamp": "t"}, "spec": {"reason": "<evil-reason>"}}]
            )
        ),
        flash="<done>",
    )
    page = render_dashboard(view, "tok123")
    for raw in ("<script>", "<evil-signer>", "<evil-user>", "<evil-reason>", "<done>"):
        assert raw not in page
    assert page.count('name="csrf" value="tok123"') == 2
    assert "Cannot read bootstrap tokens: 403 Forbidden" in page
