"""Label and field selectors (server-facts §8.5), parsed once per request, matched per object.

Label grammar: comma-separated requirements ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist), ``k>1``/``k<1`` (integers); all
must hold. It is parsed by a port of upstream's lexer and parser, so what is accepted and
the 400's text (``unable to parse requirement: found '', expected: ',', ')' or
identifier``) are upstream's. Field selectors
support ``=``, ``==`` and ``!=`` on the fields a resource declares; anything else is a 400,
so a typo never silently matches everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeboot.resources.decoding import go_quote
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import BadRequest
from kubeboot.resources.validation import is_label_value, is_qualified_name

__all__ = ["FieldSelector", "LabelSelector", "parse_field_selector", "parse_label_selector"]


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.op in ("gt", "lt"):
            # Upstream: both sides must parse as Go int64; anything else does not match.
            try:
                value, bound = int(labels[self.key]), int(next(iter(self.values)))
            except (KeyError, ValueError, StopIteration):
                return False
            return value > bound if self.op == "gt" else value < bound
        # "!=" and "notin" match objects without the label, as upstream.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[_Requirement, ...]

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


# ---- label selectors: upstream's lexer and parser (apimachinery/pkg/labels/selector.go) --

_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")
_TOKENS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "in": "in",
           "<": "<", "!=": "!=", "notin": "notin", "(": "("}  # fmt: skip
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_OPERATORS = {"in": "in", "notin": "notin", "=": "=", "==": "=", "!=": "!=", ">": "gt", "<": "lt"}
_ID, _END, _ERROR = "ID", "END", "ERROR"


def _lex(text: str) -> list[tuple[str, str]]:
    """(token, literal) pairs, ending with END; the text as Go bytes (upstream lexes bytes)."""
    data = text.encode("utf-8", errors="surrogatepass")
    items: list[tuple[str, str]] = []
    pos = 0
    while True:
        while pos < len(data) and chr(data[pos]) in _WHITESPACE:
            pos += 1
        if pos >= len(data) or data[pos] == 0:
            items.append((_END, ""))
            return items
        if chr(data[pos]) in _SPECIAL:
            buffer, last = "", None
            while pos < len(data) and chr(data[pos]) in _SPECIAL:
                candidate = buffer + chr(data[pos])
                if candidate in _TOKENS:
                    buffer, last = candidate, candidate
                    pos += 1
                elif last is not None:
                    break
                else:
                    buffer = candidate
                    pos += 1
            if last is None:
                items.append((_ERROR, f"error expected: keyword found '{buffer}'"))
            else:
                items.append((_TOKENS[last], last))
            continue
        start = pos
        while pos < len(data) and data[pos] != 0:
            ch = chr(data[pos])
            if ch in _SPECIAL or ch in _WHITESPACE:
                break
            pos += 1
        word = data[start:pos].decode("utf-8", errors="replace")
        items.append((_TOKENS.get(word, _ID), word))


class _Parser:
    """Upstream's recursive-descent parser over the token list; errors are its texts."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def lookahead(self, values: bool) -> tuple[str, str]:
        tok, lit = self.items[self.position]
        return (_ID if values and tok in ("in", "notin") else tok), lit

    def consume(self, values: bool) -> tuple[str, str]:
        tok, lit = self.lookahead(values)
        self.position += 1
        return tok, lit

    def parse(self) -> tuple[_Requirement, ...]:
        requirements: list[_Requirement] = []
        while True:
            tok, lit = self.lookahead(True)
            if tok in (_ID, "!"):
                try:
                    requirements.append(self.requirement())
                except ValueError as exc:
                    raise ValueError(f"unable to parse requirement: {exc}") from None
                tok, lit = self.consume(True)
                if tok == _END:
                    return tuple(requirements)
                if tok != ",":
                    raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
                tok2, lit2 = self.lookahead(True)
                if tok2 not in (_ID, "!"):
                    raise ValueError(f"found '{lit2}', expected: identifier after ','")
            elif tok == _END:
                return tuple(requirements)
            else:
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> _Requirement:
        op = ""
        tok, key = self.consume(True)
        if tok == "!":
            op = "!"
            tok, key = self.consume(True)
        if tok != _ID:
            raise ValueError(f"found '{key}', expected: identifier")
        _check_key(key)
        if op == "!" or self.lookahead(True)[0] in (_END, ","):
            return _requirement(key, op or "exists", [])
        tok, lit = self.consume(False)
        if tok not in _OPERATORS:
            raise ValueError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        op = _OPERATORS[tok]
        values = self.set_values() if op in ("in", "notin") else self.exact_value()
        return _requirement(key, op, values)

    def set_values(self) -> list[str]:
        tok, lit = self.consume(True)
        if tok != "(":
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(True)
        if tok == ")":
            self.consume(True)
            return [""]
        if tok not in (_ID, ","):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        found: set[str] = set()
        while True:
            tok, lit = self.consume(True)
            if tok == _ID:
                found.add(lit)
                tok2, lit2 = self.lookahead(True)
                if tok2 == ",":
                    continue
                if tok2 == ")":
                    break
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if tok == ",":
                if not found:
                    found.add("")
                tok2, _ = self.lookahead(True)
                if tok2 == ")":
                    found.add("")
                    break
                if tok2 == ",":
                    found.add("")
                continue
            raise ValueError(f"found '{lit}', expected: ',', or identifier")
        tok, _ = self.consume(True)
        if tok != ")":
            raise ValueError(f"found '{lit}', expected: ')'")
        return sorted(found)

    def exact_value(self) -> list[str]:
        tok, _ = self.lookahead(True)
        if tok in (_END, ","):
            return [""]
        tok, lit = self.consume(True)
        if tok == _ID:
            return [lit]
        raise ValueError(f"found '{lit}', expected: identifier")


def _check_key(key: str) -> None:
    errors = is_qualified_name(key)
    if errors:
        raise ValueError(f"key: Invalid value: {go_quote(key)}: {'; '.join(errors)}")


def _requirement(key: str, op: str, values: list[str]) -> _Requirement:
    """Upstream's NewRequirement checks, with its aggregated error text."""
    errors: list[str] = []
    if op in ("gt", "lt"):
        for i, value in enumerate(values):
            digits = value[1:] if value[:1] in ("+", "-") else value
            if not (digits.isascii() and digits.isdigit() and abs(int(value)) < 2**63):
                errors.append(
                    f"values[{i}]: Invalid value: {go_quote(value)}: for 'Gt', 'Lt' operators, "
                    "the value must be an integer"
                )
    for i, value in enumerate(values):
        problems = is_label_value(value)
        if problems:
            errors.append(
                f"values[{i}][{key}]: Invalid value: {go_quote(value)}: {'; '.join(problems)}"
            )
    if errors:
        raise ValueError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return _Requirement(key, op, frozenset(values))


def parse_label_selector(text: str | None) -> LabelSelector:
    """A ``labelSelector`` as upstream's ``labels.Parse``; 400 with its error text."""
    if not text:
        return LabelSelector(())
    try:
        return LabelSelector(_Parser(text).parse())
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


FieldGetter = Callable[[dict[str, Any]], str]


def _path_getter(path: str) -> FieldGetter:
    keys = path.split(".")

    def get(obj: dict[str, Any]) -> str:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(k)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


def _event_source(obj: dict[str, Any]) -> str:
    return str((obj.get("source") or {}).get("component") or obj.get("reportingComponent") or "")


_SPECIAL_GETTERS: dict[str, FieldGetter] = {"source": _event_source}


@dataclass(frozen=True, slots=True)
class _FieldTerm:
    field: str
    negate: bool
    value: str
    getter: FieldGetter

    def matches(self, obj: dict[str, Any]) -> bool:
        return (self.getter(obj) == self.value) != self.negate


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[_FieldTerm, ...]

    @property
    def empty(self) -> bool:
        return not self.terms

    def requirements(self) -> tuple[tuple[str, str, str], ...]:
        """``(field, "=" or "!=", value)`` per term, as the authorizer's attributes carry them."""
        return tuple((t.field, "!=" if t.negate else "=", t.value) for t in self.terms)

    def exact_name(self) -> str | None:
        """The name if the selector pins ``metadata.name=<x>`` (lets watch narrow its key)."""
        for t in self.terms:
            if t.field == "metadata.name" and not t.negate:
                return t.value
        return None

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(t.matches(obj) for t in self.terms)

    def without_name(self, name: str) -> FieldSelector:
        """This selector minus its ``metadata.name=<name>`` terms.

        For a watch narrowed to the key of ``name``: every object there has that name, so
        the terms hold for all its events and checking them is wasted work.
        """
        kept = tuple(
            t for t in self.terms if t.field != "metadata.name" or t.negate or t.value != name
        )
        return self if len(kept) == len(self.terms) else FieldSelector(kept)


# Kinds whose upstream registers its own field-label conversion, with its own refusal text;
# True where metadata.namespace is one of its labels. The others take the default conversion
# (metadata.name and metadata.namespace, on namespaced and cluster-scoped kinds alike).
_OWN_CONVERSION = {
    "pods": True,
    "nodes": False,
    "events": True,
    "namespaces": False,
    "secrets": True,
    "services": True,
    "certificatesigningrequests": False,
    "podcertificaterequests": False,
    "resourceslices": False,
}


def _unsupported(res: ResourceInfo, field: str) -> BadRequest:
    """Upstream's words for a field label the kind's conversion does not know."""
    if res.plural == "resourceslices":
        return BadRequest(
            f"field label not supported for {res.api_version}, Kind={res.kind}: {field}"
        )
    if res.plural in _OWN_CONVERSION:
        return BadRequest(f"field label not supported: {field}")
    return BadRequest(
        f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


def parse_field_selector(text: str | None, res: ResourceInfo) -> FieldSelector:
    if not text:
        return FieldSelector(())
    allowed = {"metadata.name", *res.field_selectors}
    if _OWN_CONVERSION.get(res.plural, True):
        allowed.add("metadata.namespace")
    terms: list[_FieldTerm] = []
    for part in _split_top_level(text):
        for op in ("!=", "==", "="):
            if op in part:
                field, value = part.split(op, 1)
                field = field.strip()
                break
        else:
            raise BadRequest(f'invalid selector: "{text}"; a field selector needs =, == or !=')
        if field not in allowed:
            raise _unsupported(res, field)
        getter = _SPECIAL_GETTERS.get(field) or _path_getter(field)
        terms.append(_FieldTerm(field, op == "!=", value.strip(), getter))
    return FieldSelector(tuple(terms))
