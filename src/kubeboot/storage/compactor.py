"""Periodic compaction, as kube-apiserver does it (``--etcd-compaction-interval``, default 5m).

Owns: when to compact. Every ``interval`` seconds :meth:`PeriodicCompactor.tick` compacts the
store to the revision it saw on the *previous* tick, so at least one interval of history always
remains for watch resumes and paginated lists (``continue`` tokens), and history never grows
past about two intervals' worth of writes. ``min_retained_revisions`` additionally keeps the
last N revisions whatever their age, for bursts where a few minutes hold very many writes
that slow watchers still need.

Safe with several servers on one etcd: compaction is idempotent here — a replica that finds
the store already compacted at or past its target does nothing.
"""

from __future__ import annotations

import asyncio
import logging

from kubeboot.storage.interface import CompactedError, Store, StoreError

__all__ = ["DEFAULT_COMPACTION_INTERVAL", "PeriodicCompactor"]

DEFAULT_COMPACTION_INTERVAL = 300.0
"""Seconds; kube-apiserver's ``--etcd-compaction-interval`` default."""

_log = logging.getLogger(__name__)


class PeriodicCompactor:
    """Compacts ``store`` to the revision seen one tick ago. Start with ``create_task(run())``."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = DEFAULT_COMPACTION_INTERVAL,
        min_retained_revisions: int = 0,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"compaction interval must be positive, got {interval}")
        if min_retained_revisions < 0:
            raise ValueError(f"min_retained_revisions must be >= 0, got {min_retained_revisions}")
        self._store = store
        self._interval = interval
        self._min_retained = min_retained_revisions
        self._previous: int | None = None

    async def tick(self) -> int | None:
        """One step: compact to the previous tick's revision; return it, or None if no-op."""
        current = await self._store.current_revision()
        target, self._previous = self._previous, current
        if target is None:
            return None
        target = min(target, current - self._min_retained)
        if target <= await self._store.compacted_revision():
            return None
        try:
            await self._store.compact(target)
        except CompactedError:
            return None  # another server compacted at or past ``target`` meanwhile
        return target

    async def run(self) -> None:
        """Tick forever; a failed tick is logged and retried on the next one."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                revision = await self.tick()
            except StoreError as e:
                _log.warning("periodic compaction failed, retrying in %ss: %s", self._interval, e)
            else:
                if revision is not None:
                    _log.info("compacted storage at revision %d", revision)
