"""The periodic compactor keeps one interval of history, like kube-apiserver's."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeboot.storage.compactor import PeriodicCompactor
from kubeboot.storage.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("interval", "retained"), [(0.0, 0), (-1.0, 0), (1.0, -1)], ids=["zero", "negative", "retain"]
)
async def test_invalid_settings_are_refused(tmp_path: Path, interval: float, retained: int) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        with pytest.raises(ValueError, match="must be"):
            PeriodicCompactor(store, interval=interval, min_retained_revisions=retained)
    finally:
        await store.close()


async def test_each_tick_compacts_to_the_previous_ticks_revision(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        compactor = PeriodicCompactor(store, interval=60)
        kv = await store.create("/x", b"0")
        assert await compactor.tick() is None  # first tick only records the revision
        seen = await store.current_revision()
        for i in range(3):
            kv = await store.update("/x", str(i).encode(), kv.mod_revision)
        assert await compactor.tick() == seen
        assert await store.compacted_revision() == seen
        assert await compactor.tick() == kv.mod_revision
        assert await compactor.tick() is None  # nothing new since
    finally:
        await store.close()


async def test_min_retained_revisions_caps_the_target(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        compactor = PeriodicCompactor(store, interval=60, min_retained_revisions=5)
        kv = await store.create("/x", b"0")
        for i in range(10):
            kv = await store.update("/x", str(i).encode(), kv.mod_revision)
        await compactor.tick()
        kv = await store.update("/x", b"last", kv.mod_revision)
        assert await compactor.tick() == kv.mod_revision - 5
    finally:
        await store.close()
