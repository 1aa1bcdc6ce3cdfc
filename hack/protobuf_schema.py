"""Regenerate ``src/kubeboot/api/endpoints/protobuf_schema.py`` from k8s.io/api's Go types.

The protobuf field numbers of every kind kubeboot serves are facts of upstream's Go structs
(each field's ``protobuf:"..."`` tag); this script reads them from the Go module cache
(``go mod download k8s.io/api@v0.37.2 k8s.io/apimachinery@v0.37.2`` fills it) and writes the
table the server's protobuf codec uses, so nobody types field numbers by hand.

    python hack/protobuf_schema.py            # rewrite the module
    python hack/protobuf_schema.py --check    # exit 1 when the module is out of date

To serve protobuf for a new kind, add it to ``ROOTS`` and rerun.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

API_VERSION = "v0.37.2"
OUT = Path(__file__).resolve().parent.parent / "src/kubeboot/api/endpoints/protobuf_schema.py"

# Go package directory (relative to its module) -> the Go package alias used in types.go.
PACKAGES = {
    ("apimachinery", "pkg/apis/meta/v1"): "metav1",
    ("api", "core/v1"): "core",
    ("api", "certificates/v1"): "certificates",
    ("api", "rbac/v1"): "rbac",
    ("api", "coordination/v1"): "coordination",
    ("api", "authorization/v1"): "authorization",
    ("api", "authentication/v1"): "authentication",
    ("api", "apidiscovery/v2"): "apidiscovery",
}
# Kinds served (with their lists) and the meta kinds the wire needs.
ROOTS = {
    "core": [
        "Namespace",
        "Secret",
        "ConfigMap",
        "Node",
        "Event",
        "Service",
        "ServiceAccount",
        "Pod",
        "Endpoints",
    ],
    "certificates": ["CertificateSigningRequest"],
    "rbac": ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"],
    "coordination": ["Lease"],
    "authorization": [
        "SubjectAccessReview",
        "SelfSubjectAccessReview",
        "LocalSubjectAccessReview",
    ],
    "authentication": ["SelfSubjectReview", "TokenReview"],
    "metav1": [
        "Status",
        "DeleteOptions",
        "PartialObjectMetadata",
        "PartialObjectMetadataList",
        "APIVersions",
        "APIGroupList",
        "APIGroup",
        "APIResourceList",
    ],
    "apidiscovery": ["APIGroupDiscoveryList"],
}
# Kinds that are single objects only (no <Kind>List is served).
NO_LIST = {
    "SubjectAccessReview",
    "SelfSubjectAccessReview",
    "LocalSubjectAccessReview",
    "SelfSubjectReview",
    "TokenReview",
    "Status",
    "DeleteOptions",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
    "APIGroupDiscoveryList",
}
# Go types with a wire form of their own (see the codec's kinds).
SPECIAL = {
    "Time": "time",
    "MicroTime": "microtime",
    "Quantity": "Quantity",
    "FieldsV1": "fieldsv1",
    "IntOrString": "IntOrString",
    "RawExtension": "RawExtension",
    "ResourceList": "quantitymap",
    "Duration": "Duration",
    "Verbs": "verbs",  # metav1.Verbs: a message holding the list (``items``)
}
_FIELD = re.compile(r"^(?:(\w+)\s+)?(\S+)\s+`(.*)`$")


def module_dir(module: str) -> Path:
    out = subprocess.run(
        ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
    ).stdout.strip()
    path = Path(out or os.path.expanduser("~/go/pkg/mod")) / f"k8s.io/{module}@{API_VERSION}"
    if not path.is_dir():
        sys.exit(f"{path} is missing: run `go mod download k8s.io/{module}@{API_VERSION}`")
    return path


def parse_types() -> tuple[dict[str, dict[str, list[tuple[str, str, int]]]], dict[str, str]]:
    """Per package alias: struct name -> [(go type, json name, field number)]; and aliases."""
    structs: dict[str, dict[str, list[tuple[str, str, int]]]] = {}
    aliases: dict[str, str] = {}
    for (module, pkg_dir), alias in PACKAGES.items():
        directory = module_dir(module) / pkg_dir
        src = "\n".join(
            f.read_text()
            for f in sorted(directory.glob("*.go"))
            if not f.name.endswith("_test.go") and not f.name.startswith(("zz_", "generated"))
        )
        found: dict[str, list[tuple[str, str, int]]] = {}
        for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", src, re.S | re.M):
            fields = []
            for line in m.group(2).splitlines():
                fm = _FIELD.match(line.strip())
                if not fm:
                    continue
                proto = re.search(r'protobuf:"([^"]*)"', fm.group(3))
                js = re.search(r'json:"([^"]*)"', fm.group(3))
                if proto is None or proto.group(1).count(",") < 2:
                    continue
                number = int(proto.group(1).split(",")[1])
                json_name = js.group(1).split(",")[0] if js else ""
                fields.append((fm.group(2), json_name, number))
            found[m.group(1)] = fields
        structs[alias] = found
        for m in re.finditer(r"^type (\w+) ([\w.\[\]*]+)$", src, re.M):
            aliases[f"{alias}.{m.group(1)}"] = m.group(2)
    return structs, aliases


class Generator:
    def __init__(self) -> None:
        self.structs, self.aliases = parse_types()
        self.out: dict[str, dict[int, tuple[str, str]]] = {}
        self.owners: dict[str, str] = {}

    def resolve(self, pkg: str, gotype: str) -> tuple[str, str]:
        """(package, bare type) for a possibly qualified Go type name."""
        if "." in gotype:
            qual, name = gotype.split(".", 1)
            return {"metav1": "metav1", "v1": "metav1"}.get(qual, qual), name
        return pkg, gotype

    def kind_of(self, pkg: str, gotype: str) -> str:
        pointer = gotype.startswith("*")
        gotype = gotype.lstrip("*")
        star = "*" if pointer else ""
        if gotype.startswith("[]"):
            elem = gotype[2:]
            if elem == "byte":
                return "bytes"
            scalar = self.scalar(pkg, elem)
            if scalar == "string":
                return "strings"
            if scalar == "int":
                return "ints"
            if scalar is not None:
                raise SystemExit(f"repeated {scalar} is not supported ({pkg}.{gotype})")
            return self.message(pkg, elem) + "[]"
        if gotype.startswith("map["):
            value = gotype.split("]", 1)[1]
            if value == "string":
                return "map"
            if value == "[]byte":
                return "bytesmap"
            if value.endswith("Quantity"):
                return "quantitymap"
            if value == "ExtraValue":
                return "extra"
            raise SystemExit(f"map type {gotype} is not supported")
        bare_pkg, bare = self.resolve(pkg, gotype)
        if bare in SPECIAL and not (bare == "Verbs" and bare_pkg != "metav1"):
            return SPECIAL[bare] + star
        scalar = self.scalar(pkg, gotype)
        if scalar is not None:
            return scalar + star
        return self.message(pkg, gotype) + star

    def scalar(self, pkg: str, gotype: str) -> str | None:
        if gotype in ("string", "types.UID"):
            return "string"
        if gotype in ("int32", "int64", "int", "uint32", "uint64"):
            return "int"
        if gotype == "bool":
            return "bool"
        bare_pkg, bare = self.resolve(pkg, gotype)
        underlying = self.aliases.get(f"{bare_pkg}.{bare}")
        if underlying is not None and not underlying.startswith("[]"):
            if underlying in SPECIAL or bare in SPECIAL:
                return None
            return self.scalar(bare_pkg, underlying)
        return None

    def message(self, pkg: str, gotype: str) -> str:
        bare_pkg, bare = self.resolve(pkg, gotype)
        owner = self.owners.setdefault(bare, bare_pkg)
        if owner != bare_pkg and self.structs[owner][bare] != self.structs[bare_pkg][bare]:
            raise SystemExit(f"two different messages named {bare}: {owner} and {bare_pkg}")
        if bare not in self.out:
            fields = self.structs.get(bare_pkg, {}).get(bare)
            if fields is None:
                raise SystemExit(f"no struct {bare_pkg}.{bare}")
            self.out[bare] = {}
            schema: dict[int, tuple[str, str]] = {}
            for go, json_name, number in fields:
                schema[number] = (json_name, self.kind_of(bare_pkg, go))
            self.out[bare] = dict(sorted(schema.items()))
        return bare

    def run(self) -> None:
        for pkg, kinds in ROOTS.items():
            for kind in kinds:
                self.message(pkg, kind)
                if kind not in NO_LIST:
                    items = (2, ("items", f"{kind}[]"))
                    self.out[f"{kind}List"] = dict([(1, ("metadata", "ListMeta")), items])
        self.message("metav1", "ListMeta")

    def render(self) -> str:
        lines = [
            '"""Protobuf field numbers of the kinds kubeboot serves (generated; do not edit).',
            "",
            "Written by ``hack/protobuf_schema.py`` from k8s.io/api and apimachinery",
            f"{API_VERSION}",
            "(each Go field's ``protobuf`` tag). A schema maps field number -> (JSON name, kind);",
            "the kinds are described in :mod:`kubeboot.api.endpoints.protobuf`.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            '__all__ = ["SCHEMAS", "Schema"]',
            "",
            "Schema = dict[int, tuple[str, str]]",
            "",
            "SCHEMAS: dict[str, Schema] = {",
        ]
        for name in sorted(self.out):
            lines.append(f'    "{name}": {{')
            for number, (json_name, kind) in self.out[name].items():
                lines.append(f'        {number}: ("{json_name}", "{kind}"),')
            lines.append("    },")
        lines.append("}")
        return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    gen = Generator()
    gen.run()
    text = gen.render()
    if args.check:
        sys.exit(0 if OUT.exists() and OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(gen.out)} messages)")


if __name__ == "__main__":
    main()
