"""serviceaccounts: a ``default`` ServiceAccount in every active namespace
(upstream ``pkg/controller/serviceaccount/serviceaccounts_controller.go``).

Work items are namespace names. A namespace is looked at when it is added or updated and
when one of its ServiceAccounts is deleted, so deleting ``default`` brings it back at once.
Decision (pure, :func:`missing_service_accounts`): nothing for a namespace that is gone or not
``Active``; otherwise every ensured name the ServiceAccount cache lacks. Creation ignores
AlreadyExists (another writer was first) and NotFound (the namespace went away meanwhile), as
upstream ignores the namespace-terminating cause.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.runtime import Informer, WorkQueue, run_workers
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.serviceaccount import DEFAULT_SERVICE_ACCOUNT
from kubeboot.resources.status import AlreadyExists, NotFound

__all__ = ["CONTROLLER_NAME", "missing_service_accounts", "run_serviceaccounts_controller"]

CONTROLLER_NAME = "serviceaccount"
_ACTIVE = "Active"


def missing_service_accounts(
    namespace: JsonObject | None, exists: Callable[[str], bool], ensure: Sequence[str]
) -> list[str]:
    """The names in ``ensure`` to create in ``namespace`` (None when it is gone)."""
    if namespace is None or (namespace.get("status") or {}).get("phase") != _ACTIVE:
        return []
    return [name for name in ensure if not exists(name)]


async def run_serviceaccounts_controller(
    client: ApiClient,
    namespaces: Informer,
    service_accounts: Informer,
    sa_res: ResourceInfo,
    ensure: Sequence[str] = (DEFAULT_SERVICE_ACCOUNT,),
) -> None:
    """Run until cancelled; ``client`` is the controller's own identity (it creates)."""
    queue: WorkQueue[str] = WorkQueue()

    def on_namespace(event: str, obj: JsonObject) -> None:
        if event in ("ADDED", "MODIFIED"):
            queue.add(str((obj.get("metadata") or {}).get("name", "")))

    def on_service_account(event: str, obj: JsonObject) -> None:
        if event == "DELETED":
            queue.add(str((obj.get("metadata") or {}).get("namespace", "")))

    namespaces.add_handler(on_namespace)
    service_accounts.add_handler(on_service_account)

    async def handle(ns: str) -> None:
        missing = missing_service_accounts(
            namespaces.get(ns),
            lambda name: service_accounts.get(f"{ns}/{name}") is not None,
            ensure,
        )
        for name in missing:
            with contextlib.suppress(AlreadyExists, NotFound):
                await client.create(sa_res, {"metadata": {"name": name}}, ns)

    await namespaces.wait_synced()
    await service_accounts.wait_synced()
    for obj in namespaces.items():  # whatever was listed before the handlers were added
        on_namespace("ADDED", obj)
    await run_workers(CONTROLLER_NAME, queue, handle, 1)
