"""What must differ between two servers, replaced by placeholders before comparing (pure).

Two correct API servers answering the same request still differ in values that are generated:
uids, timestamps, resourceVersions, continue tokens, generated names, certificate and key bytes,
JWS signatures, their own URL and port. Everything else — codes, reasons, message texts, content
types, which keys exist, lists and their order, defaults — must be the same, so it is kept.

Rules, applied to every string in a decoded body (and to plain-text bodies and headers):

* the server's own URL / ``host:port`` → ``<server>``; per-plane captured values (a
  generated name, a token id) → ``<name of the capture>``;
* PEM blocks → ``<pem:TYPE>``; detached JWS (``header..signature``) → ``<jws>``; base64 runs
  of 64+ characters → ``<b64>`` (certificate-authority-data, status.certificate, keys);
* RFC 3339 times → ``<time>``; UUIDs → ``<uid>``;

and by key: ``resourceVersion`` values → ``<rv>``; a non-empty ``continue`` → ``<continue>``;
Table cells of age columns (``Age``, ``Last Seen``, ``First Seen``) → ``<age>``
(:func:`mask_table_ages`);
a server's resourceVersion quoted in an error message (``in record (N)``, ``current: N``,
``\\"resourceVersion\\":\\"N\\"`` in a quoted object) → ``<rv>``.

Orders that only timing decides are made canonical: ``managedFields`` entries (both servers
sort them by operation, then time in whole seconds, then manager: with the times masked,
whether a controller's write fell in the creator's second is all the order says; sorted by
operation, manager, subresource, apiVersion) — also in protobuf (:mod:`protowire`) — and an
apply conflict's causes (Go map order).

One deliberate deviation is dropped rather than masked: the ``[+]kube-controller-manager ok``
line of kubeboot's ``/readyz?verbose`` (the embedded controller manager's check, which
kube-apiserver has no reason to list; docs/api.md). A failing one still shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["managed_fields_key", "mask_table_ages", "normalize", "normalize_text"]

# Table columns whose cells are ages (a duration since a time): they depend on when each
# server answered, like the times themselves.
_AGE_COLUMNS = {"Age", "Last Seen", "First Seen"}

_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----[A-Za-z0-9+/=\s]*?-----END \1-----\n?", re.MULTILINE
)
_JWS = re.compile(r"\b[A-Za-z0-9_-]{16,}\.\.[A-Za-z0-9_-]{16,}\b")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{64,}={0,2}(?![A-Za-z0-9+/=])")
_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")
_UID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
# kubeboot's own readyz check while it passes (module docstring).
_KUBEBOOT_READYZ_LINE = "[+]kube-controller-manager ok\n"
_VOLATILE_KEYS = {"resourceVersion": "<rv>", "continue": "<continue>"}
_APPLY_CONFLICT = "FieldManagerConflict"
# A server's resourceVersion quoted in a message (precondition and too-large-RV errors, and
# the patched object a patch's 422 quotes as escaped JSON).
_RV_IN_TEXT = re.compile(
    r'(in record \(|, current: |ResourceVersion in object meta: |\\"resourceVersion\\":\\")'
    r"\d+(?![0-9a-f-])"
)


def normalize_text(text: str, replacements: Mapping[str, str]) -> str:
    """Placeholders for what must differ in one string (longest replacement first)."""
    for value in sorted(replacements, key=len, reverse=True):
        if value:
            text = text.replace(value, replacements[value])
    text = _PEM.sub(lambda m: f"<pem:{m.group(1)}>", text)
    text = _JWS.sub("<jws>", text)
    text = _B64.sub("<b64>", text)
    text = _TIME.sub("<time>", text)
    text = _RV_IN_TEXT.sub(r"\1<rv>", text)
    text = text.replace(_KUBEBOOT_READYZ_LINE, "")
    return _UID.sub("<uid>", text)


def _sort_apply_conflicts(details: dict[str, Any]) -> None:
    causes = details.get("causes")
    if (
        isinstance(causes, list)
        and causes
        and all(isinstance(c, dict) and c.get("reason") == _APPLY_CONFLICT for c in causes)
    ):
        causes.sort(key=lambda c: (str(c.get("field")), str(c.get("message"))))


def normalize(value: Any, replacements: Mapping[str, str]) -> Any:
    """A copy of a decoded JSON/YAML document with placeholders (module docstring)."""
    normalized = _normalize(mask_table_ages(value), replacements)
    _reorder(normalized)
    return normalized


def _reorder(value: Any) -> None:
    """The timing- and map-order-dependent structures of the module docstring, in place."""
    if isinstance(value, list):
        for item in value:
            _reorder(item)
    elif isinstance(value, dict):
        for item in value.values():
            _reorder(item)
        if value.get("kind") == "Status" and isinstance(value.get("details"), dict):
            _sort_apply_conflicts(value["details"])
        entries = value.get("managedFields")
        if isinstance(entries, list) and all(isinstance(e, dict) for e in entries):
            entries.sort(key=managed_fields_key)


def managed_fields_key(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """A managedFields entry's place once its time is masked (module docstring)."""
    return tuple(
        str(entry.get(k, "")) for k in ("operation", "manager", "subresource", "apiVersion")
    )


def _normalize(value: Any, replacements: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return normalize_text(value, replacements)
    if isinstance(value, list):
        return [_normalize(item, replacements) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            placeholder = _VOLATILE_KEYS.get(key)
            if placeholder and isinstance(item, str) and item:
                out[key] = placeholder
            else:
                out[normalize_text(key, replacements)] = _normalize(item, replacements)
        return out
    return value


def mask_table_ages(value: Any) -> Any:
    """A copy with ``<age>`` in the Table cells of age columns. A watch in Table form names
    its columns in its first event only; the later events' rows use the same positions."""
    positions: list[int] = []

    def walk(node: Any) -> Any:
        nonlocal positions
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        columns = node.get("columnDefinitions")
        if isinstance(columns, list) and columns:
            positions = [
                i
                for i, c in enumerate(columns)
                if isinstance(c, dict) and c.get("name") in _AGE_COLUMNS
            ]
        out = {k: walk(v) for k, v in node.items()}
        rows = out.get("rows")
        if isinstance(rows, list) and positions:
            for row in rows:
                cells = row.get("cells") if isinstance(row, dict) else None
                if isinstance(cells, list):
                    for i in positions:
                        if i < len(cells) and isinstance(cells[i], str):
                            cells[i] = "<age>"
        return out

    return walk(value)
