"""Property tests of the body decoders and the type check (issue 14, "Done means").

Whatever bytes arrive, decoding raises only :class:`DecodeError`; whatever tree arrives,
the type check raises only :class:`TypeMismatch`; what passes is plain JSON that encodes
(no NaN, no surrogates, no Python-only types), stays within the depth bound, and passes the
type check again unchanged. ``make fuzz`` runs these with many more examples.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubeboot.resources.decoding import (
    MAX_DEPTH,
    DecodeError,
    OverflowNumber,
    decode_json,
    decode_yaml,
)
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import KINDS
from kubeboot.resources.typecheck import TypeMismatch, typecheck
from tests.fuzz_strategies import (
    budget,
    json_values,
    mutated_json,
    objects_for,
    raw_bodies,
    yaml_texts,
)

FUZZ = budget()


def _plain(value: Any, depth: int = 0) -> None:
    """JSON's own types only, encodable as strict JSON and UTF-8, within the depth bound."""
    assert depth <= MAX_DEPTH + 1
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            k.encode()
            _plain(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _plain(v, depth + 1)
    elif isinstance(value, str):
        value.encode()
    else:
        assert value is None or isinstance(value, bool | int | float), type(value)


def _no_overflow(value: Any) -> bool:
    if isinstance(value, OverflowNumber):
        return False
    if isinstance(value, dict):
        return all(_no_overflow(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_overflow(v) for v in value)
    return True


@FUZZ
@given(raw_bodies)
def test_json_decoder_raises_only_decode_errors(raw: bytes) -> None:
    try:
        decoded = decode_json(raw, typed=False)
    except DecodeError:
        return
    _plain(decoded.value)
    json.dumps(decoded.value, allow_nan=False).encode()


@FUZZ
@given(st.data(), json_values)
def test_damaged_json_raises_only_decode_errors(data: st.DataObject, value: Any) -> None:
    raw = mutated_json(value, data.draw)
    try:
        decoded = decode_json(raw)
    except DecodeError:
        return
    if _no_overflow(decoded.value):
        _plain(decoded.value)


@FUZZ
@given(yaml_texts)
def test_yaml_decoder_raises_only_decode_errors(text: str) -> None:
    try:
        decoded = decode_yaml(text.encode("utf-8", errors="surrogatepass"))
    except DecodeError:
        return
    _plain(decoded.value)


@pytest.mark.parametrize("kind", sorted(KINDS, key=str), ids=lambda g: f"{g.group}/{g.kind}")
@budget(0.1)
@given(data=st.data())
def test_type_check_raises_only_type_mismatch_and_is_stable(kind: Any, data: st.DataObject) -> None:
    struct: Struct = KINDS[kind]
    # Through the real path: generated, written as JSON, decoded as a request body is.
    raw = json.dumps(data.draw(objects_for(struct))).encode()
    body = decode_json(raw).value
    try:
        checked = typecheck(body, struct)
    except TypeMismatch:
        return
    _plain(checked.obj)
    again = typecheck(checked.obj, struct)
    assert again.obj == checked.obj
    assert again.unknown == []
