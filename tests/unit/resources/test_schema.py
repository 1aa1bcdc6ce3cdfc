"""The schema module: every served kind has one, and it agrees with upstream's OpenAPI v3."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubeboot.resources.registry import RESOURCES
from kubeboot.resources.schema import ListOf, MapOf, Scalar, Struct, Type
from kubeboot.resources.schemas import KINDS, kind_schema

# Documents the server writes but nobody stores or sends (discovery, partial metadata): no
# ObjectMeta, and upstream's OpenAPI does not describe them.
_WIRE_DOCUMENTS = {
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
    "APIGroupDiscoveryList",
}

# kubeboot's own API groups (docs/beyond-upstream.md): upstream has no schema to agree with.
_KUBEBOOT_GROUPS = ".kubeboot.io"

_OPENAPI_FORMATS = {
    "int32": ("integer", "int32"),
    "int64": ("integer", "int64"),
    "bool": ("boolean", None),
    "bytes": ("string", "byte"),
    "string": ("string", None),
}


def test_every_served_kind_has_a_schema() -> None:
    missing = [
        f"{r.api_version} {r.kind}"
        for r in RESOURCES
        if kind_schema(r.group, r.gv.version, r.kind) is None
    ]
    assert not missing, (
        f"no schema for {missing}: run `python hack/schema/generate.py` "
        "(see kubeboot.resources.schema)"
    )


def test_kinds_carry_type_meta_and_metadata() -> None:
    for gvk, struct in KINDS.items():
        assert {"apiVersion", "kind"} <= set(struct.by_name), gvk
        assert struct.by_name["apiVersion"].proto == 0  # the envelope carries TypeMeta
        if gvk.kind not in ("Status", "DeleteOptions", *_WIRE_DOCUMENTS):
            assert struct.by_name["metadata"].type.go == "v1.ObjectMeta", gvk


def test_go_names_as_go_prints_them() -> None:
    cm = kind_schema("", "v1", "ConfigMap")
    assert cm is not None
    assert cm.name == "ConfigMap"
    assert cm.by_name["binaryData"].type.go == "map[string][]uint8"
    csr = kind_schema("certificates.k8s.io", "v1", "CertificateSigningRequest")
    assert csr is not None
    spec = csr.by_name["spec"].type
    assert isinstance(spec, Struct)
    assert spec.by_name["usages"].type.go == "[]v1.KeyUsage"
    assert spec.by_name["extra"].type.go == "map[string]v1.ExtraValue"
    assert spec.by_name["expirationSeconds"].pointer


def _structs() -> list[Struct]:
    seen: dict[str, Struct] = {}

    def walk(t: Type) -> None:
        if isinstance(t, Struct):
            if t.openapi_name in seen:
                return
            seen[t.openapi_name] = t
            for f in t.fields:
                walk(f.type)
        elif isinstance(t, ListOf):
            walk(t.item)
        elif isinstance(t, MapOf):
            walk(t.value)

    for gvk, struct in KINDS.items():
        if gvk.kind not in _WIRE_DOCUMENTS and not gvk.group.endswith(_KUBEBOOT_GROUPS):
            walk(struct)
    return list(seen.values())


def _upstream_openapi() -> dict[str, Any]:
    try:
        cache = subprocess.run(
            ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cache = os.path.expanduser("~/go/pkg/mod")
    spec = Path(cache) / "k8s.io" / "kubernetes@v1.37.2" / "api" / "openapi-spec" / "v3"
    if not spec.is_dir():
        pytest.skip(f"upstream's OpenAPI v3 documents are not in {spec}")
    schemas: dict[str, Any] = {}
    for doc in spec.glob("*.json"):
        schemas.update(json.loads(doc.read_text()).get("components", {}).get("schemas", {}))
    return schemas


def _prop_type(prop: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = (prop.get("allOf") or [{}])[0].get("$ref") or prop.get("$ref")
    if ref:
        return dict(schemas[ref.rsplit("/", 1)[-1]])
    return prop


def test_schema_agrees_with_upstream_openapi() -> None:
    """Field names, scalar formats, list types and required fields, struct by struct."""
    upstream = _upstream_openapi()
    problems: list[str] = []
    for struct in _structs():
        theirs = upstream.get(struct.openapi_name)
        if theirs is None:
            problems.append(f"{struct.openapi_name}: not in upstream's OpenAPI")
            continue
        props = theirs.get("properties", {})
        if set(props) != set(struct.by_name):
            problems.append(
                f"{struct.openapi_name}: fields {sorted(set(struct.by_name) ^ set(props))} differ"
            )
        required = {f.name for f in struct.fields if f.required}
        if required != set(theirs.get("required", ())):
            problems.append(f"{struct.openapi_name}: required {sorted(required)}")
        for field in struct.fields:
            prop = props.get(field.name)
            if prop is None:
                continue
            t = field.type
            if isinstance(t, ListOf):
                if prop.get("type") != "array":
                    problems.append(f"{struct.openapi_name}.{field.name}: not a list upstream")
                elif t.list_type != prop.get("x-kubernetes-list-type", ""):
                    problems.append(f"{struct.openapi_name}.{field.name}: list type")
            elif isinstance(t, Scalar) and t.kind in _OPENAPI_FORMATS:
                resolved = _prop_type(prop, upstream)
                want = _OPENAPI_FORMATS[t.kind]
                if (resolved.get("type"), resolved.get("format")) != want:
                    problems.append(f"{struct.openapi_name}.{field.name}: {t.kind} vs {resolved}")
    assert not problems, "\n".join(problems)
