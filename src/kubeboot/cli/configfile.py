"""Reading upstream's versioned config files (KubeletConfiguration, JoinConfiguration).

The rules the two share, from the kubelet's and kubeadm's decoders:

* YAML or JSON, possibly several ``---`` documents; each is picked by ``apiVersion`` and
  ``kind``; a document of another kind is ignored with one line (kubeadm's "[config]
  WARNING: Ignored configuration document with GroupVersionKind …");
* a key the upstream type does not have is accepted and ignored with one line (the kubelet's
  lenient decoding, kubeadm's non-strict warnings); a key upstream has but kubeboot does not
  use is ignored with one line saying so;
* a wrong type is a one-line error naming the file and the field path
  (``kubelet.yaml: rotateCertificates: expected a boolean, got "yes"``).

:class:`Document` wraps one decoded mapping and records, field by field, which keys were
read, so the caller can report the rest at the end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubeboot.durations import parse_go_duration

__all__ = ["ConfigFileError", "Document", "load_documents"]


class ConfigFileError(Exception):
    """A config file that cannot be used; the message is one line naming file and field."""


def load_documents(path: Path) -> list[tuple[int, Mapping[str, Any]]]:
    """The file's YAML/JSON documents (with their 1-based index); ConfigFileError otherwise."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigFileError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigFileError(f"{path}{line}: not YAML or JSON: {problem}") from e
    out = []
    for index, doc in enumerate(docs, 1):
        if not isinstance(doc, Mapping):
            raise ConfigFileError(f"{path}: document {index} is not a mapping of fields")
        out.append((index, doc))
    return out


@dataclass
class Document:
    """One config document; typed getters raise :class:`ConfigFileError` on a wrong type."""

    path: Path
    data: Mapping[str, Any]
    prefix: str = ""
    read: set[str] = field(default_factory=set)

    def _where(self, key: str) -> str:
        return f"{self.path}: {self.prefix}{key}"

    def _get(self, key: str) -> Any:
        self.read.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return key in self.data

    def get_bool(self, key: str) -> bool | None:
        value = self._get(key)
        if value is None or isinstance(value, bool):
            return value
        raise ConfigFileError(f"{self._where(key)}: expected a boolean, got {_shown(value)}")

    def get_str(self, key: str) -> str | None:
        value = self._get(key)
        if value is None or isinstance(value, str):
            return value
        raise ConfigFileError(f"{self._where(key)}: expected a string, got {_shown(value)}")

    def get_int(self, key: str) -> int | None:
        value = self._get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ConfigFileError(f"{self._where(key)}: expected an integer, got {_shown(value)}")

    def get_path(self, key: str) -> Path | None:
        """A path; relative ones are relative to the file's directory (as the kubelet does)."""
        value = self.get_str(key)
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else self.path.parent / path

    def get_duration(self, key: str) -> dt.timedelta | None:
        value = self.get_str(key)
        if value is None:
            return None
        try:
            return parse_go_duration(value)
        except ValueError as e:
            raise ConfigFileError(f"{self._where(key)}: {e}") from e

    def get_strings(self, key: str) -> list[str] | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigFileError(
            f"{self._where(key)}: expected a list of strings, got {_shown(value)}"
        )

    def get_bools(self, key: str) -> dict[str, bool] | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, Mapping) and all(isinstance(v, bool) for v in value.values()):
            return {str(k): v for k, v in value.items()}
        raise ConfigFileError(
            f"{self._where(key)}: expected a map of names to booleans, got {_shown(value)}"
        )

    def child(self, key: str) -> Document | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigFileError(f"{self._where(key)}: expected an object, got {_shown(value)}")
        return Document(self.path, value, f"{self.prefix}{key}.")

    def objects(self, key: str) -> list[Document] | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigFileError(
                f"{self._where(key)}: expected a list of objects, got {_shown(value)}"
            )
        return [Document(self.path, v, f"{self.prefix}{key}[{i}].") for i, v in enumerate(value)]

    def leftovers(self, known: Sequence[str], why: str) -> list[str]:
        """One line per key not read: unknown to upstream, or known but not used here."""
        lines = []
        for key in self.data:
            if key in self.read or key in ("apiVersion", "kind"):
                continue
            if key in known:
                lines.append(f"{self.path}: {self.prefix}{key} ignored: {why}")
            else:
                lines.append(f"{self.path}: unknown field {self.prefix}{key!s} ignored")
        return lines


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."
