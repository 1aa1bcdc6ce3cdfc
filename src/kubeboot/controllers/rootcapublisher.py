"""root-ca-cert-publisher: ConfigMap ``kube-root-ca.crt`` (key ``ca.crt``) in every namespace
(upstream ``pkg/controller/certificates/rootcacertpublisher``).

Work items are namespace names: a namespace that is added, or updated while ``Active``, and a
namespace whose ``kube-root-ca.crt`` was updated or deleted, is looked at again, so a user's
edit or deletion is undone at once. Decision (pure, :func:`root_ca_change`): a missing
ConfigMap is created with the CA and upstream's description annotation; one whose data is not
exactly ``{"ca.crt": <CA>}`` or that lacks the annotation is updated (other metadata kept);
otherwise nothing. A create refused with NotFound (the namespace went away) is not retried.
The CA bytes are read once when the controller starts, as upstream does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.runtime import Informer, WorkQueue, run_workers
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.serviceaccount import ROOT_CA_CONFIGMAP, ROOT_CA_DESCRIPTION, ROOT_CA_KEY
from kubeboot.resources.status import Conflict, NotFound

__all__ = [
    "CONTROLLER_NAME",
    "DESCRIPTION_ANNOTATION",
    "ROOT_CA_FIELD_SELECTOR",
    "RootCaChange",
    "root_ca_change",
    "run_rootcapublisher",
]

CONTROLLER_NAME = "root-ca-cert-publisher"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
# The publisher's cache needs only its own ConfigMap in each namespace.
ROOT_CA_FIELD_SELECTOR = f"metadata.name={ROOT_CA_CONFIGMAP}"


@dataclass(frozen=True, slots=True)
class RootCaChange:
    action: Literal["create", "update"]
    configmap: JsonObject


def root_ca_change(existing: JsonObject | None, ca_pem: str) -> RootCaChange | None:
    """What to write so the namespace's ``kube-root-ca.crt`` carries ``ca_pem``."""
    data = {ROOT_CA_KEY: ca_pem}
    if existing is None:
        return RootCaChange(
            "create",
            {
                "metadata": {
                    "name": ROOT_CA_CONFIGMAP,
                    "annotations": {DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION},
                },
                "data": data,
            },
        )
    meta = existing.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if existing.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
        return None
    updated = {**existing, "data": data}
    updated["metadata"] = {
        **meta,
        "annotations": {**annotations, DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION},
    }
    return RootCaChange("update", updated)


async def run_rootcapublisher(
    client: ApiClient,
    namespaces: Informer,
    configmaps: Informer,
    configmap_res: ResourceInfo,
    ca_pem: str,
) -> None:
    """Run until cancelled. ``configmaps`` caches ``kube-root-ca.crt`` in all namespaces
    (:data:`ROOT_CA_FIELD_SELECTOR`); ``client`` is the controller's own identity."""
    queue: WorkQueue[str] = WorkQueue()

    def on_namespace(event: str, obj: JsonObject) -> None:
        if event == "ADDED" or (
            event == "MODIFIED" and (obj.get("status") or {}).get("phase") == "Active"
        ):
            queue.add(str((obj.get("metadata") or {}).get("name", "")))

    def on_configmap(event: str, obj: JsonObject) -> None:
        meta = obj.get("metadata") or {}
        if event in ("MODIFIED", "DELETED") and meta.get("name") == ROOT_CA_CONFIGMAP:
            queue.add(str(meta.get("namespace", "")))

    namespaces.add_handler(on_namespace)
    configmaps.add_handler(on_configmap)

    async def handle(ns: str) -> None:
        if namespaces.get(ns) is None:
            return
        change = root_ca_change(configmaps.get(f"{ns}/{ROOT_CA_CONFIGMAP}"), ca_pem)
        if change is None:
            return
        if change.action == "create":
            with contextlib.suppress(NotFound):
                await client.create(configmap_res, change.configmap, ns)
        else:
            # A Conflict means the cache was stale; the newer object's event re-queues us.
            with contextlib.suppress(NotFound, Conflict):
                await client.update(configmap_res, change.configmap, ns)

    await namespaces.wait_synced()
    await configmaps.wait_synced()
    for obj in namespaces.items():  # whatever was listed before the handlers were added
        on_namespace("ADDED", obj)
    await run_workers(CONTROLLER_NAME, queue, handle, 1)
