"""``fieldValidation`` from the query string, and the ``Warning`` headers of a Warn request.

The checking itself happens where every object is decoded
(:mod:`kubeboot.api.registry.conform`, against the kind's schema at every depth); this module
only moves the directive in and the warnings out, as kube-apiserver does:

* the value is case-sensitive; anything but ``Ignore``, ``Warn``, ``Strict`` (or empty:
  Warn) is upstream's 422 on ``CreateOptions``/``UpdateOptions``/``PatchOptions``;
* each warning is its own ``Warning: 299 - "<text>"`` header (``"`` and ``\\`` escaped),
  duplicates dropped, and a text with control characters is never written (a field name
  chosen by the client must not split a header); past 4,096 characters in all, every
  warning is cut to 256, as upstream's recorder does.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict

from kubeboot.api.registry.conform import FIELD_VALIDATION_DIRECTIVES, FieldValidation
from kubeboot.resources.status import FieldError, Invalid

__all__ = ["field_validation", "warning_headers"]

_OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}
_TOTAL_RUNES = 4 * 1024
_ITEM_RUNES = 256


def field_validation(query: Mapping[str, str], verb: str) -> FieldValidation:
    directive = query.get("fieldValidation", "")
    if directive not in ("", *FIELD_VALIDATION_DIRECTIVES):
        raise Invalid.of(
            _OPTIONS_KIND.get(verb, "CreateOptions"),
            "meta.k8s.io",
            "",
            [
                FieldError.not_supported(
                    "fieldValidation", directive, ["", *FIELD_VALIDATION_DIRECTIVES]
                )
            ],
        )
    return FieldValidation(directive or "Warn")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def warning_headers(warnings: list[str]) -> CIMultiDict[str]:
    texts = [
        w
        for i, w in enumerate(warnings)
        if w and w not in warnings[:i] and all(c.isprintable() for c in w)
    ]
    if sum(len(w) for w in texts) > _TOTAL_RUNES:
        texts = [w[:_ITEM_RUNES] for w in texts]
    headers: CIMultiDict[str] = CIMultiDict()
    for text in texts:
        headers.add("Warning", f"299 - {_quoted(text)}")
    return headers
