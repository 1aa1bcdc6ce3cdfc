"""namespace: empties and finalizes a namespace being deleted
(upstream ``pkg/controller/namespace``, its ``namespacedResourcesDeleter``).

A DELETE of a namespace only marks it (``deletionTimestamp``, phase ``Terminating``; the
API refuses new content in it from then on). For such a namespace this controller:

1. records upstream's five deletion conditions on ``/status`` (all ``False``: discovery and
   parsing cannot fail here; the content conditions say what is left);
2. deletes every object of every namespaced kind in it;
3. when nothing is left, removes its ``kubernetes`` finalizer through ``/finalize``, which
   deletes the namespace once no finalizer remains (other finalizers keep it Terminating
   until their owners remove them, as upstream). Content still there (a write that raced
   the deletion) is retried with backoff.

Work items are namespace names; the namespace cache is read, writes go as the controller's
own ServiceAccount.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock, format_time
from kubeboot.controllers.runtime import Informer, Requeue, WorkQueue, run_workers
from kubeboot.resources.registry import RESOURCES, ResourceInfo
from kubeboot.resources.status import Conflict, NotFound

__all__ = ["CONTROLLER_NAME", "deletion_conditions", "run_namespace_controller"]

CONTROLLER_NAME = "namespace"
FINALIZER = "kubernetes"
_RETRY_SECONDS = 1.0
# (type, reason, message) of the conditions upstream's deleter keeps while it works.
_CONDITIONS = (
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
)


def deletion_conditions(existing: list[JsonObject], now: str) -> list[JsonObject]:
    """The namespace's conditions with upstream's deletion conditions set (pure); a
    condition already in the same state keeps its transition time."""
    by_type = {c.get("type"): c for c in existing if isinstance(c, dict)}
    out = [c for c in existing if c.get("type") not in {t for t, _, _ in _CONDITIONS}]
    for ctype, reason, message in _CONDITIONS:
        old = by_type.get(ctype) or {}
        same = old.get("status") == "False" and old.get("reason") == reason
        out.append(
            {
                "type": ctype,
                "status": "False",
                "lastTransitionTime": old.get("lastTransitionTime") if same else now,
                "reason": reason,
                "message": message,
            }
        )
    return out


def _namespaced_kinds() -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.namespaced and r.stored and "delete" in r.verbs]


async def _delete_content(client: ApiClient, namespace: str) -> int:
    """Delete every object in ``namespace``; the number that were there."""
    seen = 0
    for res in _namespaced_kinds():
        listed = await client.list(res, namespace)
        for item in listed.get("items") or []:
            seen += 1
            name = str((item.get("metadata") or {}).get("name", ""))
            with contextlib.suppress(NotFound):
                await client.delete(res, name, namespace)
    return seen


async def run_namespace_controller(
    client: ApiClient, namespaces: Informer, ns_res: ResourceInfo, clock: Clock
) -> None:
    """Run until cancelled; ``client`` is the controller's identity (it deletes)."""
    queue: WorkQueue[str] = WorkQueue()

    def on_namespace(event: str, obj: JsonObject) -> None:
        if event != "DELETED" and (obj.get("metadata") or {}).get("deletionTimestamp"):
            queue.add(str(obj["metadata"].get("name", "")))

    namespaces.add_handler(on_namespace)

    async def handle(name: str) -> None:
        ns = namespaces.get(name)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        try:
            await _finish(client, ns_res, ns, clock)
        except (NotFound, Conflict):
            return  # gone meanwhile, or changed: the next event brings it back

    await namespaces.wait_synced()
    for obj in namespaces.items():
        on_namespace("ADDED", obj)
    await run_workers(CONTROLLER_NAME, queue, handle, 2)


async def _finish(client: ApiClient, ns_res: ResourceInfo, ns: JsonObject, clock: Clock) -> None:
    name = str(ns["metadata"]["name"])
    status: dict[str, Any] = dict(ns.get("status") or {})
    conditions = deletion_conditions(list(status.get("conditions") or []), format_time(clock.now()))
    if conditions != status.get("conditions"):
        status["conditions"] = conditions
        ns = await client.update(ns_res, {**ns, "status": status}, subresource="status")
    await _delete_content(client, name)
    if await _delete_content(client, name):
        raise Requeue(_RETRY_SECONDS)  # content written meanwhile: look again
    finalizers = list((ns.get("spec") or {}).get("finalizers") or [])
    if FINALIZER in finalizers:
        finalizers.remove(FINALIZER)
        spec = {**(ns.get("spec") or {}), "finalizers": finalizers}
        await client.update(ns_res, {**ns, "spec": spec}, subresource="finalize")
