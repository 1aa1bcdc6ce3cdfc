"""kube-apiserver's metrics for what kubeboot serves, with upstream's names and labels.

Sources (kubernetes v1.37): ``staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go``
(``apiserver_request_total``, ``apiserver_request_duration_seconds``,
``apiserver_current_inflight_requests``), ``.../authentication/request/x509/x509.go``
(``apiserver_client_certificate_expiration_seconds``),
``pkg/registry/certificates/certificates/storage/metrics.go``
(``apiserver_certificates_registry_csr_{requested,honored}_duration_total``),
``.../storage/etcd3/metrics/metrics.go`` (``apiserver_storage_objects``,
``apiserver_resource_objects``).

The request path pays two in-memory updates per request (a counter and a histogram child,
looked up once per label set and cached); the in-flight gauge is upstream's watermark: plain
integer counts on the request path, the gauge set from the last second's maximum by a timer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from kubeboot.metrics import REGISTRY

__all__ = [
    "CLIENT_CERTIFICATE_EXPIRATION",
    "CSR_HONORED",
    "CSR_REQUESTED",
    "INFLIGHT",
    "REQUESTS",
    "REQUEST_DURATION",
    "RESOURCE_OBJECTS",
    "STORAGE_OBJECTS",
    "InflightWatermark",
    "csr_signer_label",
    "record_request",
]

_REQUEST_LABELS = (
    "verb",
    "dry_run",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
)

REQUESTS = Counter(
    "apiserver_request_total",
    "Counter of apiserver requests broken out for each verb, dry run value, group, version, "
    "resource, scope, component, and HTTP response code.",
    (*_REQUEST_LABELS, "code"),
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "apiserver_request_duration_seconds",
    "Response latency distribution in seconds for each verb, dry run value, group, version, "
    "resource, subresource, scope and component.",
    _REQUEST_LABELS,
    buckets=(
        0.005,
        0.025,
        0.05,
        0.1,
        0.2,
        0.4,
        0.6,
        0.8,
        1.0,
        1.25,
        1.5,
        2,
        3,
        4,
        5,
        6,
        8,
        10,
        15,
        20,
        30,
        45,
        60,
    ),
    registry=REGISTRY,
)
INFLIGHT = Gauge(
    "apiserver_current_inflight_requests",
    "Maximal number of currently used inflight request limit of this apiserver per request "
    "kind in last second.",
    ("request_kind",),
    registry=REGISTRY,
)
CLIENT_CERTIFICATE_EXPIRATION = Histogram(
    "apiserver_client_certificate_expiration_seconds",
    "Distribution of the remaining lifetime on the certificate used to authenticate a request.",
    buckets=(
        0,
        1800,
        3600,
        7200,
        21600,
        43200,
        86400,
        172800,
        345600,
        604800,
        2592000,
        7776000,
        15552000,
        31104000,
    ),
    registry=REGISTRY,
)
CSR_REQUESTED = Counter(
    "apiserver_certificates_registry_csr_requested_duration_total",
    "Total number of issued CSRs with a requested duration, sliced by signer (only kubernetes.io "
    "signer names are specifically identified)",
    ("signerName",),
    registry=REGISTRY,
)
CSR_HONORED = Counter(
    "apiserver_certificates_registry_csr_honored_duration_total",
    "Total number of issued CSRs with a requested duration that was honored, sliced by signer "
    "(only kubernetes.io signer names are specifically identified)",
    ("signerName",),
    registry=REGISTRY,
)
STORAGE_OBJECTS = Gauge(
    "apiserver_storage_objects",
    "[DEPRECATED, consider using apiserver_resource_objects instead] Number of stored objects at "
    "the time of last check split by kind. In case of a fetching error, the value will be -1.",
    ("resource",),
    registry=REGISTRY,
)
RESOURCE_OBJECTS = Gauge(
    "apiserver_resource_objects",
    "Number of stored objects at the time of last check split by kind. In case of a fetching "
    "error, the value will be -1.",
    ("group", "resource"),
    registry=REGISTRY,
)

_VERBS = {
    "list": "LIST",
    "watch": "WATCH",
    "get": "GET",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}
_children: dict[tuple[str, ...], tuple[Any, Any]] = {}


def record_request(
    verb: str,
    group: str,
    version: str,
    resource: str,
    subresource: str,
    scope: str,
    code: int,
    seconds: float,
) -> None:
    """One served request (upstream's ``MonitorRequest``); watches get no duration sample."""
    labels = (
        _VERBS.get(verb, verb.upper()),
        "",
        group,
        version,
        resource,
        subresource,
        scope,
        "apiserver",
    )
    key = (*labels, str(code))
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            REQUESTS.labels(*labels, str(code)),
            REQUEST_DURATION.labels(*labels),
        )
    children[0].inc()
    if labels[0] != "WATCH":
        children[1].observe(seconds)


_KNOWN_SIGNERS = (
    "kubernetes.io/kube-apiserver-client",
    "kubernetes.io/kube-apiserver-client-kubelet",
    "kubernetes.io/kubelet-serving",
    "kubernetes.io/legacy-unknown",
)


def csr_signer_label(signer: str) -> str:
    """Upstream keeps only kubernetes.io signer names as label values, else ``other``."""
    return signer if signer in _KNOWN_SIGNERS else "other"


class InflightWatermark:
    """Requests in flight by kind, and the gauge set from each second's maximum."""

    def __init__(self) -> None:
        self.current = {"readOnly": 0, "mutating": 0}
        self._high = dict(self.current)

    def started(self, kind: str) -> None:
        self.current[kind] += 1
        if self.current[kind] > self._high[kind]:
            self._high[kind] = self.current[kind]

    def finished(self, kind: str) -> None:
        self.current[kind] -= 1

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for kind, high in self._high.items():
                INFLIGHT.labels(kind).set(high)
            self._high = dict(self.current)
