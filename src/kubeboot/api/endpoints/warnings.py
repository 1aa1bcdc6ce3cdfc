"""``Warning`` response headers, as kube-apiserver's warning recorder writes them.

One header per distinct warning, in order: ``299 - "<text>"`` with only ``"`` and ``\\``
escaped by a backslash (``299 - "unknown field \\"bogus\\""``). Texts with control
characters are dropped, as upstream. Past 4 KiB of text in all, every warning is cut to 256
characters.
"""

from __future__ import annotations

import unicodedata

from multidict import CIMultiDict

__all__ = ["warning_headers"]

_TOTAL_RUNES = 4 * 1024
_ITEM_RUNES = 256


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def warning_headers(warnings: list[str]) -> CIMultiDict[str]:
    texts: list[str] = []
    for text in warnings:
        if text and text not in texts and not _has_control(text):
            texts.append(text)
    if sum(len(t) for t in texts) > _TOTAL_RUNES:
        texts = [t[:_ITEM_RUNES] for t in texts]
    headers: CIMultiDict[str] = CIMultiDict()
    for text in texts:
        headers.add("Warning", f"299 - {_quoted(text)}")
    return headers
