"""``InProcessClient``: the ``ApiClient`` controllers use inside the server (design rule 4).

It calls :class:`RestService` directly as a fixed identity, so controllers go through the
same authorization, admission, validation and optimistic concurrency as any HTTP client,
minus the TLS and JSON hop. Objects are deep-copied by construction (decoded fresh from the
store), so a controller can never mutate shared state. Like the HTTP boundary, it turns an
unavailable store (etcd without quorum) into ``ServiceUnavailable``, so controllers and
leader election see the same 503 an HTTP client would and retry instead of crashing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from kubeboot.api.registry.deleteoptions import DeleteOptions
from kubeboot.api.registry.listwatch import ListOptions, WatchOptions
from kubeboot.api.registry.rest import RestService
from kubeboot.api.registry.reviews import review
from kubeboot.auth.interface import UserInfo
from kubeboot.client.interface import JsonObject, PatchType, WatchEventDict
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Expired, ServiceUnavailable, status_error_from_dict
from kubeboot.storage.interface import StoreUnavailable

__all__ = ["CONTROLLER_MANAGER_USER", "InProcessClient"]

# kube-controller-manager's identity; the default RBAC binds its roles to this user.
CONTROLLER_MANAGER_USER = UserInfo(
    "system:kube-controller-manager", groups=("system:authenticated",)
)


# The field manager of controller writes, as kube-controller-manager's User-Agent makes it.
CONTROLLER_MANAGER = "kube-controller-manager"


@contextlib.contextmanager
def _store_errors_as_503() -> Iterator[None]:
    try:
        yield
    except StoreUnavailable as exc:
        raise ServiceUnavailable(
            f"storage is unavailable: {exc}; retry shortly", retry_after=1
        ) from exc


class InProcessClient:
    def __init__(
        self,
        rest: RestService,
        user: UserInfo = CONTROLLER_MANAGER_USER,
        *,
        manager: str = CONTROLLER_MANAGER,
    ) -> None:
        self._rest = rest
        self.user = user
        self.manager = manager  # the field manager its writes are recorded under

    def _ns(self, res: ResourceInfo, namespace: str | None) -> str | None:
        return namespace if res.namespaced else None

    async def get(self, res: ResourceInfo, name: str, namespace: str | None = None) -> JsonObject:
        with _store_errors_as_503():
            return await self._rest.get(self.user, res, self._ns(res, namespace), name)

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
        opts = ListOptions(
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
        )
        with _store_errors_as_503():
            return await self._rest.list(self.user, res, self._ns(res, namespace), opts)

    async def create(
        self, res: ResourceInfo, obj: JsonObject, namespace: str | None = None
    ) -> JsonObject:
        if not res.stored:
            return review(
                self._rest.authorizer,
                self._rest.rules,
                self.user,
                res,
                self._ns(res, namespace),
                obj,
                self._rest.clock.now(),
            )
        with _store_errors_as_503():
            return await self._rest.create(
                self.user, res, self._ns(res, namespace), obj, manager=self.manager
            )

    async def update(
        self,
        res: ResourceInfo,
        obj: JsonObject,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        name = str((obj.get("metadata") or {}).get("name") or "")
        with _store_errors_as_503():
            return await self._rest.update(
                self.user,
                res,
                self._ns(res, namespace),
                name,
                obj,
                subresource or "",
                manager=self.manager,
            )

    async def patch(
        self,
        res: ResourceInfo,
        name: str,
        patch: Any,
        patch_type: PatchType = "merge",
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        with _store_errors_as_503():
            return await self._rest.patch(
                self.user,
                res,
                self._ns(res, namespace),
                name,
                patch,
                patch_type,
                subresource or "",
                manager=self.manager,
            )

    async def apply(
        self,
        res: ResourceInfo,
        obj: JsonObject,
        namespace: str | None = None,
        *,
        field_manager: str,
        force: bool = False,
    ) -> JsonObject:
        name = str((obj.get("metadata") or {}).get("name") or "")
        with _store_errors_as_503():
            applied, _ = await self._rest.apply(
                self.user,
                res,
                self._ns(res, namespace),
                name,
                obj,
                manager=field_manager,
                force=force,
            )
            return applied

    async def delete(
        self,
        res: ResourceInfo,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> JsonObject:
        with _store_errors_as_503():
            return await self._rest.delete(
                self.user,
                res,
                self._ns(res, namespace),
                name,
                DeleteOptions(uid=uid, resource_version=resource_version),
            )

    async def watch(
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
        """Same contract as the HTTP client: an ERROR event with 410 raises ``Expired``.

        ``timeout_seconds`` is accepted for interface parity; in-process watches end when
        the caller stops iterating.
        """
        opts = WatchOptions(
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            allow_bookmarks=allow_bookmarks,
        )
        with _store_errors_as_503():
            stream = await self._rest.watch(self.user, res, self._ns(res, namespace), opts)
        async for event in stream.events:
            if event["type"] == "ERROR":
                err = status_error_from_dict(event["object"], int(event["object"].get("code", 500)))
                raise err if not isinstance(err, Expired) else Expired(err.message)
            yield event
