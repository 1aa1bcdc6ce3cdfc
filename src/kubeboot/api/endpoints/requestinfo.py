"""Request paths → what is being asked (kube-apiserver's ``RequestInfoFactory``), pure.

``/api/v1/namespaces/{ns}/{resource}/{name}/{sub}`` and ``/apis/{group}/{version}/…``;
``/api/v1/namespaces/{name}`` and ``/api/v1/namespaces/{name}/status`` address the namespace
itself. Everything else is a non-resource request (discovery, health, OpenAPI, version).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeboot.resources.registry import ResourceInfo, find_resource

__all__ = ["RequestInfo", "parse_request_info"]

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    is_resource: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    namespace: str | None = None
    resource: str = ""
    name: str = ""
    subresource: str = ""
    info: ResourceInfo | None = None


def _verb(method: str, has_name: bool, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if has_name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if has_name else "deletecollection",
    }.get(method, method.lower())


def parse_request_info(method: str, path: str, watch: bool) -> RequestInfo:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(False, method.lower(), path)
    namespace: str | None = None
    # /namespaces/{name}[/status|/finalize] addresses the namespace object itself.
    if rest[0] == "namespaces" and len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        return RequestInfo(False, method.lower(), path)
    info = find_resource(group, version, resource)
    verb = _verb(method, bool(name), watch)
    return RequestInfo(
        True,
        verb,
        path,
        group=group,
        version=version,
        namespace=namespace,
        resource=resource,
        name=name,
        subresource=sub,
        info=info,
    )
