"""``ApiClient``: how controllers, the agent and the CLI talk to a Kubernetes API (rule 4).

Objects are plain JSON dicts exactly as served (``kind``/``apiVersion`` included). Failures
raise :class:`kubeboot.resources.status.StatusError` subclasses rebuilt from the server's
``Status`` (``NotFound``, ``Conflict``, ``Expired``…), so callers branch on the error type
the way client-go callers branch on ``reason``. Two implementations exist: the in-process
client inside the server (no HTTP hop, same admission and authorization path) and the HTTPS
client built from a kubeconfig, which also works against a real cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from kubeboot.resources.registry import ResourceInfo

__all__ = ["ApiClient", "JsonObject", "PatchType", "WatchEventDict"]

JsonObject = dict[str, Any]
# {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": {...}}
WatchEventDict = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]


class ApiClient(Protocol):
    async def get(
        self, res: ResourceInfo, name: str, namespace: str | None = None
    ) -> JsonObject: ...

    async def list(
        self,
        res: ResourceInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> JsonObject:
        """The ``<Kind>List``; ``metadata.continue`` is set when ``limit`` cut it short."""
        ...

    async def create(
        self, res: ResourceInfo, obj: JsonObject, namespace: str | None = None
    ) -> JsonObject: ...

    async def update(
        self,
        res: ResourceInfo,
        obj: JsonObject,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        """PUT; ``metadata.resourceVersion`` in ``obj`` makes it a compare-and-swap."""
        ...

    async def patch(
        self,
        res: ResourceInfo,
        name: str,
        patch: Any,
        patch_type: PatchType = "merge",
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObject: ...

    async def apply(
        self,
        res: ResourceInfo,
        obj: JsonObject,
        namespace: str | None = None,
        *,
        field_manager: str,
        force: bool = False,
    ) -> JsonObject:
        """Server-side apply of the fields in ``obj`` (its name in ``metadata``), owned by
        ``field_manager``; ``force`` takes fields other managers own."""
        ...

    async def delete(
        self,
        res: ResourceInfo,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> JsonObject:
        """Delete, optionally with UID / resourceVersion preconditions (409 if they fail)."""
        ...

    def watch(
        self,
        res: ResourceInfo,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = False,
    ) -> AsyncIterator[WatchEventDict]:
        """Events after ``resource_version``; an ERROR event's 410 is raised as ``Expired``."""
        ...
