"""OpenAPI v3, one document per served group version, generated from the one schema module.

``/openapi/v3`` is the index (``{"paths": {"api/v1": {"serverRelativeURL": ...?hash=H}}}``,
``H`` the uppercase hex SHA-512 of the document); each group version's document carries:

* ``components.schemas``: every kind of the group version, its ``<Kind>List``, every struct
  they reach and the meta types of the wire (``DeleteOptions``, ``Status``, ``WatchEvent``,
  ``Patch``...), named as upstream (``io.k8s.api.coordination.v1.Lease``), with upstream's
  extensions: ``x-kubernetes-group-version-kind`` on kinds, ``x-kubernetes-list-type``,
  ``-list-map-keys``, ``-map-type``, ``-patch-strategy``, ``-patch-merge-key``, enums and
  ``required``. Types come from :mod:`kubeboot.resources.schemas` (field descriptions are
  not carried there, so the documents have none: ``kubectl explain`` shows fields and types);
* ``paths``: the routes of every resource (list, create, deletecollection, get, replace,
  patch, delete, subresources, watch), with upstream's operationIds, ``x-kubernetes-action``
  and ``x-kubernetes-group-version-kind``. kubectl looks for the PATCH operation's
  ``fieldValidation`` parameter to trust server-side field validation.

Documents are built once per process (the table is static).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from kubeboot.resources.registry import (
    RESOURCES,
    GroupVersion,
    ResourceInfo,
    group_versions,
    subresource_verbs,
)
from kubeboot.resources.schema import Field, ListOf, MapOf, Scalar, Struct, Type
from kubeboot.resources.schemas import kind_schema, meta_v1

__all__ = ["openapi_document", "openapi_index"]

JsonObj = dict[str, Any]
_REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Scalars that upstream models as named schemas of their own.
_NAMED_SCALARS: dict[str, tuple[str, JsonObj]] = {
    "time": (_META + "Time", {"type": "string", "format": "date-time"}),
    "microtime": (_META + "MicroTime", {"type": "string", "format": "date-time"}),
    "quantity": ("io.k8s.apimachinery.pkg.api.resource.Quantity", {"type": "string"}),
    "intorstring": (
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        {"type": "string", "format": "int-or-string"},
    ),
}
_PLAIN: dict[str, JsonObj] = {
    "string": {"type": "string"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "float64": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string", "format": "byte"},
}
_MEDIA = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_PATCH_MEDIA = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _gv_key(gv: GroupVersion) -> str:
    return f"apis/{gv.group}/{gv.version}" if gv.group else f"api/{gv.version}"


class _Builder:
    """Collects the component schemas one document needs."""

    def __init__(self) -> None:
        self.schemas: dict[str, JsonObj] = {}

    def ref(self, name: str) -> JsonObj:
        return {"$ref": _REF + name}

    def scalar(self, t: Scalar) -> JsonObj:
        if t.kind in _NAMED_SCALARS:
            name, schema = _NAMED_SCALARS[t.kind]
            self.schemas.setdefault(name, schema)
            return self.ref(name)
        if t.kind == "any":
            name = (
                _META + "FieldsV1"
                if t.go == "v1.FieldsV1"
                else ("io.k8s.apimachinery.pkg.runtime.RawExtension")
            )
            self.schemas.setdefault(name, {"type": "object"})
            return self.ref(name)
        schema = dict(_PLAIN[t.kind])
        if t.enum:
            schema["enum"] = list(t.enum)
        return schema

    def type_(self, t: Type) -> JsonObj:
        if isinstance(t, Scalar):
            return self.scalar(t)
        if isinstance(t, ListOf):
            out: JsonObj = {"type": "array", "items": self.type_(t.item)}
            if t.list_type:
                out["x-kubernetes-list-type"] = t.list_type
            if t.map_keys:
                out["x-kubernetes-list-map-keys"] = list(t.map_keys)
            return out
        if isinstance(t, MapOf):
            out = {"type": "object", "additionalProperties": self.type_(t.value)}
            if t.map_type:
                out["x-kubernetes-map-type"] = t.map_type
            return out
        return self.ref(self.struct(t))

    def field(self, f: Field) -> JsonObj:
        schema = self.type_(f.type)
        if "$ref" in schema:  # upstream wraps references so that siblings may follow
            wrapped: JsonObj = {}
            if isinstance(f.type, Struct) and not f.pointer:
                wrapped["default"] = {}
            wrapped["allOf"] = [schema]
            schema = wrapped
        if f.patch_merge_key:
            schema["x-kubernetes-patch-merge-key"] = f.patch_merge_key
        if f.patch_strategy:
            schema["x-kubernetes-patch-strategy"] = f.patch_strategy
        return schema

    def struct(self, s: Struct) -> str:
        name = s.openapi_name
        if name in self.schemas:
            return name
        self.schemas[name] = {}  # reserve first: structs may refer to themselves
        schema: JsonObj = {"type": "object"}
        required = sorted(f.name for f in s.fields if f.required)
        if required:
            schema["required"] = required
        schema["properties"] = {f.name: self.field(f) for f in sorted(s.fields, key=_by_name)}
        if s.gvk is not None:
            schema["x-kubernetes-group-version-kind"] = [
                _gvk(s.gvk.group, s.gvk.version, s.gvk.kind)
            ]
        if s.map_type:
            schema["x-kubernetes-map-type"] = s.map_type
        self.schemas[name] = schema
        return name

    def list_of(self, r: ResourceInfo, item: Struct) -> str:
        name = item.openapi_name + "List"
        self.schemas[name] = {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "items": {"type": "array", "items": self.ref(self.struct(item))},
                "kind": {"type": "string"},
                "metadata": {"default": {}, "allOf": [self.ref(self.struct(meta_v1.LIST_META))]},
            },
            "x-kubernetes-group-version-kind": [_gvk(r.group, r.gv.version, r.list_kind)],
        }
        return name


def _by_name(f: Field) -> str:
    return f.name


def _gvk(group: str, version: str, kind: str) -> JsonObj:
    return {"group": group, "kind": kind, "version": version}


def _camel(group: str) -> str:
    """``rbac.authorization.k8s.io`` → ``RbacAuthorization``; the core group is ``Core``."""
    if not group:
        return "Core"
    head = group.removesuffix(".k8s.io").replace("-", ".")
    return "".join(part[:1].upper() + part[1:] for part in head.split("."))


def _param(name: str, where: str, kind: str = "string") -> JsonObj:
    param: JsonObj = {"name": name, "in": where, "schema": {"type": kind, "uniqueItems": True}}
    if where == "path":
        param["required"] = True
    return param


_WRITE_PARAMS = [_param("dryRun", "query"), _param("fieldManager", "query")]
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "query", "boolean"),
    _param("continue", "query"),
    _param("fieldSelector", "query"),
    _param("labelSelector", "query"),
    _param("limit", "query", "integer"),
    _param("resourceVersion", "query"),
    _param("resourceVersionMatch", "query"),
    _param("sendInitialEvents", "query", "boolean"),
    _param("timeoutSeconds", "query", "integer"),
    _param("watch", "query", "boolean"),
]


class _Paths:
    def __init__(self, b: _Builder, gv: GroupVersion) -> None:
        self.b = b
        self.gv = gv
        self.tag = f"{gv.group.replace('.k8s.io', '').replace('.', '_') or 'core'}_{gv.version}"
        self.prefix = "Core" if not gv.group else _camel(gv.group)
        self.paths: dict[str, JsonObj] = {}

    def content(self, name: str, media: tuple[str, ...] = _MEDIA) -> JsonObj:
        return {m: {"schema": self.b.ref(name)} for m in media}

    def op(
        self,
        r: ResourceInfo,
        verb: str,
        action: str,
        kind: str,
        *,
        params: list[JsonObj],
        response: str,
        body: str | None = None,
        codes: tuple[str, ...] = ("200",),
    ) -> JsonObj:
        version = self.gv.version[:1].upper() + self.gv.version[1:]
        op: JsonObj = {"tags": [self.tag], "operationId": f"{verb}{self.prefix}{version}{kind}"}
        if params:  # an empty list would not survive kube-openapi's round trip (omitempty)
            op["parameters"] = params
        if body is not None:
            media = _PATCH_MEDIA if action == "patch" else _MEDIA
            op["requestBody"] = {"content": self.content(body, media), "required": True}
        op["responses"] = {
            **{code: {"description": "OK", "content": self.content(response)} for code in codes},
            "401": {"description": "Unauthorized"},
        }
        op["x-kubernetes-action"] = action
        op["x-kubernetes-group-version-kind"] = _gvk(r.group, r.gv.version, r.kind)
        return op

    def resource(self, r: ResourceInfo, kind_name: str, list_name: str | None) -> None:
        ns = "Namespaced" if r.namespaced else ""
        base = f"/{_gv_key(self.gv)}"
        ns_path = f"{base}/namespaces/{{namespace}}" if r.namespaced else base
        ns_params = [_param("namespace", "path")] if r.namespaced else []
        status = _META + "Status"
        self.b.struct(meta_v1.STATUS)
        delete_body = self.b.struct(meta_v1.DELETE_OPTIONS)
        collection: JsonObj = {}
        if "list" in r.verbs and list_name:
            collection["get"] = self.op(
                r, "list", "list", f"{ns}{r.kind}", params=_LIST_PARAMS, response=list_name
            )
            if r.namespaced:
                self.paths[f"{base}/{r.plural}"] = {
                    "get": self.op(
                        r,
                        "list",
                        "list",
                        f"{r.kind}ForAllNamespaces",
                        params=_LIST_PARAMS,
                        response=list_name,
                    )
                }
        if "create" in r.verbs:
            collection["post"] = self.op(
                r,
                "create",
                "post",
                f"{ns}{r.kind}",
                params=[*_WRITE_PARAMS, _param("fieldValidation", "query")],
                response=kind_name,
                body=kind_name,
                codes=("200", "201", "202"),
            )
        if "deletecollection" in r.verbs:
            collection["delete"] = self.op(
                r,
                "delete",
                "deletecollection",
                f"Collection{ns}{r.kind}",
                params=[*_WRITE_PARAMS, *_LIST_PARAMS],
                response=status,
                body=delete_body,
            )
        if collection:
            collection["parameters"] = [*ns_params, _param("pretty", "query")]
            self.paths[f"{ns_path}/{r.plural}"] = collection
        if r.stored:
            self.item(r, ns, ns_path, ns_params, kind_name, delete_body, status)

    def item(
        self,
        r: ResourceInfo,
        ns: str,
        ns_path: str,
        ns_params: list[JsonObj],
        kind_name: str,
        delete_body: str,
        status: str,
    ) -> None:
        write = [*_WRITE_PARAMS, _param("fieldValidation", "query")]
        item: JsonObj = {}
        if "get" in r.verbs:
            item["get"] = self.op(r, "read", "get", f"{ns}{r.kind}", params=[], response=kind_name)
        if "update" in r.verbs:
            item["put"] = self.op(
                r,
                "replace",
                "put",
                f"{ns}{r.kind}",
                params=write,
                response=kind_name,
                body=kind_name,
                codes=("200", "201"),
            )
        if "delete" in r.verbs:
            item["delete"] = self.op(
                r,
                "delete",
                "delete",
                f"{ns}{r.kind}",
                params=_WRITE_PARAMS,
                response=kind_name if r.returns_deleted_object else status,
                body=delete_body,
                codes=("200", "202"),
            )
        if "patch" in r.verbs:
            patch = self.b.schemas.setdefault(_META + "Patch", {"type": "object"})
            assert patch is not None
            item["patch"] = self.op(
                r,
                "patch",
                "patch",
                f"{ns}{r.kind}",
                params=[*write, _param("force", "query", "boolean")],
                response=kind_name,
                body=_META + "Patch",
                codes=("200", "201"),
            )
        item["parameters"] = [_param("name", "path"), *ns_params, _param("pretty", "query")]
        self.paths[f"{ns_path}/{r.plural}/{{name}}"] = item
        for sub in r.subresources:
            verbs = subresource_verbs(sub)
            suffix = sub[:1].upper() + sub[1:]
            ops: JsonObj = {}
            for verb, method, action in (("read", "get", "get"), ("replace", "put", "put")):
                if (action == "get" and "get" in verbs) or (action == "put" and "update" in verbs):
                    ops[method] = self.op(
                        r,
                        verb,
                        action,
                        f"{ns}{r.kind}{suffix}",
                        params=[] if action == "get" else write,
                        response=kind_name,
                        body=None if action == "get" else kind_name,
                    )
            if "patch" in verbs:
                ops["patch"] = self.op(
                    r,
                    "patch",
                    "patch",
                    f"{ns}{r.kind}{suffix}",
                    params=[*write, _param("force", "query", "boolean")],
                    response=kind_name,
                    body=_META + "Patch",
                )
            if not ops:  # serviceaccounts/token (create only) is left out of the document
                continue
            ops["parameters"] = item["parameters"]
            self.paths[f"{ns_path}/{r.plural}/{{name}}/{sub}"] = ops


@functools.cache
def openapi_document(key: str) -> bytes | None:
    gv = next((g for g in group_versions() if _gv_key(g) == key), None)
    if gv is None:
        return None
    b = _Builder()
    paths = _Paths(b, gv)
    for r in sorted((r for r in RESOURCES if r.gv == gv), key=lambda r: r.plural):
        schema = kind_schema(r.group, r.gv.version, r.kind)
        if schema is None:
            continue
        kind_name = b.struct(schema)
        list_name = b.list_of(r, schema) if r.stored else None
        paths.resource(r, kind_name, list_name)
    b.struct(meta_v1.API_RESOURCE_LIST)
    paths.paths[f"/{key}/"] = {
        "get": {
            "tags": [paths.tag],
            "description": "get available resources",
            "operationId": f"get{paths.prefix}{gv.version.capitalize()}APIResources",
            "responses": {
                "200": {"description": "OK", "content": paths.content(_META + "APIResourceList")},
                "401": {"description": "Unauthorized"},
            },
        }
    }
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "1.37"},
        "paths": dict(sorted(paths.paths.items())),
        "components": {"schemas": dict(sorted(b.schemas.items()))},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def document_hash(doc: bytes) -> str:
    """Upstream's hash of a document (index URLs and ETag): uppercase hex SHA-512."""
    return hashlib.sha512(doc).hexdigest().upper()


@functools.cache
def openapi_index() -> bytes:
    paths = {}
    for gv in group_versions():
        key = _gv_key(gv)
        doc = openapi_document(key)
        assert doc is not None
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(doc)}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()
