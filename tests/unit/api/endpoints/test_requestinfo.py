"""Paths → RequestInfo, as kube-apiserver's RequestInfoFactory."""

from __future__ import annotations

import pytest

from kubeboot.api.endpoints.requestinfo import parse_request_info


@pytest.mark.parametrize(
    ("method", "path", "watch", "expected"),
    [
        (
            "GET",
            "/api/v1/namespaces/kube-system/secrets/x",
            False,
            ("get", "kube-system", "secrets", "x", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/kube-system/secrets",
            False,
            ("list", "kube-system", "secrets", "", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/kube-system/secrets",
            True,
            ("watch", "kube-system", "secrets", "", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/kube-system",
            False,
            ("get", None, "namespaces", "kube-system", ""),
        ),
        (
            "PUT",
            "/api/v1/namespaces/team/status",
            False,
            ("update", None, "namespaces", "team", "status"),
        ),
        ("GET", "/api/v1/namespaces", False, ("list", None, "namespaces", "", "")),
        (
            "PUT",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval",
            False,
            ("update", None, "certificatesigningrequests", "c", "approval"),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/d/configmaps",
            False,
            ("deletecollection", "d", "configmaps", "", ""),
        ),
        (
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            False,
            ("create", None, "selfsubjectaccessreviews", "", ""),
        ),
        ("PATCH", "/api/v1/nodes/n1/status", False, ("patch", None, "nodes", "n1", "status")),
    ],
)
def test_resource_paths(
    method: str, path: str, watch: bool, expected: tuple[str, str | None, str, str, str]
) -> None:
    info = parse_request_info(method, path, watch)
    assert info.is_resource
    assert (info.verb, info.namespace, info.resource, info.name, info.subresource) == expected


@pytest.mark.parametrize(
    "path", ["/healthz", "/version", "/api", "/apis", "/apis/certificates.k8s.io", "/openapi/v3"]
)
def test_non_resource_paths(path: str) -> None:
    assert not parse_request_info("GET", path, False).is_resource


def test_unknown_resource_has_no_info() -> None:
    info = parse_request_info("GET", "/api/v1/namespaces/a/replicationcontrollers", False)
    assert info.is_resource
    assert info.info is None
