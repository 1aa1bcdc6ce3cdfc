"""Property tests of the request parsers: each raises only a ``StatusError`` (issue 14).

Protobuf bodies, patches of all three kinds, label and field selectors, continue tokens,
resourceVersions and Go integers: whatever the input, the answer is a Kubernetes error
with a 4xx code or a value, never another exception (a 500). ``make fuzz`` runs them long.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubeboot.api.endpoints.protobuf import decode_protobuf_object
from kubeboot.api.registry.conform import FieldValidation, conform_patched
from kubeboot.api.registry.listwatch import _decode_continue, parse_resource_version
from kubeboot.api.registry.patch import apply_patch
from kubeboot.api.registry.queryparams import list_options, parse_go_int64, watch_options
from kubeboot.api.registry.selectors import parse_field_selector, parse_label_selector
from kubeboot.resources.decoding import decode_json
from kubeboot.resources.registry import RESOURCES, ResourceInfo, find_resource
from kubeboot.resources.schemas import KINDS
from kubeboot.resources.status import StatusError
from tests import protowire
from tests.fuzz_strategies import budget, json_values, objects_for, odd_strings

FUZZ = budget()


def _resource(plural: str) -> ResourceInfo:
    res = find_resource("", "v1", plural)
    assert res is not None
    return res


CM, NODES = _resource("configmaps"), _resource("nodes")


def _client_error(exc: StatusError) -> None:
    assert 400 <= exc.code < 500, exc.to_status()
    assert exc.message


@FUZZ
@given(st.binary(max_size=300))
def test_protobuf_bodies_raise_only_status_errors(raw: bytes) -> None:
    for body in (raw, b"k8s\x00" + raw):
        try:
            decode_protobuf_object(body)
        except StatusError as exc:
            _client_error(exc)


@budget(0.3)
@given(st.data())
def test_protobuf_of_generated_objects_decodes_or_refuses(data: st.DataObject) -> None:
    """Well-framed messages of every kind, built from the schema's field numbers."""
    struct = data.draw(st.sampled_from(sorted(KINDS.values(), key=lambda s: s.go)))
    obj = decode_json(json.dumps(data.draw(objects_for(struct))).encode()).value
    try:
        body = protowire.encode(obj, struct)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
        return  # the generated value does not fit its field: nothing to send
    try:
        decode_protobuf_object(body)
    except StatusError as exc:
        _client_error(exc)


@FUZZ
@given(json_values, st.sampled_from(["merge", "json", "strategic"]))
def test_patches_raise_only_status_errors(patch: Any, patch_type: str) -> None:
    current = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "finalizers": ["a/b"]},
        "data": {"a": "1"},
    }
    try:
        patched = apply_patch(current, patch, patch_type)
        conform_patched(CM, patched, patch, FieldValidation("Strict"))
    except StatusError as exc:
        _client_error(exc)
    assert current["data"] == {"a": "1"}  # the stored object is never modified


@FUZZ
@given(st.text(max_size=60))
def test_selectors_raise_only_status_errors(text: str) -> None:
    for res in (CM, NODES, *RESOURCES):
        try:
            parse_field_selector(text, res)
        except StatusError as exc:
            _client_error(exc)
    try:
        parse_label_selector(text)
    except StatusError as exc:
        _client_error(exc)


@FUZZ
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.hex())))
def test_continue_tokens_raise_only_status_errors(token: str) -> None:
    try:
        revision, start = _decode_continue(token, "/core/configmaps/default/")
    except StatusError as exc:
        _client_error(exc)
        return
    assert revision is None or 0 < revision < 2**63  # None: a token to continue at the latest
    assert start.startswith("/core/configmaps/default/")


@FUZZ
@given(odd_strings)
def test_resource_versions_and_go_integers(value: str) -> None:
    try:
        rv = parse_resource_version(value)
        assert rv is None or 0 <= rv < 2**64
    except StatusError as exc:
        _client_error(exc)
    try:
        assert -(2**63) <= parse_go_int64(value) < 2**63
    except StatusError as exc:
        _client_error(exc)


@FUZZ
@given(st.dictionaries(st.sampled_from(
    ["limit", "continue", "resourceVersion", "resourceVersionMatch", "timeoutSeconds",
     "sendInitialEvents", "allowWatchBookmarks", "labelSelector", "fieldSelector"]
), odd_strings))  # fmt: skip
def test_list_and_watch_options_raise_only_status_errors(query: dict[str, str]) -> None:
    for parse in (list_options, watch_options):
        try:
            parse(query)
        except StatusError as exc:
            _client_error(exc)
