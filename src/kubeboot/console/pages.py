"""The console's HTML, rendered on the server from plain data (pure; every value escaped).

One page: pending CSRs (approve/deny forms carrying the CSRF token, the policy approver's
explanation rule by rule), bootstrap tokens, the node certificate timeline, recent
revocations. A section the identity may not read shows the API's message instead of failing
the page. No script: the buttons are plain forms, so the page also works with JavaScript off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Generic, TypeVar

from kubeboot.console.chart import timeline_svg
from kubeboot.console.model import CertSpan, Revocation, TokenRow
from kubeboot.controllers.certificates import request_pem
from kubeboot.controllers.servingpolicy import Explanation
from kubeboot.pki.csr import CsrError, csr_facts, parse_csr_pem

__all__ = ["Dashboard", "PendingCsr", "Section", "render_dashboard", "render_denied"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Section(Generic[T]):
    items: Sequence[T] = ()
    error: str = ""  # the API's refusal, shown in place of the section
    available: bool = True  # False: the cluster does not serve what this section reads


@dataclass(frozen=True, slots=True)
class PendingCsr:
    csr: dict[str, Any]
    explanation: Explanation | None  # None: not a serving CSR (no policy applies)


@dataclass(frozen=True, slots=True)
class Dashboard:
    server: str
    identity: str
    now: dt.datetime
    pending: Section[PendingCsr]
    tokens: Section[TokenRow]
    spans: Section[CertSpan]
    spans_source: str
    revocations: Section[Revocation] = field(default_factory=lambda: Section(available=False))
    flash: str = ""
    problem: str = ""


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}.muted{color:#777}.flash{background:#e7f4e4;padding:.5em}
.problem{background:#fbe3e4;padding:.5em}.rules td{padding:0 .5em;font-size:12px}
.pass{color:#4e9a06}.fail{color:#cc0000}.wait{color:#c17d11}.na{color:#888}
button{margin-right:.3em}form{display:inline}code{font-size:12px}
"""


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes}m" if hours else f"{minutes}m"


def _age(meta: dict[str, Any], now: dt.datetime) -> str:
    created = meta.get("creationTimestamp")
    try:
        when = dt.datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return ""
    return _duration(max(now - when, dt.timedelta(0)))


def _sans(csr: dict[str, Any]) -> str:
    try:
        facts = csr_facts(parse_csr_pem(request_pem(csr)))
    except (CsrError, ValueError):
        return "(request does not parse)"
    return ", ".join([facts.common_name, *facts.dns_names, *(str(i) for i in facts.ips)])


def _explanation(explanation: Explanation | None) -> str:
    if explanation is None:
        return '<span class="muted">not a kubelet-serving CSR: no serving policy applies</span>'
    verdict = explanation.verdict
    rows = "".join(
        f'<tr><td class="{"na" if r.outcome == "n/a" else r.outcome}">{escape(r.outcome)}</td>'
        f"<td>{escape(r.rule)}</td><td>{escape(r.detail)}</td></tr>"
        for r in explanation.rules
    )
    return (
        f'<div class="verdict verdict-{escape(verdict.action)}"><b>policy: '
        f"{escape(verdict.action)}</b> — {escape(verdict.reason)}</div>"
        f'<table class="rules">{rows}</table>'
    )


def _section_problem(section: Section[Any], what: str) -> str | None:
    if not section.available:
        return f'<p class="muted">This cluster does not serve {escape(what)}.</p>'
    if section.error:
        return f'<p class="problem">Cannot read {escape(what)}: {escape(section.error)}</p>'
    return None


def _pending(section: Section[PendingCsr], now: dt.datetime, csrf: str) -> str:
    problem = _section_problem(section, "CertificateSigningRequests")
    if problem is not None:
        return problem
    if not section.items:
        return '<p class="empty">No pending CSRs.</p>'
    rows = []
    for item in section.items:
        meta, spec = item.csr.get("metadata") or {}, item.csr.get("spec") or {}
        name = escape(str(meta.get("name", "")))
        forms = "".join(
            f'<form method="post" action="/csrs/{name}/{verb}">'
            f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
            f'<button type="submit" id="{verb}-{name}">{verb.capitalize()}</button></form>'
            for verb in ("approve", "deny")
        )
        rows.append(
            f'<tr id="csr-{name}"><td><b>{name}</b><br><span class="muted">'
            f"{escape(str(spec.get('signerName', '')))}<br>"
            f"by {escape(str(spec.get('username', '')))}, {_age(meta, now)} ago</span></td>"
            f"<td><code>{escape(_sans(item.csr))}</code></td>"
            f"<td>{_explanation(item.explanation)}</td><td>{forms}</td></tr>"
        )
    head = "<tr><th>CSR</th><th>subject and SANs</th><th>policy approver</th><th></th></tr>"
    return f'<table id="pending">{head}{"".join(rows)}</table>'


def _tokens(section: Section[TokenRow]) -> str:
    problem = _section_problem(section, "bootstrap tokens")
    if problem is not None:
        return problem
    if not section.items:
        return '<p class="empty">No bootstrap tokens.</p>'
    rows = []
    for t in section.items:
        ttl = "never expires" if t.ttl_left is None else _duration(t.ttl_left)
        if t.ttl_left is not None and t.ttl_left <= dt.timedelta(0):
            ttl = "expired"
        uses = f"{t.uses} used" if t.max_uses is None else f"{t.uses_left} of {t.max_uses} left"
        rows.append(
            f'<tr id="token-{escape(t.token_id)}"><td><code>{escape(t.token_id)}</code></td>'
            f"<td>{escape(ttl)}</td><td>{escape(uses)}</td>"
            f"<td>{escape(', '.join(t.usages))}</td><td>{escape(t.node_name or '-')}</td>"
            f"<td>{escape(t.groups)}</td><td>{escape(t.description)}</td></tr>"
        )
    head = (
        "<tr><th>token id</th><th>TTL left</th><th>uses</th><th>usages</th>"
        "<th>bound to node</th><th>extra groups</th><th>description</th></tr>"
    )
    return f'<table id="tokens">{head}{"".join(rows)}</table>'


def _revocations(section: Section[Revocation]) -> str:
    problem = _section_problem(section, "certificate revocations (a kubeboot ledger)")
    if problem is not None:
        return problem
    if not section.items:
        return '<p class="empty">No revocations.</p>'
    rows = "".join(
        f"<tr><td>{escape(r.when)}</td><td>{escape(r.node or '-')}</td>"
        f"<td><code>{escape(r.serial)}</code></td><td>{escape(r.reason)}</td></tr>"
        for r in section.items
    )
    head = "<tr><th>when</th><th>node</th><th>serial</th><th>reason</th></tr>"
    return f'<table id="revocations">{head}{rows}</table>'


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def render_dashboard(view: Dashboard, csrf: str) -> str:
    spans = _section_problem(view.spans, "certificates") or timeline_svg(view.spans.items, view.now)
    body = [
        "<h1>kubeboot console</h1>",
        f'<p class="muted">{escape(view.server)} as {escape(view.identity)} — '
        f"{view.now:%Y-%m-%d %H:%M:%S} UTC</p>",
    ]
    if view.flash:
        body.append(f'<p class="flash" id="flash">{escape(view.flash)}</p>')
    if view.problem:
        body.append(f'<p class="problem" id="problem">{escape(view.problem)}</p>')
    body += [
        "<h2>Pending certificate signing requests</h2>",
        _pending(view.pending, view.now, csrf),
        "<h2>Bootstrap tokens</h2>",
        _tokens(view.tokens),
        "<h2>Node certificates</h2>",
        f'<p class="muted">Client (blue) and serving (green) certificates per node, from '
        f"{escape(view.spans_source)}; orange: under 20 % of their life left, red: expired.</p>",
        spans,
        "<h2>Recent revocations</h2>",
        _revocations(view.revocations),
    ]
    return _page("kubeboot console", "".join(body))


def render_denied(reason: str) -> str:
    """The page for a request without the console's access cookie (or a foreign Host)."""
    return _page("kubeboot console: access denied", f'<p class="problem">{escape(reason)}</p>')
