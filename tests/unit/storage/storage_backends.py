"""Backends the storage contract tests run against (shared by conftest and the tests)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import Store

WATCH_QUEUE_LIMIT = 50
"""Small on purpose, so the lagging-watcher test needs few writes."""


@dataclass(frozen=True)
class Backend:
    name: str
    options: StorageOptions

    def open(self) -> Awaitable[Store]:
        """A new store on the same data (for reopen tests)."""
        return open_store(self.options)
