"""The watch hub: prefix matching, bounded queues, and fan-out cost independent of how many
watchers sit on other keys."""

from __future__ import annotations

import time

import pytest

from kubeboot.storage.interface import EventType, KeyValue, WatcherLaggingError, WatchEvent
from kubeboot.storage.watchhub import WatchHub


def put(key: str, revision: int) -> WatchEvent:
    return WatchEvent(EventType.PUT, KeyValue(key, b"v", revision, revision), None)


async def test_overflowing_subscription_fails_and_leaves_the_index() -> None:
    hub = WatchHub()
    slow = hub.subscribe("/a/", limit=2)
    for revision in range(2, 5):
        hub.publish(put("/a/x", revision))
    assert len(hub) == 0
    with pytest.raises(WatcherLaggingError, match="more than 2 events"):
        await slow.next()


async def test_prefix_matching_is_exact_on_bytes() -> None:
    hub = WatchHub()
    a = hub.subscribe("/a/", limit=10)
    ab = hub.subscribe("/ab/", limit=10)
    exact = hub.subscribe("/a/node-csr-abc", limit=10)
    everything = hub.subscribe("", limit=10)
    hub.publish(put("/ab/1", 2))
    hub.publish(put("/a/node-csr-abc", 3))
    hub.publish(put("/a/other", 4))
    assert [(await a.next()).revision, (await a.next()).revision] == [3, 4]
    assert (await ab.next()).revision == 2
    assert (await exact.next()).revision == 3
    assert [(await everything.next()).revision for _ in range(3)] == [2, 3, 4]
    hub.unsubscribe(exact)
    hub.publish(put("/a/node-csr-abc", 5))
    assert (await a.next()).revision == 5
    assert len(hub) == 3


async def test_fan_out_cost_does_not_grow_with_watchers_on_other_keys() -> None:
    hub = WatchHub()
    watchers = 10_000
    subs = [hub.subscribe(f"/csr/node-{i:06d}", limit=4) for i in range(watchers)]
    started = time.perf_counter()
    for i in range(watchers):
        hub.publish(put(f"/csr/node-{i:06d}", i + 2))
    elapsed = time.perf_counter() - started
    # O(all watchers) per event would be 10^8 steps (minutes); indexed it is ~10^4 lookups.
    assert elapsed < 2.0
    assert (await subs[1234].next()).kv.key == "/csr/node-001234"
    assert len(hub) == watchers
