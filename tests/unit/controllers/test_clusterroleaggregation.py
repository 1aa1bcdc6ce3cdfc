"""clusterrole-aggregation's decision: which rules an aggregating ClusterRole ends up with."""

from __future__ import annotations

from typing import Any

import pytest

from kubeboot.auth.defaults import default_cluster_roles
from kubeboot.controllers.clusterroleaggregation import (
    InvalidSelector,
    aggregated_rules,
    selector_matches,
)

Obj = dict[str, Any]


def _role(name: str, rules: list[Obj], labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "rules": rules}


def _rule(verb: str, resource: str) -> Obj:
    return {"verbs": [verb], "apiGroups": [""], "resources": [resource]}


@pytest.mark.parametrize(
    ("selector", "labels", "want"),
    [
        ({}, {}, True),  # an empty selector selects everything
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {"a": "1"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)
def test_selector_matches(selector: Obj, labels: dict[str, str], want: bool) -> None:
    assert selector_matches(selector, labels) is want


@pytest.mark.parametrize(
    "expr",
    [
        {"key": "a", "operator": "In", "values": []},
        {"key": "a", "operator": "Exists", "values": ["x"]},
        {"key": "a", "operator": "Near", "values": ["x"]},
    ],
)
def test_invalid_selectors_are_errors(expr: Obj) -> None:
    with pytest.raises(InvalidSelector):
        selector_matches({"matchExpressions": [expr]}, {"a": "x"})


def test_no_aggregation_rule_means_nothing_to_do() -> None:
    assert aggregated_rules(_role("plain", [_rule("get", "pods")]), []) is None


def test_rules_are_gathered_by_selector_then_name_without_self_or_duplicates() -> None:
    label = {"agg": "true"}
    target = {
        "metadata": {"name": "target", "labels": label},
        "aggregationRule": {
            "clusterRoleSelectors": [{"matchLabels": label}, {"matchLabels": {"other": "x"}}]
        },
        "rules": [_rule("delete", "everything")],  # its own rules never feed back in
    }
    roles = [
        target,
        _role("zeta", [_rule("get", "pods"), _rule("list", "pods")], label),
        _role("alpha", [_rule("list", "pods")], label),
        _role("unlabelled", [_rule("get", "secrets")]),
        _role("second", [_rule("get", "pods"), _rule("watch", "nodes")], {"other": "x"}),
    ]
    assert aggregated_rules(target, roles) == [
        _rule("list", "pods"),
        _rule("get", "pods"),
        _rule("watch", "nodes"),
    ]


def test_the_default_view_role_gets_upstreams_view_rules() -> None:
    roles = default_cluster_roles()
    view = next(r for r in roles if r["metadata"]["name"] == "view")
    part = next(r for r in roles if r["metadata"]["name"] == "system:aggregate-to-view")
    assert aggregated_rules(view, roles) == part["rules"]
