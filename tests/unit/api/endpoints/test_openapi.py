"""OpenAPI v3 documents: generated from the schema module, shaped as kube-openapi reads them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from kubeboot.api.endpoints.openapi import openapi_document, openapi_index
from kubeboot.resources.registry import RESOURCES, group_versions


def _key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


KEYS = sorted({_key(gv.group, gv.version) for gv in group_versions()})


def _doc(key: str) -> dict[str, Any]:
    raw = openapi_document(key)
    assert raw is not None, key
    doc: dict[str, Any] = json.loads(raw)
    return doc


def _empty_lists(node: Any, path: str = "") -> list[str]:
    """Where the document holds ``[]``: kube-openapi drops those (omitempty), so the e2e
    round trip (decode, encode, decode, compare) would fail on them."""
    if isinstance(node, list):
        found = [path] if not node else []
        for i, item in enumerate(node):
            found += _empty_lists(item, f"{path}[{i}]")
        return found
    if isinstance(node, dict):
        found = []
        for k, v in node.items():
            found += _empty_lists(v, f"{path}.{k}")
        return found
    return []


def test_the_index_names_every_served_group_version_with_its_documents_hash() -> None:
    index = json.loads(openapi_index())
    assert sorted(index["paths"]) == KEYS
    for key, entry in index["paths"].items():
        url = entry["serverRelativeURL"]
        digest = hashlib.sha512(openapi_document(key) or b"").hexdigest().upper()
        assert url == f"/openapi/v3/{key}?hash={digest}"


@pytest.mark.parametrize("key", KEYS)
def test_documents_survive_kube_openapis_round_trip(key: str) -> None:
    assert _empty_lists(_doc(key)) == []


def test_every_served_kind_has_a_component_with_its_group_version_kind() -> None:
    for res in RESOURCES:
        doc = _doc(_key(res.group, res.gv.version))
        gvks = [
            gvk
            for schema in doc["components"]["schemas"].values()
            for gvk in schema.get("x-kubernetes-group-version-kind", [])
        ]
        assert {"group": res.group, "kind": res.kind, "version": res.gv.version} in gvks, res


def test_list_and_map_semantics_are_upstreams() -> None:
    schemas = _doc("api/v1")["components"]["schemas"]
    status = schemas["io.k8s.api.core.v1.NodeStatus"]["properties"]
    assert status["conditions"]["x-kubernetes-list-type"] == "map"
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert status["conditions"]["x-kubernetes-patch-merge-key"] == "type"
    assert status["conditions"]["x-kubernetes-patch-strategy"] == "merge"
    rbac = _doc("apis/rbac.authorization.k8s.io/v1")["components"]["schemas"]
    assert (
        rbac["io.k8s.api.rbac.v1.ClusterRole"]["properties"]["rules"]["x-kubernetes-list-type"]
        == "atomic"
    )


def test_patch_operations_offer_field_validation_and_every_patch_type() -> None:
    paths = _doc("apis/certificates.k8s.io/v1")["paths"]
    patch = paths["/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"]["patch"]
    assert patch["operationId"] == "patchCertificatesV1CertificateSigningRequest"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert sorted(patch["requestBody"]["content"]) == [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ]
