"""Request bytes → JSON trees, as kube-apiserver's Go decoders accept them, and bounded.

kube-apiserver decodes JSON with (a fork of) Go's ``encoding/json`` and YAML with go-yaml v2
via ``sigs.k8s.io/yaml``. Python's ``json`` and PyYAML accept more than those do, and some of
the extra is harmful: ``NaN``/``Infinity`` and numbers beyond float64 poison every later
reader of the stored object, UTF-16 and UTF-32 JSON are auto-detected, lone surrogates
survive into strings that cannot be encoded, deep nesting raises ``RecursionError`` deep in
later code, a YAML alias bomb expands into a huge object, and YAML timestamps, sets and
binaries become Python types JSON cannot hold. This module decodes as Go does:

* JSON: UTF-8 only (invalid bytes in strings become U+FFFD, as Go); ``NaN``/``Infinity`` are
  syntax errors; a number beyond float64 (``1e400``) is kept as :class:`OverflowNumber` so
  the type check can name the field (Go: ``cannot unmarshal number 1e400 into Go struct
  field ...``), or refused at once for untyped bodies (patches); lone surrogates (``\\ud800``)
  become U+FFFD, as Go's decoder does; duplicate keys keep the last value and are reported
  by path for ``fieldValidation``.
* YAML: YAML 1.1 scalars as go-yaml v2 resolves them, timestamps kept as the string written
  (go-yaml v2 does so for untyped targets), keys turned into strings as ``sigs.k8s.io/yaml``
  does, ``NaN``/``Inf`` refused (``json.Marshal`` refuses them upstream), an anchor that
  contains itself refused, and go-yaml's alias-expansion budget enforced ("document contains
  excessive aliasing").
* Both: nesting deeper than :data:`MAX_DEPTH` is a 400. Upstream's Go decoders allow 10,000
  levels; no object of a kind kubeboot serves is a tenth as deep, and every later step
  (type check, patch, copy, encode) can then recurse safely (documented in ``docs/api.md``).

Errors are :class:`DecodeError` whose text reads like Go's (``invalid character 'N' looking
for beginning of value``, ``unexpected end of JSON input``,
``yaml: line 3: ...``); the HTTP layer wraps them in
upstream's ``the object provided is unrecognized`` message.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

__all__ = [
    "MAX_DEPTH",
    "DecodeError",
    "Decoded",
    "FieldPath",
    "OverflowNumber",
    "decode_json",
    "decode_yaml",
    "gc_paused",
    "go_quote",
    "go_quote_char",
]

MAX_DEPTH = 256

# go-yaml v2's alias budget (decode.go ``allowedAliasRatio``): aliases may make up 99 % of
# the nodes decoded in documents up to 400,000 nodes, falling to 10 % at 4,000,000.
_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000

_SURROGATE_ESCAPE = re.compile(rb"\\[uU]0{0,4}[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class DecodeError(ValueError):
    """A body that does not decode; the message reads like the Go decoder's."""


@dataclass(frozen=True, slots=True)
class OverflowNumber:
    """A JSON number beyond float64 (``1e400``): only the type check may see one."""

    literal: str

    def __str__(self) -> str:
        return self.literal


class FieldPath(NamedTuple):
    """A field's JSON path (``rules[0].verb``) and where it is in the document (the index
    of each key or item on the way), so that problems can be reported in document order."""

    position: tuple[int, ...]
    path: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded body and what ``fieldValidation`` reports about it.

    ``duplicates``: keys that appeared twice in a JSON object (the last value is kept, as
    Go's decoder keeps it). ``yaml_duplicates``: the same for YAML, in go-yaml's words
    (``line 5: key "name" already set in map``), as upstream reports them.
    """

    value: Any
    duplicates: tuple[FieldPath, ...] = ()
    yaml_duplicates: tuple[str, ...] = ()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC while a body is turned into (or checked as) a tree of fresh objects.

    Decoding allocates one object per node and none of them is garbage yet, so the
    collector's passes are pure overhead: they made a 0.9 MiB YAML body take 4x as long.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def go_quote_char(c: str) -> str:
    """Go's ``quoteChar``: how its JSON scanner names a character in an error."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    quoted = json.dumps(c)[1:-1] if not c.isprintable() else c
    return f"'{quoted}'"


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES |= {"\v": "\\v", '"': '\\"', "\\": "\\\\"}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: printable characters kept, the rest escaped."""
    out = []
    for c in s:
        if c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


# ---- JSON --------------------------------------------------------------------------------


def decode_json(raw: bytes, *, typed: bool = True) -> Decoded:
    """Decode a JSON body. ``typed=False`` (patches) refuses :class:`OverflowNumber` at once."""
    text = raw.decode("utf-8", errors="replace")
    dup_holders: list[tuple[dict[str, Any], list[str]]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            seen: set[str] = set()
            dups = []
            for key, _ in items:
                if key in seen and key not in dups:
                    dups.append(key)
                seen.add(key)
            dup_holders.append((obj, dups))
        return obj

    def parse_float(literal: str) -> float | OverflowNumber:
        value = float(literal)
        if math.isfinite(value):
            return value
        if not typed:
            raise DecodeError(
                f"json: cannot unmarshal number {literal} into Go value of type float64"
            )
        return OverflowNumber(literal)

    def parse_int(literal: str) -> int | float | OverflowNumber:
        try:
            return int(literal)
        except ValueError:  # over Python's 4,300-digit limit: far beyond any Go integer
            return parse_float(literal)

    def parse_constant(name: str) -> Any:
        first = name.lstrip("-")[0]
        context = "in numeric literal" if name.startswith("-") else "looking for beginning of value"
        raise DecodeError(f"invalid character {go_quote_char(first)} {context}")

    try:
        with gc_paused():
            value = json.loads(
                text,
                object_pairs_hook=pairs,
                parse_float=parse_float,
                parse_int=parse_int,
                parse_constant=parse_constant,
            )
    except json.JSONDecodeError as exc:
        raise DecodeError(_go_syntax_error(exc, raw)) from None
    except RecursionError:
        raise DecodeError(f"exceeded max depth of {MAX_DEPTH}") from None
    duplicates = _duplicate_paths(value, dup_holders)
    fix_surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    return Decoded(_bounded(value, fix_surrogates, "exceeded max depth"), duplicates)


def _go_syntax_error(exc: json.JSONDecodeError, raw: bytes) -> str:
    """Python's JSON error → the text of Go's ``SyntaxError`` for the same input."""
    doc, pos, msg = exc.doc, exc.pos, exc.msg
    if msg.startswith("Unterminated string") or pos >= len(doc):
        return "unexpected end of JSON input"
    char = doc[pos]
    if char == "\ufffd" and "\ufffd" not in doc[:pos]:
        # Go names the byte it could not use (0xFF of a UTF-16 BOM is 'ÿ').
        char = chr(raw[len(doc[:pos].encode())])
    char = go_quote_char(char)
    if msg.startswith("Expecting value"):
        # After "-" Go is inside a number; anywhere else it wants a value.
        if pos > 0 and doc[pos - 1] == "-":
            return f"invalid character {char} in numeric literal"
        return f"invalid character {char} looking for beginning of value"
    if msg.startswith("Expecting property name"):
        return f"invalid character {char} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {char} after object key"
    if msg.startswith("Expecting ','"):
        where = "object key:value pair" if _innermost_open(doc, pos) == "{" else "array element"
        return f"invalid character {char} after {where}"
    if msg.startswith("Extra data"):
        return f"invalid character {char} after top-level value"
    if msg.startswith("Invalid control character"):
        return f"invalid character {char} in string literal"
    if msg.startswith("Invalid \\"):
        return f"invalid character {char} in string escape code"
    return f"{msg} at offset {pos}"


def _innermost_open(doc: str, pos: int) -> str:
    """``{`` or ``[``: the container open at ``pos`` (only on the error path)."""
    stack: list[str] = []
    in_string = escaped = False
    for c in doc[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


# ---- YAML --------------------------------------------------------------------------------


_RESOLVERS = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# go-yaml v2 (YAML 1.1) also reads a lone y, Y, n or N as a boolean ("x: y" is x: true).
_BOOL = "tag:yaml.org,2002:bool"
_SHORT_BOOL = re.compile(r"^(?:y|Y|n|N)$")
for _first in "yYnN":
    _RESOLVERS[_first] = [(_BOOL, _SHORT_BOOL), *_RESOLVERS.get(_first, [])]
_BOOL_VALUES = {**yaml.constructor.SafeConstructor.bool_values, "y": True, "n": False}


class _Loader(yaml.CSafeLoader):
    """PyYAML's safe loader with go-yaml v2's untyped results.

    Timestamps stay strings, sets become maps of nulls (go-yaml's ``!!set``), binaries stay
    their base64 text, and duplicate keys are recorded for ``fieldValidation``.
    """

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self.yaml_implicit_resolvers = _RESOLVERS
        self.yaml_duplicates: list[str] = []

    def fill_mapping(self, node: yaml.MappingNode, mapping: dict[str, Any]) -> None:
        # Keys merged in with ``<<`` may be overridden; only explicit keys can be duplicates.
        explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        self.flatten_mapping(node)
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = _yaml_key(self.construct_object(key_node), key_node)
            if id(key_node) in explicit:
                if key in seen:
                    self.yaml_duplicates.append(
                        f"line {key_node.start_mark.line + 1}: key {go_quote(key)} already set "
                        "in map"
                    )
                seen.add(key)
            mapping[key] = self.construct_object(value_node)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[dict[str, Any]]:
    data: dict[str, Any] = {}
    yield data
    loader.fill_mapping(node, data)


def _construct_set(loader: _Loader, node: yaml.MappingNode) -> Iterator[dict[str, Any]]:
    data: dict[str, Any] = {}
    yield data
    loader.fill_mapping(node, data)
    data.update(dict.fromkeys(data))


def _construct_binary(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    if not math.isfinite(value):
        raise DecodeError(
            f"yaml: line {node.start_mark.line + 1}: "
            f"json: unsupported value: {node.value} (NaN and infinities are not JSON)"
        )
    return float(value)


def _refuse(loader: _Loader, node: yaml.Node) -> None:
    raise DecodeError(f"yaml: line {node.start_mark.line + 1}: cannot decode {node.tag} into JSON")


def _construct_bool(loader: _Loader, node: yaml.ScalarNode) -> bool:
    return _BOOL_VALUES[str(loader.construct_scalar(node)).lower()]


_Loader.add_constructor(_BOOL, _construct_bool)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:set", _construct_set)
_Loader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:omap", _refuse)
_Loader.add_constructor("tag:yaml.org,2002:pairs", _refuse)


def _yaml_key(key: Any, node: yaml.Node) -> str:
    """Map keys as ``sigs.k8s.io/yaml`` turns them into JSON object keys."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return f"{key:g}"
    what = repr(node.value) if isinstance(node, yaml.ScalarNode) else "that is a collection"
    raise DecodeError(f"yaml: line {node.start_mark.line + 1}: unsupported map key {what}")


def decode_yaml(raw: bytes) -> Decoded:
    """Decode one YAML document (go-yaml v2 semantics, bounded)."""
    with gc_paused():
        return _decode_yaml(raw)


def _decode_yaml(raw: bytes) -> Decoded:
    loader = _Loader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return Decoded(None)
        aliased = _check_aliasing(node)
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise DecodeError(f"yaml: {line}{problem}") from None
    except yaml.YAMLError as exc:
        raise DecodeError(f"yaml: {exc}") from None
    except RecursionError:
        raise DecodeError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None
    finally:
        loader.dispose()
    fix_surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    value = _bounded(value, fix_surrogates, "yaml: exceeded max depth", shared=aliased)
    return Decoded(value, yaml_duplicates=tuple(sorted(set(loader.yaml_duplicates))))


def _check_aliasing(root: yaml.Node) -> bool:
    """go-yaml v2's alias budget and depth bound, computed on the composed node graph.

    PyYAML hands back the anchored node itself for an alias, so the graph is a DAG whose
    edges to an already-seen node are alias uses. Go decodes an alias by decoding its
    anchor again, so per node (children first, iteratively): ``size`` = nodes Go decodes
    for it, ``aliased`` = how many of those happen inside an alias expansion, ``height`` =
    its depth once expanded. An anchor reached again while on its own path contains itself.
    Returns whether the document uses aliases at all.
    """
    size: dict[int, int] = {}
    aliased: dict[int, int] = {}
    height: dict[int, int] = {}
    alias_edges: set[tuple[int, int]] = set()
    on_path: set[int] = set()
    # (node, leaving, edge from the parent: (id(parent), index) or None for the root)
    stack: list[tuple[yaml.Node, bool, tuple[int, int] | None]] = [(root, False, None)]
    while stack:
        node, leaving, edge = stack.pop()
        children = _children(node)
        if leaving:
            on_path.discard(id(node))
            n_size, n_aliased, n_height = 1, 0, 0
            for i, child in enumerate(children):
                if (id(node), i) in alias_edges:
                    n_size += 1 + size[id(child)]
                    n_aliased += size[id(child)]
                else:
                    n_size += size[id(child)]
                    n_aliased += aliased[id(child)]
                n_height = max(n_height, height[id(child)])
            size[id(node)], aliased[id(node)] = n_size, n_aliased
            height[id(node)] = n_height + 1
            if height[id(node)] > MAX_DEPTH:
                raise DecodeError(f"yaml: exceeded max depth of {MAX_DEPTH}")
            continue
        if id(node) in on_path:
            raise DecodeError(
                f"yaml: line {node.start_mark.line + 1}: an anchor's value contains itself"
            )
        if id(node) in size:  # met before, in document order: this is an alias use
            assert edge is not None
            alias_edges.add(edge)
            continue
        on_path.add(id(node))
        stack.append((node, True, edge))
        for i in reversed(range(len(children))):
            stack.append((children[i], False, (id(node), i)))
    decodes, aliases = size[id(root)] + 1, aliased[id(root)]  # + the document node
    if aliases > 100 and decodes > 1000 and aliases / decodes > _ratio(decodes):
        raise DecodeError("yaml: document contains excessive aliasing")
    return bool(alias_edges)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _ratio(decode_count: int) -> float:
    if decode_count <= _ALIAS_RATIO_LOW:
        return 0.99
    if decode_count >= _ALIAS_RATIO_HIGH:
        return 0.10
    span = _ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW
    return 0.99 - 0.89 * (decode_count - _ALIAS_RATIO_LOW) / span


# ---- both --------------------------------------------------------------------------------


def _bounded(value: Any, fix_surrogates: bool, depth_message: str, *, shared: bool = False) -> Any:
    """Check the depth bound (iteratively); then the rare repairs, only when needed.

    ``fix_surrogates``: replace lone surrogates in strings and keys with U+FFFD. ``shared``
    (YAML aliases): copy sub-trees that appear more than once, so that every container in
    the result has one parent and later in-place edits cannot show up twice.
    """
    stack: list[tuple[Any, int]] = [(value, 0)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(f"{depth_message} of {MAX_DEPTH}")
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    if fix_surrogates or shared:
        value = _repaired(value, fix_surrogates)
    return value


def _repaired(node: Any, fix_surrogates: bool) -> Any:
    """A copy of the (depth-checked) tree with lone surrogates replaced by U+FFFD."""

    def text(s: str) -> str:
        return _SURROGATE.sub("\ufffd", s) if fix_surrogates else s

    if isinstance(node, dict):
        return {text(k): _repaired(v, fix_surrogates) for k, v in node.items()}
    if isinstance(node, list):
        return [_repaired(v, fix_surrogates) for v in node]
    return text(node) if isinstance(node, str) else node


def _duplicate_paths(
    value: Any, holders: list[tuple[dict[str, Any], list[str]]]
) -> tuple[FieldPath, ...]:
    """Where the duplicate keys are (``metadata.labels.a``, ``rules[0].verbs``)."""
    if not holders:
        return ()
    wanted = {id(obj): dups for obj, dups in holders}
    found: list[FieldPath] = []
    stack: list[tuple[Any, str, tuple[int, ...]]] = [(value, "", ())]
    while stack:
        node, path, position = stack.pop()
        if isinstance(node, dict):
            keys = list(node)
            for dup in wanted.get(id(node), ()):
                found.append(
                    FieldPath((*position, keys.index(dup)), f"{path}.{dup}" if path else dup)
                )
            for i, (k, v) in enumerate(node.items()):
                stack.append((v, f"{path}.{k}" if path else k, (*position, i)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                stack.append((v, f"{path}[{i}]", (*position, i)))
    return tuple(sorted(found))
