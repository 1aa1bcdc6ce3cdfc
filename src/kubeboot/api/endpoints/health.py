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

# Post-start hooks of a v1.37 kube-apiserver, in the order it reports them.
_POST_START_HOOKS = (
    "start-apiserver-admission-initializer",
    "generic-apiserver-start-informers",
    "priority-and-fairness-config-consumer",
    "priority-and-fairness-filter",
    "storage-object-count-tracker-hook",
    "start-apiextensions-informers",
    "start-apiextensions-controllers",
    "crd-informer-synced",
    "start-system-namespaces-controller",
    "start-cluster-authentication-info-controller",
    "start-kube-apiserver-identity-lease-controller",
    "start-kube-apiserver-identity-lease-garbage-collector",
    "start-legacy-token-tracking-controller",
    "start-service-ip-repair-controllers",
    "rbac/bootstrap-roles",
    "scheduling/bootstrap-system-priority-classes",
    "priority-and-fairness-config-producer",
    "bootstrap-controller",
    "storage-readiness",
    "aggregator-reload-proxy-client-cert",
    "start-kube-aggregator-informers",
    "apiservice-status-local-available-controller",
    "apiservice-status-remote-available-controller",
    "apiservice-registration-controller",
    "apiservice-discovery-controller",
    "kube-apiserver-autoregistration",
)
_TAIL = ("autoregister-completion",)
_OPENAPI_HOOKS = ("apiservice-openapi-controller", "apiservice-openapiv3-controller")


@dataclass
class HealthState:
    store: Store
    shutting_down: Callable[[], bool]


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


def _checks(endpoint: str) -> list[tuple[str, Check]]:
    checks: list[tuple[str, Check]] = [("ping", _ok), ("log", _ok), ("etcd", _etcd)]
    if endpoint == "readyz":
        checks += [("etcd-readiness", _etcd), ("informer-sync", _ok)]
    checks += [(f"poststarthook/{hook}", _ok) for hook in _POST_START_HOOKS]
    checks += [(name, _ok) for name in _TAIL]
    checks += [(f"poststarthook/{hook}", _ok) for hook in _OPENAPI_HOOKS]
    if endpoint == "readyz":
        checks.append(("shutdown", _shutdown))
    return checks


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
    checks = _CHECKS[endpoint]
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
