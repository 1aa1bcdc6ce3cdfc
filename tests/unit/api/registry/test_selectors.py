"""Label and field selector grammar, unhappy paths first."""

from __future__ import annotations

import pytest

from kubeboot.api.registry.selectors import parse_field_selector, parse_label_selector
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import BadRequest

CSRS = find_resource("certificates.k8s.io", "v1", "certificatesigningrequests")
SECRETS = find_resource("", "v1", "secrets")
assert CSRS is not None
assert SECRETS is not None


@pytest.mark.parametrize(
    "text", ["a b", "=x", "k in (a", "bad key=1", "k=in valid", "k=" + "v" * 64]
)
def test_malformed_label_selectors_are_400(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_label_selector(text)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),  # != matches objects without the label, as upstream
        ("app!=web", {"app": "web"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier notin (a,b)", {"tier": "c"}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("gpu", {"gpu": ""}, True),
        ("!gpu", {"gpu": ""}, False),
        ("app=web,tier in (x)", {"app": "web", "tier": "y"}, False),
        ("example.com/role=worker", {"example.com/role": "worker"}, True),
    ],
)
def test_label_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_unknown_field_is_rejected_in_upstreams_words_for_the_kind() -> None:
    """Kinds with their own field-label conversion say "not supported"; the others get the
    default conversion's sentence, which names the two metadata labels."""
    assert CSRS is not None
    with pytest.raises(BadRequest) as excinfo:
        parse_field_selector("spec.username=x", CSRS)
    assert excinfo.value.message == "field label not supported: spec.username"
    configmaps = find_resource("", "v1", "configmaps")
    assert configmaps is not None
    with pytest.raises(BadRequest) as excinfo:
        parse_field_selector("data.a=1", configmaps)
    assert excinfo.value.message == (
        '"data.a" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
    roles = find_resource("rbac.authorization.k8s.io", "v1", "clusterroles")
    assert roles is not None  # cluster-scoped, default conversion: metadata.namespace is known
    assert parse_field_selector("metadata.namespace=", roles).matches({"metadata": {}})


def test_namespace_field_only_on_namespaced_resources() -> None:
    assert CSRS is not None
    assert SECRETS is not None
    with pytest.raises(BadRequest):
        parse_field_selector("metadata.namespace=a", CSRS)
    sel = parse_field_selector("metadata.namespace=a,type!=Opaque", SECRETS)
    assert sel.matches({"metadata": {"namespace": "a"}, "type": "bootstrap.kubernetes.io/token"})
    assert not sel.matches({"metadata": {"namespace": "a"}, "type": "Opaque"})


def test_field_selector_without_operator() -> None:
    assert CSRS is not None
    with pytest.raises(BadRequest):
        parse_field_selector("metadata.name", CSRS)


def test_exact_name_narrows_only_for_equality() -> None:
    assert CSRS is not None
    assert parse_field_selector("metadata.name=node-csr-a", CSRS).exact_name() == "node-csr-a"
    assert parse_field_selector("metadata.name!=node-csr-a", CSRS).exact_name() is None
    sel = parse_field_selector("spec.signerName=kubernetes.io/kubelet-serving", CSRS)
    assert sel.matches({"spec": {"signerName": "kubernetes.io/kubelet-serving"}})


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("metadata.name=node-csr-a", ()),
        ("metadata.name=node-csr-a,metadata.name=node-csr-a", ()),
        ("metadata.name=node-csr-a,spec.signerName=x/y", ("spec.signerName",)),
        ("metadata.name=node-csr-a,metadata.name!=node-csr-a", ("metadata.name",)),
        ("metadata.name=node-csr-a,metadata.name=node-csr-b", ("metadata.name",)),
    ],
)
def test_without_name_drops_only_the_pinned_equality(text: str, left: tuple[str, ...]) -> None:
    assert CSRS is not None
    fields = parse_field_selector(text, CSRS).without_name("node-csr-a")
    assert tuple(t.field for t in fields.terms) == left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a,,", "found ',', expected: identifier after ','"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        (
            "x>a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
    ],
)
def test_label_selector_errors_are_upstreams(text: str, message: str) -> None:
    """Messages of upstream's lexer/parser (apimachinery labels.Parse), word for word."""
    with pytest.raises(BadRequest) as excinfo:
        parse_label_selector(text)
    assert excinfo.value.message == message


def test_label_selector_integer_comparisons() -> None:
    sel = parse_label_selector("gen>5,size<10")
    assert sel.matches({"gen": "6", "size": "9"})
    assert not sel.matches({"gen": "5", "size": "9"})
    assert not sel.matches({"gen": "x", "size": "9"})  # not an integer: no match, as upstream
    assert not sel.matches({"size": "9"})
