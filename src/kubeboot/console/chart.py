"""The certificate timeline: one row per node, a bar per certificate from issue to expiry.

Inline SVG built as text (no script, no external file, no network), so the page works in any
browser and under a Content-Security-Policy that forbids everything but inline styles. The
time axis runs from the earliest ``notBefore`` (or now) to the latest ``notAfter``; a
vertical line marks now; a bar whose certificate has under :data:`WARN_FRACTION` of its
life left is drawn in the warning colour, an expired one in the error colour. Every bar
carries a ``<title>`` (the browser's tooltip) with its exact dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

from kubeboot.console.model import CertSpan

__all__ = ["WARN_FRACTION", "timeline_svg"]

WARN_FRACTION = 0.2
_WIDTH, _LABEL, _ROW, _AXIS = 900, 180, 26, 24
_COLOURS = {"client": "#3465a4", "serving": "#4e9a06", "warn": "#f57900", "expired": "#cc0000"}


def _colour(span: CertSpan, now: dt.datetime) -> str:
    if span.not_after <= now:
        return _COLOURS["expired"]
    life = (span.not_after - span.not_before).total_seconds() or 1.0
    if (span.not_after - now).total_seconds() / life < WARN_FRACTION:
        return _COLOURS["warn"]
    return _COLOURS[span.kind]


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def timeline_svg(spans: Sequence[CertSpan], now: dt.datetime) -> str:
    """The chart as an ``<svg>`` element (an empty-state note when there is nothing to draw)."""
    if not spans:
        return '<p class="empty">No issued node certificates to chart.</p>'
    nodes = sorted({s.node for s in spans})
    start = min([now, *(s.not_before for s in spans)])
    end = max([now + dt.timedelta(hours=1), *(s.not_after for s in spans)])
    total = (end - start).total_seconds()
    plot = _WIDTH - _LABEL - 10

    def x(when: dt.datetime) -> float:
        return _LABEL + plot * (when - start).total_seconds() / total

    height = _AXIS + _ROW * len(nodes) + 8
    parts = [
        f'<svg id="cert-timeline" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        'aria-label="Certificate expiry timeline">',
        f'<text x="{_LABEL}" y="14" font-size="11">{escape(_stamp(start))}</text>',
        f'<text x="{_WIDTH - 10}" y="14" font-size="11" text-anchor="end">'
        f"{escape(_stamp(end))}</text>",
    ]
    for row, node in enumerate(nodes):
        top = _AXIS + row * _ROW
        parts.append(
            f'<text x="4" y="{top + 16}" font-size="12" class="node-label">{escape(node)}</text>'
        )
        for lane, kind in enumerate(("client", "serving")):
            for span in (s for s in spans if s.node == node and s.kind == kind):
                left, right = x(span.not_before), x(span.not_after)
                title = (
                    f"{node} {kind} certificate: {_stamp(span.not_before)} to "
                    f"{_stamp(span.not_after)} ({span.source})"
                )
                parts.append(
                    f'<rect class="cert-bar cert-{kind}" data-node="{escape(node)}" '
                    f'x="{left:.1f}" y="{top + 2 + lane * 11}" width="{max(right - left, 2):.1f}" '
                    f'height="10" fill="{_colour(span, now)}"><title>{escape(title)}</title></rect>'
                )
    now_x = x(now)
    parts.append(
        f'<line id="now-line" x1="{now_x:.1f}" y1="{_AXIS - 4}" x2="{now_x:.1f}" '
        f'y2="{height - 4}" stroke="#555" stroke-dasharray="3,3"><title>now: '
        f"{escape(_stamp(now))}</title></line>"
    )
    parts.append("</svg>")
    return "".join(parts)
