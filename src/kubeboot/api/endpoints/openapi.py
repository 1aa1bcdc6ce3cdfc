"""The smallest OpenAPI v3 that lets kubectl trust server-side validation (§8.7).

kubectl's ``create -f`` / ``apply -f`` look up ``/openapi/v3``, fetch the group version's
document and search for a PATCH operation tagged with the kind's
``x-kubernetes-group-version-kind`` that takes a ``fieldValidation`` parameter. Finding it,
kubectl skips client-side schema validation and sends ``fieldValidation=Strict``, which the
server honours (unknown top-level fields are rejected). The per-GV documents are built once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from kubeboot.resources.registry import RESOURCES, GroupVersion, ResourceInfo, group_versions

__all__ = ["openapi_document", "openapi_index"]


def _gv_key(gv: GroupVersion) -> str:
    return f"apis/{gv.group}/{gv.version}" if gv.group else f"api/{gv.version}"


def _item_path(r: ResourceInfo) -> str:
    ns = "/namespaces/{namespace}" if r.namespaced else ""
    return f"/{_gv_key(r.gv)}{ns}/{r.plural}/{{name}}"


def _parameters(r: ResourceInfo) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
    ]
    if r.namespaced:
        params.insert(
            1, {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    return params


@functools.cache
def openapi_document(key: str) -> bytes | None:
    gv = next((g for g in group_versions() if _gv_key(g) == key), None)
    if gv is None:
        return None
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        if r.gv != gv or "patch" not in r.verbs:
            continue
        gvk = {"group": r.group, "version": r.gv.version, "kind": r.kind}
        paths[_item_path(r)] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "parameters": _parameters(r),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK"}},
            }
        }
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kubeboot)", "version": "v1"},
        "paths": paths,
        "components": {"schemas": {}},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@functools.cache
def openapi_index() -> bytes:
    paths = {}
    for gv in group_versions():
        key = _gv_key(gv)
        doc = openapi_document(key)
        assert doc is not None
        digest = hashlib.sha512(doc).hexdigest()[:32].upper()
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()
