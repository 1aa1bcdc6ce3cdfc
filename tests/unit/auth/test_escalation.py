"""Covers, CompactRules and the escalation message, table-driven against upstream's semantics
(``component-helpers/auth/rbac/validation/policy_comparator_test.go`` cases, reworded)."""

from __future__ import annotations

import pytest

from kubeboot.auth.escalation import (
    FULL_AUTHORITY,
    breakdown,
    compact_rules,
    compact_string,
    covers,
    escalation_message,
    go_quote,
)
from kubeboot.auth.interface import UserInfo
from kubeboot.auth.rbac import PolicyRule


def rule(
    verbs: str,
    groups: str = "",
    resources: str = "",
    names: str = "",
    urls: str = "",
) -> PolicyRule:
    """``rule("get,list", "", "secrets")``: comma lists; an empty group list is [""]."""

    def split(text: str) -> tuple[str, ...]:
        return tuple(text.split(",")) if text else ()

    return PolicyRule(
        verbs=split(verbs),
        api_groups=() if urls else (tuple(groups.split(",")) if groups != "" else ("",)),
        resources=split(resources),
        resource_names=split(names),
        non_resource_urls=split(urls),
    )


NOT_COVERED = [
    # (owner rules, servant rules) that must NOT be covered
    ([rule("get", "", "pods")], [rule("get", "", "secrets")]),
    ([rule("get", "", "pods")], [rule("list", "", "pods")]),
    ([rule("get", "", "pods")], [rule("get", "apps", "pods")]),
    ([rule("get", "", "pods")], [rule("get", "", "pods/status")]),  # sub needs its own grant
    ([rule("get", "", "pods", names="a")], [rule("get", "", "pods")]),  # all names ⊄ one
    ([rule("get", "", "pods", names="a")], [rule("get", "", "pods", names="b")]),
    ([rule("get", "", "*/status")], [rule("get", "", "pods")]),
    ([rule("get", "", "pods")], [rule("get", "", "*")]),  # a wildcard needs a wildcard
    ([rule("get", "", "pods")], [rule("*", "", "pods")]),
    ([rule("get", "*", "pods")], [rule("get", "*", "*")]),
    ([rule("get", urls="/healthz")], [rule("get", urls="/healthz/etcd")]),
    ([rule("get", urls="/api*")], [rule("get", urls="/ap")]),
    ([rule("get", "", "pods")], [rule("get", urls="/api")]),  # resources never cover URLs
    ([rule("get", urls="*")], [rule("get", "", "pods")]),  # and URLs never cover resources
    (list(FULL_AUTHORITY)[:1], [rule("get", urls="/metrics")]),
]

COVERED = [
    ([rule("*", "*", "*")], [rule("get,list", "apps,", "deployments,pods/log")]),
    ([rule("get,list", "", "pods")], [rule("get", "", "pods"), rule("list", "", "pods")]),
    ([rule("get", "", "*/status")], [rule("get", "", "pods/status,nodes/status")]),
    ([rule("get", "", "pods")], [rule("get", "", "pods", names="a,b")]),  # names ⊂ all
    ([rule("get", "", "pods", names="a,b")], [rule("get", "", "pods", names="b")]),
    ([rule("get", urls="/api*")], [rule("get", urls="/api/v1,/apis")]),
    ([rule("get", urls="*")], [rule("get", urls="/anything")]),
    # split across owners: each atom by some owner rule
    ([rule("get", "", "pods"), rule("list", "", "pods")], [rule("get,list", "", "pods")]),
    (list(FULL_AUTHORITY), list(FULL_AUTHORITY)),
    ([], []),
    ([], [PolicyRule(verbs=(), api_groups=("",), resources=("pods",))]),  # no verbs: no atoms
]


@pytest.mark.parametrize(("owner", "servant"), NOT_COVERED)
def test_not_covered(owner: list[PolicyRule], servant: list[PolicyRule]) -> None:
    held, missing = covers(owner, servant)
    assert not held
    assert missing


@pytest.mark.parametrize(("owner", "servant"), COVERED)
def test_covered(owner: list[PolicyRule], servant: list[PolicyRule]) -> None:
    assert covers(owner, servant) == (True, [])


def test_breakdown_order_is_upstreams() -> None:
    atoms = breakdown(rule("get,list", "a,b", "x", names="n1,n2"))
    assert [(a.api_groups[0], a.verbs[0], a.resource_names[0]) for a in atoms] == [
        ("a", "get", "n1"),
        ("a", "get", "n2"),
        ("a", "list", "n1"),
        ("a", "list", "n2"),
        ("b", "get", "n1"),
        ("b", "get", "n2"),
        ("b", "list", "n1"),
        ("b", "list", "n2"),
    ]
    assert breakdown(rule("get,post", urls="/a,/b")) == [
        rule("get", urls="/a"),
        rule("post", urls="/a"),
        rule("get", urls="/b"),
        rule("post", urls="/b"),
    ]


def test_compact_merges_verbs_per_resource_and_name() -> None:
    _, missing = covers([], [rule("get,list,watch", "", "secrets,configmaps", names="")])
    assert [compact_string(r) for r in compact_rules(missing)] == [
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch"]}',
        '{APIGroups:[""], Resources:["configmaps"], Verbs:["get" "list" "watch"]}',
    ]
    _, missing = covers([], [rule("get,delete", "", "secrets", names="a,b")])
    assert [compact_string(r) for r in compact_rules(missing)] == [
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["a"], Verbs:["get" "delete"]}',
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["b"], Verbs:["get" "delete"]}',
    ]
    urls = compact_rules(covers([], [rule("get,post", urls="/x")])[1])
    assert [compact_string(r) for r in urls] == [
        '{NonResourceURLs:["/x"], Verbs:["get"]}',
        '{NonResourceURLs:["/x"], Verbs:["post"]}',
    ]


def test_go_quote() -> None:
    assert go_quote("plain") == '"plain"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("tab\there\n") == '"tab\\there\\n"'
    assert go_quote("\x00\x7f") == '"\\x00\\x7f"'
    assert go_quote("é✓") == '"é✓"'
    assert go_quote("\u200b") == '"\\u200b"'


def test_escalation_message_is_upstreams() -> None:
    user = UserInfo("alice", groups=("devs", "system:authenticated"))
    _, missing = covers(
        [rule("get", "", "pods")],
        [rule("get,list", "", "secrets"), rule("*", "*", "*"), rule("get", urls="/metrics")],
    )
    assert escalation_message(user, missing) == (
        'user "alice" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC '
        "permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}\n'
        '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}\n'
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}'
    )
    with_errors = escalation_message(
        user, missing[:1], ['roles.rbac.authorization.k8s.io "gone" not found']
    )
    assert with_errors.endswith(
        '; resolution errors: [roles.rbac.authorization.k8s.io "gone" not found]'
    )
    two = escalation_message(user, missing[:1], ["a", "b", "a"])
    assert two.endswith("; resolution errors: [[a, b]]")
    assert escalation_message(UserInfo("bob"), missing[:1]).startswith(
        'user "bob" (groups=[]) is attempting'
    )
