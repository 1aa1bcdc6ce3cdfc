"""In-process watch fan-out with bounded per-watcher queues.

Owns: the set of live subscriptions of one store and the delivery of committed events to them.
It runs on the event loop only (no locks); backends call :meth:`WatchHub.publish` in revision
order, once per committed event.

Cost model (a join storm has thousands of watchers, most on one exact object key): subscriptions
are indexed by their prefix, and the hub remembers which prefix *lengths* are in use. An event
for key ``k`` looks up ``k[:n]`` for each distinct length ``n`` ≤ ``len(k)``, so the work per
event is O(distinct prefix lengths + matching watchers), never O(all watchers). Delivery is a
``deque.append`` of the shared immutable event; storage never decodes values.

Bounding (design rule 7): each subscription holds at most ``limit`` undelivered events (plus one
batch, see :meth:`Subscription.push_many`). One more
ends it with :class:`WatcherLaggingError` — its buffer is dropped at once, because the client
must re-list anyway — and it is removed from the index so it costs nothing afterwards.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from kubeboot.storage.interface import StoreError, WatcherLaggingError, WatchEvent

__all__ = ["Subscription", "WatchHub"]


class Subscription:
    """One watcher's bounded queue of events not yet taken by its consumer."""

    __slots__ = ("_error", "_events", "_limit", "_waiter", "prefix")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self._limit = limit
        self._events: deque[WatchEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: StoreError | None = None

    def push(self, event: WatchEvent) -> bool:
        """Queue ``event``; False (and the subscription is failed) if the queue was full."""
        return self.push_many((event,))

    def push_many(self, events: Sequence[WatchEvent]) -> bool:
        """Queue events that arrived together (one etcd watch response) if there is room.

        A batch is taken whole when the queue is not full, so the bound is ``limit`` plus one
        batch — etcd replays up to 1000 revisions per response, more than a sensible limit.
        """
        if not events:
            return True
        if len(self._events) >= self._limit:
            self.fail(
                WatcherLaggingError(
                    f"watch on prefix {self.prefix!r} fell more than {self._limit} events behind "
                    f"(at revision {events[0].revision}); re-list and watch again"
                )
            )
            return False
        self._events.extend(events)
        self._wake()
        return True

    def fail(self, error: StoreError) -> None:
        """End the subscription: the consumer's next :meth:`next` raises ``error``."""
        if self._error is None:
            self._error = error
            self._events.clear()
            self._wake()

    async def next(self) -> WatchEvent:
        while True:
            if self._error is not None:
                raise self._error
            if self._events:
                return self._events.popleft()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class WatchHub:
    """Subscriptions indexed by prefix; see the module docstring for the cost model."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, set[Subscription]] = {}
        self._length_use: dict[int, int] = {}
        self._lengths: tuple[int, ...] = ()

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._by_prefix.values())

    def subscribe(self, prefix: str, limit: int) -> Subscription:
        sub = Subscription(prefix, limit)
        self._by_prefix.setdefault(prefix, set()).add(sub)
        n = len(prefix)
        self._length_use[n] = self._length_use.get(n, 0) + 1
        if self._length_use[n] == 1:
            self._lengths = tuple(sorted(self._length_use))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_prefix.get(sub.prefix)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._by_prefix[sub.prefix]
        n = len(sub.prefix)
        self._length_use[n] -= 1
        if self._length_use[n] == 0:
            del self._length_use[n]
            self._lengths = tuple(sorted(self._length_use))

    def publish(self, event: WatchEvent) -> None:
        key = event.kv.key
        size = len(key)
        overflowed: list[Subscription] = []
        for n in self._lengths:
            if n > size:
                break
            subs = self._by_prefix.get(key[:n])
            if subs:
                for sub in subs:
                    if not sub.push(event):
                        overflowed.append(sub)
        for sub in overflowed:
            self.unsubscribe(sub)

    def close(self, error: StoreError) -> None:
        """Fail every subscription with ``error`` (the store is closing)."""
        for subs in list(self._by_prefix.values()):
            for sub in list(subs):
                sub.fail(error)
                self.unsubscribe(sub)
