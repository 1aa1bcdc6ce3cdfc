"""Prometheus metrics with the maintained client library (``prometheus_client``).

Every process has the library's default registry (with its ``process_*`` and ``python_*``
collectors); the metric families live in the modules named for what they measure:
:mod:`.apiserver` (requests, authentication, CSRs, storage), :mod:`.workqueue` and
:mod:`.leaderelection` (the controllers), :mod:`.kubeboot` (what upstream has no metric for).
Names and label sets are upstream's where upstream has the metric (docs/operations.md lists
them with the upstream source of each).

``_created`` series are off: upstream's components do not expose them, and they would double
the series count of every counter and histogram.

With ``--workers N`` the families of all processes are merged (:mod:`.aggregate`).
"""

from __future__ import annotations

import prometheus_client

__all__ = ["CONTENT_TYPE", "REGISTRY"]

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = prometheus_client.REGISTRY
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
