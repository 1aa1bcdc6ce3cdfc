"""The etcd backend across member failures, on the 3-member cluster (storage level).

* A watch whose member is killed resumes on another member with every revision exactly once.
* Writes go on while a member is down; the store fails over without the caller noticing.
* Without quorum a call fails fast with ``StoreUnavailable`` (not a hang), and a watch opened
  before the outage delivers the writes made after quorum returns, with no gap.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import EventType, StoreUnavailable, WatchEvent
from tests.integration.replicas.conftest import EtcdCluster

pytestmark = pytest.mark.timeout(90)


def _options(cluster: EtcdCluster, prefix: str, first: int) -> StorageOptions:
    """Member ``first`` listed first: the store starts on it."""
    urls = [m.client_url for m in cluster.members]
    return StorageOptions(
        backend="etcd3",
        etcd_servers=tuple(urls[first:] + urls[:first]),
        etcd_prefix=prefix,
    )


async def _collect(events: list[WatchEvent], stream: object, until: int) -> None:
    async for ev in stream:  # type: ignore[attr-defined]
        events.append(ev)
        if ev.revision >= until:
            return


async def test_watch_survives_its_member_being_killed_without_gap_or_repeat(
    etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    store = await open_store(_options(etcd_cluster, etcd_prefix, first=0))
    try:
        start = await store.current_revision()
        created = [await store.create(f"/w/k{i:03d}", b"v") for i in range(50)]
        events: list[WatchEvent] = []
        watch = store.watch("/w/", start)
        # read part of the backlog, then kill the member serving the watch mid-stream
        async for ev in watch:
            events.append(ev)
            if len(events) == 10:
                break
        etcd_cluster.kill(0)
        try:
            for i in range(50, 100):
                created.append(await store.create(f"/w/k{i:03d}", b"v"))
            await asyncio.wait_for(_collect(events, watch, created[-1].mod_revision), 20)
        finally:
            etcd_cluster.start(0)
            etcd_cluster.wait_healthy()
        await watch.aclose()  # type: ignore[attr-defined]
        assert [e.revision for e in events] == [kv.mod_revision for kv in created]
        assert all(e.type is EventType.PUT for e in events)
    finally:
        await store.close()


async def test_without_quorum_calls_fail_fast_and_watches_resume_after(
    etcd_cluster: EtcdCluster, etcd_prefix: str
) -> None:
    store = await open_store(_options(etcd_cluster, etcd_prefix, first=2))
    try:
        before = await store.create("/q/before", b"1")
        events: list[WatchEvent] = []
        watcher = asyncio.create_task(
            _collect(events, store.watch("/q/", before.mod_revision - 1), 2**62)
        )
        etcd_cluster.kill(0)
        etcd_cluster.kill(1)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="failed on every member"):
                await store.create("/q/during", b"2")
            write_seconds = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.get("/q/before")
            read_seconds = time.monotonic() - started
            assert write_seconds < 8 and read_seconds < 8
        finally:
            etcd_cluster.start(0)
            etcd_cluster.start(1)
            etcd_cluster.wait_healthy()
        after = None
        deadline = time.monotonic() + 15
        while after is None:
            try:
                after = await store.create("/q/after", b"3")
            except StoreUnavailable:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        deadline = time.monotonic() + 15
        while not events or events[-1].revision < after.mod_revision:
            assert time.monotonic() < deadline, f"watch did not resume: {events}"
            await asyncio.sleep(0.05)
        watcher.cancel()
        keys = [e.kv.key for e in events]
        # "/q/during" may or may not have been committed (its outcome was unknown); the
        # acknowledged writes are there, in order, once each
        assert keys[0] == "/q/before" and keys[-1] == "/q/after"
        assert len(keys) == len(set(keys))
        revisions = [e.revision for e in events]
        assert revisions == sorted(revisions)
    finally:
        await store.close()
