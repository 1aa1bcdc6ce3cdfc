"""The REST service: every verb on every stored resource, independent of HTTP.

Both the HTTPS handlers and the in-process client call this class, so authorization,
admission, defaulting, validation and optimistic concurrency happen on exactly one path.
Storage errors are translated into ``StatusError`` here and nowhere else (design rule 5).

Concurrency rules, as kube-apiserver's ``GuaranteedUpdate``:
* an update or patch that names a ``resourceVersion`` is a compare-and-swap → 409 Conflict;
* one without retries on a lost race against the latest object (unconditional update);
* a write that changes nothing is not written and returns the stored object.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import copy
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubeboot.api import codec
from kubeboot.api.meta import generate_name, new_uid, validate_metadata
from kubeboot.api.patch import apply_patch
from kubeboot.api.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from kubeboot.api.strategies import strategy_for
from kubeboot.auth.authz import forbidden_error
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.clock import Clock, format_time
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Expired,
    FieldError,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    StatusError,
)
from kubeboot.storage.interface import (
    CompactedError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionMismatch,
    Store,
    StoreUnavailable,
    WatcherLaggingError,
)

__all__ = ["Admission", "ListOptions", "RestService", "WatchOptions", "WatchStream"]

log = logging.getLogger("kubeboot.api")

JsonObj = dict[str, Any]
_MAX_GUARANTEED_UPDATE_RETRIES = 16
_PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
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


@dataclass(frozen=True, slots=True)
class ListOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int = 0
    continue_token: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None


@dataclass(frozen=True, slots=True)
class WatchOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    resource_version: str | None = None
    resource_version_match: str | None = None
    send_initial_events: bool | None = None
    allow_bookmarks: bool = False


@dataclass(frozen=True, slots=True)
class WatchStream:
    """A watch's events, and the revision it starts after (the first bookmark's version)."""

    start_revision: int
    events: AsyncGenerator[JsonObj, None]


@dataclass(slots=True)
class _Selectors:
    labels: LabelSelector
    fields: FieldSelector
    namespace: str | None = None

    def matches(self, obj: JsonObj) -> bool:
        if self.labels.empty and self.fields.empty:
            return True
        meta = obj.get("metadata") or {}
        return self.labels.matches(meta.get("labels")) and self.fields.matches(obj)


def _encode_continue(revision: int, start_key: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start_key})
    return base64.b64encode(raw.encode()).decode()


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.b64decode(token, validate=True))
        revision, start = int(data["rv"]), str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise BadRequest(
            "continue key is not valid: not a continue token this server issued"
        ) from exc
    if data.get("v") != "meta.k8s.io/v1" or not start.startswith(prefix) or revision <= 0:
        raise BadRequest("continue key is not valid: it belongs to another list")
    return revision, start


def _parse_rv(rv: str | None, what: str = "resourceVersion") -> int | None:
    if rv in (None, ""):
        return None
    assert rv is not None
    if not rv.isdigit():
        raise BadRequest(f'invalid {what} "{rv}": it must be a decimal number this server issued')
    return int(rv)


@dataclass
class RestService:
    store: Store
    authorizer: Authorizer
    clock: Clock
    admission: list[Admission] = field(default_factory=list)

    # ---- authorization -------------------------------------------------------------------

    def authorize(
        self,
        user: UserInfo,
        verb: str,
        res: ResourceInfo,
        namespace: str | None,
        name: str = "",
        subresource: str = "",
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

    def _check_subresource(self, res: ResourceInfo, subresource: str) -> None:
        if subresource and subresource not in res.subresources:
            raise NotFound(
                f"the server could not find the requested resource ({res.plural}/{subresource})"
            )

    @staticmethod
    def _translate(exc: Exception, res: ResourceInfo, name: str) -> StatusError:
        if isinstance(exc, KeyNotFoundError):
            return NotFound.of(res.plural, res.group, name)
        if isinstance(exc, KeyExistsError):
            return AlreadyExists.of(res.plural, res.group, name)
        if isinstance(exc, RevisionMismatch):
            return Conflict.of(res.plural, res.group, name)
        if isinstance(exc, CompactedError):
            return Expired(f"too old resource version: {exc.requested} ({exc.compacted})")
        if isinstance(exc, StoreUnavailable):
            return ServiceUnavailable(
                f"storage is unavailable: {exc}; retry shortly", retry_after=1
            )
        raise exc

    def _validate(
        self, res: ResourceInfo, obj: JsonObj, old: JsonObj | None, subresource: str
    ) -> None:
        errors = validate_metadata(res, obj.get("metadata") or {})
        errors += strategy_for(res.plural).validate(obj, old, subresource)
        if errors:
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise Invalid.of(res.kind, res.group, name, errors)

    @staticmethod
    def _check_body(res: ResourceInfo, body: Any) -> JsonObj:
        if not isinstance(body, dict):
            raise BadRequest(f"the request body must be a JSON object ({res.kind})")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind is not None and kind != res.kind:
            raise BadRequest(
                f"the body is a {kind}, but the request is for {res.plural} (kind {res.kind})"
            )
        if api_version is not None and api_version != res.api_version:
            raise BadRequest(
                f'the body has apiVersion "{api_version}"; {res.plural} are served as '
                f'"{res.api_version}"'
            )
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise BadRequest("metadata must be a JSON object")
        return body

    # ---- create --------------------------------------------------------------------------

    async def create(
        self, user: UserInfo, res: ResourceInfo, namespace: str | None, body: Any
    ) -> JsonObj:
        if "create" not in res.verbs:
            raise MethodNotAllowed(f"create is not supported on {res.plural}")
        obj = copy.deepcopy(self._check_body(res, body))
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
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(str(meta["generateName"]))
        name = str(meta.get("name") or "")
        self.authorize(user, "create", res, namespace, "")
        if res.namespaced:
            assert namespace is not None
            await self._require_namespace(namespace)
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
            raise self._translate(exc, res, name) from exc
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    # ---- read ----------------------------------------------------------------------------

    async def get(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        subresource: str = "",
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        self.authorize(user, "get", res, namespace, name, subresource)
        kv = await self.store.get(self._key(res, namespace, name))
        if kv is None:
            raise NotFound.of(res.plural, res.group, name)
        return codec.decode(kv)

    def _selectors(self, res: ResourceInfo, label: str | None, fields: str | None) -> _Selectors:
        return _Selectors(parse_label_selector(label), parse_field_selector(fields, res))

    async def list(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        opts: ListOptions,
    ) -> JsonObj:
        sel = self._selectors(res, opts.label_selector, opts.field_selector)
        # As upstream's RequestInfo: a metadata.name field selector names the object, so a
        # node may list/watch its own Node and nothing else.
        self.authorize(user, "list", res, namespace, sel.fields.exact_name() or "")
        prefix = res.storage_prefix(namespace)
        revision: int | None = None
        start_key: str | None = None
        if opts.continue_token:
            revision, start_key = _decode_continue(opts.continue_token, prefix)
        elif opts.resource_version_match == "Exact":
            revision = _parse_rv(opts.resource_version)
        else:
            _parse_rv(opts.resource_version)
        items: list[JsonObj] = []
        more = False
        last_key = ""
        read_rev = revision
        try:
            while True:
                page = max(opts.limit - len(items), 0) if opts.limit else 0
                result = await self.store.range(
                    prefix, start_key=start_key, limit=page, revision=read_rev
                )
                read_rev = result.revision
                for kv in result.kvs:
                    last_key = kv.key
                    obj = codec.decode(kv)
                    if sel.matches(obj):
                        items.append(obj)
                if not result.more:
                    more = False
                    break
                start_key = last_key + "\x00"
                if opts.limit and len(items) >= opts.limit:
                    more = True
                    break
        except CompactedError as exc:
            if opts.continue_token:
                raise Expired(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter."
                ) from exc
            raise self._translate(exc, res, "") from exc
        except StoreUnavailable as exc:
            raise self._translate(exc, res, "") from exc
        assert read_rev is not None
        list_meta: JsonObj = {"resourceVersion": str(read_rev)}
        if more:
            list_meta["continue"] = _encode_continue(read_rev, last_key + "\x00")
        return {
            "kind": res.list_kind,
            "apiVersion": res.api_version,
            "metadata": list_meta,
            "items": items,
        }

    # ---- watch ---------------------------------------------------------------------------

    async def watch(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        opts: WatchOptions,
    ) -> WatchStream:
        """Authorize and validate eagerly, then return the event stream."""
        sel = self._selectors(res, opts.label_selector, opts.field_selector)
        self.authorize(user, "watch", res, namespace, sel.fields.exact_name() or "")
        rv = _parse_rv(opts.resource_version)
        if opts.send_initial_events and opts.resource_version_match != "NotOlderThan":
            raise Invalid.of(
                "ListOptions",
                "meta.k8s.io",
                "",
                [
                    FieldError.forbidden(
                        "resourceVersionMatch",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                ],
            )
        prefix = res.storage_prefix(namespace)
        exact = sel.fields.exact_name()
        watch_prefix = prefix + exact if exact else prefix
        initial = opts.send_initial_events or (rv in (None, 0) and opts.send_initial_events is None)
        start = rv or 0
        snapshot: builtins.list[KeyValue] = []
        if initial or start == 0:
            result = await self.store.range(watch_prefix)
            snapshot = [kv for kv in result.kvs if not exact or kv.key == prefix + exact]
            start = result.revision
        else:
            compacted = await self.store.compacted_revision()
            if start < compacted:
                raise Expired(f"too old resource version: {start} ({compacted})")
        events = self._stream(res, sel, prefix, watch_prefix, exact, start, snapshot, initial, opts)
        return WatchStream(start, events)

    async def _stream(
        self,
        res: ResourceInfo,
        sel: _Selectors,
        prefix: str,
        watch_prefix: str,
        exact: str | None,
        start: int,
        snapshot: builtins.list[KeyValue],
        initial: bool | None,
        opts: WatchOptions,
    ) -> AsyncGenerator[JsonObj, None]:
        if initial:
            for kv in snapshot:
                obj = codec.decode(kv)
                if sel.matches(obj):
                    yield {"type": "ADDED", "object": obj}
        if opts.send_initial_events:
            yield self._bookmark(res, start, initial_end=True)
        try:
            async for ev in self.store.watch(watch_prefix, start):
                if exact and ev.kv.key != prefix + exact:
                    continue
                event = self._translate_event(ev.type, ev.kv, ev.prev, sel)
                if event is not None:
                    yield event
        except (CompactedError, WatcherLaggingError) as exc:
            message = (
                f"too old resource version: {exc.requested} ({exc.compacted})"
                if isinstance(exc, CompactedError)
                else "the watch fell too far behind; re-list and watch again"
            )
            yield {"type": "ERROR", "object": Expired(message).to_status()}
        except StoreUnavailable as exc:
            # End the stream as kube-apiserver does when etcd drops a watch: clients watch
            # again from the last resourceVersion they saw, so nothing is skipped.
            log.warning("ending watch on %s: %s", watch_prefix, exc)

    def _bookmark(self, res: ResourceInfo, revision: int, *, initial_end: bool = False) -> JsonObj:
        meta: JsonObj = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return {
            "type": "BOOKMARK",
            "object": {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta},
        }

    def bookmark(self, res: ResourceInfo, revision: int) -> JsonObj:
        return self._bookmark(res, revision)

    @staticmethod
    def _translate_event(
        etype: EventType, kv: KeyValue, prev: KeyValue | None, sel: _Selectors
    ) -> JsonObj | None:
        obj = codec.decode(kv)
        if etype is EventType.DELETE:
            return {"type": "DELETED", "object": obj} if sel.matches(obj) else None
        now_matches = sel.matches(obj)
        if prev is None:
            return {"type": "ADDED", "object": obj} if now_matches else None
        before = sel.matches(codec.decode(prev))
        if now_matches and before:
            return {"type": "MODIFIED", "object": obj}
        if now_matches:
            return {"type": "ADDED", "object": obj}
        if before:
            return {"type": "DELETED", "object": obj}
        return None

    # ---- update / patch ------------------------------------------------------------------

    async def update(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str = "",
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        obj = self._check_body(res, body)
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
        precondition = _parse_rv(meta.get("resourceVersion"))

        def mutate(current: JsonObj) -> JsonObj:
            return copy.deepcopy(obj)

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
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        self.authorize(user, "patch", res, namespace, name, subresource)
        precondition: int | None = None
        if isinstance(patch, dict):
            meta = patch.get("metadata")
            if isinstance(meta, dict):
                precondition = _parse_rv(meta.get("resourceVersion"))

        def mutate(current: JsonObj) -> JsonObj:
            patched = apply_patch(current, patch, patch_type)
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
            new = mutate(copy.deepcopy(current))
            new_meta = new.setdefault("metadata", {})
            if not isinstance(new_meta, dict):
                raise BadRequest("metadata must be a JSON object")
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
                raise self._translate(exc, res, name) from exc
            new_meta["resourceVersion"] = str(stored.mod_revision)
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
        expected_rv = _parse_rv(resource_version)
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
            raise self._translate(exc, res, name) from exc
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
