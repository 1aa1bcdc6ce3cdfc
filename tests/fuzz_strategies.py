"""Hypothesis strategies for bad input: raw bytes, JSON and YAML texts, and objects by schema.

The object strategy walks :mod:`kubeboot.resources.schema`, so every served kind gets
inputs that are mostly well-typed (deep into the structure) with wrong types, odd numbers,
unknown fields and odd strings mixed in — the inputs that reach the type check and the
strategies, not just the parser. ``tests/test_fuzz_*.py`` files use these; ``make fuzz``
runs them with the ``fuzz`` profile (many more examples, no deadline).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from kubeboot.resources.schema import ListOf, MapOf, Scalar, Struct, Type

__all__ = [
    "budget",
    "json_texts",
    "json_values",
    "mutated_json",
    "objects_for",
    "odd_strings",
    "raw_bodies",
    "yaml_texts",
]


def budget(share: float = 1.0) -> settings:
    """Settings for a fuzz test: ``share`` of the active profile's examples, no deadline.

    ``make test`` runs Hypothesis's default profile (100 examples); ``make fuzz`` the
    ``fuzz`` profile (tests/conftest.py), so a share keeps slow tests proportionate in both.
    """
    return settings(
        max_examples=max(5, int(settings().max_examples * share)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Strings that have broken parsers before: surrogates, controls, digits that are not ASCII,
# separators, and very long or empty ones.
odd_strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\ud800",
            "a\x00b",
            "²",
            "٣",
            "1e400",
            "NaN",
            "-",
            "/",
            "..",
            "%FF",
            "a" * 300,
            "x\r\ny",
            "yesterday",
            "2026-13-45T99:99:99Z",
            "0001-01-01T00:00:00Z",
        ]
    ),
)

_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 0.5, 1e300]),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, odd_strings)

json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(odd_strings, children, max_size=4)
    ),
    max_leaves=20,
)


def _valid_scalar(t: Scalar) -> st.SearchStrategy[Any]:
    return {
        "string": st.sampled_from(t.enum)
        if t.enum
        else st.from_regex(r"[a-z0-9][a-z0-9.-]{0,10}", fullmatch=True),
        "int32": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "int64": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "float64": st.floats(allow_nan=False, allow_infinity=False),
        "bool": st.booleans(),
        "bytes": st.sampled_from(["", "aGk=", "AAEC"]),
        "time": st.sampled_from(["2026-01-01T00:00:00Z", "2026-05-01T10:00:00+02:00"]),
        "microtime": st.sampled_from(["2026-01-01T00:00:00.000000Z"]),
        "quantity": st.sampled_from(["1", "100m", "4Gi", "0.5"]),
        "intorstring": st.one_of(st.integers(0, 100), st.just("50%")),
        "any": json_values,
    }[t.kind]


def _typed(t: Type, depth: int) -> st.SearchStrategy[Any]:
    """Mostly right for ``t``; sometimes any JSON value instead (a type error)."""
    wrong = json_values
    if isinstance(t, Struct):
        right: st.SearchStrategy[Any] = st.just({}) if depth > 4 else objects_for(t, depth + 1)
    elif isinstance(t, ListOf):
        right = st.lists(_typed(t.item, depth + 1), max_size=3)
    elif isinstance(t, MapOf):
        right = st.dictionaries(odd_strings, _typed(t.value, depth + 1), max_size=3)
    else:
        right = _valid_scalar(t)
    return st.one_of(right, right, right, wrong)


def objects_for(struct: Struct, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like ``struct``: a few of its fields, sometimes an unknown one."""
    fields = {
        f.name: _typed(f.type, depth) for f in struct.fields if f.name not in ("kind", "apiVersion")
    }
    known = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(odd_strings, json_values, max_size=1)
    return st.builds(lambda a, b: {**b, **a}, known, extra)


json_texts = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=False)),
    st.text(alphabet='{}[]":,0123456789.eE+-tfnaulsr \\u\n', max_size=60),
)


Draw = Callable[[st.SearchStrategy[Any]], Any]


def _mutate(text: str, draw: Draw) -> str:
    if not text:
        return text
    at = draw(st.integers(0, len(text) - 1))
    how = draw(st.sampled_from(["cut", "insert", "replace"]))
    if how == "cut":
        return text[:at]
    piece: str = draw(st.sampled_from(["NaN", "1e400", "\\ud800", '"', "{", "]", ",", "\x00", "٣"]))
    return text[:at] + piece + text[at + (how == "replace") :]


def mutated_json(value: Any, draw: Draw) -> bytes:
    """``value`` as JSON, perhaps with one damaging edit (``draw``: ``data.draw``)."""
    text = json.dumps(value, default=str)
    if draw(st.booleans()):
        text = _mutate(text, draw)
    return text.encode("utf-8", errors="surrogatepass")


yaml_texts = st.one_of(
    st.text(alphabet="abc:-[]{}&*!|>'\"\n #,?0123456789.~", max_size=80),
    st.sampled_from(
        [
            "a: &a [*a]",
            "a: !!binary aGk=",
            "a: !!set {x}",
            "a: !!omap [{x: 1}]",
            "a: 2026-01-01",
            "? [1]\n: x",
            "a: .nan",
            "a: 0x1F",
            "a: !!python/object:os.system ls",
            "- " * 300 + "x",
        ]
    ),
)

raw_bodies = st.one_of(
    st.binary(max_size=200),
    json_texts.map(str.encode),
    yaml_texts.map(str.encode),
    st.sampled_from([b"k8s\x00", b"\xff\xfe{\x00}\x00", b"\x1f\x8b\x08\x00"]),
)
