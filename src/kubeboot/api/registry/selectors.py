"""Label and field selectors (server-facts §8.5), parsed once per request, matched per object.

Label grammar: comma-separated requirements ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist); all must hold. Field selectors
support ``=``, ``==`` and ``!=`` on the fields a resource declares; anything else is a 400,
so a typo never silently matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import BadRequest

__all__ = ["FieldSelector", "LabelSelector", "parse_field_selector", "parse_label_selector"]

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
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


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")


def _check_key(key: str, selector: str) -> str:
    if not _LABEL_KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise BadRequest(f'unable to parse requirement: invalid label key "{key}" in "{selector}"')
    return key


def _check_value(value: str, selector: str) -> str:
    if not _LABEL_VALUE.match(value) or len(value) > 63:
        raise BadRequest(
            f'unable to parse requirement: invalid label value "{value}" in "{selector}"'
        )
    return value


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text:
        return LabelSelector(())
    reqs: list[_Requirement] = []
    for part in _split_top_level(text):
        m = _SET_RE.match(part)
        if m:
            values = [_check_value(v.strip(), text) for v in m.group(3).split(",")]
            reqs.append(_Requirement(_check_key(m.group(1), text), m.group(2), frozenset(values)))
            continue
        for op in ("!=", "==", "="):
            if op in part:
                key, value = part.split(op, 1)
                reqs.append(
                    _Requirement(
                        _check_key(key.strip(), text),
                        "!=" if op == "!=" else "=",
                        frozenset([_check_value(value.strip(), text)]),
                    )
                )
                break
        else:
            if part.startswith("!"):
                reqs.append(_Requirement(_check_key(part[1:].strip(), text), "!", frozenset()))
            else:
                reqs.append(_Requirement(_check_key(part, text), "exists", frozenset()))
    return LabelSelector(tuple(reqs))


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
