"""``migrate_store``: SQLite → a real etcd, every key copied and proven, refusals first."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeboot.cli.storage import storage
from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import Store
from kubeboot.storage.migrate import KEYSPACE, MigrationError, migrate_store


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(StorageOptions(sqlite_path=tmp_path / "state.db"))
    yield store
    await store.close()


@pytest.fixture
async def etcd_store(etcd_url: str) -> AsyncIterator[Store]:
    store = await open_store(
        StorageOptions(
            backend="etcd3", etcd_servers=(etcd_url,), etcd_prefix=f"/mig-{uuid.uuid4().hex}"
        )
    )
    yield store
    await store.close()


async def _fill(store: Store, n: int) -> dict[str, bytes]:
    written = {}
    for i in range(n):
        key = f"/core/secrets/ns{i % 3}/s{i:04d}"
        value = f'{{"n":{i},"pad":"{"x" * (i % 50)}"}}'.encode()
        await store.create(key, value)
        written[key] = value
    # history the copy must not resurrect: an update and a delete
    kv = await store.get("/core/secrets/ns0/s0000")
    assert kv is not None
    await store.update(kv.key, b'{"n":"updated"}', kv.mod_revision)
    written[kv.key] = b'{"n":"updated"}'
    gone = await store.get("/core/secrets/ns1/s0001")
    assert gone is not None
    await store.delete(gone.key)
    del written[gone.key]
    return written


async def _contents(store: Store) -> dict[str, bytes]:
    return {kv.key: kv.value for kv in (await store.range(KEYSPACE)).kvs}


async def test_refuses_a_non_empty_target_and_writes_nothing(
    sqlite_store: Store, etcd_store: Store
) -> None:
    await _fill(sqlite_store, 5)
    await etcd_store.create("/core/configmaps/default/other-cluster", b"{}")
    before = await etcd_store.current_revision()
    with pytest.raises(MigrationError, match=r"already holds 1 keys.*--force"):
        await migrate_store(sqlite_store, etcd_store)
    assert await etcd_store.current_revision() == before
    assert list(await _contents(etcd_store)) == ["/core/configmaps/default/other-cluster"]


async def test_copies_every_key_across_pages_and_verifies(
    sqlite_store: Store, etcd_store: Store
) -> None:
    written = await _fill(sqlite_store, 1203)  # more than two pages of 500
    seen: list[tuple[str, int, int]] = []
    report = await migrate_store(sqlite_store, etcd_store, progress=lambda *a: seen.append(a))
    assert report.keys == len(written) == await etcd_store.count(KEYSPACE)
    assert report.overwritten == 0
    assert report.source_revision == await sqlite_store.current_revision()
    assert await _contents(etcd_store) == written
    assert ("copy", len(written), len(written)) in seen
    assert seen[-1] == ("verify", len(written), len(written))
    # resourceVersions are the target's own revisions, not the source's
    copied = await etcd_store.get("/core/secrets/ns0/s0000")
    original = await sqlite_store.get("/core/secrets/ns0/s0000")
    assert copied is not None and original is not None
    assert copied.mod_revision <= report.target_revision
    assert copied.create_revision == copied.mod_revision  # created fresh, history not replayed


async def test_force_overwrites_shared_keys_and_keeps_the_rest(
    sqlite_store: Store, etcd_store: Store
) -> None:
    written = await _fill(sqlite_store, 10)
    await etcd_store.create("/core/secrets/ns2/s0002", b'{"stale":true}')
    await etcd_store.create("/core/configmaps/default/only-in-target", b"{}")
    report = await migrate_store(sqlite_store, etcd_store, force=True)
    assert report.overwritten == 1
    contents = await _contents(etcd_store)
    assert contents.pop("/core/configmaps/default/only-in-target") == b"{}"
    assert contents == written


async def test_an_empty_source_is_a_valid_migration(sqlite_store: Store, etcd_store: Store) -> None:
    report = await migrate_store(sqlite_store, etcd_store)
    assert report.keys == 0
    assert await etcd_store.count(KEYSPACE) == 0


def test_cli_refuses_a_directory_without_state_db(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        storage, ["migrate", "--from", str(tmp_path), "--to", "http://127.0.0.1:2379"]
    )
    assert result.exit_code == 2
    assert f"{tmp_path / 'state.db'} does not exist" in result.output
    assert not (tmp_path / "state.db").exists()  # nothing created by the refusal


async def test_cli_copies_and_then_refuses_the_non_empty_target(
    tmp_path: Path, etcd_url: str
) -> None:
    source = await open_store(StorageOptions(sqlite_path=tmp_path / "state.db"))
    try:
        written = await _fill(source, 7)
    finally:
        await source.close()
    prefix = f"/mig-{uuid.uuid4().hex}"
    args = ["migrate", "--from", str(tmp_path), "--to", etcd_url, "--etcd-prefix", prefix]
    first = await asyncio.to_thread(CliRunner().invoke, storage, args)
    assert first.exit_code == 0, first.output
    assert f"migrating {len(written)} keys" in first.output
    assert f"copied {len(written)}/{len(written)} keys" in first.output
    assert f"verified {len(written)}/{len(written)} keys" in first.output
    assert "new resourceVersions" in first.output
    second = await asyncio.to_thread(CliRunner().invoke, storage, args)
    assert second.exit_code == 1
    assert f"already holds {len(written)} keys" in second.output
    forced = await asyncio.to_thread(CliRunner().invoke, storage, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert f"({len(written)} overwritten)" in forced.output
