"""The watch cache in front of etcd (``storage/watchcache.py``), with real etcd members.

The storage contract runs against it in ``test_contract.py`` (backend ``etcd``); these tests
cover what only a cache can get wrong: two replicas' caches seeing each other's writes at
once, consistent reads served from memory (and from etcd when progress notifications are
unordered), and a rebuild after the cache's stream fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kubeboot.storage.etcd import EtcdStore
from kubeboot.storage.interface import EventType, StoreUnavailable
from kubeboot.storage.watchcache import CachedEtcdStore, progress_is_ordered
from tests.real.binaries import bin_dir
from tests.unit.storage.conftest import find_etcd, running_etcd


def _etcd_binaries() -> list[str]:
    """The etcd on PATH and, when built, the real control plane's newer one."""
    found = [b for b in (find_etcd(), str(bin_dir() / "etcd")) if b and Path(b).exists()]
    return list(dict.fromkeys(found))


@pytest.fixture(scope="module", params=_etcd_binaries() or [""])
def etcd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not request.param:
        pytest.skip("no etcd binary: apt-get install etcd-server")
    with running_etcd(request.param, tmp_path_factory.mktemp("etcd")) as url:
        yield url


@pytest.fixture
def prefix() -> str:
    return f"/cache-{uuid.uuid4().hex[:8]}"


async def _open(url: str, prefix: str) -> CachedEtcdStore:
    return await CachedEtcdStore.open(
        await EtcdStore.open([url], prefix=prefix), watch_queue_limit=100
    )


@pytest.fixture
async def replicas(etcd: str, prefix: str) -> AsyncIterator[tuple[CachedEtcdStore, ...]]:
    """Two caches on one etcd prefix, as two kubeboot replicas have."""
    a, b = await _open(etcd, prefix), await _open(etcd, prefix)
    yield a, b
    await a.close()
    await b.close()


def test_progress_is_ordered_from_the_fixed_releases_on() -> None:
    assert [
        progress_is_ordered(v)
        for v in ("3.4.23", "3.4.31", "3.5.12", "3.5.13", "3.6.0", "3.7.3", "4.0.0", "dev")
    ] == [False, True, False, True, True, True, True, False]


async def test_a_write_through_one_replica_is_read_at_once_through_the_other(
    replicas: tuple[CachedEtcdStore, ...],
) -> None:
    a, b = replicas
    for i in range(20):
        created = await a.create(f"/r/k{i:02}", str(i).encode())
        assert await b.get(f"/r/k{i:02}") == created
        listed = await b.range("/r/")
        assert [kv.key for kv in listed.kvs] == [f"/r/k{j:02}" for j in range(i + 1)]
        assert listed.revision >= created.mod_revision
    gone = await a.delete("/r/k05")
    assert await b.get("/r/k05") is None
    assert (await b.range("/r/", revision=gone.mod_revision - 1)).kvs[5].key == "/r/k05"
    page = await b.range("/r/", start_key="/r/k10", limit=3)
    assert [kv.key for kv in page.kvs] == ["/r/k10", "/r/k11", "/r/k12"] and page.more


async def test_consistent_reads_come_from_memory_when_etcd_orders_progress(
    replicas: tuple[CachedEtcdStore, ...], etcd: str
) -> None:
    """Nothing under the prefix changes between the writes of another installation (another
    prefix): the cache learns it is current from a progress notification, not by waiting."""
    a, b = replicas
    other = await EtcdStore.open([etcd], prefix="/elsewhere")
    try:
        await a.create("/x", b"1")
        before = b.reads_from_cache, b.reads_from_etcd
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(10):
            await other.create(f"/{uuid.uuid4().hex}", b"noise")
            assert (await b.get("/x")) is not None
        took = loop.time() - started
    finally:
        await other.close()
    served = b.reads_from_cache - before[0], b.reads_from_etcd - before[1]
    if b.ordered_progress:
        assert served == (10, 0)
        assert took < 2.0
    else:  # etcd < 3.4.31 / 3.5.13: every consistent read goes to etcd
        assert served == (0, 10)


async def test_concurrent_consistent_reads_share_one_revision_read(
    replicas: tuple[CachedEtcdStore, ...],
) -> None:
    a, b = replicas
    await a.create("/shared", b"1")
    if not b.ordered_progress:
        pytest.skip("consistent reads go to etcd with this etcd version")
    before = b.revision_reads
    results = await asyncio.gather(*(b.get("/shared") for _ in range(50)))
    assert all(r is not None and r.value == b"1" for r in results)
    assert b.revision_reads - before <= 2


async def test_get_hint_never_answers_absent_for_a_key_that_exists(
    replicas: tuple[CachedEtcdStore, ...],
) -> None:
    a, b = replicas
    for i in range(20):
        created = await a.create(f"/h{i}", b"v")
        hint = await b.get_hint(f"/h{i}")  # maybe before b's stream delivered it: etcd then
        assert hint is not None and hint.mod_revision <= created.mod_revision


async def test_a_failed_cache_stream_ends_its_watches_and_the_cache_rebuilds(
    replicas: tuple[CachedEtcdStore, ...],
) -> None:
    a, b = replicas
    first = await a.create("/w/one", b"1")
    events = b.watch("/w/", first.mod_revision - 1)
    assert (await anext(events)).kv == first
    b.fail(StoreUnavailable("stream lost (test)"))  # what the etcd stream reports
    with pytest.raises(StoreUnavailable):
        await anext(events)
    assert await b.get("/w/one") == first  # from etcd while the cache rebuilds
    second = await a.create("/w/two", b"2")
    deadline = asyncio.get_running_loop().time() + 10
    while not b.ready:
        assert asyncio.get_running_loop().time() < deadline, "the cache never rebuilt"
        await asyncio.sleep(0.05)
    replay = b.watch("/w/", first.mod_revision)
    ev = await anext(replay)
    assert (ev.type, ev.kv) == (EventType.PUT, second)
