"""The one controller runtime: informer (list + watch → cache) → work queue → workers.

As client-go's, reduced to what these controllers need:

* :class:`Informer` lists a resource, then watches from the list's resourceVersion, keeping a
  cache of objects by key and calling handlers on every change. A 410 ``Expired`` relists; any
  other failure retries after a capped exponential backoff. The cache is what handlers read,
  so they never act on something older than the last event they were woken for.
* :class:`WorkQueue` holds keys, not objects: a key queued twice is processed once, a key is
  never processed by two workers at once, and a key re-added while in flight is processed
  again afterwards. ``add_after`` schedules a key for later (the token cleaner's TTL wake-up);
  ``add_rate_limited`` backs off per key, 5 ms doubling up to :data:`MAX_BACKOFF`.
* :func:`run_workers` runs N workers calling an idempotent ``handle(key)``; a raised exception
  re-queues the key with backoff, :class:`Requeue` re-queues it after a given delay, a normal
  return forgets its failure count.

Time for backoff and delays comes from the event loop; decisions inside handlers take the
injected :class:`~kubeboot.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.metrics.controllers import QueueMetrics
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Expired

__all__ = [
    "BASE_BACKOFF",
    "MAX_BACKOFF",
    "EventHandler",
    "Informer",
    "Requeue",
    "WorkQueue",
    "object_key",
    "run_workers",
]

log = logging.getLogger("kubeboot.controllers")

BASE_BACKOFF = 0.005
MAX_BACKOFF = 300.0
_WATCH_TIMEOUT_SECONDS = 300

K = TypeVar("K", bound=Hashable)
# (event type "ADDED" | "MODIFIED" | "DELETED", the object; for DELETED the last known state)
EventHandler = Callable[[str, JsonObject], None]


class Requeue(Exception):
    """Raised by a handler to look at the key again after ``delay`` seconds, without backoff."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"requeue after {delay:.3f}s")
        self.delay = delay


def backoff_delay(failures: int) -> float:
    """client-go's ItemExponentialFailureRateLimiter: 5 ms · 2^failures, capped."""
    return float(min(MAX_BACKOFF, BASE_BACKOFF * (2 ** min(failures, 32))))


def object_key(obj: JsonObject) -> str:
    """``<namespace>/<name>`` or ``<name>``, as ``cache.MetaNamespaceKeyFunc``."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._metrics: QueueMetrics | None = None
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._queued)

    def instrument(self, name: str) -> None:
        """Report this queue as client-go's ``workqueue_*{name}`` metrics."""
        self._metrics = QueueMetrics(name)

    def add(self, key: K) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)
            if self._metrics is not None:
                self._metrics.added(key, len(self._queued))

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds; an earlier pending wake-up wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        if existing is not None and existing.when() <= loop.time() + delay:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if self._metrics is not None:
            self._metrics.retried()
        self.add_after(key, backoff_delay(failures))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    async def get(self) -> K:
        key = await self._ready.get()
        self._queued.discard(key)
        self._processing.add(key)
        if self._metrics is not None:
            self._metrics.taken(key, len(self._queued))
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if self._metrics is not None:
            self._metrics.finished(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


async def run_workers(
    name: str, queue: WorkQueue[K], handle: Callable[[K], Awaitable[None]], workers: int
) -> None:
    """Run ``workers`` loops until cancelled; the queue reports as ``name``."""
    queue.instrument(name)

    async def worker() -> None:
        while True:
            key = await queue.get()
            try:
                await handle(key)
            except Requeue as again:
                queue.forget(key)
                queue.add_after(key, again.delay)
            except Exception as exc:  # one bad object must not stop the controller
                log.warning("%s: error syncing %r, will retry: %s", name, key, exc)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
    finally:
        queue.close()


class Informer:
    """A list+watch cache of one resource (optionally one namespace / field selector)."""

    def __init__(
        self,
        client: ApiClient,
        res: ResourceInfo,
        namespace: str | None = None,
        *,
        field_selector: str | None = None,
    ) -> None:
        self._client = client
        self._res = res
        self._namespace = namespace
        self._field_selector = field_selector
        self._cache: dict[str, JsonObject] = {}
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()

    def add_handler(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def get(self, key: str) -> JsonObject | None:
        return self._cache.get(key)

    def items(self) -> list[JsonObject]:
        return list(self._cache.values())

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def _emit(self, event: str, obj: JsonObject) -> None:
        for handler in self._handlers:
            handler(event, obj)

    async def _relist(self) -> str:
        listed = await self._client.list(
            self._res, self._namespace, field_selector=self._field_selector
        )
        fresh = {object_key(o): o for o in listed.get("items") or []}
        for key, old in list(self._cache.items()):
            if key not in fresh:
                del self._cache[key]
                self._emit("DELETED", old)
        for key, obj in fresh.items():
            known = key in self._cache
            self._cache[key] = obj
            self._emit("MODIFIED" if known else "ADDED", obj)
        self._synced.set()
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def _apply(self, event: dict[str, Any]) -> str | None:
        kind, obj = event.get("type"), event.get("object") or {}
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            return str(rv) if rv else None
        key = object_key(obj)
        if kind == "DELETED":
            self._cache.pop(key, None)
        elif kind in ("ADDED", "MODIFIED"):
            self._cache[key] = obj
        else:
            return None
        self._emit(str(kind), obj)
        return str(rv) if rv else None

    async def run(self) -> None:
        """List, then watch forever; relist on 410, back off on other failures."""
        failures = 0
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    rv = await self._relist()
                async for event in self._client.watch(
                    self._res,
                    self._namespace,
                    resource_version=rv,
                    field_selector=self._field_selector,
                    timeout_seconds=_WATCH_TIMEOUT_SECONDS,
                    allow_bookmarks=True,
                ):
                    rv = self._apply(event) or rv
                    failures = 0
            except Expired:
                rv = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("informer %s: %s; retrying", self._res.plural, exc)
                rv = None
                await asyncio.sleep(backoff_delay(failures + 6))  # from ~0.3 s upward
                failures += 1
