"""The access review APIs as kube-apiserver v1.37 serves them (issue 13, items 2 and 3).

``SelfSubjectRulesReview`` with upstream's rule resolvers — RBAC's rules and the errors of
bindings to missing roles, the Node authorizer's "incomplete" for nodes — so ``kubectl auth
can-i --list`` works for a bootstrap token, a node and an admin impersonating someone; who
may create which review (403s in upstream's words); and the reviews' validation (422s with
upstream's field paths, values and texts; 400s of the create handler).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from kubeboot.clock import SystemClock
from kubeboot.pki.keys import dump_private_key_pem
from tests.conftest import (
    RunningServer,
    admin_ssl_context,
    anonymous_ssl_context,
    call_as,
    cluster_ca,
    node_ssl_context,
    token_kubeconfig,
)

AUTHZ = "/apis/authorization.k8s.io/v1"
RULES = f"{AUTHZ}/selfsubjectrulesreviews"
SAR = f"{AUTHZ}/subjectaccessreviews"
LSAR_KIND = "LocalSubjectAccessReview"
NODE_INCOMPLETE = "node authorizer does not support user rule resolution"


def _user_ssl_context(running: RunningServer, name: str, *groups: str) -> ssl.SSLContext:
    cert, key = cluster_ca(running).issue_client_cert(
        common_name=name, organizations=list(groups), clock=SystemClock()
    )
    crt, pem = running.data_dir / f"user-{name}.crt", running.data_dir / f"user-{name}.key"
    crt.write_bytes(cert.public_bytes(encoding=Encoding.PEM))
    pem.write_bytes(dump_private_key_pem(key))
    ctx = anonymous_ssl_context(running)
    ctx.load_cert_chain(str(crt), str(pem))
    return ctx


def _rules_review(namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }


def _rows(output: str) -> dict[str, str]:
    """``kubectl auth can-i --list``'s table: the first column (a resource, or a URL list) to
    the Verbs column (the last bracketed cell)."""
    return {
        line.split()[0]: re.findall(r"\[[^\]]*\]", line)[-1] for line in output.splitlines()[1:]
    }


async def test_rules_review_as_a_bootstrap_token_lists_its_rules(server: RunningServer) -> None:
    assert server.server is not None and server.server.init_result is not None
    token = server.server.init_result.token
    status, answer = await call_as(server, "POST", RULES, _rules_review(), token=token)
    assert status == 201, answer
    # A new object: nothing of the request is echoed.
    assert answer["metadata"] == {} and answer["spec"] == {}
    assert answer["status"]["incomplete"] is False
    assert "evaluationError" not in answer["status"]
    assert {
        "verbs": ["create", "get", "list", "watch"],
        "apiGroups": ["certificates.k8s.io"],
        "resources": ["certificatesigningrequests"],
    } in answer["status"]["resourceRules"]
    assert {
        "verbs": ["get"],
        "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
    } in answer["status"]["nonResourceRules"]

    kubeconfig = token_kubeconfig(server, token)
    listed = await asyncio.to_thread(
        server.kubectl, "auth", "can-i", "--list", kubeconfig=kubeconfig
    )
    assert "Warning" not in listed.stderr, listed.stderr
    rows = _rows(listed.stdout)
    assert rows["certificatesigningrequests.certificates.k8s.io"] == "[create get list watch]"
    assert rows["certificatesigningrequests.certificates.k8s.io/nodeclient"] == "[create]"
    assert "secrets" not in rows


async def test_rules_review_for_a_node_is_incomplete(server: RunningServer) -> None:
    status, answer = await call_as(
        server, "POST", RULES, _rules_review(), ctx=node_ssl_context(server, "n1")
    )
    assert status == 201, answer
    assert answer["status"]["incomplete"] is True
    assert answer["status"]["evaluationError"] == NODE_INCOMPLETE
    # system:node's ClusterRoleBinding has no subjects: RBAC grants a node only the
    # authenticated user's basics; the Node authorizer's grants are not listed.
    resources = {r for rule in answer["status"]["resourceRules"] for r in rule["resources"]}
    assert "nodes" not in resources and "selfsubjectaccessreviews" in resources

    listed = await asyncio.to_thread(
        server.kubectl, "auth", "can-i", "--list", "--as=system:node:n1", "--as-group=system:nodes"
    )
    assert f"Warning: the list may be incomplete: {NODE_INCOMPLETE}" in listed.stderr


async def test_rules_review_as_an_admin_impersonating_a_user(server: RunningServer) -> None:
    admin = admin_ssl_context(server)
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    writer = {
        "metadata": {"name": "secret-writer"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]}],
    }
    status, answer = await call_as(server, "POST", f"{rbac}/roles", writer, ctx=admin)
    assert status == 201, answer
    for name, kind, role in (
        ("jane-writes", "Role", "secret-writer"),
        ("jane-gone", "ClusterRole", "no-such-role"),
    ):
        binding = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}],
        }
        status, answer = await call_as(server, "POST", f"{rbac}/rolebindings", binding, ctx=admin)
        assert status == 201, answer

    listed = await asyncio.to_thread(server.kubectl, "auth", "can-i", "--list", "--as=jane")
    rows = _rows(listed.stdout)
    assert rows["secrets"] == "[create delete]", listed.stdout
    # The missing role is an evaluation error, in the listers' words, and not "incomplete".
    status, answer = await call_as(
        server, "POST", RULES, _rules_review(), ctx=_user_ssl_context(server, "jane")
    )
    assert status == 201
    assert answer["status"]["incomplete"] is False
    assert answer["status"]["evaluationError"] == (
        'clusterrole.rbac.authorization.k8s.io "no-such-role" not found'
    )
    # In another namespace the RoleBindings do not apply.
    status, answer = await call_as(
        server, "POST", RULES, _rules_review("kube-system"), ctx=_user_ssl_context(server, "jane")
    )
    assert "evaluationError" not in answer["status"]
    assert not any("secrets" in r["resources"] for r in answer["status"]["resourceRules"])

    everything = await asyncio.to_thread(server.kubectl, "auth", "can-i", "--list")
    assert _rows(everything.stdout)["*.*"] == "[*]"


async def test_rules_review_needs_a_namespace_and_an_authenticated_user(
    server: RunningServer,
) -> None:
    status, answer = await call_as(
        server, "POST", RULES, _rules_review(""), ctx=admin_ssl_context(server)
    )
    assert (status, answer["reason"], answer["message"]) == (
        400,
        "BadRequest",
        "no namespace on request",
    )
    status, answer = await call_as(server, "POST", RULES, _rules_review())
    assert status == 403
    assert answer["message"] == (
        'selfsubjectrulesreviews.authorization.k8s.io is forbidden: User "system:anonymous" '
        'cannot create resource "selfsubjectrulesreviews" in API group "authorization.k8s.io" '
        "at the cluster scope"
    )


def _sar(spec: dict[str, Any], kind: str = "SubjectAccessReview", **meta: Any) -> dict[str, Any]:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}
    if meta:
        body["metadata"] = meta
    return body


async def test_who_may_create_which_review(server: RunningServer) -> None:
    jane = _user_ssl_context(server, "jane")
    spec = {"user": "bob", "resourceAttributes": {"verb": "get", "resource": "secrets"}}
    status, answer = await call_as(server, "POST", SAR, _sar(spec), ctx=jane)
    assert (status, answer["reason"]) == (403, "Forbidden")
    assert answer["message"] == (
        'subjectaccessreviews.authorization.k8s.io is forbidden: User "jane" cannot create '
        'resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope'
    )
    lsar = f"{AUTHZ}/namespaces/default/localsubjectaccessreviews"
    status, answer = await call_as(server, "POST", lsar, _sar(spec, LSAR_KIND), ctx=jane)
    assert status == 403
    assert answer["message"].startswith(
        'localsubjectaccessreviews.authorization.k8s.io is forbidden: User "jane" cannot create '
        'resource "localsubjectaccessreviews" in API group "authorization.k8s.io" in the '
        'namespace "default"'
    )
    ssr = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    status, answer = await call_as(
        server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr
    )
    assert status == 403
    assert answer["message"] == (
        'selfsubjectreviews.authentication.k8s.io is forbidden: User "system:anonymous" cannot '
        'create resource "selfsubjectreviews" in API group "authentication.k8s.io" at the '
        "cluster scope"
    )


async def test_review_validation_as_upstream(server: RunningServer) -> None:
    admin = admin_ssl_context(server)
    both = {
        "nonResourceAttributes": {"path": "/api", "verb": "get"},
        "resourceAttributes": {"verb": "get", "resource": "pods"},
    }
    status, answer = await call_as(server, "POST", SAR, _sar(both, name="x"), ctx=admin)
    assert (status, answer["reason"]) == (422, "Invalid")
    # The value printed is the whole ObjectMeta, with the managedFields the server recorded.
    assert re.sub(r'"time":"[^"]+"', '"time":"<time>"', answer["message"]) == (
        '.authorization.k8s.io "" is invalid: [spec: Invalid value: {"Path":"/api","Verb":"get"}: '
        "exactly one of nonResourceAttributes or resourceAttributes must be specified, "
        'spec.user: Invalid value: "": at least one of user or group must be specified, '
        'metadata: Invalid value: {"name":"x","managedFields":[{"manager":"Python",'
        '"operation":"Update","apiVersion":"authorization.k8s.io/v1","time":"<time>",'
        '"fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:nonResourceAttributes":{".":{},'
        '"f:path":{},"f:verb":{}},"f:resourceAttributes":{".":{},"f:resource":{},"f:verb":{}}}}}]}'
        ": must be empty]"
    )
    status, answer = await call_as(server, "POST", SAR, _sar({"user": "u"}), ctx=admin)
    assert answer["message"] == (
        '.authorization.k8s.io "" is invalid: spec: Invalid value: null: exactly one of '
        "nonResourceAttributes or resourceAttributes must be specified"
    )
    assert answer["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: null: exactly one of nonResourceAttributes or "
            "resourceAttributes must be specified",
            "field": "spec",
        }
    ]

    lsar = f"{AUTHZ}/namespaces/default/localsubjectaccessreviews"
    other = {
        "user": "u",
        "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "other"},
    }
    status, answer = await call_as(server, "POST", lsar, _sar(other, LSAR_KIND), ctx=admin)
    assert (status, answer["reason"]) == (422, "Invalid")
    assert answer["message"] == (
        '.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: '
        '"other": must match metadata.namespace'
    )
    urls = {"user": "u", "nonResourceAttributes": {"path": "/x", "verb": "get"}}
    status, answer = await call_as(server, "POST", lsar, _sar(urls, LSAR_KIND), ctx=admin)
    assert answer["message"] == (
        '.authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: '
        '{"Path":"/x","Verb":"get"}: disallowed on this kind of request'
    )
    status, answer = await call_as(
        server, "POST", lsar, _sar(other, LSAR_KIND, namespace="other"), ctx=admin
    )
    assert (status, answer["message"]) == (
        400,
        "the namespace of the provided object does not match the namespace sent on the request",
    )
    fine = {
        "user": "u",
        "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"},
    }
    status, answer = await call_as(server, "POST", lsar, _sar(fine, LSAR_KIND), ctx=admin)
    assert status == 201 and answer["status"] == {"allowed": False}


def _pods_review(field_selector: dict[str, Any]) -> dict[str, Any]:
    attrs = {"verb": "list", "resource": "pods", "fieldSelector": field_selector}
    return _sar({"user": "system:node:n1", "groups": ["system:nodes"], "resourceAttributes": attrs})


async def test_a_reviews_field_selector_is_authorized_as_upstream(server: RunningServer) -> None:
    """A node may list pods only with spec.nodeName=<itself>: the review's selector counts,
    and what of it cannot be used is said in evaluationError (BuildEvaluationError)."""
    admin = admin_ssl_context(server)
    own = {"key": "spec.nodeName", "operator": "In", "values": ["n1"]}
    for selector, allowed, error in (
        ({"requirements": [own]}, True, None),
        ({"rawSelector": "spec.nodeName=n1"}, True, None),
        (
            {"requirements": [own, {"key": "x", "operator": "Exists"}]},
            True,
            "spec.resourceAttributes.fieldSelector partially ignored due to parse error",
        ),
        (
            {"rawSelector": "spec.nodeName"},
            False,
            "spec.resourceAttributes.fieldSelector ignored due to parse error",
        ),
    ):
        status, answer = await call_as(server, "POST", SAR, _pods_review(selector), ctx=admin)
        assert status == 201, answer
        assert answer["status"]["allowed"] is allowed, selector
        assert answer["status"].get("evaluationError") == error, selector

    bad = {"rawSelector": "a=b", "requirements": [{"key": "", "operator": "In"}]}
    status, answer = await call_as(server, "POST", SAR, _pods_review(bad), ctx=admin)
    assert (status, answer["reason"]) == (422, "Invalid")
    path = "spec.resourceAttributes.fieldSelector"
    assert answer["message"] == (
        f'.authorization.k8s.io "" is invalid: [{path}.rawSelector: Invalid value: "a=b": may '
        f"not specified at the same time as requirements, {path}.requirements[0].key: Required "
        f"value: must be specified, {path}.requirements[0].values: Required value: must be "
        "specified when `operator` is 'In' or 'NotIn']"
    )
    status, answer = await call_as(server, "POST", SAR, _pods_review({}), ctx=admin)
    assert answer["message"] == (
        f'.authorization.k8s.io "" is invalid: {path}.requirements: Required value: when '
        f"{path} is specified, requirements or rawSelector is required"
    )
