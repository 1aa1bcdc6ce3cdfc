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

import json
from collections.abc import Awaitable, Callable, MutableSequence
from dataclasses import dataclass, field
from typing import Any

from kubeboot.api.registry import codec
from kubeboot.api.registry.apply import apply_configuration
from kubeboot.api.registry.conform import FieldValidation, conform, conform_patched
from kubeboot.api.registry.defaults import apply_defaults
from kubeboot.api.registry.deleteoptions import DeleteOptions
from kubeboot.api.registry.fieldmanager import update_managed_fields
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
from kubeboot.api.registry.reviews import review
from kubeboot.api.registry.store_errors import status_error_for
from kubeboot.api.registry.strategy_table import strategy_for
from kubeboot.api.registry.tokenrequest import TokenRequestAnswer, create_token
from kubeboot.api.registry.tokenreview import token_review
from kubeboot.auth.admission import AdmissionRequest, MutatingAdmission
from kubeboot.auth.authz import forbidden_error
from kubeboot.auth.chain import AuthenticatorChain
from kubeboot.auth.interface import Attributes, Authorizer, UserInfo
from kubeboot.auth.rbac import RuleResolver
from kubeboot.auth.serviceaccount_tokens import ServiceAccountTokens
from kubeboot.clock import Clock, format_time
from kubeboot.resources.goshape import go_shape
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.schema import Struct
from kubeboot.resources.schemas import kind_schema
from kubeboot.resources.status import (
    AlreadyExists,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
    StatusError,
    UnsupportedMediaType,
    qualified_resource,
    success_status,
)
from kubeboot.storage.interface import (
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatch,
    Store,
    StoreUnavailable,
)

__all__ = ["NAMESPACES", "SERVER_MANAGER", "Admission", "RestService"]

JsonObj = dict[str, Any]
_MAX_GUARANTEED_UPDATE_RETRIES = 16


class _StaleCopy(Exception):
    """An update made no change to a possibly stale copy: read the current value."""


# The field manager of writes the server makes itself (default RBAC, namespaces).
SERVER_MANAGER = "kube-apiserver"
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


def _finalized(res: ResourceInfo, obj: JsonObj) -> bool:
    """Marked for deletion and no finalizer left: an update deletes it instead (upstream's
    ShouldDeleteDuringUpdate; a namespace also waits for its spec.finalizers)."""
    meta = obj.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if res is NAMESPACES:
        return not (obj.get("spec") or {}).get("finalizers")
    return meta.get("deletionGracePeriodSeconds") in (0, None)


def _no_new_finalizers(obj: JsonObj, old: JsonObj) -> list[FieldError]:
    """Upstream's ValidateObjectMetaUpdate: an object being deleted takes no new finalizer."""
    old_meta = old.get("metadata") or {}
    if not old_meta.get("deletionTimestamp"):
        return []
    before = set(old_meta.get("finalizers") or [])
    added = sorted(set((obj.get("metadata") or {}).get("finalizers") or []) - before)
    if not added:
        return []
    listed = ", ".join(json.dumps(f) for f in added)  # Go's %#v of a []string
    return [
        FieldError.forbidden(
            "metadata.finalizers",
            "no new finalizers can be added if the object is being deleted, found new "
            f"finalizers []string{{{listed}}}",
        )
    ]


def _core(plural: str) -> ResourceInfo:
    res = find_resource("", "v1", plural)
    assert res is not None
    return res


NAMESPACES = _core("namespaces")
SERVICE_ACCOUNTS = _core("serviceaccounts")
# Reviews answered with a new object rather than the request: no fields of the sender's.
_FRESH_REVIEWS = frozenset({"selfsubjectreviews", "selfsubjectrulesreviews"})

# Admission hook: (user, resource, verb, subresource, new object, old object) -> None or raise.
Admission = Callable[[UserInfo, ResourceInfo, str, str, JsonObj, JsonObj | None], Awaitable[None]]
# Write observer: (user, resource, verb, subresource, stored object or None on delete, previous
# object or None on create) -> None, awaited after the write was stored (the issuance ledger).
# It must not raise: the write has happened, and the client is told it did.
Observer = Callable[
    [UserInfo, ResourceInfo, str, str, JsonObj | None, JsonObj | None], Awaitable[None]
]


@dataclass
class RestService:
    store: Store
    authorizer: Authorizer
    clock: Clock
    admission: list[Admission] = field(default_factory=list)
    # Run on the object as sent, before the RBAC check and validation (NodeRestriction).
    mutating_admission: list[MutatingAdmission] = field(default_factory=list)
    # Admission with side effects (a bound token's use count): creates that are stored only.
    side_effect_admission: list[Admission] = field(default_factory=list)
    # Told of every stored create, update and delete (never of a dry run).
    observers: list[Observer] = field(default_factory=list)
    # ServiceAccount tokens: the issuer of serviceaccounts/token, and the chain TokenReview
    # asks (None: the server has no such tokens / no token authenticators).
    service_accounts: ServiceAccountTokens | None = None
    token_reviews: AuthenticatorChain | None = None
    # What a SelfSubjectRulesReview lists (the authorizer's rule resolvers); None lists none.
    rules: RuleResolver | None = None
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
        if res is NAMESPACES and name:
            namespace = name  # upstream's RequestInfo: a namespace is in itself
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

    async def _require_namespace(self, res: ResourceInfo, namespace: str, name: str) -> None:
        """The namespace exists and is not being deleted (NamespaceLifecycle admission)."""
        kv = await self.store.get(self._key(NAMESPACES, None, namespace))
        if kv is None:
            raise NotFound.of("namespaces", "", namespace)
        ns = codec.decode(kv)
        if (
            ns["metadata"].get("deletionTimestamp")
            or (ns.get("status") or {}).get("phase") == "Terminating"
        ):
            raise Forbidden(
                f"{qualified_resource(res.plural, res.group)} "
                f'"{name}" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated",
                name=name,
                group=res.group,
                kind=res.plural,
                causes=[
                    FieldError(
                        "NamespaceTerminating",
                        "metadata.namespace",
                        f"namespace {namespace} is being terminated",
                    )
                ],
            )

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

    @staticmethod
    def _check_verb(res: ResourceInfo, verb: str) -> None:
        """Clients may use only the verbs the table serves (kinds kubeboot serves read-only
        refuse writes with a 405 that says why); :meth:`publish` is the server's own way in."""
        if verb not in res.verbs:
            raise MethodNotAllowed(res.verb_refused(verb))

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
        if old is not None:
            errors += _no_new_finalizers(obj, old)
        errors += strategy_for(res.plural).validate(obj, old, subresource)
        if errors:
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise Invalid.of(res.kind, res.group, name, errors)

    def _managed_fields(
        self,
        res: ResourceInfo,
        schema: Struct | None,
        live: JsonObj | None,
        new: JsonObj,
        manager: str,
        subresource: str,
    ) -> list[JsonObj]:
        if schema is None:
            return []
        return update_managed_fields(
            live,
            new,
            schema,
            manager=manager,
            resource=res.plural,
            subresource=subresource,
            api_version=res.api_version,
            now=self.clock.now(),
        )

    # ---- reviews -------------------------------------------------------------------------

    def review(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        manager: str = SERVER_MANAGER,
    ) -> JsonObj:
        """Answer an access review (never stored). As upstream, the answer is the request in
        Go's shape with its status, and managedFields for what the requester set — recorded
        before validation, as upstream's create handler does, so a 422 about a metadata that
        must be empty prints them too."""
        schema = kind_schema(res.group, res.gv.version, res.kind)
        body = self._with_requester_fields(res, schema, body, manager)
        answer = review(self.authorizer, self.rules, user, res, namespace, body, self.clock.now())
        return answer if schema is None else go_shape(answer, schema)

    def _with_requester_fields(
        self, res: ResourceInfo, schema: Any, body: Any, manager: str
    ) -> Any:
        """``body`` with managedFields for what the requester set (reviews answered with the
        request, not the fresh ones)."""
        if schema is not None and res.plural not in _FRESH_REVIEWS and isinstance(body, dict):
            managed = self._managed_fields(res, schema, None, body, manager, "")
            if managed:
                body = {
                    **body,
                    "metadata": {**(body.get("metadata") or {}), "managedFields": managed},
                }
        return body

    async def review_token(
        self, res: ResourceInfo, body: JsonObj, *, manager: str = SERVER_MANAGER
    ) -> JsonObj:
        """Answer a TokenReview (:mod:`kubeboot.api.registry.tokenreview`)."""
        schema = kind_schema(res.group, res.gv.version, res.kind)
        answer = await token_review(
            self.token_reviews, self._with_requester_fields(res, schema, body, manager)
        )
        return answer if schema is None else go_shape(answer, schema)

    async def create_token(
        self, user: UserInfo, namespace: str, name: str, body: Any
    ) -> TokenRequestAnswer:
        """``create serviceaccounts/token`` (:mod:`kubeboot.api.registry.tokenrequest`)."""
        self.authorize(user, "create", SERVICE_ACCOUNTS, namespace, name, "token")
        if self.service_accounts is None:
            raise NotFound(
                "the server could not find the requested resource (serviceaccounts/token)"
            )
        return await create_token(
            self.service_accounts, self.store, namespace, name, body, self.clock.now()
        )

    # ---- create --------------------------------------------------------------------------

    async def create(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = SERVER_MANAGER,
        validation: FieldValidation | None = None,
        applied: bool = False,
    ) -> JsonObj:
        """Create ``body``; ``validation`` is the request's fieldValidation (default: Ignore).
        ``applied``: ``body`` is a server-side apply's result, with its managedFields.
        ``dry_run`` runs every step but the write and returns what would be stored (without a
        resourceVersion, as upstream); ``manager`` owns the fields it set (managedFields)."""
        self._check_verb(res, "create")
        return await self._create(
            user,
            res,
            namespace,
            body,
            dry_run=dry_run,
            manager=manager,
            validation=validation,
            applied=applied,
        )

    async def _create(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        manager: str = SERVER_MANAGER,
        validation: FieldValidation | None = None,
        applied: bool = False,
    ) -> JsonObj:
        obj = conform(res, body, validation or FieldValidation("Ignore"))
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            assert namespace is not None
            if meta.get("namespace") not in (None, "", namespace):
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        apply_defaults(res.plural, obj)
        schema = kind_schema(res.group, res.gv.version, res.kind)
        if applied:
            managed = list(meta.get("managedFields") or [])
        else:
            managed = self._managed_fields(res, schema, None, obj, manager, "")
        requested_name = str(meta.get("name") or "")
        self.authorize(user, "create", res, namespace, "")
        if res.namespaced:
            assert namespace is not None
            await self._require_namespace(res, namespace, requested_name)
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
        if managed:
            meta["managedFields"] = managed
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        strategy_for(res.plural).prepare_create(obj, user, now)
        if schema is not None:
            obj = go_shape(obj, schema)
            meta = obj["metadata"]
        self._validate(res, obj, None, "")
        if validation is not None:
            validation.warnings.extend(strategy_for(res.plural).warnings(obj, None))
        await self._admit(user, res, "create", "", obj, None)
        if dry_run:
            if await self.store.get(self._key(res, namespace, name)) is not None:
                raise AlreadyExists.of(res.plural, res.group, name)
            return obj
        for hook in self.side_effect_admission:
            await hook(user, res, "create", "", obj, None)
        try:
            kv = await self.store.create(self._key(res, namespace, name), codec.encode(obj))
        except (KeyExistsError, StoreUnavailable) as exc:
            raise status_error_for(exc, res, name) from exc
        meta["resourceVersion"] = str(kv.mod_revision)
        strategy_for(res.plural).created(obj, user, now)
        for observe in self.observers:
            await observe(user, res, "create", "", obj, None)
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
        dry_run: bool = False,
        manager: str = SERVER_MANAGER,
        validation: FieldValidation | None = None,
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        if not subresource:
            self._check_verb(res, "update")
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
        if precondition is None and not strategy_for(res.plural).allow_unconditional_update:
            if await self.store.get(self._key(res, namespace, name)) is None:
                raise NotFound.of(res.plural, res.group, name)
            # Upstream's Store.Update: the kind is named by its resource here, as upstream does.
            raise Invalid.of(
                res.plural,
                res.group,
                name,
                [
                    FieldError.invalid(
                        "metadata.resourceVersion", 0, "must be specified for an update"
                    )
                ],
            )

        def mutate(current: JsonObj) -> JsonObj:
            return codec.copy_object(obj)  # a retry must not see the last attempt's edits

        return await self._guaranteed_update(
            user,
            res,
            namespace,
            name,
            subresource,
            mutate,
            precondition,
            dry_run=dry_run,
            manager=manager,
            warnings=validation.warnings if validation is not None else None,
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
        dry_run: bool = False,
        manager: str = SERVER_MANAGER,
        validation: FieldValidation | None = None,
    ) -> JsonObj:
        self._check_subresource(res, subresource)
        if not subresource:
            self._check_verb(res, "patch")
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
            user,
            res,
            namespace,
            name,
            subresource,
            mutate,
            precondition,
            dry_run=dry_run,
            manager=manager,
            warnings=validation.warnings if validation is not None else None,
        )

    async def apply(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str = "",
        *,
        manager: str,
        validation: FieldValidation | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> tuple[JsonObj, bool]:
        """Server-side apply (:mod:`.apply`): (the object, whether it was created — applying
        to an object that is not there creates it)."""
        self._check_subresource(res, subresource)
        fv = validation or FieldValidation("Ignore")
        self.authorize(user, "patch", res, namespace, name, subresource)
        schema = kind_schema(res.group, res.gv.version, res.kind)
        if schema is None:
            raise UnsupportedMediaType(f"server-side apply is not supported for {res.plural}")
        _check_applied_kind(res, body)
        config = conform(res, body, fv)
        meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        if meta.get("name") not in (None, "", name):
            raise BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({name})"
            )
        config.setdefault("metadata", {})["name"] = name

        def applied(live: JsonObj | None) -> JsonObj:
            return apply_configuration(
                live,
                config,
                schema,
                manager=manager,
                resource=res.plural,
                subresource=subresource,
                api_version=res.api_version,
                now=self.clock.now(),
                force=force,
            )

        if await self.store.get(self._key(res, namespace, name)) is None and not subresource:
            created = await self.create(
                user, res, namespace, applied(None), dry_run=dry_run, manager=manager, applied=True
            )
            return created, True
        updated = await self._guaranteed_update(
            user,
            res,
            namespace,
            name,
            subresource,
            applied,
            None,
            dry_run=dry_run,
            manager=manager,
            applied=True,
            warnings=fv.warnings,
        )
        return updated, False

    async def publish(
        self, user: UserInfo, res: ResourceInfo, namespace: str | None, desired: JsonObj
    ) -> tuple[JsonObj, bool]:
        """Create or correct an object the API server itself owns: (stored object, changed).

        Upstream's apiserver writes such objects (the ``default/kubernetes`` Service) from its
        own controllers, beside the REST verbs; here they take the normal path (defaulting,
        validation, admission, concurrency) minus the verb gate, so a kind clients may only
        read can still hold them. ``desired``'s top-level fields other than ``metadata``
        replace the stored ones; labels and annotations are merged in; nothing else changes.
        """
        name = str(desired["metadata"]["name"])
        try:
            return await self._create(user, res, namespace, desired), True
        except AlreadyExists:
            pass

        def mutate(current: JsonObj) -> JsonObj:
            for key, value in desired.items():
                if key != "metadata":
                    current[key] = codec.copy_object(value)
            meta = current["metadata"]
            for key in ("labels", "annotations"):
                if desired["metadata"].get(key):
                    meta[key] = {**(meta.get(key) or {}), **desired["metadata"][key]}
            return current

        before = await self.get(user, res, namespace, name)
        after = await self._guaranteed_update(user, res, namespace, name, "", mutate, None)
        return after, after != before

    async def _guaranteed_update(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        subresource: str,
        mutate: Callable[[JsonObj], JsonObj],
        precondition: int | None,
        *,
        dry_run: bool = False,
        manager: str = SERVER_MANAGER,
        applied: bool = False,
        warnings: MutableSequence[str] | None = None,
    ) -> JsonObj:
        """``applied``: ``mutate`` is a server-side apply, which sets managedFields itself;
        ``warnings`` collects the strategy's warnings for the client."""
        key = self._key(res, namespace, name)
        strategy = strategy_for(res.plural)
        schema = kind_schema(res.group, res.gv.version, res.kind)
        # As upstream's GuaranteedUpdate with the watch cache's copy: start from a possibly
        # stale value (the compare-and-swap catches it), retry from the value a failed CAS
        # returned, and read again only if a stale copy made the update a no-op.
        fresh = dry_run  # a dry run answers with what would be stored now
        kv = await (self.store.get if fresh else self.store.get_hint)(key)
        for _ in range(_MAX_GUARANTEED_UPDATE_RETRIES):
            if kv is None:
                raise NotFound.of(res.plural, res.group, name)
            warned = len(warnings) if warnings is not None else 0
            try:
                current = codec.decode(kv)
                new = mutate(codec.copy_object(current))
                new_meta = new.setdefault("metadata", {})
                if not isinstance(new_meta, dict):
                    raise BadRequest("metadata must be a JSON object")
                apply_defaults(res.plural, new)
                if applied:
                    managed = list(new_meta.get("managedFields") or [])
                else:
                    managed = self._managed_fields(res, schema, current, new, manager, subresource)
                await self._admit_mutating(
                    user, res, "update", subresource, namespace, name, new, current
                )
                await self.rbac_policy.check(user, res, namespace, name, new, current)
                # As upstream's Store.Update: the resourceVersion is compared once mutating
                # admission (NodeRestriction) and the escalation check have seen the object.
                if precondition is not None and precondition != kv.mod_revision:
                    raise Conflict.of(res.plural, res.group, name)
                cur_meta = current["metadata"]
                for owned in (
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ):
                    if owned in cur_meta:
                        new_meta[owned] = cur_meta[owned]
                    else:
                        new_meta.pop(owned, None)
                new_meta.pop("managedFields", None)
                if managed:
                    new_meta["managedFields"] = managed
                new["kind"], new["apiVersion"] = res.kind, res.api_version
                strategy.prepare_update(new, current, subresource, user, self.clock.now())
                if schema is not None:
                    new = go_shape(new, schema)
                new_meta = new["metadata"]
                new_meta["resourceVersion"] = cur_meta.get("resourceVersion")
                self._validate(res, new, current, subresource)
                if warnings is not None and not subresource:
                    warnings.extend(strategy.warnings(new, current))
                if new == current:
                    if fresh:
                        return current
                    raise _StaleCopy
                await self._admit(user, res, "update", subresource, new, current)
            except (StatusError, _StaleCopy):
                # A stale copy can fail a precondition or validation, or look unchanged:
                # decide on the current value (upstream's origStateIsCurrent).
                if fresh:
                    raise
                if warnings is not None:
                    del warnings[warned:]
                kv, fresh = await self.store.get(key), True
                continue
            if dry_run:
                return new
            if _finalized(res, new):
                return await self._delete_finalized(res, key, kv.mod_revision, new)
            try:
                stored = await self.store.update(key, codec.encode(new), kv.mod_revision)
            except RevisionMismatch as exc:
                if precondition is not None:
                    raise Conflict.of(res.plural, res.group, name) from None
                kv, fresh = exc.current, True
                continue
            except (KeyNotFoundError, StoreUnavailable) as exc:
                raise status_error_for(exc, res, name) from exc
            new_meta["resourceVersion"] = str(stored.mod_revision)
            strategy.updated(new, current, subresource, user, self.clock.now())
            for observe in self.observers:
                await observe(user, res, "update", subresource, new, current)
            return new
        raise Conflict.of(res.plural, res.group, name, "too many concurrent writers; try again")

    # ---- delete --------------------------------------------------------------------------

    async def delete(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        options: DeleteOptions | None = None,
    ) -> JsonObj:
        """Delete; the answer is the deleted object for kinds whose upstream registry returns
        it (``ResourceInfo.returns_deleted_object``), else a ``Success`` Status naming it."""
        options = options or DeleteOptions()
        self._check_verb(res, "delete")
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
        self._check_delete_preconditions(res, current, options, kv.mod_revision)
        if res is NAMESPACES and not (
            current["metadata"].get("deletionTimestamp")
            and not (current.get("spec") or {}).get("finalizers")
        ):
            return await self._begin_namespace_deletion(user, name, current, options)
        if res is not NAMESPACES and current["metadata"].get("finalizers"):
            return await self._mark_deleting(res, namespace, name, current, options.dry_run)
        if not options.dry_run:
            try:
                await self.store.delete(key, kv.mod_revision)
            except RevisionMismatch as exc:
                raise Conflict.of(res.plural, res.group, name) from exc
            except (KeyNotFoundError, StoreUnavailable) as exc:
                raise status_error_for(exc, res, name) from exc
            for observe in self.observers:
                await observe(user, res, "delete", "", None, current)
        return self._deleted(res, current)

    async def _mark_deleting(
        self, res: ResourceInfo, namespace: str | None, name: str, current: JsonObj, dry_run: bool
    ) -> JsonObj:
        """An object with finalizers is not deleted but marked (``deletionTimestamp``, a zero
        grace period, generation bumped) and answered as it now is; the update that removes
        its last finalizer deletes it. Marked already: answered unchanged."""
        if current["metadata"].get("deletionTimestamp"):
            return current
        now = format_time(self.clock.now())

        def mark(obj: JsonObj) -> JsonObj:
            meta = obj["metadata"]
            if int(meta.get("generation") or 0) > 0:
                meta["generation"] = int(meta["generation"]) + 1
            meta["deletionTimestamp"] = now
            meta["deletionGracePeriodSeconds"] = 0
            return obj

        return await self._write_directly(res, namespace, name, mark, dry_run)

    async def _delete_finalized(
        self, res: ResourceInfo, key: str, revision: int, obj: JsonObj
    ) -> JsonObj:
        """A Terminating namespace whose last finalizer went: deleted instead of updated
        (upstream's ShouldDeleteNamespaceDuringUpdate)."""
        name = str(obj["metadata"].get("name") or "")
        try:
            await self.store.delete(key, revision)
        except RevisionMismatch as exc:
            raise Conflict.of(res.plural, res.group, name) from exc
        except (KeyNotFoundError, StoreUnavailable) as exc:
            raise status_error_for(exc, res, name) from exc
        return obj

    @staticmethod
    def _deleted(res: ResourceInfo, obj: JsonObj) -> JsonObj:
        if res.returns_deleted_object:
            return obj
        meta = obj["metadata"]
        return success_status(meta["name"], res.group, res.plural, str(meta.get("uid") or ""))

    @staticmethod
    def _check_delete_preconditions(
        res: ResourceInfo, current: JsonObj, options: DeleteOptions, revision: int
    ) -> None:
        """409 when a precondition fails, with upstream's texts: the namespace registry's
        own, and BeforeDelete's for the other kinds (which name the Kind, not the resource)."""
        name = str(current["metadata"].get("name") or "")
        uid = str(current["metadata"].get("uid") or "")
        expected_rv = parse_resource_version(options.resource_version)
        if res is NAMESPACES:
            resource, rv_detail, uid_detail = (
                res.plural,
                f"Precondition failed: ResourceVersion in precondition: {expected_rv}, "
                f"ResourceVersion in object meta: {revision}",
                f"Precondition failed: UID in precondition: {options.uid}, UID in object meta: "
                f"{uid}",
            )
        else:
            resource = res.kind
            uid_detail = (
                f"the UID in the precondition ({options.uid}) does not match the UID in record "
                f"({uid}). The object might have been deleted and then recreated"
            )
            rv_detail = (
                f"the ResourceVersion in the precondition ({options.resource_version}) does not "
                f"match the ResourceVersion in record ({revision}). The object might have been "
                "modified"
            )
        if options.uid and options.uid != uid:
            raise Conflict.of(resource, res.group, name, uid_detail)
        if expected_rv is not None and expected_rv != revision:
            raise Conflict.of(resource, res.group, name, rv_detail)

    async def _begin_namespace_deletion(
        self, user: UserInfo, name: str, current: JsonObj, options: DeleteOptions
    ) -> JsonObj:
        """Namespaces are deleted in two steps, as upstream: the first DELETE marks the
        namespace (``deletionTimestamp``, phase Terminating) and answers it; the namespace
        controller removes its content and its ``kubernetes`` finalizer (``/finalize``), which
        deletes it. A namespace already marked is answered as it is."""
        if current["metadata"].get("deletionTimestamp"):
            return current
        now = format_time(self.clock.now())

        def mark(obj: JsonObj) -> JsonObj:
            obj["metadata"].setdefault("deletionTimestamp", now)
            obj.setdefault("status", {})["phase"] = "Terminating"
            return obj

        return await self._write_directly(NAMESPACES, None, name, mark, options.dry_run)

    async def _write_directly(
        self,
        res: ResourceInfo,
        namespace: str | None,
        name: str,
        change: Callable[[JsonObj], JsonObj],
        dry_run: bool,
    ) -> JsonObj:
        """A server-side change of a stored object (no strategy, no field manager)."""
        key = self._key(res, namespace, name)
        # As upstream's GuaranteedUpdate with the watch cache's copy: start from a possibly
        # stale value (the compare-and-swap catches it), retry from the value a failed CAS
        # returned, and read again only if a stale copy made the update a no-op.
        fresh = dry_run  # a dry run answers with what would be stored now
        kv = await (self.store.get if fresh else self.store.get_hint)(key)
        for _ in range(_MAX_GUARANTEED_UPDATE_RETRIES):
            if kv is None:
                raise NotFound.of(res.plural, res.group, name)
            new = change(codec.decode(kv))
            if dry_run:
                return new
            try:
                stored = await self.store.update(key, codec.encode(new), kv.mod_revision)
            except RevisionMismatch:
                continue
            except (KeyNotFoundError, StoreUnavailable) as exc:
                raise status_error_for(exc, res, name) from exc
            new["metadata"]["resourceVersion"] = str(stored.mod_revision)
            return new
        raise Conflict.of(res.plural, res.group, name, "too many concurrent writers; try again")

    async def delete_collection(
        self,
        user: UserInfo,
        res: ResourceInfo,
        namespace: str | None,
        opts: ListOptions,
        options: DeleteOptions | None = None,
    ) -> JsonObj:
        """Delete every listed object; the answer is the list of what was deleted."""
        dry_run = options is not None and options.dry_run
        self._check_verb(res, "deletecollection")
        sel = Selectors.parse(res, opts.label_selector, opts.field_selector)
        # One decision, on deletecollection (as upstream): a node may delete its own
        # ResourceSlices (spec.nodeName=<node>) without being allowed to list anything.
        self.authorize(
            user, "deletecollection", res, namespace, field_selector=sel.fields.requirements()
        )
        listed = await list_objects(self.store, res, namespace, sel, opts)
        deleted = []
        for obj in listed["items"]:
            meta = obj["metadata"]
            if dry_run:
                deleted.append(obj)
                continue
            try:
                await self.store.delete(
                    self._key(res, meta.get("namespace") or namespace, meta["name"]),
                    int(meta["resourceVersion"]),
                )
                deleted.append(obj)
            except (KeyNotFoundError, RevisionMismatch):
                continue
            for observe in self.observers:
                await observe(user, res, "delete", "", None, obj)
        return {**listed, "items": deleted}


def _check_applied_kind(res: ResourceInfo, body: Any) -> None:
    """An apply configuration names exactly the resource's group, version and kind."""
    fields = body if isinstance(body, dict) else {}
    api_version = fields.get("apiVersion")
    kind = fields.get("kind")
    api_version = api_version if isinstance(api_version, str) else ""
    kind = kind if isinstance(kind, str) else ""
    if api_version == res.api_version and kind == res.kind:
        return
    group, _, version = api_version.rpartition("/")
    if api_version.count("/") > 1:
        group, version = "", ""
    raise BadRequest(f"invalid object type: {group}/{version}, Kind={kind}")
