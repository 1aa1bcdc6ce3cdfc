"""The controller manager's metrics: client-go's work queues and leader election.

Sources (kubernetes v1.37): ``staging/src/k8s.io/component-base/metrics/prometheus/
workqueue/metrics.go`` (``workqueue_*{name}``, buckets 1e-6 × 10^i, 10 of them) and
``staging/src/k8s.io/client-go/tools/leaderelection/metrics.go`` via component-base
(``leader_election_master_status{name}``). Queue names are kubeboot's controller names
(``csrapproving``, ``tokencleaner``, ...).

``workqueue_unfinished_work_seconds`` and ``workqueue_longest_running_processor_seconds`` are
computed when scraped, from the start times of the items in progress, as upstream's
periodic update computes them.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kubeboot.metrics import REGISTRY

__all__ = ["LEADER", "QueueMetrics"]

_BUCKETS = tuple(1e-6 * 10**i for i in range(10))

DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ("name",), registry=REGISTRY)
ADDS = Counter(
    "workqueue_adds_total",
    "Total number of adds handled by workqueue",
    ("name",),
    registry=REGISTRY,
)
QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested.",
    ("name",),
    buckets=_BUCKETS,
    registry=REGISTRY,
)
WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes.",
    ("name",),
    buckets=_BUCKETS,
    registry=REGISTRY,
)
RETRIES = Counter(
    "workqueue_retries_total",
    "Total number of retries handled by workqueue",
    ("name",),
    registry=REGISTRY,
)
LEADER = Gauge(
    "leader_election_master_status",
    "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 "
    "indicates master. 'name' is the string used to identify the lease. Please make sure to "
    "group by name.",
    ("name",),
    registry=REGISTRY,
)


class QueueMetrics:
    """One named queue's instruments; the queue calls these on add, get, done, retry."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._depth = DEPTH.labels(name)
        self._adds = ADDS.labels(name)
        self._latency = QUEUE_DURATION.labels(name)
        self._work = WORK_DURATION.labels(name)
        self._retries = RETRIES.labels(name)
        self._added: dict[object, float] = {}
        self.processing: dict[object, float] = {}
        _LIVE.add(self)

    def added(self, key: object, depth: int) -> None:
        self._adds.inc()
        self._depth.set(depth)
        self._added.setdefault(key, time.monotonic())

    def taken(self, key: object, depth: int) -> None:
        now = time.monotonic()
        self._depth.set(depth)
        self._latency.observe(now - self._added.pop(key, now))
        self.processing[key] = now

    def finished(self, key: object) -> None:
        start = self.processing.pop(key, None)
        if start is not None:
            self._work.observe(time.monotonic() - start)

    def retried(self) -> None:
        self._retries.inc()


_LIVE: weakref.WeakSet[QueueMetrics] = weakref.WeakSet()


class _InProgress(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.monotonic()
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads. One can deduce the number of "
            "stuck threads by observing the rate at which this increases.",
            labels=("name",),
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels=("name",),
        )
        ages: dict[str, list[float]] = {}
        for queue in list(_LIVE):  # queues of one name (a restarted controller) are one series
            ages.setdefault(queue.name, []).extend(now - t for t in queue.processing.values())
        for name, values in sorted(ages.items()):
            unfinished.add_metric((name,), sum(values))
            longest.add_metric((name,), max(values, default=0.0))
        yield unfinished
        yield longest


REGISTRY.register(_InProgress())
