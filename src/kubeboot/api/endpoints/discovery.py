"""Discovery documents built from the resource table (server-facts §8.1, pitfall 13).

Two forms, as kube-apiserver serves them:

* legacy: ``APIVersions`` (``/api``), ``APIGroupList`` (``/apis``), ``APIGroup``
  (``/apis/<group>``), ``APIResourceList`` (``/api/v1``, ``/apis/<group>/<version>``), with a
  ``storageVersionHash`` on every stored resource;
* aggregated (``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``), answered on ``/api`` and
  ``/apis`` when ``Accept`` asks for it, with an ``ETag`` (uppercase hex SHA-512 of the JSON)
  that makes a client's ``If-None-Match`` a 304.

Groups are ordered as upstream's aggregator orders them (group priority, then name);
resources by name, subresources after their resource.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import platform
from typing import Any

from kubeboot import __version__
from kubeboot.resources.registry import (
    RESOURCES,
    GroupVersion,
    ResourceInfo,
    group_versions,
    subresource_verbs,
)

__all__ = [
    "aggregated_discovery",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "discovery_etag",
    "storage_version_hash",
    "version_info",
]

# The Kubernetes release whose API kubeboot serves; /version reports it, with kubeboot's own
# version as SemVer build metadata (kubectl and client-go parse gitVersion as SemVer).
KUBE_MAJOR, KUBE_MINOR, KUBE_PATCH = "1", "37", "2"

# kube-apiserver's group priorities (cmd/kube-apiserver/app/aggregator.go and the generic
# control plane's defaults): higher first, ties by name. Unknown groups sort last.
_GROUP_PRIORITY = {
    "": 18000,
    "apps": 17800,
    "events.k8s.io": 17750,
    "authentication.k8s.io": 17700,
    "authorization.k8s.io": 17600,
    "autoscaling": 17500,
    "batch": 17400,
    "certificates.k8s.io": 17300,
    "networking.k8s.io": 17200,
    "policy": 17100,
    "rbac.authorization.k8s.io": 17000,
    "storage.k8s.io": 16800,
    "admissionregistration.k8s.io": 16700,
    "scheduling.k8s.io": 16600,
    "coordination.k8s.io": 16500,
    "node.k8s.io": 16300,
    "discovery.k8s.io": 16200,
}


def version_info() -> dict[str, str]:
    minor = int(KUBE_MINOR)
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": str(minor - 1),
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.{KUBE_PATCH}+kubeboot.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{_arch()}",
    }


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Upstream's StorageVersionHash: base64 of the first 8 bytes of sha256(g/v/kind)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _ordered_groups() -> list[GroupVersion]:
    gvs = [gv for gv in group_versions() if gv.group]
    return sorted(gvs, key=lambda gv: (-_GROUP_PRIORITY.get(gv.group, 0), gv.group))


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _gv_entry(gv: GroupVersion) -> dict[str, str]:
    return {"groupVersion": gv.api_version, "version": gv.version}


def _group_entry(gv: GroupVersion) -> dict[str, Any]:
    return {"name": gv.group, "versions": [_gv_entry(gv)], "preferredVersion": _gv_entry(gv)}


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(gv) for gv in _ordered_groups()],
    }


def api_group(group: str) -> dict[str, Any] | None:
    for gv in _ordered_groups():
        if gv.group == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(gv)}
    return None


def _resources(gv: GroupVersion) -> list[ResourceInfo]:
    return sorted((r for r in RESOURCES if r.gv == gv), key=lambda r: r.plural)


def _names(r: ResourceInfo) -> dict[str, list[str]]:
    """shortNames and categories, present only when the resource has some."""
    names: dict[str, list[str]] = {}
    if r.short_names:
        names["shortNames"] = list(r.short_names)
    if r.categories:
        names["categories"] = list(r.categories)
    return names


def api_resource_list(gv: GroupVersion) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in _resources(gv):
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
            **_names(r),
        }
        if r.stored:
            stored_as = r.storage_version or r.gv.version
            entry["storageVersionHash"] = storage_version_hash(r.group, stored_as, r.kind)
        resources.append(entry)
        for sub in sorted(r.subresources):
            group, version, kind = _subresource_kind(r, sub)
            entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced}
            if group or version:
                entry |= {"group": group, "version": version}
            resources.append({**entry, "kind": kind, "verbs": list(subresource_verbs(sub))})
    doc: dict[str, Any] = {"kind": "APIResourceList"}
    if gv.group:  # the core list carries no apiVersion, as upstream
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = gv.api_version
    doc["resources"] = resources
    return doc


# Subresources whose body is another group's kind (upstream's GroupVersionKindProvider).
_SUBRESOURCE_KINDS = {("serviceaccounts", "token"): ("authentication.k8s.io", "v1", "TokenRequest")}


def _subresource_kind(r: ResourceInfo, sub: str) -> tuple[str, str, str]:
    """(group, version, kind) a subresource takes and answers; ("", "", kind) for its own."""
    return _SUBRESOURCE_KINDS.get((r.plural, sub), ("", "", r.kind))


def _resource_discovery(r: ResourceInfo) -> dict[str, Any]:
    kind = {"group": "", "version": "", "kind": r.kind}
    entry: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": kind,
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
        **_names(r),
    }
    if r.subresources:
        entry["subresources"] = [
            {
                "subresource": sub,
                "responseKind": dict(
                    zip(("group", "version", "kind"), _subresource_kind(r, sub), strict=True)
                ),
                "verbs": list(subresource_verbs(sub)),
            }
            for sub in sorted(r.subresources)
        ]
    return entry


def _group_discovery(gv: GroupVersion) -> dict[str, Any]:
    version = {
        "version": gv.version,
        "resources": [_resource_discovery(r) for r in _resources(gv)],
        "freshness": "Current",
    }
    return {"metadata": {"name": gv.group} if gv.group else {}, "versions": [version]}


@functools.cache
def aggregated_discovery(core: bool) -> dict[str, Any]:
    """The ``APIGroupDiscoveryList`` for ``/api`` (core) or ``/apis`` (every named group)."""
    gvs = [GroupVersion("", "v1")] if core else _ordered_groups()
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [_group_discovery(gv) for gv in gvs],
    }


@functools.cache
def discovery_etag(core: bool) -> str:
    """Upstream's ETag: uppercase hex SHA-512 of the document's JSON, quoted."""
    doc = aggregated_discovery(core)
    body = {"metadata": doc["metadata"], "items": doc["items"]}
    digest = hashlib.sha512(json.dumps(body, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest.upper()}"'
