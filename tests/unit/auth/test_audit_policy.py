"""--audit-policy-file: upstream's rule matching, and refusals that name the rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from kubeboot.auth.audit import AuditRecord
from kubeboot.auth.auditpolicy import AuditPolicyError, load_audit_policy, parse_audit_policy
from kubeboot.auth.interface import UserInfo

NODE = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
ADMIN = UserInfo("kubernetes-admin", groups=("system:masters", "system:authenticated"))


def record(
    user: UserInfo | None,
    verb: str,
    uri: str = "/x",
    **ref: str,
) -> AuditRecord:
    r = AuditRecord("id", uri, verb, "10.0.0.1", "", dt.datetime.now(dt.UTC), user=user)
    r.object_ref = dict(ref) if ref else None
    return r


def policy(*rules: dict[str, Any], **top: Any) -> Any:
    return parse_audit_policy(
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **top}
    )


def test_first_matching_rule_decides_and_no_match_is_not_logged() -> None:
    p = policy(
        {"level": "None", "users": ["system:node:n1"], "verbs": ["get"]},
        {"level": "Metadata", "userGroups": ["system:nodes"]},
    )
    assert not p.logs(record(NODE, "get"), "ResponseComplete")  # first rule: None
    assert p.logs(record(NODE, "create"), "ResponseComplete")  # second rule
    assert not p.logs(record(ADMIN, "create"), "ResponseComplete")  # no rule: None
    assert not p.logs(record(None, "get"), "ResponseStarted")  # failed authentication


def test_resources_subresources_names_and_namespaces() -> None:
    p = policy(
        {
            "level": "Metadata",
            "resources": [{"group": "", "resources": ["secrets"], "resourceNames": ["keep"]}],
        },
        {"level": "Metadata", "resources": [{"group": "certificates.k8s.io"}]},
        {"level": "Metadata", "resources": [{"group": "", "resources": ["pods/*", "*/status"]}]},
        {"level": "Metadata", "namespaces": ["kube-public"]},
    )
    assert p.logs(record(ADMIN, "get", resource="secrets", name="keep"), "ResponseComplete")
    assert not p.logs(record(ADMIN, "get", resource="secrets", name="other"), "ResponseComplete")
    csr = {"apiGroup": "certificates.k8s.io", "resource": "certificatesigningrequests"}
    assert p.logs(record(ADMIN, "update", subresource="approval", **csr), "ResponseComplete")
    assert p.logs(record(ADMIN, "get", resource="pods", subresource="log"), "ResponseComplete")
    assert p.logs(
        record(ADMIN, "update", resource="nodes", subresource="status"), "ResponseComplete"
    )
    # upstream's "pods/*" also matches pods itself (checker.go trims "/*" and compares)
    assert p.logs(record(ADMIN, "get", resource="pods"), "ResponseComplete")
    assert not p.logs(record(ADMIN, "get", resource="nodes"), "ResponseComplete")
    assert p.logs(
        record(ADMIN, "get", resource="configmaps", namespace="kube-public"), "ResponseComplete"
    )
    assert not p.logs(
        record(ADMIN, "get", resource="configmaps", namespace="default"), "ResponseComplete"
    )
    # a namespaces rule never matches a non-resource request
    assert not p.logs(record(ADMIN, "get", "/healthz"), "ResponseComplete")


def test_non_resource_urls_with_wildcards() -> None:
    p = policy(
        {"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
        {"level": "Metadata"},
    )
    assert not p.logs(record(None, "get", "/healthz/ping"), "ResponseComplete")
    assert not p.logs(record(None, "get", "/version?timeout=1s"), "ResponseComplete")
    assert p.logs(record(None, "get", "/versions"), "ResponseComplete")
    # a resource request is not a non-resource URL, whatever its path
    assert p.logs(record(ADMIN, "get", "/healthz", resource="x"), "ResponseComplete")


def test_omit_stages_at_the_top_and_per_rule() -> None:
    p = policy(
        {"level": "Metadata", "verbs": ["watch"], "omitStages": ["ResponseStarted"]},
        {"level": "Metadata"},
        omitStages=["RequestReceived"],
    )
    assert not p.logs(record(ADMIN, "watch"), "ResponseStarted")
    assert p.logs(record(ADMIN, "watch"), "ResponseComplete")
    assert p.logs(record(ADMIN, "list"), "ResponseStarted")
    assert not p.logs(record(ADMIN, "list"), "RequestReceived")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy"}, "expected apiVersion"),
        ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": []}, "at least one rule"),
        (
            {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Request"}]},
            r"rules\[0\]\.level Request is not supported.*use Metadata",
        ),
        (
            {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Loud"}]},
            r"rules\[0\]\.level must be one of",
        ),
        (
            {
                "apiVersion": "audit.k8s.io/v1",
                "kind": "Policy",
                "rules": [{"level": "None"}, {"level": "Metadata", "user": ["x"]}],
            },
            r"rules\[1\]: unknown field\(s\) user",
        ),
        (
            {
                "apiVersion": "audit.k8s.io/v1",
                "kind": "Policy",
                "rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}],
            },
            "cannot be combined",
        ),
        (
            {
                "apiVersion": "audit.k8s.io/v1",
                "kind": "Policy",
                "omitStages": ["Done"],
                "rules": [{"level": "None"}],
            },
            "unknown stage 'Done'",
        ),
    ],
)
def test_unusable_policies_are_refused_naming_the_problem(doc: Any, message: str) -> None:
    with pytest.raises(AuditPolicyError, match=message):
        parse_audit_policy(doc)


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Request}]\n")
    with pytest.raises(AuditPolicyError, match=str(bad)):
        load_audit_policy(bad)
    with pytest.raises(AuditPolicyError, match="cannot read"):
        load_audit_policy(tmp_path / "missing.yaml")
