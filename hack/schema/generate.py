"""Write ``src/kubeboot/resources/schemas/*.py`` from upstream's Go types and OpenAPI v3.

    python hack/schema/generate.py            # every kind in the resource table (+ EXTRA_KINDS)
    python hack/schema/generate.py --check    # exit 1 if the checked-in modules differ

Two upstream sources, both from the Go module cache (``go`` downloads them):

* the Go types, through ``dump`` (``main.go`` here: reflection over client-go v0.37's scheme):
  JSON names in declaration order, Go type names, protobuf field numbers, patch tags;
* the OpenAPI v3 documents of ``k8s.io/kubernetes@v1.37.2/api/openapi-spec/v3``: list types,
  list-map keys, map types, required fields, enums.

The kinds come from ``kubeboot.resources.registry.RESOURCES`` (stored and virtual ones) plus
``EXTRA_KINDS``, so adding a row to the resource table and running this script is how a kind
gets its schema. The output is ordinary reviewed source; nothing at run time reads upstream.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "src" / "kubeboot" / "resources" / "schemas"
KUBERNETES = "k8s.io/kubernetes@v1.37.2"
# Kinds that are request bodies or responses without a row in the resource table, and where
# client-go's scheme registers their Go type (it has no meta.k8s.io group version).
# Responses that are not kinds of the table: partial metadata, the discovery documents.
EXTRA_KINDS = {
    "meta.k8s.io/v1/DeleteOptions": "/v1/DeleteOptions",
    "/v1/Status": "/v1/Status",
    # The body of serviceaccounts/token (a subresource, so no row of its own).
    "authentication.k8s.io/v1/TokenRequest": "authentication.k8s.io/v1/TokenRequest",
    "meta.k8s.io/v1/PartialObjectMetadata": "meta.k8s.io/v1/PartialObjectMetadata",
    "meta.k8s.io/v1/PartialObjectMetadataList": "meta.k8s.io/v1/PartialObjectMetadataList",
    "/v1/APIVersions": "/v1/APIVersions",
    "/v1/APIGroupList": "/v1/APIGroupList",
    "/v1/APIGroup": "/v1/APIGroup",
    "/v1/APIResourceList": "/v1/APIResourceList",
    "apidiscovery.k8s.io/v2/APIGroupDiscoveryList": "apidiscovery.k8s.io/v2/APIGroupDiscoveryList",
}
META_PKG = "k8s.io/apimachinery/pkg/apis/meta/v1"

sys.path.insert(0, str(ROOT / "src"))


def _served_kinds() -> list[str]:
    from kubeboot.resources.registry import RESOURCES

    return [f"{r.group}/{r.gv.version}/{r.kind}" for r in RESOURCES] + list(EXTRA_KINDS)


def _dump() -> dict[str, Any]:
    out = subprocess.run(
        ["go", "run", "."], cwd=HERE, check=True, capture_output=True, env=None
    ).stdout
    return dict(json.loads(out))


def _openapi_schemas() -> dict[str, Any]:
    cache = subprocess.run(
        ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
    ).stdout.strip()
    spec = Path(cache) / KUBERNETES / "api" / "openapi-spec" / "v3"
    if not spec.is_dir():
        subprocess.run(["go", "mod", "download", KUBERNETES], cwd=HERE, check=True)
    schemas: dict[str, Any] = {}
    for doc in sorted(spec.glob("*.json")):
        schemas.update(json.loads(doc.read_text()).get("components", {}).get("schemas", {}))
    return schemas


def _module_of(pkg: str) -> str:
    """``k8s.io/api/core/v1`` → ``core_v1``; the meta package → ``meta_v1``."""
    parts = pkg.split("/")
    return f"{parts[-2]}_{parts[-1]}"


def _openapi_name(pkg: str, name: str) -> str:
    host, *rest = pkg.split("/")
    return ".".join([*reversed(host.split(".")), *rest, name])


def _const(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


class Generator:
    def __init__(self, dump: dict[str, Any], openapi: dict[str, Any]) -> None:
        self.structs: dict[str, Any] = dump["structs"]
        self.kinds: dict[str, str] = dump["kinds"]
        self.openapi = openapi
        self.gvk_of: dict[str, tuple[str, str, str]] = {}
        self.needed: dict[str, None] = {}  # struct keys, dependencies first

    def want(self, kinds: Iterable[str]) -> None:
        for gvk in kinds:
            group, version, kind = gvk.split("/")
            key = self.kinds[EXTRA_KINDS.get(gvk, gvk)]
            self.gvk_of.setdefault(key, (group, version, kind))
            self._closure(key)

    def _closure(self, key: str) -> None:
        if key in self.needed:
            return
        for f in self.structs[key]["fields"]:
            for ref in _refs(f["shape"]):
                self._closure(ref)
        self.needed[key] = None

    def modules(self) -> dict[str, str]:
        bodies: dict[str, list[str]] = {}
        imports: dict[str, set[str]] = {}
        names: dict[str, set[str]] = {}
        for key in self.needed:
            pkg = self.structs[key]["pkg"]
            mod = _module_of(pkg)
            used: set[str] = set()
            bodies.setdefault(mod, []).append(self._struct(key, mod, used, imports))
            names.setdefault(mod, set()).update(used)
        return {
            mod: _render_module(mod, body, sorted(imports.get(mod, ())), names[mod])
            for mod, body in bodies.items()
        }

    def _struct(self, key: str, mod: str, used: set[str], imports: dict[str, set[str]]) -> str:
        s = self.structs[key]
        oname = _openapi_name(s["pkg"], s["name"])
        oschema = self.openapi.get(oname, {})
        props = oschema.get("properties", {})
        required = set(oschema.get("required", ()))
        gvk = self.gvk_of.get(key)
        lines = [f"{_const(s['name'])} = Struct(", f'    "{oname}",']
        lines.append(f'    "{s["pkg"].split("/")[-1]}.{s["name"]}",')
        lines.append("    (")
        used.add("Struct")
        for f in s["fields"]:
            prop = props.get(f["json"], {})
            texpr = self._type(f["shape"], prop, mod, used, imports)
            args = [f'"{f["json"]}"', texpr]
            proto = f.get("proto", 0)
            if gvk and f["json"] in ("kind", "apiVersion"):
                proto = 0  # TypeMeta travels in the protobuf envelope, not the message
            if proto:
                args.append(f"proto={proto}")
            if f["json"] in required:
                args.append("required=True")
            if f.get("pointer"):
                args.append("pointer=True")
            if not f.get("omitempty"):
                args.append("omitempty=False")
            if f.get("patchStrategy"):
                args.append(f'patch_strategy="{f["patchStrategy"]}"')
            if f.get("patchMergeKey"):
                args.append(f'patch_merge_key="{f["patchMergeKey"]}"')
            used.add("Field")
            lines.append(f"        Field({', '.join(args)}),")
        lines.append("    ),")
        if gvk:
            used.add("GVK")
            lines.append(f'    gvk=GVK("{gvk[0]}", "{gvk[1]}", "{gvk[2]}"),')
        if oschema.get("x-kubernetes-map-type"):
            lines.append(f'    map_type="{oschema["x-kubernetes-map-type"]}",')
        lines.append(")")
        return "\n".join(lines)

    def _type(
        self,
        shape: dict[str, Any],
        prop: dict[str, Any],
        mod: str,
        used: set[str],
        imports: dict[str, set[str]],
    ) -> str:
        go = shape["go"]
        if "special" in shape:
            const = {
                "time": "TIME",
                "microtime": "MICROTIME",
                "quantity": "QUANTITY",
                "intorstring": "INT_OR_STRING",
            }.get(shape["special"])
            if const is None:
                const = "FIELDS_V1" if go.endswith("FieldsV1") else "RAW_EXTENSION"
            used.add(const)
            return const
        if "scalar" in shape:
            kind = shape["scalar"]
            enum = [e for e in prop.get("enum", ()) if isinstance(e, str)]
            if kind == "string":
                if go == "string" and not enum:
                    used.add("STRING")
                    return "STRING"
                if go == "types.UID":
                    used.add("UID")
                    return "UID"
                used.add("named_string")
                return "named_string(" + ", ".join(f'"{v}"' for v in [go, *enum]) + ")"
            const = {
                "int32": "INT32",
                "int64": "INT64",
                "bool": "BOOL",
                "bytes": "BYTES",
                "float64": "FLOAT64",
            }[kind]
            if go not in (kind, "[]uint8"):
                used.add("Scalar")
                return f'Scalar("{kind}", "{go}")'
            used.add(const)
            return const
        if "list" in shape:
            item = self._type(shape["list"], prop.get("items", {}), mod, used, imports)
            args = [item]
            if prop.get("x-kubernetes-list-type"):
                args.append(f'list_type="{prop["x-kubernetes-list-type"]}"')
            if prop.get("x-kubernetes-list-map-keys"):
                keys = ", ".join(f'"{k}"' for k in prop["x-kubernetes-list-map-keys"])
                args.append(f"map_keys=({keys},)")
            if go != "[]" + shape["list"]["go"]:
                args.append(f'named="{go}"')
            used.add("ListOf")
            return f"ListOf({', '.join(args)})"
        if "map" in shape:
            value = self._type(
                shape["map"], prop.get("additionalProperties", {}), mod, used, imports
            )
            used.add("MapOf")
            if prop.get("x-kubernetes-map-type"):
                return f'MapOf({value}, map_type="{prop["x-kubernetes-map-type"]}")'
            return f"MapOf({value})"
        ref = shape["ref"]
        pkg, _, name = ref.rpartition(".")
        target = _module_of(pkg)
        if target == mod:
            return _const(name)
        imports.setdefault(mod, set()).add(target)
        return f"{target}.{_const(name)}"


def _refs(shape: dict[str, Any]) -> list[str]:
    if "ref" in shape:
        return [shape["ref"]]
    for key in ("list", "map"):
        if key in shape:
            return _refs(shape[key])
    return []


_HEADERS = {
    "meta_v1": "metav1 (``k8s.io/apimachinery/pkg/apis/meta/v1``)",
}


def _render_module(mod: str, bodies: list[str], imports: list[str], names: set[str]) -> str:
    group = mod.rsplit("_", 1)[0]
    title = _HEADERS.get(mod, f"``{group}/{mod.rsplit('_', 1)[1]}`` (``k8s.io/api/{group}``)")
    head = [
        f'"""Schema of {title}.',
        "",
        "Generated by ``hack/schema/generate.py`` from upstream v1.37's Go types and OpenAPI v3;",
        "regenerate rather than edit (see :mod:`kubeboot.resources.schema`).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    head.append("from kubeboot.resources.schema import (")
    head += [f"    {n}," for n in sorted(names)]
    head.append(")")
    for imp in imports:
        head.append(f"from kubeboot.resources.schemas import {imp}")
    return "\n".join(head) + "\n\n" + "\n\n".join(bodies) + "\n"


def _render_index(mods: list[str]) -> str:
    return "\n".join(
        [
            '"""Every kind\'s schema, by group/version/kind (the index of this package).',
            "",
            "Generated by ``hack/schema/generate.py`` with the modules beside it; see",
            ":mod:`kubeboot.resources.schema` for how to add a kind.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "from kubeboot.resources.schema import GVK, Struct",
            "from kubeboot.resources.schemas import " + ", ".join(mods),
            "",
            '__all__ = ["KINDS", "kind_schema"]',
            "",
            "KINDS: dict[GVK, Struct] = {",
            "    s.gvk: s",
            "    for module in (" + ", ".join(mods) + ",)",
            "    for s in vars(module).values()",
            "    if isinstance(s, Struct) and s.gvk is not None",
            "}",
            "",
            "",
            "def kind_schema(group: str, version: str, kind: str) -> Struct | None:",
            '    """The schema of a served kind, or None for a kind kubeboot does not know."""',
            "    return KINDS.get(GVK(group, version, kind))",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the modules differ")
    parser.add_argument("--dump", type=Path, help="use this dump instead of `go run .`")
    args = parser.parse_args()
    dump = json.loads(args.dump.read_text()) if args.dump else _dump()
    gen = Generator(dump, _openapi_schemas())
    gen.want(_served_kinds())
    modules = gen.modules()
    modules["__init__"] = _render_index(sorted(modules))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "schemas"
        out.mkdir()
        for mod, text in modules.items():
            (out / f"{mod}.py").write_text(text)
        # The repository's formatter owns layout (import order, line breaks).
        ruff = ROOT / ".venv" / "bin" / "ruff"
        subprocess.run([ruff, "format", "-q", out], check=True, cwd=ROOT)
        subprocess.run([ruff, "check", "--fix", "-q", out], check=True, cwd=ROOT)
        stale = [
            p.name
            for p in sorted(out.iterdir())
            if not (OUT / p.name).exists() or (OUT / p.name).read_text() != p.read_text()
        ]
        if args.check:
            if stale:
                print("out of date: " + ", ".join(stale), file=sys.stderr)
                return 1
            return 0
        OUT.mkdir(exist_ok=True)
        for name in stale:
            shutil.copyfile(out / name, OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
