"""One ``/metrics`` for a server with ``--workers N``: every process's families, merged.

Choice (measured in docs/performance.md): each process keeps plain in-memory metrics — the
cheapest the library has on the request path — and the merging happens off it. Workers push a
snapshot of their registry to the primary once a second over the link they already have
(:mod:`kubeboot.storage.remote`); a scrape, whichever worker accepts it, sends that worker's
own fresh snapshot to the primary, which merges it with its own families and the other
workers' latest ones and renders the text. Other workers' figures are thus at most about a
second old. (``prometheus_client``'s multiprocess mode was the alternative: every update is
a write into a shared memory-mapped file, on the request path of every worker.)

Merging: counters, histograms and gauges are summed per series (requests in flight, memory,
CPU seconds add up over processes); ``process_start_time_seconds``, ``process_max_fds`` and
``python_info`` are the primary's. Series only the primary sets (storage objects, leader
election, work queues, kubeboot's inventories) are simply its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kubeboot.metrics import REGISTRY

__all__ = ["PUSH_INTERVAL", "MetricsAggregator", "exposition", "snapshot"]

PUSH_INTERVAL = 1.0
_STALE_AFTER = 10.0  # a worker silent this long (restarting) is left out
_FIRST_WINS = {"process_start_time_seconds", "process_max_fds", "python_info"}

Snapshot = tuple[
    tuple[str, str, str, str, tuple[tuple[str, tuple[tuple[str, str], ...], float], ...]], ...
]


def snapshot(registry: CollectorRegistry = REGISTRY) -> Snapshot:
    """This process's families as plain tuples (``marshal`` can carry them)."""
    return tuple(
        (
            m.name,
            m.documentation,
            m.type,
            m.unit,
            tuple((s.name, tuple(sorted(s.labels.items())), float(s.value)) for s in m.samples),
        )
        for m in registry.collect()
    )


def _merge(snapshots: Iterable[Snapshot]) -> list[Metric]:
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for snap in snapshots:
        for name, doc, mtype, unit, samples in snap:
            if name not in families:
                families[name] = Metric(name, doc, mtype, unit)
                values[name] = {}
            merged = values[name]
            for sname, labels, value in samples:
                key = (sname, labels)
                if key in merged and name in _FIRST_WINS:
                    continue
                merged[key] = merged.get(key, 0.0) + value
    for name, family in families.items():
        for (sname, labels), value in values[name].items():
            family.add_sample(sname, dict(labels), value)
    return list(families.values())


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def exposition(snapshots: Iterable[Snapshot]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(_merge(snapshots)))
    return generate_latest(registry)


class MetricsAggregator:
    """The primary's view: its own registry plus each worker's latest snapshot."""

    def __init__(self) -> None:
        self._workers: dict[int, tuple[float, Snapshot]] = {}

    def pushed(self, index: int, snap: Any) -> None:
        self._workers[index] = (time.monotonic(), snap)

    def render(self, fresh_index: int | None = None, fresh: Any = None) -> bytes:
        if fresh_index is not None:
            self.pushed(fresh_index, fresh)
        now = time.monotonic()
        live = [snap for stamp, snap in self._workers.values() if now - stamp < _STALE_AFTER]
        return exposition([snapshot(), *live])
