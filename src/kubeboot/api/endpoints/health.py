"""``/healthz``, ``/livez``, ``/readyz``: named checks, as kube-apiserver reports them.

Each endpoint runs its checks in order and answers ``ok`` (``?verbose``: one ``[+]<name> ok``
line per check, then ``<endpoint> check passed``), or 500 with ``[-]<name> failed: reason
withheld`` lines and ``<endpoint> check failed`` (the reason goes to the log only).
``?exclude=<name>`` skips a check; ``/<endpoint>/<name>`` runs one.

The check names are upstream's, so tools that look for them (upstream's e2e health spec,
monitoring that probes ``/readyz/etcd``) find them. What each one checks here:

* ``etcd`` (and ``etcd-readiness`` on readyz): a quorum read of the store within 2 s —
  SQLite or etcd, whichever backs this server;
* ``shutdown`` (readyz): fails once the server is draining;
* ``kube-controller-manager`` (readyz, kubeboot's own, before ``shutdown``): fails while the
  embedded controller manager has failed and has not yet run stably again after its restart
  (:mod:`kubeboot.controllers.supervisor`); listed only by the process that runs it;
* ``informer-sync`` and ``poststarthook/*``: kubeboot finishes its start-up (default
  namespaces, RBAC bootstrap, controllers) before it listens, so these hold from the first
  request; hooks for subsystems kubeboot does not have (CRDs, the aggregator, priority and
  fairness) have nothing to wait for and pass (docs/api.md lists them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kubeboot.storage.interface import Store, StoreUnavailable

__all__ = ["HEALTH_ENDPOINTS", "HealthState", "health_response"]

_STORAGE_SECONDS = 2.0

# The checks of a v1.37 kube-apiserver (/livez and /healthz), in the order it reports them;
# readyz adds etcd-readiness and informer-sync after etcd, and shutdown last, and has no
# loopback-serving-certificate.
_LIVEZ = (
    "ping",
    "log",
    "loopback-serving-certificate",
    "etcd",
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer",
    "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook",
    "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/start-system-namespaces-controller",
    "poststarthook/peer-endpoint-reconciler-controller",
    "poststarthook/start-cluster-authentication-info-controller",
    "poststarthook/start-kube-apiserver-identity-lease-controller",
    "poststarthook/start-kube-apiserver-identity-lease-garbage-collector",
    "poststarthook/storage-readiness",
    "poststarthook/start-legacy-token-tracking-controller",
    "poststarthook/start-service-ip-repair-controllers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/priority-and-fairness-config-producer",
    "poststarthook/bootstrap-controller",
    "poststarthook/start-kubernetes-service-cidr-controller",
    "poststarthook/aggregator-reload-proxy-client-cert",
    "poststarthook/start-kube-aggregator-informers",
    "poststarthook/apiservice-status-local-available-controller",
    "poststarthook/apiservice-status-remote-available-controller",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-discovery-controller",
    "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion",
    "poststarthook/apiservice-openapi-controller",
    "poststarthook/apiservice-openapiv3-controller",
)


@dataclass
class HealthState:
    store: Store
    shutting_down: Callable[[], bool]
    controllers: Callable[[], str | None] | None = None


Check = Callable[[HealthState], Awaitable[str | None]]


async def _ok(state: HealthState) -> str | None:
    return None


async def _etcd(state: HealthState) -> str | None:
    try:
        async with asyncio.timeout(_STORAGE_SECONDS):
            await state.store.current_revision()
    except StoreUnavailable as exc:
        return str(exc)
    except TimeoutError:
        return f"no answer from storage within {_STORAGE_SECONDS:g}s"
    return None


async def _shutdown(state: HealthState) -> str | None:
    return "process is shutting down" if state.shutting_down() else None


async def _controllers(state: HealthState) -> str | None:
    return state.controllers() if state.controllers is not None else None


_CONTROLLERS = "kube-controller-manager"
_SPECIAL: dict[str, Check] = {
    "etcd": _etcd,
    "etcd-readiness": _etcd,
    "shutdown": _shutdown,
    _CONTROLLERS: _controllers,
}


def _checks(endpoint: str) -> list[tuple[str, Check]]:
    names = list(_LIVEZ)
    if endpoint == "readyz":
        names.remove("loopback-serving-certificate")
        at = names.index("etcd") + 1
        names[at:at] = ["etcd-readiness", "informer-sync"]
        names += [_CONTROLLERS, "shutdown"]
    return [(name, _SPECIAL.get(name, _ok)) for name in names]


HEALTH_ENDPOINTS = ("healthz", "livez", "readyz")
_CHECKS = {endpoint: _checks(endpoint) for endpoint in HEALTH_ENDPOINTS}


def _text(body: str, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, charset="utf-8")
    response.content_type = "text/plain"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def health_response(
    request: web.Request, endpoint: str, check_name: str, state: HealthState
) -> web.Response | None:
    """The answer for ``/<endpoint>`` or ``/<endpoint>/<check_name>``; None if no such check."""
    checks = [
        (name, check)
        for name, check in _CHECKS[endpoint]
        if name != _CONTROLLERS or state.controllers is not None
    ]
    if check_name:
        check = dict(checks).get(check_name)
        if check is None:
            return None
        problem = await check(state)
        if problem is not None:
            return _text(f"internal server error: {problem}\n", 500)
        return _text("ok")
    excluded = set(request.query.getall("exclude", []))
    unknown = set(excluded)
    lines: list[str] = []
    failed = False
    for name, check in checks:
        if name in excluded:
            unknown.discard(name)
            lines.append(f"[+]{name} excluded: ok\n")
            continue
        problem = await check(state)
        if problem is None:
            lines.append(f"[+]{name} ok\n")
        else:
            failed = True
            lines.append(f"[-]{name} failed: reason withheld\n")
    if unknown:
        quoted = ",".join(f'"{n}"' for n in sorted(unknown))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}\n")
    if failed:
        return _text("".join(lines) + f"{endpoint} check failed\n", 500)
    if "verbose" not in request.query:
        return _text("ok")
    return _text("".join(lines) + f"{endpoint} check passed\n")
