"""Sets of field paths and their ``FieldsV1`` form (structured-merge-diff's fieldpath), pure.

A path is a tuple of path elements written as in ``FieldsV1``: ``f:<field>`` (a struct field
or map key), ``k:<json>`` (an item of a list keyed by fields, ``k:{"type":"Ready"}``),
``v:<json>`` (an item of a set, ``v:"kubernetes"``) and ``i:<n>`` (a list index). A set
holds paths as a tree: each node's ``members`` are the paths ending there, its ``children``
the subtrees. In ``FieldsV1`` a member with children is written with a ``"."`` key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FieldSet", "path_element_order"]

_KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def path_element_order(pe: str) -> tuple[int, str]:
    """Sort key of one path element: field names, then keys, values, indexes."""
    return (_KIND_ORDER.get(pe[:1], 4), pe[2:])


class FieldSet:
    __slots__ = ("children", "members")

    def __init__(self) -> None:
        self.members: set[str] = set()
        self.children: dict[str, FieldSet] = {}

    @classmethod
    def of(cls, paths: Iterable[Sequence[str]]) -> FieldSet:
        out = cls()
        for path in paths:
            out.insert(path)
        return out

    def insert(self, path: Sequence[str]) -> None:
        if not path:
            return
        node = self
        for pe in path[:-1]:
            node = node.children.setdefault(pe, FieldSet())
        node.members.add(path[-1])

    def empty(self) -> bool:
        return not self.members and all(c.empty() for c in self.children.values())

    def union(self, other: FieldSet) -> FieldSet:
        out = FieldSet()
        out.members = self.members | other.members
        for pe in self.children.keys() | other.children.keys():
            mine, theirs = self.children.get(pe), other.children.get(pe)
            if mine is None:
                out.children[pe] = theirs.copy()  # type: ignore[union-attr]
            elif theirs is None:
                out.children[pe] = mine.copy()
            else:
                out.children[pe] = mine.union(theirs)
        return out

    def difference(self, other: FieldSet) -> FieldSet:
        """The paths of this set that are not paths of ``other`` (exactly)."""
        out = FieldSet()
        out.members = self.members - other.members
        for pe, child in self.children.items():
            theirs = other.children.get(pe)
            rest = child.difference(theirs) if theirs is not None else child.copy()
            if not rest.empty():
                out.children[pe] = rest
        return out

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Without ``other``'s paths and everything below its members."""
        out = FieldSet()
        out.members = self.members - other.members
        for pe, child in self.children.items():
            if pe in other.members:
                continue
            theirs = other.children.get(pe)
            rest = child.recursive_difference(theirs) if theirs is not None else child.copy()
            if not rest.empty():
                out.children[pe] = rest
        return out

    def copy(self) -> FieldSet:
        out = FieldSet()
        out.members = set(self.members)
        out.children = {pe: c.copy() for pe, c in self.children.items()}
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self.to_fields_v1() == other.to_fields_v1()

    def __hash__(self) -> int:  # pragma: no cover - sets are mutable; never hashed
        raise TypeError("FieldSet is not hashable")

    @classmethod
    def from_fields_v1(cls, tree: Any) -> FieldSet:
        """Parse ``FieldsV1``; ValueError when it is not that format."""
        if not isinstance(tree, dict):
            raise ValueError("FieldsV1 must be a JSON object")
        out = cls()
        for pe, sub in tree.items():
            if pe == ".":
                continue
            if not isinstance(pe, str) or pe[:2] not in ("f:", "k:", "v:", "i:"):
                raise ValueError(f"invalid path element {pe!r} in FieldsV1")
            if not isinstance(sub, dict):
                raise ValueError(f"the value of {pe!r} in FieldsV1 must be an object")
            if not sub or "." in sub:
                out.members.add(pe)
            child = cls.from_fields_v1(sub)
            if not child.empty():
                out.children[pe] = child
        return out

    def to_fields_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pe in sorted(self.members | self.children.keys(), key=path_element_order):
            child = self.children.get(pe)
            node = child.to_fields_v1() if child is not None and not child.empty() else {}
            if pe in self.members and node:
                node = {".": {}, **node}
            if node or pe in self.members:
                out[pe] = node
        return out
