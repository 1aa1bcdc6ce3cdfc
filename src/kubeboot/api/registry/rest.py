"""The REST service: every verb on every stored resource, independent of HTTP.

Both the HTTPS handlers and the in-process client call this class, so authorization,
admission, defaulting, validation and optimistic concurrency happen on exactly one path.
Collection reads (list pages, watch streams) live in :mod:`kubeboot.api.registry.listwatch`, and
storage errors become ``StatusError`` in :mod:`kubeboot.api.registry.store_errors` (design rule 5).

Concurrency rules, as kube-apiserver's ``GuaranteedUpdate``:
* an update or patch that names a ``resourceVersion`` is a compare-and-swap → 409 Conflict;
* one without retries on a lost race against the latest object (unconditional update);
* a write that changes nothing is not written and returns the stored object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubeboot.api.registry import codec
from kubeboot.api.registry.conform import FieldValidation, conform, conform_patched
from kubeboot.api.registry.listwatch import (
    ListOptions,
    Selectors,
    WatchOptions,
    WatchStream,
    list_objects,
    open_watch,
    parse_resource_version,
    wait_for_revision,
)
from kubeboot.api.registry.meta import generate_name, new_uid, validate_metadata
from kubeboot.api.registry.patch import apply_patch
from kubeboot.api.registry.rbac_policy import RbacWritePolicy
from kubeboot.api.registry.store_errors import status_error_for
from kubeboot.api.registry.strategy_table import strategy_for
from kubeboot.auth.admission import AdmissionRequest, MutatingAdmission
from kubeboot.auth.authz import forbidden_error
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.clock import Clock, format_time
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
)
from kubeboot.storage.interface import (
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatch,
    Store,
    StoreUnavailable,
)

__all__ = ["NAMESPACES", "Admission", "RestService"]

JsonObj = dict[str, Any]
_MAX_GUARANTEED_UPDATE_RETRIES = 16
_PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Set by the server on create; whatever a client sends for them is dropped.
_SERVER_OWNED_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "resourceVersion",
    "generation",
    "managedFields",
    "selfLink",
)


def _namespaces() -> ResourceInfo:
    res = find_resource("", "v1", "namespaces")
    assert res is not None
    return res


NAMESPACES = _namespaces()

# Admission hook: (user, resource, verb, subresource, new object, old object) -> None or raise.
Admission = Callable[[UserInfo, ResourceInfo, str, str, JsonObj, JsonObj | None], Awaitable[None]]


@dataclass
class RestService:
    store: Store
    authorizer: Authorizer
    clock: Clock
    admission: list[Admission] = field(default_factory=list)
    # Run on the object as sent, before the RBAC check and validation (NodeRestriction).
    mutating_admission: list[MutatingAdmission] = field(default_factory=list)
    rbac_policy: RbacWritePolicy = field(init=False)

    def __post_init__(self) -> None:
        self.rbac_policy = RbacWritePolicy(self.store, self.authorizer)

    # ---- authorization -------------------------------------------------------------------

    def authorize(
        self,
        user: UserInfo,
        verb: str,
        res: ResourceInfo,
        namespace: str | None,
        name: str = "",
        subresource: str = "",
        field_selector: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        attrs = Attributes(
            user=user,
            verb=verb,
            namespace=namespace or "",
            api_group=res.group,
            api_version=res.gv.version,
            resource=res.plural,
            subresource=subresource,
            name=name,
            field_selector=field_selector,
        )
        decision = self.authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden_error(attrs, decision.reason)

    # ---- helpers -------------------------------------------------------------------------

    def _key(self, res: ResourceInfo, namespace: str | None, name: str) -> str:
        return res.storage_key(namespace if res.namespaced else None, name)

    async def _require_namespace(self, namespace: str) -> None:
        if await self.store.get(self._key(NAMESPACES, None, namespace)) is None:
            raise NotFound.of("namespaces", "", namespace)

    async def _admit(
        self,
        user: UserInfo,
        res: ResourceInfo,
        verb: str,
        subresource: str,
        obj: JsonObj,
        old: JsonObj | None,
    ) -> None:
        for hook in self.admission:
            await hook(user, res, verb, subresource, obj, old)

    async def _admit_mutating(
        self,
        user: UserInfo,
        res: ResourceInfo,
        operation: str,
        subresource: str,
        namespace: str | None,
        name: str,
        obj: JsonObj | None,
        old: JsonObj | None,
    ) -> None:
        if not self.mutating_admission:
            return
        request = AdmissionRequest(
            user, res.group, res.plural, operation, subresource, namespace or "", name, obj, old
        )
        for hook in self.mutating_admission:
            await hook(request)

    def _check_subresource(self, res: ResourceInfo, subresource: str) -> None:
        if subresource and subresource not in res.subresources:
            raise NotFound(
                f"the server could not find the requested resource ({res.plural}/{subresource})"
            )

    def _validate(
        self, res: ResourceInfo, obj: JsonObj, old: JsonObj | None, subresource: str
    ) -> None:
        errors = validate_metadata(
            res, obj.get("metadata") or {}, None if old is None else old.get("metadata") or {}
        )
        errors += strategy_for(res.plural).validate(obj, old, subresource)
        if errors:
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise Invalid.of(res.kind, res.group, name, errors)

    # ---- create --------------------------------------------------------------------------

    async def create(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        validation: FieldValidation | None = None,
    ) -> JsonObj:
        """Create ``body``; ``validation`` is the request's fieldValidation (default: Ignore)."""
        if "create" not in res.verbs:
            raise MethodNotAllowed(f"create is not supported on {res.plural}")
        obj = conform(res, body, validation or FieldValidation("Ignore"))
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            assert namespace is not None
            if meta.get("namespace") not in (None, "", namespace):
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent on "
                    f'the request ("{meta.get("namespace")}" vs "{namespace}")'
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        requested_name = str(meta.get("name") or "")
        self.authorize(user, "create", res, namespace, "")
        if res.namespaced:
            assert namespace is not None
            await self._require_namespace(namespace)
        # As upstream: admission and the RBAC check see the object as sent; the name is
        # generated afterwards (BeforeCreate).
        await self._admit_mutating(user, res, "create", "", namespace, requested_name, obj, None)
        await self.rbac_policy.check(user, res, namespace, requested_name, obj, None)
        if not requested_name and meta.get("generateName"):
            meta["name"] = generate_name(str(meta["generateName"]))
        name = str(meta.get("name") or "")
        now = self.clock.now()
        for owned in _SERVER_OWNED_META:
            meta.pop(owned, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = format_time(now)
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        strategy_for(res.plural).prepare_create(obj, user, now)
        self._validate(res, obj, None, "")
        await self._admit(user, res, "create", "", obj, None)
        try:
            kv = await self.store.create(self._key(res, namespace, name), codec.encode(obj))
        except (KeyExistsError, StoreUnavailable) as exc:
            raise status_error_for(exc, res, name) from exc
        meta["resourceVersion"] = str(kv.mod_revision)
        strategy_for(res.plural).created(obj, user, now)
        return obj

    # ---- read ----------------------------------------------------------------------------

    async def get(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        subresource: str = "",
        *,
        resource_version: str | None = None,
    ) -> JsonObj:
        """Get one object; a ``resource_version`` is the oldest state the caller accepts."""
        self._check_subresource(res, subresource)
        self.authorize(user, "get", res, namespace, name, subresource)
        wanted = parse_resource_version(resource_version)
        if wanted:
            await wait_for_revision(self.store, wanted)
        kv = await self.store.get(self._key(res, namespace, name))
        if kv is None:
            raise NotFound.of(res.plural, res.group, name)
        return codec.decode(kv)

    async def list(
        self, user: UserInfo, res: ResourceInfo, namespace: str | None, opts: ListOptions
    ) -> JsonObj:
        sel = Selectors.parse(res, opts.label_selector, opts.field_selector)
        # As upstream's RequestInfo: a metadata.name field selector names the object, so a
        # node may list/watch its own Node and nothing else.
        self.authorize(
            user,
            "list",
            res,
            namespace,
            sel.fields.exact_name() or "",
            "",
            sel.fields.requirements(),
        )
        return await list_objects(self.store, res, namespace, sel, opts)

    async def watch(
        self, user: UserInfo, res: ResourceInfo, namespace: str | None, opts: WatchOptions
    ) -> WatchStream:
        sel = Selectors.parse(res, opts.label_selector, opts.field_selector)
        self.authorize(
            user,
            "watch",
            res,
            namespace,
            sel.fields.exact_name() or "",
            "",
            sel.fields.requirements(),
        )
        return await open_watch(self.store, res, namespace, sel, opts)

    # ---- update / patch ------------------------------------------------------------------

    async def update(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str = "",
        *,
        validation: FieldValidation | None = None,
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        obj = conform(res, body, validation or FieldValidation("Ignore"))
        meta = obj.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({name})"
            )
        if res.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        self.authorize(user, "update", res, namespace, name, subresource)
        precondition = parse_resource_version(meta.get("resourceVersion"))

        def mutate(current: JsonObj) -> JsonObj:
            return codec.copy_object(obj)  # a retry must not see the last attempt's edits

        return await self._guaranteed_update(
            user, res, namespace, name, subresource, mutate, precondition
        )

    async def patch(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str,
        subresource: str = "",
        *,
        validation: FieldValidation | None = None,
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        fv = validation or FieldValidation("Ignore")
        self.authorize(user, "patch", res, namespace, name, subresource)
        precondition: int | None = None
        if isinstance(patch, dict):
            meta = patch.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("resourceVersion"), str):
                precondition = parse_resource_version(meta["resourceVersion"])

        def mutate(current: JsonObj) -> JsonObj:
            fv.warnings.clear()  # a retry starts again from the latest object
            patched = conform_patched(
                res, apply_patch(current, patch, patch_type), patch, fv, patch_type
            )
            pmeta = patched.get("metadata")
            if not isinstance(pmeta, dict) or pmeta.get("name") != name:
                raise BadRequest("a patch may not change metadata.name")
            return patched

        return await self._guaranteed_update(
            user, res, namespace, name, subresource, mutate, precondition
        )

    async def _guaranteed_update(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        subresource: str,
        mutate: Callable[[JsonObj], JsonObj],
        precondition: int | None,
    ) -> JsonObj:
        key = self._key(res, namespace, name)
        strategy = strategy_for(res.plural)
        for _ in range(_MAX_GUARANTEED_UPDATE_RETRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise NotFound.of(res.plural, res.group, name)
            if precondition is not None and precondition != kv.mod_revision:
                raise Conflict.of(res.plural, res.group, name)
            current = codec.decode(kv)
            new = mutate(codec.copy_object(current))
            new_meta = new.setdefault("metadata", {})
            if not isinstance(new_meta, dict):
                raise BadRequest("metadata must be a JSON object")
            await self._admit_mutating(
                user, res, "update", subresource, namespace, name, new, current
            )
            await self.rbac_policy.check(user, res, namespace, name, new, current)
            cur_meta = current["metadata"]
            for owned in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
                if owned in cur_meta:
                    new_meta[owned] = cur_meta[owned]
                else:
                    new_meta.pop(owned, None)
            new_meta.pop("managedFields", None)
            new["kind"], new["apiVersion"] = res.kind, res.api_version
            strategy.prepare_update(new, current, subresource, user, self.clock.now())
            new_meta = new["metadata"]
            new_meta["resourceVersion"] = cur_meta.get("resourceVersion")
            self._validate(res, new, current, subresource)
            if new == current:
                return current
            await self._admit(user, res, "update", subresource, new, current)
            try:
                stored = await self.store.update(key, codec.encode(new), kv.mod_revision)
            except RevisionMismatch:
                if precondition is not None:
                    raise Conflict.of(res.plural, res.group, name) from None
                continue
            except (KeyNotFoundError, StoreUnavailable) as exc:
                raise status_error_for(exc, res, name) from exc
            new_meta["resourceVersion"] = str(stored.mod_revision)
            strategy.updated(new, current, subresource, user, self.clock.now())
            return new
        raise Conflict.of(res.plural, res.group, name, "too many concurrent writers; try again")

    # ---- delete --------------------------------------------------------------------------

    async def delete(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> JsonObj:
        self.authorize(user, "delete", res, namespace, name)
        if res is NAMESPACES and name in _PROTECTED_NAMESPACES:
            raise Forbidden(
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                name=name,
                kind="namespaces",
            )
        key = self._key(res, namespace, name)
        kv = await self.store.get(key)
        if kv is None:
            raise NotFound.of(res.plural, res.group, name)
        current = codec.decode(kv)
        await self._admit_mutating(user, res, "delete", "", namespace, name, None, current)
        expected_rv = parse_resource_version(resource_version)
        if uid and current["metadata"].get("uid") != uid:
            raise Conflict.of(
                res.plural,
                res.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                f"{current['metadata'].get('uid')}",
            )
        if expected_rv is not None and expected_rv != kv.mod_revision:
            raise Conflict.of(
                res.plural,
                res.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {expected_rv}, "
                f"ResourceVersion in object meta: {kv.mod_revision}",
            )
        if res is NAMESPACES:
            await self._delete_namespace_contents(name)
        try:
            await self.store.delete(key, kv.mod_revision)
        except RevisionMismatch as exc:
            raise Conflict.of(res.plural, res.group, name) from exc
        except (KeyNotFoundError, StoreUnavailable) as exc:
            raise status_error_for(exc, res, name) from exc
        return current

    async def _delete_namespace_contents(self, namespace: str) -> None:
        """Cascade immediately (kube-apiserver's namespace controller does this in the
        background while the namespace is Terminating; here the delete is synchronous)."""
        from kubeboot.resources.registry import RESOURCES

        for res in RESOURCES:
            if not (res.namespaced and res.stored):
                continue
            result = await self.store.range(res.storage_prefix(namespace))
            for kv in result.kvs:
                try:
                    await self.store.delete(kv.key, kv.mod_revision)
                except (KeyNotFoundError, RevisionMismatch):
                    continue

    async def delete_collection(
        self, user: UserInfo, res: ResourceInfo, namespace: str | None, opts: ListOptions
    ) -> JsonObj:
        if "deletecollection" not in res.verbs:
            raise MethodNotAllowed(f"deletecollection is not supported on {res.plural}")
        self.authorize(user, "deletecollection", res, namespace)
        listed = await self.list(user, res, namespace, opts)
        deleted = []
        for obj in listed["items"]:
            meta = obj["metadata"]
            try:
                await self.store.delete(
                    self._key(res, meta.get("namespace"), meta["name"]),
                    int(meta["resourceVersion"]),
                )
                deleted.append(obj)
            except (KeyNotFoundError, RevisionMismatch):
                continue
        return {**listed, "items": deleted}
