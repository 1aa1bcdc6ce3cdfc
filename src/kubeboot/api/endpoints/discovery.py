"""Discovery documents built from the resource table (server-facts §8.1, pitfall 13).

``/api`` and ``/apis`` answer the legacy ``APIVersions`` / ``APIGroupList`` documents with a
plain ``application/json`` content type, which every kubectl and client-go version accepts;
the aggregated (``apidiscovery.k8s.io/v2``) form is not served.
"""

from __future__ import annotations

import platform
from typing import Any

from kubeboot import __version__
from kubeboot.resources.registry import RESOURCES, GroupVersion, group_versions

__all__ = ["api_group_list", "api_resource_list", "api_versions", "version_info"]

# The Kubernetes API version whose behaviour kubeboot follows (kubectl warns on a large skew).
KUBE_MAJOR, KUBE_MINOR = "1", "36"


def version_info() -> dict[str, str]:
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": str(int(KUBE_MINOR) - 1),
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-kubeboot.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{platform.machine()}",
    }


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


def api_group_list() -> dict[str, Any]:
    groups = []
    for gv in group_versions():
        if not gv.group:
            continue
        groups.append(
            {"name": gv.group, "versions": [_gv_entry(gv)], "preferredVersion": _gv_entry(gv)}
        )
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    for entry in api_group_list()["groups"]:
        if entry["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    return None


def api_resource_list(gv: GroupVersion) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.gv != gv:
            continue
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            resources.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv.api_version,
        "resources": resources,
    }
